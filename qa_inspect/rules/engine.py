"""Evaluate a rule pack over a transcript. Works on transcripts only: no audio, no ASR.

Phrases and regexes are matched on the normalised text (Simplified, half width, lower case,
spoken digit runs as Arabic digits, no punctuation or spaces), so 工號一二三四 matches 工号\\d{4}.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..records import Evidence, RuleResult, Transcript
from ..text import normalize
from .model import Condition, Rule, RulePack


@dataclass(frozen=True)
class PreparedTurn:
    index: int
    role: str
    start: float | None
    end: float | None
    text: str  # verbatim, for evidence
    norm: str  # for matching


def prepare(transcript: Transcript) -> list[PreparedTurn]:
    return [PreparedTurn(i, t.role, t.start, t.end, t.text, normalize(t.text, drop_fillers=True))
            for i, t in enumerate(transcript.turns)]


@lru_cache(maxsize=4096)
def _norm_phrase(p: str) -> str:
    return normalize(p)


@lru_cache(maxsize=1024)
def _compile(p: str) -> re.Pattern:
    return re.compile(p)


def _scope(turns: list[PreparedTurn], cond: Condition, duration: float | None) -> list[PreparedTurn]:
    sel = [t for t in turns if cond.role == "any" or t.role == cond.role]
    w = cond.window
    if w.first_turns:
        sel = sel[: int(w.first_turns)]
    if w.last_turns:
        sel = sel[-int(w.last_turns):]
    if w.first_seconds:
        sel = [t for t in sel if t.start is None or t.start < w.first_seconds]
    if w.last_seconds:
        end = duration or max((t.end or 0.0) for t in turns) if turns else 0.0
        sel = [t for t in sel if t.end is None or t.end > end - w.last_seconds]
    return sel


def _match_turn(t: PreparedTurn, cond: Condition) -> tuple[str, str] | None:
    """(matcher, what matched) or None."""
    s = t.norm
    if any(_norm_phrase(p) and _norm_phrase(p) in s for p in cond.none):
        return None
    if cond.exclude_regex and _compile(cond.exclude_regex).search(s):
        return None
    hit: tuple[str, str] | None = None
    if cond.all:
        if not all(_norm_phrase(p) in s for p in cond.all):
            return None
        hit = ("keyword", "+".join(cond.all))
    if cond.any:
        found = next((p for p in cond.any if _norm_phrase(p) and _norm_phrase(p) in s), None)
        if found is None:
            return None
        hit = ("keyword", found)
    if cond.regex:
        m = _compile(cond.regex).search(s)
        if m is None:
            return None
        hit = ("regex", m.group(0))
    return hit


def find(turns: list[PreparedTurn], cond: Condition, duration: float | None) -> list[Evidence]:
    out = []
    for t in _scope(turns, cond, duration):
        hit = _match_turn(t, cond)
        if hit:
            out.append(Evidence(role=t.role, turn=t.index, start=t.start, end=t.end, text=t.text,
                                matcher=hit[0], matched=hit[1], confidence=1.0))
    return out


def _describe(cond: Condition) -> str:
    what = []
    if cond.any:
        what.append("any of " + "/".join(cond.any[:4]) + ("…" if len(cond.any) > 4 else ""))
    if cond.all:
        what.append("all of " + "+".join(cond.all))
    if cond.regex:
        what.append(f"/{cond.regex}/")
    return f"{' and '.join(what)} in {cond.role} turns ({cond.window.describe()})"


def evaluate_rule(rule: Rule, turns: list[PreparedTurn], duration: float | None) -> RuleResult:
    def result(matched: bool, outcome: str, evidence: list[Evidence], reason: str) -> RuleResult:
        deduct = rule.deduction if outcome in ("fail", "hit") else 0.0
        return RuleResult(rule_id=rule.id, title=rule.title, category=rule.category,
                          severity=rule.severity, matched=matched, outcome=outcome,
                          deduction=deduct, fatal=rule.fatal and outcome in ("fail", "hit"),
                          kind=rule.kind, evidence=tuple(evidence), reason=reason)

    ev = find(turns, rule.match, duration)
    if rule.when is not None and not find(turns, rule.when, duration):
        # not applicable, but still say whether the thing was found ("matched" is a fact)
        return result(bool(ev), "n/a", ev[:3], f"not applicable: no {_describe(rule.when)}")
    if rule.kind == "required":
        if ev:
            return result(True, "pass", ev[:3], f"found {ev[0].matched!r} at turn {ev[0].turn}")
        return result(False, "fail", [], f"missing: {_describe(rule.match)}")
    if ev:
        return result(True, "hit", ev, f"{len(ev)} hit(s): {', '.join(sorted({e.matched for e in ev}))}")
    return result(False, "pass", [], f"none of {_describe(rule.match)}")


def evaluate(pack: RulePack, transcript: Transcript) -> tuple[RuleResult, ...]:
    turns = prepare(transcript)
    return tuple(evaluate_rule(r, turns, transcript.duration) for r in pack.rules)
