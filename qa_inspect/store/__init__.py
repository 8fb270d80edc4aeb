"""Persistence behind one interface (``Store``): SQLite (the embedded default, WAL) or
PostgreSQL (a database a team shares). The only home of database drivers.

Two tables: ``transcripts`` keyed by (audio hash, stage config key) so a rule change re-scores
without transcribing again; ``results`` holds one row per call_id, written in one transaction
per call, so a killed batch resumes without losing or double-counting a call.
"""
from __future__ import annotations

from pathlib import Path

from qa_inspect.store.base import ResultRow, SQLStoreBase, Store, dumps, loads, result_row
from qa_inspect.store.sqlite import SQLiteStore

__all__ = ["ResultRow", "SQLStoreBase", "SQLiteStore", "Store", "dumps", "loads", "open_store", "result_row"]


def open_store(url: str | Path) -> SQLiteStore:
    """``qa.db`` or ``sqlite:///qa.db`` (the embedded default), or ``postgresql://...`` (a
    database a team shares; needs the ``postgres`` extra: ``pip install 'qa-inspect[postgres]'``)."""
    s = str(url)
    if s.startswith(("postgresql://", "postgres://")):
        from qa_inspect.store.postgres import PostgresStore

        return PostgresStore(s)  # type: ignore[return-value]  # same interface (Store)
    if s.startswith("sqlite:///"):
        s = s[len("sqlite:///"):]
    store = SQLiteStore(s)
    from qa_inspect.enrich import embeddings  # utterance vectors (similar_to rules) live next to the transcripts

    embeddings.persist_to(store.path)
    return store
