"""Fuzzy phrase matching: the closest window of a turn within N character edits of a phrase,
and the pieces of a phrase that any such window keeps intact (for the phrase index)."""
from __future__ import annotations

from rapidfuzz.distance import Levenshtein

from qa_inspect.rules.model import FUZZY_MIN_LEN
from qa_inspect.rules.phonetics import norm_phrase


def fuzzy_find(p: str, s: str, budget: int,
                chars: frozenset[str] | None = None) -> tuple[int, str] | None:
    """(edits, heard window) for the closest window of ``s`` within ``budget`` edits of phrase ``p``."""
    n = norm_phrase(p)
    k = min(budget, (len(n) - 1) // 2)  # the loader enforces budget < len/2; clamp for hand-made conditions
    if len(n) < FUZZY_MIN_LEN or k < 1 or len(s) < len(n) - k:
        return None
    # a window within k edits keeps ≥ len(n) - k of the phrase's characters in order, so at
    # least that many of them must occur in s at all (a cheap test before any Levenshtein)
    have = set(s) if chars is None else chars
    if sum(c in have for c in n) < len(n) - k:
        return None
    best: tuple[int, str] | None = None
    # same length first, then shorter/longer by one, two, …: ties keep the same-length window
    for wl in sorted(range(len(n) - k, len(n) + k + 1), key=lambda x: abs(x - len(n))):
        for i in range(0, len(s) - wl + 1):
            w = s[i:i + wl]
            d = Levenshtein.distance(n, w, score_cutoff=k)
            if d <= k and (best is None or d < best[0]):
                best = (d, w)
                if d == 1:  # no exact hit here, so 1 is the least possible
                    return best
    return best


def fuzzy_pieces(n: str, budget: int) -> list[str]:
    """Pieces of normalised phrase ``n`` of which any window within the fuzzy budget keeps at
    least one intact: k edits touch at most k of k + 1 disjoint pieces (pigeonhole), so a turn
    with no piece cannot hold a fuzzy hit. Empty when fuzzy matching does not apply."""
    k = min(budget, (len(n) - 1) // 2)  # as fuzzy_find
    if not budget or len(n) < FUZZY_MIN_LEN or k < 1:
        return []
    size = len(n) // (k + 1)
    return [n[i * size:(i + 1) * size if i < k else len(n)] for i in range(k + 1)]
