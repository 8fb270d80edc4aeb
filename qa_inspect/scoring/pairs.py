"""A rule pack and its scorecard, carried together through the pipeline; ``score`` is the one
entry point that scores a call's rule results."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from qa_inspect.errors import RuleError
from qa_inspect.records import RuleResult, Score
from qa_inspect.scoring.default import score_call
from qa_inspect.scoring.scorecard import Scorecard, apply_scorecard, bind


def score(pack: Any, results: Sequence[RuleResult], scorecard: Scorecard | None = None) -> Score:
    """The call's score: by ``scorecard`` (bound to ``pack``) when given, else the default."""
    if scorecard is not None:
        return apply_scorecard(scorecard, results)
    return score_call(results, [(g.min, g.grade) for g in pack.grades])


@dataclass(frozen=True)
class ScoredPack:
    """A rule pack and the scorecard that scores its results (None: the default scoring)."""

    pack: Any  # rules.RulePack
    scorecard: Any = None  # scoring.scorecard.Scorecard, bound to ``pack``

    def score(self, results: Sequence[RuleResult]) -> Score:
        return score(self.pack, results, self.scorecard)

    def key(self) -> str:
        """What identifies this scoring: the pack's and the scorecard's id, version and hash."""
        p, sc = self.pack, self.scorecard
        k = f"{p.id}|{p.version}|{p.hash}"
        return k + (f"|{sc.id}|{sc.version}|{sc.hash}" if sc is not None else "")

    def describe(self) -> str:
        p = self.pack
        return f"{p.id} {p.version}" + (f" (scorecard {self.scorecard.describe()})" if self.scorecard else "")


def attach_scorecards(packs: Sequence[Any], cards: Iterable[Scorecard]) -> list[ScoredPack]:
    """Each pack paired with the card whose ``pack`` is its id, bound to it (packs without a
    card keep the default scoring). A card for none of the packs, or two cards for one pack,
    is an error."""
    by_pack: dict[str, Scorecard] = {}
    for c in cards:
        if c.pack in by_pack:
            raise RuleError(f"two scorecards for pack '{c.pack}' ({by_pack[c.pack].source} and {c.source})",
                            c.source)
        if not any(p.id == c.pack for p in packs):
            raise RuleError(f"scorecard is for pack '{c.pack}', which is not loaded "
                            f"(loaded: {', '.join(p.id for p in packs)})", f"{c.source}:1")
        by_pack[c.pack] = c
    return [ScoredPack(p, bind(by_pack[p.id], p) if p.id in by_pack else None) for p in packs]
