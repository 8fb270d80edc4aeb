"""The store on PostgreSQL, for teams that share one results database.

Same interface and semantics as ``store.SQLiteStore`` (the ``Store`` protocol): the same two
tables, one transaction per call (``put_result``) or per chunk (``put_rows``, re-scoring),
records kept as the exact JSON text the SQLite store keeps. Selected by
``open_store("postgresql://user@host/db")``; needs the ``postgres`` extra (psycopg 3).

Text columns that are sorted or paged on use the "C" collation, so call ids and times order
byte-wise exactly as in SQLite, whatever the server's locale.

Only the batch tables live here: the QC workflow tables (sampling, reviews, appeals) use
SQLite directly and need a SQLite ``--db``.
"""
from __future__ import annotations

import time
from typing import Iterator, Sequence

from qa_inspect.errors import QAError
from qa_inspect.records import CallResult, Transcript
from qa_inspect.store.base import ResultRow, SQLStoreBase, dumps, loads

SCHEMA = """
CREATE TABLE IF NOT EXISTS transcripts (
    audio_hash TEXT COLLATE "C" NOT NULL,
    asr_key TEXT COLLATE "C" NOT NULL,
    transcript TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (audio_hash, asr_key)
);
CREATE TABLE IF NOT EXISTS results (
    call_id TEXT COLLATE "C" PRIMARY KEY,
    agent_id TEXT COLLATE "C",
    started_at TEXT COLLATE "C",
    status TEXT NOT NULL,
    score DOUBLE PRECISION,
    config_hash TEXT NOT NULL,
    record TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS results_agent ON results(agent_id, started_at);
CREATE INDEX IF NOT EXISTS results_order ON results(started_at, call_id);
"""

_UPSERT = """
INSERT INTO results (call_id, agent_id, started_at, status, score, config_hash, record, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (call_id) DO UPDATE SET agent_id = EXCLUDED.agent_id, started_at = EXCLUDED.started_at,
    status = EXCLUDED.status, score = EXCLUDED.score, config_hash = EXCLUDED.config_hash,
    record = EXCLUDED.record, updated_at = EXCLUDED.updated_at
"""

_SCHEMA_LOCK = 0x7161_5F69  # advisory lock id: two clients creating the tables at once


class PostgresStore(SQLStoreBase):
    P = "%s"  # psycopg's placeholder (the shared queries are written with ?)

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError as e:
            raise QAError("a postgresql:// database needs psycopg: pip install 'qa-inspect[postgres]'") from e
        self.url = url
        try:
            # autocommit: reads hold no transaction open; every write is an explicit one
            self.db = psycopg.connect(url, autocommit=True)
        except psycopg.Error as e:
            raise QAError(f"cannot connect to PostgreSQL at {_redact(url)} ({str(e).strip()})") from e
        with self.db.transaction():
            self.db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for stmt in filter(str.strip, SCHEMA.split(";")):
                self.db.execute(stmt)

    # --- transcripts ---------------------------------------------------------------------
    def put_transcript(self, audio_hash: str, asr_key: str, transcript: Transcript) -> None:
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO transcripts VALUES (%s,%s,%s,%s) ON CONFLICT (audio_hash, asr_key) "
                "DO UPDATE SET transcript = EXCLUDED.transcript, created_at = EXCLUDED.created_at",
                (audio_hash, asr_key, dumps(transcript.to_dict()), time.time()))

    # --- results -------------------------------------------------------------------------
    def put_rows(self, rows: Sequence[ResultRow]) -> None:
        """Rows made by ``store.result_row``, in one transaction (all stored, or none)."""
        if not rows:
            return
        with self.db.transaction(), self.db.cursor() as cur:
            cur.executemany(_UPSERT, rows)

    def results(self, batch: int = 500) -> Iterator[CallResult]:
        """Every stored result in report order (started_at, call_id), read ``batch`` at a time."""
        last: tuple[str, str] | None = None
        while True:
            if last is None:
                rows = self.db.execute("SELECT started_at, call_id, record FROM results "
                                       "ORDER BY started_at, call_id LIMIT %s", (batch,)).fetchall()
            else:
                rows = self.db.execute("SELECT started_at, call_id, record FROM results "
                                       "WHERE (started_at, call_id) > (%s, %s) "
                                       "ORDER BY started_at, call_id LIMIT %s", (*last, batch)).fetchall()
            if not rows:
                return
            last = (rows[-1][0], rows[-1][1])
            for _s, _c, rec in rows:
                yield CallResult.from_dict(loads(rec))

    def truncate(self) -> None:
        """Empty both tables (benchmarks, tests)."""
        with self.db.transaction():
            self.db.execute("TRUNCATE results, transcripts")


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}@{host}"
    return url
