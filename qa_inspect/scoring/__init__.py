"""Scoring: one entry point, ``score(pack, results, scorecard)``.

A call is scored by the scorecard configured for its rule pack (sections, weights, caps,
fatal items: ``scoring.scorecard``) when there is one, else by each rule's own deduction
(``scoring.default``). The pipeline carries a pack and its scorecard together as a
``ScoredPack`` pair (``scoring.pairs``); the pair's ``key()`` is part of every result's config
hash, so a changed scorecard re-scores.
"""
from qa_inspect.scoring.default import evidence_ref, evidence_text, grade_for, mmss, score_call
from qa_inspect.scoring.pairs import ScoredPack, attach_scorecards, score

__all__ = ["ScoredPack", "attach_scorecards", "evidence_ref", "evidence_text", "grade_for", "mmss", "score",
           "score_call"]
