"""Default scoring (no scorecard): start from 100, subtract each rule's deduction, a fatal
item zeroes the call, grade bands. ``qa_inspect.scoring.scorecard`` is the configurable version."""
from __future__ import annotations

from typing import Sequence

from qa_inspect.records import Evidence, RuleResult, Score, ScoreItem
from qa_inspect.text import mmss


def grade_for(score: float, grades: Sequence[tuple[float, str]]) -> str:
    """The grade of the highest band whose minimum ``score`` reaches (else the lowest band)."""
    bands = sorted(grades, key=lambda g: -g[0])
    return next((g for lo, g in bands if score >= lo), bands[-1][1] if bands else "")


def evidence_ref(r: RuleResult) -> tuple[str, tuple[int, ...]]:
    """Where the words behind a rule result are ("turn 4 agent 00:35 (+1 more)") and their turn
    indexes, or the rule's reason when there are no words (a required phrase that is missing).
    No transcript text: the breakdown points at the turns, so redacting the transcript and the
    rule evidence is enough to redact an export."""
    ev: tuple[Evidence, ...] = r.evidence
    if not ev:
        return r.reason, ()
    e = ev[0]
    more = f" (+{len(ev) - 1} more)" if len(ev) > 1 else ""
    return f"turn {e.turn} {e.role} {mmss(e.start, '--:--')}{more}", tuple(x.turn for x in ev)


def evidence_text(r: RuleResult, limit: int = 120) -> str:
    """Like ``evidence_ref`` with the first evidence's words: "turn 4 agent 00:35: 您好…"."""
    if not r.evidence:
        return r.reason
    e = r.evidence[0]
    text = e.text if len(e.text) <= limit else e.text[:limit - 1] + "…"
    more = f" (+{len(r.evidence) - 1} more)" if len(r.evidence) > 1 else ""
    return f"turn {e.turn} {e.role} {mmss(e.start, '--:--')}: {text}{more}"


def score_call(results: Sequence[RuleResult], grades: Sequence[tuple[float, str]],
               base: float = 100.0) -> Score:
    """``grades``: (min score, grade) pairs, any order."""
    deductions = tuple((r.rule_id, r.deduction) for r in results if r.deduction > 0)
    fatal = any(r.fatal for r in results)
    score = 0.0 if fatal else max(0.0, base - sum(d for _, d in deductions))
    items = []
    for r in results:
        if r.deduction > 0 or r.fatal:
            ev, turns = evidence_ref(r)
            items.append(ScoreItem(rule_id=r.rule_id, section=r.category, outcome=r.outcome,
                                   points=-r.deduction, possible=r.deduction,
                                   note="fatal: call scores 0" if r.fatal else "", evidence=ev, turns=turns))
    return Score(score=round(score, 1), grade=grade_for(score, grades), fatal=fatal,
                 deductions=deductions, breakdown=tuple(items))
