"""Persistence behind one interface (``Store``): SQLite (the embedded default, WAL) or
PostgreSQL (a database a team shares). The only home of database drivers and of SQL.

``transcripts`` keyed by (audio hash, stage config key) so a rule change re-scores without
transcribing again; ``results`` holds one row per call_id, written in one transaction per
call, so a killed batch resumes without losing or double-counting a call. Next to them: the
QC workflow's tables (``workflow_sql``) and the utterance vectors of ``similar_to`` rules.
Every driver error leaves the store as one ``StoreError`` (a ``QAError``).
"""
from __future__ import annotations

from pathlib import Path

from qa_inspect.store.base import ResultRow, SQLStoreBase, Store, dumps, loads, result_row
from qa_inspect.store.errors import StoreError, redact_url
from qa_inspect.store.sqlite import SQLiteStore
from qa_inspect.store.workflow_sql import CalibrationInputs, WorkflowStore

__all__ = ["CalibrationInputs", "ResultRow", "SQLStoreBase", "SQLiteStore", "Store", "StoreError", "WorkflowStore",
           "dumps", "loads", "open_store", "redact_url", "result_row"]


def open_store(url: str | Path, *, readonly: bool = False, check: bool = True) -> SQLiteStore:
    """``qa.db`` or ``sqlite:///qa.db`` (the embedded default), or ``postgresql://...`` (a
    database a team shares; needs the ``postgres`` extra: ``pip install 'qa-inspect[postgres]'``).

    A SQLite file is checked before anything is written (``StoreError`` when it is a
    directory, not SQLite, truncated, damaged or read-only). ``readonly``: the caller only
    reads, so the file must exist and may be read-only; ``check=False`` skips the full
    ``quick_check`` read.
    The store also keeps the utterance vectors of ``similar_to`` rules from now on."""
    s = str(url)
    if s.startswith(("postgresql://", "postgres://")):
        from qa_inspect.store.postgres import PostgresStore

        store = PostgresStore(s)  # same interface (Store)
    else:
        if s.startswith("sqlite:///"):
            s = s[len("sqlite:///"):]
        store = SQLiteStore(s, readonly=readonly, check=check)
    from qa_inspect.enrich import embeddings  # vectors are computed there, kept here

    embeddings.persist_to(store)
    return store  # type: ignore[return-value]
