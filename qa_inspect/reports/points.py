"""A call's points as every output shows them: read from the one stored breakdown
(``Score.breakdown``, written by the scoring stage), never recomputed from the rule pack's
deductions, so the batch report, the CSVs, the agent scorecards and the worksheet agree."""
from __future__ import annotations

from qa_inspect.records import CallResult


def item_points(r: CallResult) -> dict[str, float]:
    """Points per rule id as the score counted them (negative: lost; positive: bonus); rules
    the breakdown does not name are absent (they did not count)."""
    out: dict[str, float] = {}
    for b in (r.score.breakdown if r.score is not None else ()):
        out[b.rule_id] = round(out.get(b.rule_id, 0.0) + float(b.points), 2)
    return out


def lost_items(r: CallResult) -> list[tuple[str, str, float]]:
    """``(rule_id, title, points lost > 0)`` for every breakdown line that cost points, in
    breakdown order (fatal lines included: they carry the rest of the score away)."""
    titles = {x.rule_id: x.title or x.rule_id for x in r.rules}
    out: dict[str, float] = {}
    for b in (r.score.breakdown if r.score is not None else ()):
        if b.points < 0:
            out[b.rule_id] = out.get(b.rule_id, 0.0) - float(b.points)
    return [(rid, titles.get(rid, rid), round(p, 2)) for rid, p in out.items()]


def points_lost(r: CallResult) -> float:
    """Σ points lost (bonus not subtracted): ``base − score`` when there is no bonus."""
    return round(sum(p for _, _, p in lost_items(r)), 2)


def fmt_points(p: float) -> str:
    """"8", "7.5": no trailing zeros."""
    return f"{p:.2f}".rstrip("0").rstrip(".")
