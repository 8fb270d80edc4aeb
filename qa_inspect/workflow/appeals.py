"""Appeals (申诉) against a call's result, and the call's final score.

Final score of a call = the score of its latest upheld appeal, else the latest manual review
score (复核), else the machine score. ``final_scores(store)`` is the one place that applies
this; reports that show "the" score of a call should use it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from qa_inspect.store import WorkflowStore
from qa_inspect.workflow.db import WorkflowError, now_iso

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


def get_appeal(store: WorkflowStore, appeal_id: int) -> Appeal:
    row = store.appeal_row(appeal_id)
    if row is None:
        raise WorkflowError(f"no appeal #{appeal_id}")
    return _appeal(row)


def open_appeal(store: WorkflowStore, call_id: str, reason: str, by: str) -> Appeal:
    """Record an agent's appeal against a stored call result; one open appeal per call."""
    if not reason.strip() or not by.strip():
        raise WorkflowError("an appeal needs a reason (--reason) and who opens it (--by)")
    status = store.result_status(call_id)
    if status is None:
        raise WorkflowError(f"unknown call {call_id!r}: no result in the database")
    if status != "ok":
        raise WorkflowError(f"call {call_id!r} has no score to appeal (status {status})")
    dup = store.open_appeal_id(call_id)
    if dup is not None:
        raise WorkflowError(f"call {call_id!r} already has an open appeal (#{dup})")
    return get_appeal(store, store.add_appeal(call_id, reason.strip(), by.strip(), now_iso()))


def decide_appeal(store: WorkflowStore, appeal_id: int, upheld: bool, by: str, *,
                  score: float | None = None, note: str = "") -> Appeal:
    """Uphold (with the corrected ``score``, which becomes the call's final score) or reject
    (the final score stays what it was) an open appeal."""
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
    store.decide_appeal_row(appeal_id, "upheld" if upheld else "rejected", by.strip(), now_iso(), score,
                            note or None)
    return get_appeal(store, appeal_id)


def list_appeals(store: WorkflowStore, status: str | None = None, call_id: str | None = None) -> list[Appeal]:
    return [_appeal(r) for r in store.appeal_rows(status, call_id)]


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


def final_scores(store: WorkflowStore) -> dict[str, FinalScore]:
    """Every ok call's final score: upheld appeal > manual review > machine. Keyed by call id,
    in the store's report order. Read-only."""
    manual: dict[str, tuple[float, str]] = {}
    for cid, score, reviewer in store.manual_score_rows():
        manual[cid] = (score, reviewer)  # the latest wins
    appeal: dict[str, tuple[float, int]] = {}
    for cid, score, aid in store.upheld_appeal_rows():
        appeal[cid] = (score, aid)
    out: dict[str, FinalScore] = {}
    for cid, agent, started, score in store.ok_scores():
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
