"""The QC workflow's tables (sampling, review, appeals) and their queries, for both drivers.

The workflow modules (``qa_inspect.workflow``) call these methods only; they never see a
connection. The tables live next to ``transcripts`` and ``results`` in the same database and
are created with them (``CREATE TABLE IF NOT EXISTS``):

- ``qc_samples``: one row per drawn sample (plan, seed, when, worksheet path).
- ``qc_sample_calls``: the calls of a sample, why each was drawn, the machine score then.
- ``qc_sample_items``: every worksheet row's machine columns as written (to detect edits
  and to calibrate against what the reviewer actually saw, even after a later re-score).
- ``qc_reviews``: one row per (sample, call, reviewer): the manual score (复核).
- ``qc_review_items``: one row per (sample, call, reviewer, rule): the reviewer's verdict.
- ``qc_appeals``: agents' appeals (申诉) and their decisions.

"Latest wins" orders (a review imported again replaces the earlier row and becomes the
latest) use SQLite's ``rowid`` (``INSERT OR REPLACE`` gives the row a new one) and, on
PostgreSQL, a ``seq`` column that an upsert sets anew.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

SQLITE_SCHEMA = """
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

# the same tables on PostgreSQL: "C" collation where rows are sorted or compared (byte order,
# as in SQLite), DOUBLE PRECISION for REAL, and ``seq`` for "the latest import wins"
_C = 'TEXT COLLATE "C"'
POSTGRES_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS qc_samples (
    sample_id {_C} PRIMARY KEY,
    plan_id TEXT NOT NULL,
    plan_version TEXT NOT NULL,
    plan_hash TEXT NOT NULL,
    seed BIGINT NOT NULL,
    created_at {_C} NOT NULL,
    worksheet TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS qc_sample_calls (
    sample_id {_C} NOT NULL,
    call_id {_C} NOT NULL,
    agent_id {_C},
    started_at {_C},
    audio TEXT,
    reason TEXT NOT NULL,
    machine_score DOUBLE PRECISION,
    machine_grade TEXT,
    fatal INTEGER NOT NULL DEFAULT 0,
    config_hash TEXT,
    PRIMARY KEY (sample_id, call_id)
);
CREATE TABLE IF NOT EXISTS qc_sample_items (
    sample_id {_C} NOT NULL,
    call_id {_C} NOT NULL,
    rule_id {_C} NOT NULL,
    title TEXT,
    outcome TEXT NOT NULL,
    points DOUBLE PRECISION,
    evidence TEXT,
    time TEXT,
    PRIMARY KEY (sample_id, call_id, rule_id)
);
CREATE TABLE IF NOT EXISTS qc_reviews (
    sample_id {_C} NOT NULL,
    call_id {_C} NOT NULL,
    reviewer {_C} NOT NULL,
    manual_score DOUBLE PRECISION,
    note TEXT,
    source TEXT,
    imported_at {_C} NOT NULL,
    seq BIGSERIAL,
    PRIMARY KEY (sample_id, call_id, reviewer)
);
CREATE TABLE IF NOT EXISTS qc_review_items (
    sample_id {_C} NOT NULL,
    call_id {_C} NOT NULL,
    reviewer {_C} NOT NULL,
    rule_id {_C} NOT NULL,
    machine_outcome TEXT NOT NULL,
    verdict TEXT NOT NULL,
    note TEXT,
    source TEXT,
    imported_at {_C} NOT NULL,
    seq BIGSERIAL,
    PRIMARY KEY (sample_id, call_id, reviewer, rule_id)
);
CREATE TABLE IF NOT EXISTS qc_appeals (
    appeal_id BIGSERIAL PRIMARY KEY,
    call_id {_C} NOT NULL,
    reason TEXT NOT NULL,
    opened_by TEXT NOT NULL,
    opened_at {_C} NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    decided_by TEXT,
    decided_at {_C},
    decided_score DOUBLE PRECISION,
    decision_note TEXT
);
CREATE INDEX IF NOT EXISTS qc_appeals_call ON qc_appeals(call_id);
"""

SAMPLE_COLS = ("sample_id", "plan_id", "plan_version", "plan_hash", "seed", "created_at", "worksheet")
SAMPLE_CALL_COLS = ("sample_id", "call_id", "agent_id", "started_at", "audio", "reason", "machine_score",
                    "machine_grade", "fatal", "config_hash")
SAMPLE_ITEM_COLS = ("sample_id", "call_id", "rule_id", "title", "outcome", "points", "evidence", "time")
REVIEW_COLS = ("sample_id", "call_id", "reviewer", "manual_score", "note", "source", "imported_at")
REVIEW_ITEM_COLS = ("sample_id", "call_id", "reviewer", "rule_id", "machine_outcome", "verdict", "note",
                    "source", "imported_at")
APPEAL_COLS = ("appeal_id", "call_id", "reason", "opened_by", "opened_at", "status", "decided_by",
               "decided_at", "decided_score", "decision_note")
_APPEAL_SELECT = f"SELECT {', '.join(APPEAL_COLS)} FROM qc_appeals"


@dataclass(frozen=True)
class CalibrationInputs:
    """What calibration reads, in the orders it relies on (the later row wins)."""
    items: list[tuple[str, str, str, str, str]]  # (call, reviewer, rule, machine outcome, verdict)
    started: dict[str, str]  # call → started_at (from the samples)
    machine_score: dict[str, float | None]  # call → machine score on the latest sample that has it
    reviews: list[tuple[str, str, float | None]]  # (call, reviewer, manual score), oldest first


class WorkflowStore(Protocol):
    """What ``qa_inspect.workflow`` needs from a store (both drivers give it)."""

    def results(self) -> Any: ...
    def result_status(self, call_id: str) -> str | None: ...
    def ok_scores(self) -> list[tuple[str, str | None, str | None, float | None]]: ...
    def sample_exists(self, sample_id: str) -> bool: ...
    def record_sample(self, sample: Sequence[Any], calls: Sequence[Sequence[Any]],
                      items: Sequence[Sequence[Any]]) -> None: ...
    def sample_call(self, sample_id: str, call_id: str) -> tuple | None: ...
    def sample_item(self, sample_id: str, call_id: str, rule_id: str) -> tuple | None: ...
    def record_review(self, reviewer: str, items: Sequence[Sequence[Any]], scores: Sequence[Sequence[Any]],
                      stamp: str) -> None: ...
    def open_appeal_id(self, call_id: str) -> int | None: ...
    def add_appeal(self, call_id: str, reason: str, opened_by: str, opened_at: str) -> int: ...
    def appeal_row(self, appeal_id: int) -> tuple | None: ...
    def decide_appeal_row(self, appeal_id: int, status: str, by: str, at: str, score: float | None,
                          note: str | None) -> bool: ...
    def appeal_rows(self, status: str | None = None, call_id: str | None = None) -> list[tuple]: ...
    def manual_score_rows(self) -> list[tuple[str, float, str]]: ...
    def upheld_appeal_rows(self) -> list[tuple[str, float, int]]: ...
    def calibration_inputs(self) -> CalibrationInputs: ...
    def review_verdicts(self, since: str = "") -> list[tuple[str, str, str, str, str, str]]: ...


class WorkflowSQL:
    """The workflow queries, written once with ``?`` placeholders. The driver class gives
    ``db``, ``_q``, ``_tx`` (one transaction), ``_upsert`` (insert or replace by key) and
    ``_SEQ`` (the column that orders rows by when they were last written)."""

    db: Any
    _SEQ = "rowid"
    _q: Any
    _tx: Any
    _upsert: Any

    def _one(self, sql: str, args: Sequence[Any] = ()) -> tuple | None:
        row = self.db.execute(self._q(sql), tuple(args)).fetchone()
        return tuple(row) if row is not None else None

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        return [tuple(r) for r in self.db.execute(self._q(sql), tuple(args)).fetchall()]

    # --- samples ---------------------------------------------------------------------------
    def sample_exists(self, sample_id: str) -> bool:
        return self._one("SELECT 1 FROM qc_samples WHERE sample_id=?", (sample_id,)) is not None

    def record_sample(self, sample: Sequence[Any], calls: Sequence[Sequence[Any]],
                      items: Sequence[Sequence[Any]]) -> None:
        """A drawn sample in one transaction: its ``qc_samples`` row (``SAMPLE_COLS``), its calls
        (``SAMPLE_CALL_COLS``) and worksheet rows (``SAMPLE_ITEM_COLS``); the same sample drawn
        again replaces its rows."""
        with self._tx():
            self.db.execute(self._upsert("qc_samples", SAMPLE_COLS, ("sample_id",)), tuple(sample))
            sql = self._upsert("qc_sample_calls", SAMPLE_CALL_COLS, ("sample_id", "call_id"))
            for row in calls:
                self.db.execute(sql, tuple(row))
            sql = self._upsert("qc_sample_items", SAMPLE_ITEM_COLS, ("sample_id", "call_id", "rule_id"))
            for row in items:
                self.db.execute(sql, tuple(row))

    def sample_call(self, sample_id: str, call_id: str) -> tuple | None:
        """``(agent_id, started_at, audio)`` of a call as drawn into a sample."""
        return self._one("SELECT agent_id, started_at, audio FROM qc_sample_calls WHERE sample_id=? AND call_id=?",
                         (sample_id, call_id))

    def sample_item(self, sample_id: str, call_id: str, rule_id: str) -> tuple | None:
        """``(title, outcome, points, evidence, time)`` of a worksheet row as written."""
        return self._one("SELECT title, outcome, points, evidence, time FROM qc_sample_items "
                         "WHERE sample_id=? AND call_id=? AND rule_id=?", (sample_id, call_id, rule_id))

    # --- reviews ---------------------------------------------------------------------------
    def record_review(self, reviewer: str, items: Sequence[Sequence[Any]], scores: Sequence[Sequence[Any]],
                      stamp: str) -> None:
        """One reviewer's import in one transaction. ``items``: ``(sample, call, rule, machine
        outcome, verdict, note, source)``; ``scores``: ``(sample, call, score, note, source)``, where
        a None score keeps the score, note and source recorded earlier (a sheet without the
        score). Rows are keyed, so importing the same sheet again replaces, never adds."""
        with self._tx():
            sql = self._upsert("qc_review_items", REVIEW_ITEM_COLS, ("sample_id", "call_id", "reviewer", "rule_id"))
            for sid, cid, rid, outcome, verdict, note, source in items:
                self.db.execute(sql, (sid, cid, reviewer, rid, outcome, verdict, note, source, stamp))
            sql = self._upsert("qc_reviews", REVIEW_COLS, ("sample_id", "call_id", "reviewer"))
            for sid, cid, score, note, source in scores:
                if score is None:
                    old = self._one("SELECT manual_score, note, source FROM qc_reviews WHERE sample_id=? "
                                    "AND call_id=? AND reviewer=?", (sid, cid, reviewer))
                    if old is not None:
                        score, note, source = old
                self.db.execute(sql, (sid, cid, reviewer, score, note, source, stamp))

    def manual_score_rows(self) -> list[tuple[str, float, str]]:
        """``(call, manual score, reviewer)`` of every scored review, oldest import first."""
        return self._all("SELECT call_id, manual_score, reviewer FROM qc_reviews WHERE manual_score IS NOT NULL "
                         f"ORDER BY imported_at, {self._SEQ}")

    # --- appeals ---------------------------------------------------------------------------
    def open_appeal_id(self, call_id: str) -> int | None:
        row = self._one("SELECT appeal_id FROM qc_appeals WHERE call_id=? AND status='open' ORDER BY appeal_id",
                        (call_id,))
        return int(row[0]) if row else None

    def add_appeal(self, call_id: str, reason: str, opened_by: str, opened_at: str) -> int:
        """A new open appeal; its id."""
        with self._tx():
            row = self.db.execute(self._q("INSERT INTO qc_appeals (call_id, reason, opened_by, opened_at, status) "
                                          "VALUES (?,?,?,?, 'open') RETURNING appeal_id"),
                                  (call_id, reason, opened_by, opened_at)).fetchone()
        return int(row[0])

    def appeal_row(self, appeal_id: int) -> tuple | None:
        """The appeal's columns (``APPEAL_COLS``)."""
        return self._one(_APPEAL_SELECT + " WHERE appeal_id=?", (appeal_id,))

    def decide_appeal_row(self, appeal_id: int, status: str, by: str, at: str, score: float | None,
                          note: str | None) -> bool:
        """Decide an appeal that is still open; False when it no longer is."""
        with self._tx():
            cur = self.db.execute(self._q("UPDATE qc_appeals SET status=?, decided_by=?, decided_at=?, "
                                          "decided_score=?, decision_note=? WHERE appeal_id=? AND status='open'"),
                                  (status, by, at, score, note, appeal_id))
            return cur.rowcount == 1

    def appeal_rows(self, status: str | None = None, call_id: str | None = None) -> list[tuple]:
        q, args = _APPEAL_SELECT + " WHERE 1=1", []
        if status:
            q += " AND status=?"
            args.append(status)
        if call_id:
            q += " AND call_id=?"
            args.append(call_id)
        return self._all(q + " ORDER BY appeal_id", args)

    def upheld_appeal_rows(self) -> list[tuple[str, float, int]]:
        """``(call, decided score, appeal id)`` of upheld appeals, earliest decision first."""
        return self._all("SELECT call_id, decided_score, appeal_id FROM qc_appeals WHERE status='upheld' "
                         "ORDER BY decided_at, appeal_id")

    # --- calibration -----------------------------------------------------------------------
    def calibration_inputs(self) -> CalibrationInputs:
        items = self._all("SELECT call_id, reviewer, rule_id, machine_outcome, verdict FROM qc_review_items "
                          f"ORDER BY call_id, rule_id, reviewer, imported_at, {self._SEQ}")
        started = {cid: s for cid, s in self._all("SELECT call_id, started_at FROM qc_sample_calls "
                                                  "ORDER BY call_id, sample_id")}
        machine = {cid: s for cid, s in self._all(
            "SELECT c.call_id, c.machine_score FROM qc_sample_calls c JOIN qc_samples s USING (sample_id) "
            "ORDER BY s.created_at, s.sample_id")}
        reviews = self._all(f"SELECT call_id, reviewer, manual_score FROM qc_reviews ORDER BY imported_at, {self._SEQ}")
        return CalibrationInputs(items, started, machine, reviews)

    def review_verdicts(self, since: str = "") -> list[tuple[str, str, str, str, str, str]]:
        """Every item verdict recorded at or after ``since`` (an ISO time; empty: all) as
        ``(call, reviewer, rule, machine outcome, verdict, recorded at)``, oldest first."""
        return self._all("SELECT call_id, reviewer, rule_id, machine_outcome, verdict, imported_at "
                         f"FROM qc_review_items WHERE imported_at >= ? ORDER BY imported_at, {self._SEQ}",
                         (since or "",))
