"""The store on PostgreSQL, for teams that share one results database.

Same interface and semantics as ``store.SQLiteStore`` (the ``Store`` protocol): the same two
tables, one transaction per call (``put_result``) or per chunk (``put_rows``, re-scoring),
records kept as the exact JSON text the SQLite store keeps. Selected by
``open_store("postgresql://user@host/db")``; needs the ``postgres`` extra (psycopg 3).

Text columns that are sorted or paged on use the "C" collation, so call ids and times order
byte-wise exactly as in SQLite, whatever the server's locale.

The QC workflow tables (``store.workflow_sql``) and the utterance vectors of ``similar_to``
rules (``turn_embeddings``) live here too. Every psycopg error leaves as a ``StoreError``
whose message shows the URL without its password.
"""
from __future__ import annotations

import os
import time
from typing import Iterator, Sequence

from qa_inspect.errors import QAError
from qa_inspect.records import CallResult, Transcript
from qa_inspect.store.base import ResultRow, SQLStoreBase, dumps, loads
from qa_inspect.store.errors import StoreError, mask_secret, redact_url, wrap_driver_errors
from qa_inspect.store.workflow_sql import POSTGRES_SCHEMA as WORKFLOW_SCHEMA, WorkflowSQL

try:
    import psycopg
    _DRIVER_ERRORS: tuple[type[BaseException], ...] = (psycopg.Error,)
except ImportError:  # the postgres extra is not installed: PostgresStore() says so
    psycopg = None  # type: ignore[assignment]
    _DRIVER_ERRORS = ()

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
CREATE TABLE IF NOT EXISTS turn_embeddings (
    model TEXT NOT NULL,
    text_sha1 TEXT NOT NULL,
    vec BYTEA NOT NULL,
    PRIMARY KEY (model, text_sha1)
);
"""

_UPSERT = """
INSERT INTO results (call_id, agent_id, started_at, status, score, config_hash, record, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (call_id) DO UPDATE SET agent_id = EXCLUDED.agent_id, started_at = EXCLUDED.started_at,
    status = EXCLUDED.status, score = EXCLUDED.score, config_hash = EXCLUDED.config_hash,
    record = EXCLUDED.record, updated_at = EXCLUDED.updated_at
"""

_SCHEMA_LOCK = 0x7161_5F69  # advisory lock id: two clients creating the tables at once


def _translate(store: "PostgresStore", e: BaseException) -> StoreError:
    url = getattr(store, "url", "")
    msg = mask_secret(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__, url)
    return StoreError(f"PostgreSQL 出错 / PostgreSQL error ({msg})", redact_url(url))


@wrap_driver_errors(_DRIVER_ERRORS, _translate)
class PostgresStore(SQLStoreBase, WorkflowSQL):
    P = "%s"  # psycopg's placeholder (the shared queries are written with ?)
    _SEQ = "seq"  # the workflow's "written last" order (SQLite: rowid)
    _RESEQ = ("qc_reviews", "qc_review_items")  # tables whose upsert takes a new seq
    readonly = False

    def __init__(self, url: str) -> None:
        if psycopg is None:
            raise QAError("a postgresql:// database needs psycopg: pip install 'qa-inspect[postgres]'")
        self.url = url
        self.db = None
        self._pid = os.getpid()
        try:
            # autocommit: reads hold no transaction open; every write is an explicit one
            self.db = psycopg.connect(url, autocommit=True)
        except psycopg.Error as e:
            why = mask_secret(" ".join(str(e).split()), url)
            raise StoreError(f"无法连接 PostgreSQL / cannot connect to PostgreSQL ({why})："
                             "检查主机、端口、数据库名、用户名和密码", redact_url(url)) from None
        with self.db.transaction():
            self.db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for stmt in filter(str.strip, (SCHEMA + WORKFLOW_SCHEMA).split(";")):
                self.db.execute(stmt)

    def _tx(self):
        return self.db.transaction()

    def _upsert(self, table: str, cols: Sequence[str], key: Sequence[str]) -> str:
        sets = [f"{c} = EXCLUDED.{c}" for c in cols if c not in key]
        if table in self._RESEQ:
            sets.append("seq = DEFAULT")  # replaced rows count as written now, as with INSERT OR REPLACE
        return (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
                f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {', '.join(sets)}")

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

    # --- utterance vectors -----------------------------------------------------------------
    def _usable(self) -> bool:
        # a cache: after close, or in a forked child that inherited this connection, skip it
        return self.db is not None and not self._closed and os.getpid() == self._pid

    def get_vectors(self, model: str, keys: Sequence[str]) -> dict[str, bytes]:
        ks = list(dict.fromkeys(keys))
        if not ks or not self._usable():
            return {}
        rows = self.db.execute("SELECT text_sha1, vec FROM turn_embeddings WHERE model = %s AND text_sha1 = ANY(%s)",
                               (model, ks)).fetchall()
        return {k: bytes(v) for k, v in rows}

    def put_vectors(self, model: str, items: Sequence[tuple[str, bytes]]) -> None:
        if not items or not self._usable():
            return
        with self.db.transaction(), self.db.cursor() as cur:
            cur.executemany("INSERT INTO turn_embeddings VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                            [(model, k, v) for k, v in items])

    def count_vectors(self, model: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM turn_embeddings WHERE model = %s", (model,)).fetchone()[0]

    def truncate(self) -> None:
        """Empty the results and transcripts (benchmarks, tests)."""
        with self.db.transaction():
            self.db.execute("TRUNCATE results, transcripts")
