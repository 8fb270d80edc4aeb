"""The QC workflow's tables, in the results database itself (``SQLiteStore.db``).

The store's own tables (``transcripts``, ``results``) are left as they are; these are added
next to them with ``CREATE TABLE IF NOT EXISTS`` on first use:

- ``qc_samples``: one row per drawn sample (plan, seed, when, worksheet path).
- ``qc_sample_calls``: the calls of a sample, why each was drawn, the machine score then.
- ``qc_sample_items``: every worksheet row's machine columns as written (to detect edits
  and to calibrate against what the reviewer actually saw, even after a later re-score).
- ``qc_reviews``: one row per (sample, call, reviewer): the manual score (复核).
- ``qc_review_items``: one row per (sample, call, reviewer, rule): the reviewer's verdict.
- ``qc_appeals``: agents' appeals (申诉) and their decisions.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

from qa_inspect.errors import QAError

SCHEMA = """
CREATE TABLE IF NOT EXISTS qc_samples (
    sample_id TEXT PRIMARY KEY,
    plan_id TEXT NOT NULL,
    plan_version TEXT NOT NULL,
    plan_hash TEXT NOT NULL,
    seed INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    worksheet TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS qc_sample_calls (
    sample_id TEXT NOT NULL,
    call_id TEXT NOT NULL,
    agent_id TEXT,
    started_at TEXT,
    audio TEXT,
    reason TEXT NOT NULL,
    machine_score REAL,
    machine_grade TEXT,
    fatal INTEGER NOT NULL DEFAULT 0,
    config_hash TEXT,
    PRIMARY KEY (sample_id, call_id)
);
CREATE TABLE IF NOT EXISTS qc_sample_items (
    sample_id TEXT NOT NULL,
    call_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,  -- '(call)' for the whole-call row
    title TEXT,
    outcome TEXT NOT NULL,
    points REAL,
    evidence TEXT,
    time TEXT,
    PRIMARY KEY (sample_id, call_id, rule_id)
);
CREATE TABLE IF NOT EXISTS qc_reviews (
    sample_id TEXT NOT NULL,
    call_id TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    manual_score REAL,
    note TEXT,
    source TEXT,
    imported_at TEXT NOT NULL,
    PRIMARY KEY (sample_id, call_id, reviewer)
);
CREATE TABLE IF NOT EXISTS qc_review_items (
    sample_id TEXT NOT NULL,
    call_id TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    machine_outcome TEXT NOT NULL,
    verdict TEXT NOT NULL,  -- confirmed | false_positive | missed
    note TEXT,
    source TEXT,  -- "worksheet.xlsx:row 12"
    imported_at TEXT NOT NULL,
    PRIMARY KEY (sample_id, call_id, reviewer, rule_id)
);
CREATE TABLE IF NOT EXISTS qc_appeals (
    appeal_id INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    opened_by TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',  -- open | upheld | rejected
    decided_by TEXT,
    decided_at TEXT,
    decided_score REAL,
    decision_note TEXT
);
CREATE INDEX IF NOT EXISTS qc_appeals_call ON qc_appeals(call_id);
"""


class WorkflowError(QAError):
    """A sampling plan, worksheet, review or appeal cannot be used as given."""


def ensure_schema(db: sqlite3.Connection) -> sqlite3.Connection:
    db.executescript(SCHEMA)
    return db


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
