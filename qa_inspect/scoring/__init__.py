"""Scoring: the default (each rule's own deduction) and configurable scorecards."""
from qa_inspect.scoring.default import evidence_ref, evidence_text, grade_for, mmss, score_call

__all__ = ["evidence_ref", "evidence_text", "grade_for", "mmss", "score_call"]
