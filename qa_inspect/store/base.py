"""Persistence behind one small interface; SQLite (WAL) is the embedded default.

Two tables: ``transcripts`` keyed by (audio hash, ASR config key) so a rule change re-scores
without transcribing again; ``results`` holds one row per (batch, call_id), written in one
transaction per call, so a killed batch resumes without losing or double-counting a call.
The QC workflow's tables are in ``workflow_sql``; utterance vectors (``turn_embeddings``) are
kept by each driver (``get_vectors`` / ``put_vectors``).
"""
from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, Sequence

from qa_inspect.records import CallResult, Transcript
from qa_inspect.store.kpi_sql import fact_rows

try:  # orjson: 5-10x faster JSON both ways, what makes bulk re-scoring fast (optional)
    import orjson

    _OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY

    def dumps(obj: Any) -> str:
        """Compact JSON text, non-ASCII kept as is (what ``json.dumps(ensure_ascii=False)`` gives)."""
        return orjson.dumps(obj, option=_OPTS).decode()

    loads = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency; stay usable without it
    def dumps(obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

    loads = json.loads

# (call_id, agent_id, started_at, status, score, config_hash, record JSON, updated_at, facts)
# facts: the call's ``call_facts`` and ``call_hits`` rows (``kpi_sql.fact_rows``); a row of the
# first eight only (older callers) has them computed from the record JSON when written
ResultRow = tuple


def result_row(result: CallResult, record: dict | None = None) -> ResultRow:
    """The ``results`` row of a call; ``record`` is ``result.to_dict()`` when already built."""
    r = record if record is not None else result.to_dict()
    return (r["call_id"], r["agent_id"], r["started_at"], r["status"], r["score"],
            result.config_hash, dumps(r), time.time(), fact_rows(r))


def split_rows(rows: Sequence[ResultRow]) -> tuple[list[tuple], list[tuple]]:
    """``(results rows, facts)`` of rows made by ``result_row`` (or their first eight fields)."""
    return ([tuple(r[:8]) for r in rows],
            [r[8] if len(r) > 8 else fact_rows(loads(r[6])) for r in rows])

SCHEMA = """
CREATE TABLE IF NOT EXISTS transcripts (
    audio_hash TEXT NOT NULL,
    asr_key TEXT NOT NULL,
    transcript TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (audio_hash, asr_key)
);
CREATE TABLE IF NOT EXISTS results (
    call_id TEXT PRIMARY KEY,
    agent_id TEXT,
    started_at TEXT,
    status TEXT NOT NULL,
    score REAL,
    config_hash TEXT NOT NULL,
    record TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_agent ON results(agent_id, started_at);
"""


class Store(Protocol):
    def get_transcript(self, audio_hash: str, asr_key: str) -> Transcript | None: ...
    def has_transcript(self, audio_hash: str, asr_key: str) -> bool: ...
    def put_transcript(self, audio_hash: str, asr_key: str, transcript: Transcript) -> None: ...
    def done(self, call_id: str, config_hash: str) -> bool: ...
    def put_result(self, result: CallResult) -> None: ...
    def get_result(self, call_id: str) -> CallResult | None: ...
    def asr_keys(self, audio_hash: str) -> list[tuple[str, Transcript]]: ...
    def call_ids(self, status: str | None = None) -> list[str]: ...
    def results(self) -> Iterator[CallResult]: ...
    def results_of(self, call_ids: Iterable[str], batch: int = 500) -> Iterator[CallResult]: ...
    def result_status(self, call_id: str) -> str | None: ...
    def ok_scores(self) -> list[tuple[str, str | None, str | None, float | None]]: ...
    def count(self, status: str | None = None) -> int: ...
    # bulk access for re-scoring (one transaction per chunk, raw JSON records)
    def put_results(self, results: Iterable[CallResult]) -> None: ...
    def put_rows(self, rows: Sequence[ResultRow]) -> None: ...
    def raw_results(self, status: str = "ok", batch: int = 500) -> Iterator[list[tuple[str, str]]]: ...
    def id_pages(self, status: str = "ok", batch: int = 500) -> Iterator[tuple[str, str]]: ...
    def raw_range(self, first: str, last: str, status: str = "ok") -> list[tuple[str, str]]: ...
    def transcript_keys(self) -> dict[str, list[str]]: ...
    def result_status(self, call_id: str) -> str | None: ...
    def ok_scores(self) -> list[tuple[str, str | None, str | None, float | None]]: ...
    # utterance vectors of similar_to rules (qa_inspect.enrich.embeddings), keyed by model + text hash
    def get_vectors(self, model: str, keys: Sequence[str]) -> dict[str, bytes]: ...
    def put_vectors(self, model: str, items: Sequence[tuple[str, bytes]]) -> None: ...
    def count_vectors(self, model: str) -> int: ...
    def close(self) -> None: ...


class SQLStoreBase:
    """The queries SQLite and PostgreSQL share, written once with ``?`` placeholders; ``P`` is
    the driver's own placeholder (psycopg: ``%s``). Subclasses give ``db``, writes and ``results``."""

    P = "?"
    db: Any
    _closed = False

    def _q(self, sql: str) -> str:
        return sql if self.P == "?" else sql.replace("?", self.P)

    def _tx(self) -> Any:  # pragma: no cover - per driver
        """A context manager around one write transaction (commit, or roll back on error)."""
        raise NotImplementedError

    def get_transcript(self, audio_hash: str, asr_key: str) -> Transcript | None:
        row = self.db.execute(self._q("SELECT transcript FROM transcripts WHERE audio_hash=? AND asr_key=?"),
                              (audio_hash, asr_key)).fetchone()
        return Transcript.from_dict(loads(row[0])) if row else None

    def has_transcript(self, audio_hash: str, asr_key: str) -> bool:
        """Whether a transcript is stored under this key (nothing is read or parsed)."""
        return self.db.execute(self._q("SELECT 1 FROM transcripts WHERE audio_hash=? AND asr_key=?"),
                               (audio_hash, asr_key)).fetchone() is not None

    def asr_keys(self, audio_hash: str) -> list[tuple[str, Transcript]]:
        """Every (ASR config key, transcript) stored for this audio."""
        return [(k, Transcript.from_dict(loads(t))) for k, t in self.db.execute(
            self._q("SELECT asr_key, transcript FROM transcripts WHERE audio_hash=? ORDER BY created_at"),
            (audio_hash,))]

    def transcript_keys(self) -> dict[str, list[str]]:
        """ASR config keys stored per audio hash, oldest first (no transcript is parsed)."""
        out: dict[str, list[str]] = {}
        for h, k in self.db.execute("SELECT audio_hash, asr_key FROM transcripts ORDER BY created_at"):
            out.setdefault(h, []).append(k)
        return out

    def done(self, call_id: str, config_hash: str) -> bool:
        """True if this call already has a result under the same pipeline config."""
        row = self.db.execute(self._q("SELECT config_hash, status FROM results WHERE call_id=?"),
                              (call_id,)).fetchone()
        return bool(row and row[0] == config_hash and row[1] == "ok")

    def put_result(self, result: CallResult) -> None:
        self.put_rows([result_row(result)])  # one transaction per call: all or nothing

    def put_results(self, results: Iterable[CallResult]) -> None:
        """Several results in one transaction (all stored, or none)."""
        self.put_rows([result_row(r) for r in results])

    def put_rows(self, rows: Sequence[ResultRow]) -> None:  # pragma: no cover - per driver
        raise NotImplementedError

    def get_result(self, call_id: str) -> CallResult | None:
        row = self.db.execute(self._q("SELECT record FROM results WHERE call_id=?"), (call_id,)).fetchone()
        return CallResult.from_dict(loads(row[0])) if row else None

    def raw_results(self, status: str = "ok", batch: int = 500) -> Iterator[list[tuple[str, str]]]:
        """``(call_id, record JSON)`` of the results with ``status``, ``batch`` rows at a time in
        call_id order. Paged by key, so rows rewritten meanwhile are neither missed nor seen twice."""
        last = ""
        while True:
            rows = self.db.execute(self._q("SELECT call_id, record FROM results WHERE status=? AND call_id>? "
                                           "ORDER BY call_id LIMIT ?"), (status, last, batch)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield rows

    def id_pages(self, status: str = "ok", batch: int = 500) -> Iterator[tuple[str, str]]:
        """``(first, last)`` call ids of consecutive pages of ``batch`` results with ``status``
        (call_id order; only ids are read)."""
        last = ""
        while True:
            ids = [r[0] for r in self.db.execute(
                self._q("SELECT call_id FROM results WHERE status=? AND call_id>? ORDER BY call_id LIMIT ?"),
                (status, last, batch))]
            if not ids:
                return
            last = ids[-1]
            yield ids[0], last

    def results_of(self, call_ids: Iterable[str], batch: int = 500) -> Iterator[CallResult]:
        """The stored results of ``call_ids`` in the order given (an id without a result is
        skipped), read ``batch`` at a time: one batch's results in bounded memory, however many
        other nights the database holds."""
        it = iter(call_ids)
        while chunk := list(itertools.islice(it, batch)):
            marks = ",".join("?" * len(chunk))
            rows = dict(self.db.execute(self._q(f"SELECT call_id, record FROM results WHERE call_id IN ({marks})"),
                                        chunk).fetchall())
            for cid in chunk:
                if cid in rows:
                    yield CallResult.from_dict(loads(rows.pop(cid)))

    def raw_range(self, first: str, last: str, status: str = "ok") -> list[tuple[str, str]]:
        """``(call_id, record JSON)`` of the results with ``status`` and ``first <= call_id <= last``."""
        return self.db.execute(self._q("SELECT call_id, record FROM results WHERE status=? AND call_id>=? "
                                       "AND call_id<=? ORDER BY call_id"), (status, first, last)).fetchall()

    def call_ids(self, status: str | None = None) -> list[str]:
        """Call ids of stored results (report order), optionally only those with ``status``."""
        q, args = "SELECT call_id FROM results", ()
        if status is not None:
            q, args = q + " WHERE status=?", (status,)
        return [r[0] for r in self.db.execute(self._q(q + " ORDER BY started_at, call_id"), args)]

    def result_status(self, call_id: str) -> str | None:
        """The stored status of a call (``ok``, ``error``), None when it has no result."""
        row = self.db.execute(self._q("SELECT status FROM results WHERE call_id=?"), (call_id,)).fetchone()
        return row[0] if row else None

    def ok_scores(self) -> list[tuple[str, str | None, str | None, float | None]]:
        """``(call_id, agent_id, started_at, score)`` of every ok call, in report order (no record parsed)."""
        return [tuple(r) for r in self.db.execute(
            "SELECT call_id, agent_id, started_at, score FROM results WHERE status='ok' ORDER BY started_at, call_id")]

    def count(self, status: str | None = None) -> int:
        if status is None:
            return self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        return self.db.execute(self._q("SELECT COUNT(*) FROM results WHERE status=?"), (status,)).fetchone()[0]

    def close(self) -> None:
        if self.db is not None and not self._closed:
            self._closed = True
            self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
