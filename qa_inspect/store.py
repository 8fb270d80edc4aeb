"""Persistence behind one small interface; SQLite (WAL) is the embedded default.

Two tables: ``transcripts`` keyed by (audio hash, ASR config key) so a rule change re-scores
without transcribing again; ``results`` holds one row per (batch, call_id), written in one
transaction per call, so a killed batch resumes without losing or double-counting a call.
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Iterator, Protocol

from .records import CallResult, Transcript

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
    def put_transcript(self, audio_hash: str, asr_key: str, transcript: Transcript) -> None: ...
    def done(self, call_id: str, config_hash: str) -> bool: ...
    def put_result(self, result: CallResult) -> None: ...
    def get_result(self, call_id: str) -> CallResult | None: ...
    def asr_keys(self, audio_hash: str) -> list[tuple[str, Transcript]]: ...
    def call_ids(self, status: str | None = None) -> list[str]: ...
    def results(self) -> Iterator[CallResult]: ...
    def close(self) -> None: ...


class SQLiteStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def get_transcript(self, audio_hash: str, asr_key: str) -> Transcript | None:
        row = self.db.execute("SELECT transcript FROM transcripts WHERE audio_hash=? AND asr_key=?",
                              (audio_hash, asr_key)).fetchone()
        return Transcript.from_dict(json.loads(row[0])) if row else None

    def put_transcript(self, audio_hash: str, asr_key: str, transcript: Transcript) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO transcripts VALUES (?,?,?,?)",
                            (audio_hash, asr_key, json.dumps(transcript.to_dict(), ensure_ascii=False),
                             time.time()))

    def done(self, call_id: str, config_hash: str) -> bool:
        """True if this call already has a result under the same pipeline config."""
        row = self.db.execute("SELECT config_hash, status FROM results WHERE call_id=?", (call_id,)).fetchone()
        return bool(row and row[0] == config_hash and row[1] == "ok")

    def put_result(self, result: CallResult) -> None:
        r = result.to_dict()
        with self.db:  # one transaction per call: all or nothing
            self.db.execute(
                "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?)",
                (r["call_id"], r["agent_id"], r["started_at"], r["status"], r["score"],
                 result.config_hash, json.dumps(r, ensure_ascii=False), time.time()))

    def get_result(self, call_id: str) -> CallResult | None:
        row = self.db.execute("SELECT record FROM results WHERE call_id=?", (call_id,)).fetchone()
        return CallResult.from_dict(json.loads(row[0])) if row else None

    def asr_keys(self, audio_hash: str) -> list[tuple[str, Transcript]]:
        """Every (ASR config key, transcript) stored for this audio."""
        return [(k, Transcript.from_dict(json.loads(t))) for k, t in self.db.execute(
            "SELECT asr_key, transcript FROM transcripts WHERE audio_hash=? ORDER BY created_at",
            (audio_hash,))]

    def call_ids(self, status: str | None = None) -> list[str]:
        """Call ids of stored results (report order), optionally only those with ``status``."""
        q = "SELECT call_id FROM results"
        args: tuple = ()
        if status is not None:
            q += " WHERE status=?"
            args = (status,)
        return [r[0] for r in self.db.execute(q + " ORDER BY started_at, call_id", args)]

    def results(self) -> Iterator[CallResult]:
        for (rec,) in self.db.execute("SELECT record FROM results ORDER BY started_at, call_id"):
            yield CallResult.from_dict(json.loads(rec))

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "SQLiteStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(url: str | Path) -> SQLiteStore:
    """``qa.db`` or ``sqlite:///qa.db``; a server database can be added here later."""
    s = str(url)
    if s.startswith("sqlite:///"):
        s = s[len("sqlite:///"):]
    return SQLiteStore(s)
