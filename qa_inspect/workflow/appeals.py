"""Appeals (申诉) against a call's result, and the call's final score.

Final score of a call = the score of its latest upheld appeal, else the latest manual review
score (复核), else the machine score. ``final_scores(store)`` is the one place that applies
this; reports that show "the" score of a call should use it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from qa_inspect.store import SQLiteStore
from qa_inspect.workflow.db import WorkflowError, ensure_schema, now_iso

STATUSES = ("open", "upheld", "rejected")


@dataclass(frozen=True)
class Appeal:
    appeal_id: int
    call_id: str
    reason: str
    opened_by: str
    opened_at: str
    status: str
    decided_by: str | None = None
    decided_at: str | None = None
    decided_score: float | None = None
    decision_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _appeal(row) -> Appeal:
    return Appeal(*row)


def get_appeal(store: SQLiteStore, appeal_id: int) -> Appeal:
    row = ensure_schema(store.db).execute("SELECT * FROM qc_appeals WHERE appeal_id=?", (appeal_id,)).fetchone()
    if row is None:
        raise WorkflowError(f"no appeal #{appeal_id}")
    return _appeal(row)


def open_appeal(store: SQLiteStore, call_id: str, reason: str, by: str) -> Appeal:
    """Record an agent's appeal against a stored call result; one open appeal per call."""
    db = ensure_schema(store.db)
    if not reason.strip() or not by.strip():
        raise WorkflowError("an appeal needs a reason (--reason) and who opens it (--by)")
    row = db.execute("SELECT status FROM results WHERE call_id=?", (call_id,)).fetchone()
    if row is None:
        raise WorkflowError(f"unknown call {call_id!r}: no result in the database")
    if row[0] != "ok":
        raise WorkflowError(f"call {call_id!r} has no score to appeal (status {row[0]})")
    dup = db.execute("SELECT appeal_id FROM qc_appeals WHERE call_id=? AND status='open'", (call_id,)).fetchone()
    if dup:
        raise WorkflowError(f"call {call_id!r} already has an open appeal (#{dup[0]})")
    with db:
        cur = db.execute("INSERT INTO qc_appeals (call_id, reason, opened_by, opened_at, status) "
                         "VALUES (?,?,?,?, 'open')", (call_id, reason.strip(), by.strip(), now_iso()))
    return get_appeal(store, cur.lastrowid)


def decide_appeal(store: SQLiteStore, appeal_id: int, upheld: bool, by: str, *,
                  score: float | None = None, note: str = "") -> Appeal:
    """Uphold (with the corrected ``score``, which becomes the call's final score) or reject
    (the final score stays what it was) an open appeal."""
    db = ensure_schema(store.db)
    a = get_appeal(store, appeal_id)
    if a.status != "open":
        raise WorkflowError(f"appeal #{appeal_id} is already {a.status} (by {a.decided_by} at {a.decided_at})")
    if not by.strip():
        raise WorkflowError("who decides is needed (--by)")
    if upheld and score is None:
        raise WorkflowError("an upheld appeal needs the corrected score (--score)")
    if not upheld and score is not None:
        raise WorkflowError("--score goes with --upheld; a rejected appeal keeps the call's score")
    if score is not None and not 0 <= score <= 100:
        raise WorkflowError(f"score {score:g} is outside 0–100")
    with db:
        db.execute("UPDATE qc_appeals SET status=?, decided_by=?, decided_at=?, decided_score=?, decision_note=? "
                   "WHERE appeal_id=? AND status='open'",
                   ("upheld" if upheld else "rejected", by.strip(), now_iso(), score, note or None, appeal_id))
    return get_appeal(store, appeal_id)


def list_appeals(store: SQLiteStore, status: str | None = None, call_id: str | None = None) -> list[Appeal]:
    q, args = "SELECT * FROM qc_appeals WHERE 1=1", []
    if status:
        q += " AND status=?"
        args.append(status)
    if call_id:
        q += " AND call_id=?"
        args.append(call_id)
    return [_appeal(r) for r in ensure_schema(store.db).execute(q + " ORDER BY appeal_id", args)]


@dataclass(frozen=True)
class FinalScore:
    call_id: str
    agent_id: str
    started_at: str
    machine: float | None  # the stored machine score now
    manual: float | None  # the latest manual review score (any reviewer), if reviewed
    appeal: float | None  # the score of the latest upheld appeal, if any
    final: float | None
    source: str  # appeal | manual | machine
    reviewer: str | None = None
    appeal_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def final_scores(store: SQLiteStore) -> dict[str, FinalScore]:
    """Every ok call's final score: upheld appeal > manual review > machine. Keyed by call id,
    in the store's report order. Read-only apart from creating the workflow tables."""
    db = ensure_schema(store.db)
    manual: dict[str, tuple[float, str]] = {}
    for cid, score, reviewer in db.execute(
            "SELECT call_id, manual_score, reviewer FROM qc_reviews WHERE manual_score IS NOT NULL "
            "ORDER BY imported_at, rowid"):
        manual[cid] = (score, reviewer)  # the latest wins
    appeal: dict[str, tuple[float, int]] = {}
    for cid, score, aid in db.execute("SELECT call_id, decided_score, appeal_id FROM qc_appeals "
                                      "WHERE status='upheld' ORDER BY decided_at, appeal_id"):
        appeal[cid] = (score, aid)
    out: dict[str, FinalScore] = {}
    for cid, agent, started, score in db.execute(
            "SELECT call_id, agent_id, started_at, score FROM results WHERE status='ok' ORDER BY started_at, call_id"):
        m = manual.get(cid)
        a = appeal.get(cid)
        if a is not None:
            final, source = a[0], "appeal"
        elif m is not None:
            final, source = m[0], "manual"
        else:
            final, source = score, "machine"
        out[cid] = FinalScore(cid, agent or "", started or "", score, m[0] if m else None, a[0] if a else None,
                              final, source, m[1] if m else None, a[1] if a else None)
    return out
