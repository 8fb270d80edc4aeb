"""The embedded default store: one SQLite file in WAL mode."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Iterator, Sequence

from qa_inspect.records import CallResult, Transcript
from qa_inspect.store.base import SCHEMA, ResultRow, SQLStoreBase, dumps, loads


class SQLiteStore(SQLStoreBase):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.url = str(self.path)  # what a re-score worker process opens its own connection with
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def put_transcript(self, audio_hash: str, asr_key: str, transcript: Transcript) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO transcripts VALUES (?,?,?,?)",
                            (audio_hash, asr_key, dumps(transcript.to_dict()), time.time()))

    def put_rows(self, rows: Sequence[ResultRow]) -> None:
        """Rows made by ``result_row``, in one transaction (all stored, or none)."""
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?)", rows)

    def results(self) -> Iterator[CallResult]:
        for (rec,) in self.db.execute("SELECT record FROM results ORDER BY started_at, call_id"):
            yield CallResult.from_dict(loads(rec))
