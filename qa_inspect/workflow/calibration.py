"""Calibration: how far to trust each rule, measured against the reviewers.

Labels: an item is a *violation* for the machine when its outcome was ``fail`` or ``hit``
(as shown on the worksheet); for the reviewer when they ``confirmed`` a flagged item or
marked an item ``missed``. Then per rule: tp (both), fp (machine only: false_positive),
fn (reviewer only: missed), tn (neither). The statistics are plain functions below; the
``calibrate`` function only gathers their inputs from the database.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import combinations
from typing import Any, Hashable, Sequence

from qa_inspect.store import WorkflowStore

FLAGGED = ("fail", "hit")


# --- pure statistics ----------------------------------------------------------------------

def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters over the same items: (p_o - p_e) / (1 - p_e).
    None when undefined (no items, or both raters always give the same single label)."""
    if len(a) != len(b):
        raise ValueError("raters must label the same items")
    n = len(a)
    if n == 0:
        return None
    po = sum(x == y for x, y in zip(a, b)) / n
    labels = set(a) | set(b)
    pe = sum((sum(x == k for x in a) / n) * (sum(y == k for y in b) / n) for k in labels)
    if pe >= 1.0:
        return None
    return (po - pe) / (1 - pe)


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson correlation; None with fewer than 2 pairs or a constant side."""
    if len(xs) != len(ys):
        raise ValueError("need pairs")
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def mean_abs_diff(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    if len(xs) != len(ys):
        raise ValueError("need pairs")
    return sum(abs(x - y) for x, y in zip(xs, ys)) / len(xs) if xs else None


def ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def reviewer_flags(machine_outcome: str, verdict: str) -> bool:
    """Whether the reviewer says the item is a violation, from the machine outcome and verdict."""
    if verdict == "missed":
        return True
    if verdict == "false_positive":
        return False
    return machine_outcome in FLAGGED  # confirmed: the machine was right


@dataclass
class RuleStats:
    rule_id: str
    n: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    fp_per_week: float = 0.0
    false_positive_calls: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float | None:
        return ratio(self.tp, self.tp + self.fn)

    def add(self, machine: bool, reviewer: bool, call_id: str = "") -> None:
        self.n += 1
        if machine and reviewer:
            self.tp += 1
        elif machine:
            self.fp += 1
            if call_id:
                self.false_positive_calls.append(call_id)
        elif reviewer:
            self.fn += 1
        else:
            self.tn += 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(precision=self.precision, recall=self.recall)
        return d


def rule_stats(rows: Sequence[tuple[str, str, bool, bool]], weeks: float = 1.0) -> dict[str, RuleStats]:
    """``rows``: (rule_id, call_id, machine flags it, reviewer flags it) → stats per rule."""
    out: dict[str, RuleStats] = {}
    for rule, call, m, r in rows:
        out.setdefault(rule, RuleStats(rule)).add(m, r, call)
    for s in out.values():
        s.fp_per_week = round(s.fp / weeks, 2) if weeks > 0 else float(s.fp)
    return dict(sorted(out.items()))


def weeks_spanned(dates: Sequence[str]) -> int:
    """Distinct ISO weeks among the call start times (≥ 1); unparseable dates are ignored."""
    weeks = set()
    for d in dates:
        try:
            iso = datetime.fromisoformat(str(d).replace("Z", "+00:00")).isocalendar()
        except ValueError:
            continue
        weeks.add((iso[0], iso[1]))
    return max(1, len(weeks))


def fix_first(stats: dict[str, RuleStats], top: int = 5) -> list[RuleStats]:
    """Rules most worth fixing first: most false positives per week, then lowest precision."""
    bad = [s for s in stats.values() if s.fp > 0]
    return sorted(bad, key=lambda s: (-s.fp_per_week, s.precision if s.precision is not None else 0, s.rule_id))[:top]


# --- gathering from the database ----------------------------------------------------------

@dataclass
class Calibration:
    reviews: int  # (call, reviewer) pairs with at least one verdict or a manual score
    calls: int  # distinct reviewed calls
    weeks: int
    rules: dict[str, RuleStats]
    score_pairs: int
    score_pearson: float | None
    score_mad: float | None
    item_kappa: float | None  # machine vs reviewer, violation yes/no per item
    item_agreement: float | None
    inter_calls: int  # calls reviewed by ≥ 2 reviewers
    inter_item_pairs: int
    inter_kappa: float | None
    inter_agreement: float | None
    inter_score_mad: float | None
    fix_first: list[RuleStats]

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("rules", "fix_first")}
        d["rules"] = [s.to_dict() for s in self.rules.values()]
        d["fix_first"] = [{"rule_id": s.rule_id, "fp": s.fp, "fp_per_week": s.fp_per_week,
                           "precision": s.precision, "false_positive_calls": s.false_positive_calls}
                          for s in self.fix_first]
        return d


def calibrate(store: WorkflowStore) -> Calibration:
    """Machine vs reviewers over every imported review (all samples)."""
    inputs = store.calibration_inputs()
    items = inputs.items
    started = inputs.started
    # the machine score the reviewer saw (the latest sample of the call that has it)
    machine_score = inputs.machine_score
    reviews = inputs.reviews

    # one verdict per (call, reviewer, rule): the latest import wins across samples
    latest: dict[tuple[str, str, str], tuple[str, str]] = {}
    for cid, reviewer, rule, outcome, verdict in items:
        latest[(cid, reviewer, rule)] = (outcome, verdict)
    reviewed_calls = {cid for cid, _, _ in latest} | {cid for cid, _, s in reviews if s is not None}
    weeks = weeks_spanned([started.get(c, "") for c in reviewed_calls])

    rows = [(rule, cid, outcome in FLAGGED, reviewer_flags(outcome, verdict))
            for (cid, reviewer, rule), (outcome, verdict) in latest.items()]
    stats = rule_stats(rows, weeks)
    m_labels = [m for _, _, m, _ in rows]
    r_labels = [r for _, _, _, r in rows]

    manual: dict[tuple[str, str], float] = {}
    for cid, reviewer, s in reviews:
        if s is not None:
            manual[(cid, reviewer)] = s
    pairs = [(machine_score[cid], s) for (cid, _), s in manual.items() if machine_score.get(cid) is not None]
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]

    # inter-reviewer: every pair of reviewers on the same call and item
    by_item: dict[tuple[str, str], dict[str, bool]] = defaultdict(dict)
    for (cid, reviewer, rule), (outcome, verdict) in latest.items():
        by_item[(cid, rule)][reviewer] = reviewer_flags(outcome, verdict)
    ia, ib = [], []
    inter_calls = set()
    for (cid, _rule), who in by_item.items():
        for r1, r2 in combinations(sorted(who), 2):
            ia.append(who[r1])
            ib.append(who[r2])
            inter_calls.add(cid)
    by_call: dict[str, dict[str, float]] = defaultdict(dict)
    for (cid, reviewer), s in manual.items():
        by_call[cid][reviewer] = s
    sa, sb = [], []
    for cid, who in by_call.items():
        for r1, r2 in combinations(sorted(who), 2):
            sa.append(who[r1])
            sb.append(who[r2])
            inter_calls.add(cid)

    def agreement(a, b):
        return ratio(sum(x == y for x, y in zip(a, b)), len(a))

    return Calibration(
        reviews=len({(c, r) for c, r, _ in latest} | set(manual)), calls=len(reviewed_calls), weeks=weeks,
        rules=stats, score_pairs=len(pairs), score_pearson=pearson(xs, ys), score_mad=mean_abs_diff(xs, ys),
        item_kappa=cohen_kappa(m_labels, r_labels), item_agreement=agreement(m_labels, r_labels),
        inter_calls=len(inter_calls), inter_item_pairs=len(ia), inter_kappa=cohen_kappa(ia, ib),
        inter_agreement=agreement(ia, ib), inter_score_mad=mean_abs_diff(sa, sb), fix_first=fix_first(stats))
