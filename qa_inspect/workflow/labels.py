"""Reviewers' verdicts as labels: what `rules eval` measures a pack against and what `rules
learn` trains a learned condition from, so that every review makes the machine better.

A label says whether a rule's condition is *present* in a call, as `rules eval` reads labels
(``greeting: true`` = the agent greeted; ``agent_impolite: true`` = the agent was impolite).
A reviewer's verdict says whether the item is a *violation* (``calibration.reviewer_flags``).
For a ``required`` rule the two are opposite (a violation is the greeting missing); for the
other kinds (forbidden, risk) they are the same.

One label per (call, rule): each reviewer's latest verdict, then the majority of reviewers; a
tie between reviewers gives no label (counted as a disagreement). A confirmed ``n/a`` (the rule
did not apply) gives no label either. The evidence of a positive label is the turns the stored
result found the condition in, when the stored result (re-scored or not) still finds it; a
condition the machine missed (``missed`` on a forbidden rule, ``false_positive`` on a required
one) is a positive call without evidence turns.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any, Iterable

from qa_inspect.errors import InputError
from qa_inspect.workflow.calibration import reviewer_flags


@dataclass
class RuleLabelCount:
    positives: int = 0
    negatives: int = 0
    ties: int = 0  # reviewers disagreed evenly: no label


@dataclass
class ReviewLabels:
    records: dict[str, dict[str, Any]]  # call id → label record (as `rules eval` reads it)
    rules: dict[str, RuleLabelCount] = field(default_factory=dict)
    verdicts: int = 0  # verdict rows read (before taking each reviewer's latest)
    reviewers: int = 0
    not_stored: list[str] = field(default_factory=list)  # reviewed calls no longer in the results

    def jsonl(self) -> str:
        """The label records, one JSON line per call in call-id order (what `rules eval` and
        `rules learn` read); empty when there is none."""
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for _cid, r in sorted(self.records.items()))


def since_utc(text: str) -> str:
    """``--since`` as the stored verdict times are written (UTC ISO, seconds): a date is its
    midnight UTC; a time without an offset is read as UTC. Raises InputError on anything else."""
    from qa_inspect.store.kpi_sql import parse_time

    text = (text or "").strip()
    if not text:
        return ""
    t = parse_time(text)
    if t is None:
        raise InputError(f"--since {text!r} is not an ISO date or time (e.g. 2026-12-01 or "
                         "2026-12-01T08:00:00+08:00)")
    return t.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def _majority(flags: Iterable[bool]) -> bool | None:
    c = Counter(flags)
    if c[True] == c[False]:
        return None
    return c[True] > c[False]


def review_labels(store, since: str = "", rule_ids: Iterable[str] | None = None) -> ReviewLabels:
    """Label records from the verdicts recorded at or after ``since`` (UTC ISO; empty: all)
    for the rules ``rule_ids`` (None: every rule reviewed)."""
    wanted = set(rule_ids) if rule_ids else None
    rows = store.review_verdicts(since)
    latest: dict[tuple[str, str, str], tuple[str, str, str]] = {}
    for cid, reviewer, rule, outcome, verdict, at in rows:  # oldest first: the later row wins
        if wanted is None or rule in wanted:
            latest[(cid, reviewer, rule)] = (outcome, verdict, at)
    by_item: dict[tuple[str, str], list[tuple[str, str, str]]] = defaultdict(list)
    for (cid, _reviewer, rule), v in latest.items():
        by_item[(cid, rule)].append(v)
    call_ids = sorted({cid for cid, _ in by_item})
    stored = {r.call.call_id: r for r in store.results_of(call_ids)}
    out = ReviewLabels(records={}, verdicts=len(rows), reviewers=len({r for _, r, _ in latest}))
    out.not_stored = [c for c in call_ids if c not in stored or stored[c].status != "ok"]
    labels: dict[str, dict[str, bool]] = defaultdict(dict)
    evidence: dict[str, dict[str, list[int]]] = defaultdict(dict)
    reviewed_at: dict[str, str] = {}
    for (cid, rule), vs in sorted(by_item.items()):
        res = stored.get(cid)
        rr = next((r for r in res.rules if r.rule_id == rule), None) if res is not None and res.status == "ok" else None
        votes = [reviewer_flags(outcome, verdict) for outcome, verdict, _ in vs
                 if not (verdict == "confirmed" and outcome == "n/a")]
        if rr is None or not votes:  # the rule left the call's packs, or it did not apply
            continue
        count = out.rules.setdefault(rule, RuleLabelCount())
        violation = _majority(votes)
        if violation is None:
            count.ties += 1
            continue
        present = (not violation) if rr.kind == "required" else violation
        labels[cid][rule] = present
        reviewed_at[cid] = max(reviewed_at.get(cid, ""), *(at for _, _, at in vs))
        if not present:
            count.negatives += 1
            continue
        count.positives += 1
        turns = sorted({e.turn for e in rr.evidence if e.turn is not None and e.turn >= 0}) if rr.matched else []
        if turns:
            evidence[cid][rule] = turns
    out.records = {cid: {"call_id": cid, **labels[cid], "evidence": evidence.get(cid, {}),
                         "reviewed_at": reviewed_at[cid]} for cid in sorted(labels)}
    out.rules = dict(sorted(out.rules.items()))
    return out
