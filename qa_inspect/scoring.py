"""Scorecard: start from 100, subtract deductions, a fatal item zeroes the call, grade bands."""
from __future__ import annotations

from typing import Sequence

from .records import RuleResult, Score


def score_call(results: Sequence[RuleResult], grades: Sequence[tuple[float, str]],
               base: float = 100.0) -> Score:
    """``grades``: (min score, grade) pairs, any order."""
    deductions = tuple((r.rule_id, r.deduction) for r in results if r.deduction > 0)
    fatal = any(r.fatal for r in results)
    score = 0.0 if fatal else max(0.0, base - sum(d for _, d in deductions))
    bands = sorted(grades, key=lambda g: -g[0])
    grade = next((g for lo, g in bands if score >= lo), bands[-1][1] if bands else "")
    return Score(score=round(score, 1), grade=grade, fatal=fatal, deductions=deductions)
