"""The phrase index: every ``any`` phrase of a pack in one Aho-Corasick automaton (``PackIndex``),
scanned once per call (``CallIndex``) to find the turns where each condition can match at all."""
from __future__ import annotations

from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate

import ahocorasick

from qa_inspect.records import RuleResult
from qa_inspect.rules.fuzzy import fuzzy_pieces
from qa_inspect.rules.matching import PreparedTurn, condition_inputs
from qa_inspect.rules.model import Condition, RulePack
from qa_inspect.rules.phonetics import sounds


def _pack_conditions(pack: RulePack):
    for r in pack.rules:
        yield r.match
        if r.when is not None:
            yield r.when
        for _, c in r.conditions:
            yield c


def _automaton(values: dict) -> "ahocorasick.Automaton | None":
    """An automaton over the words of ``values`` (word -> what a hit reports), or None if none."""
    words = sorted(w for w in values if w)
    if not words:
        return None
    a = ahocorasick.Automaton(ahocorasick.STORE_ANY, ahocorasick.KEY_STRING)
    for w in words:
        a.add_word(w, values[w])
    a.make_automaton()
    return a


@dataclass(frozen=True)
class PackIndex:
    """Where each condition of a pack can match at all: its ``any`` phrases (and, with ``fuzzy``,
    their fuzzy pieces) in one Aho-Corasick automaton, with the conditions (by id) that use
    each. When some condition of the pack uses pinyin, the automaton holds the phrases' sounds
    (``phonetics.sounds``) and scans the call's sounds: a turn where a phrase occurs or one that sounds
    like it is a candidate for every condition with that phrase. That is one pass where exact
    phrases and pinyin needles took two, and a superset of the turns where the condition can
    match; the matcher decides, as on every turn without the index."""

    # a hit reports {turn role: the ids of the conditions with that word that look at turns of
    # that role} (roles agent, customer and any; a role without conditions is left out)
    automaton: "ahocorasick.Automaton | None"
    by_sound: bool  # words and haystack are sounds, not normalised text
    # rules whose result is fixed when none of their phrases occurs, neither in ``match`` nor
    # in ``when`` (no composition; match and when indexable): id -> that result once worked out
    plain: dict[int, "RuleResult | None"]

    @classmethod
    def build(cls, pack: RulePack) -> "PackIndex":
        conds = list(_pack_conditions(pack))
        by_sound = any(condition_inputs(c).pinyin for c in conds)
        words: dict[str, set[tuple[int, str]]] = {}
        for c in conds:
            for _, n in condition_inputs(c).any:
                for w in [n] + fuzzy_pieces(n, c.fuzzy):
                    words.setdefault(sounds(w) if by_sound else w, set()).add((id(c), c.role))
        users = {w: {tr: ids for tr in ("agent", "customer", "any")
                     if (ids := tuple(sorted(cid for cid, r in v if r == tr or r == "any")))}
                 for w, v in words.items()}
        plain = {id(r): None for r in pack.rules
                 if r.match_expr is None and _indexable(r.match)
                 and (r.when is None or _indexable(r.when))}
        return cls(_automaton(users), by_sound, plain)


def _indexable(c: Condition) -> bool:
    """Whether ``CallIndex.candidates`` bounds where ``c`` can match (and nothing else decides)."""
    return c.metric is None and not c.repeated and bool(c.any) and not c.similar_to and c.learned is None


_PACK_INDEX: dict[int, tuple[RulePack, PackIndex]] = {}


def pack_index(pack: RulePack) -> PackIndex:
    got = _PACK_INDEX.get(id(pack))
    if got is not None and got[0] is pack:
        return got[1]
    idx = PackIndex.build(pack)
    if len(_PACK_INDEX) >= 64:
        _PACK_INDEX.clear()
    _PACK_INDEX[id(pack)] = (pack, idx)  # the pack (and so its conditions) is kept alive: ids stay theirs
    return idx


_NOTHING: frozenset[int] = frozenset()


class CallIndex:
    """Per call: for each condition (by id), the turns where one of its ``any`` phrases (or
    fuzzy pieces) occurs, or with a pinyin pack sounds alike (``PackIndex``)."""

    def __init__(self, turns: list[PreparedTurn], pidx: PackIndex) -> None:
        self.turns, self.pidx = turns, pidx
        # the whole call in one string, turns separated by NUL (normalised text never holds
        # one, and its sound is itself): one automaton pass per call instead of one per turn
        hay = "\x00".join(t.norm for t in turns)
        self.hits = self._hits(pidx.automaton, sounds(hay) if pidx.by_sound else hay)
        self._roles: dict[str, list[PreparedTurn]] = {"any": turns}

    def role_turns(self, role: str) -> list[PreparedTurn]:
        """The call's turns of ``role`` ("any": all), listed once per call."""
        got = self._roles.get(role)
        if got is None:
            got = self._roles[role] = [t for t in self.turns if t.role == role]
        return got

    def _hits(self, a, hay: str) -> dict[int, set[int]]:
        """condition id -> the turns of its role where one of its words occurs in ``hay`` (the
        call's turns joined by NUL, or their sounds: the same length)."""
        out: dict[int, set[int]] = {}
        if a is None:
            return out
        turns = self.turns
        ends = list(accumulate(len(t.norm) + 1 for t in turns))  # one past each turn's NUL
        roles = [t.role for t in turns]
        for end, by_role in a.iter(hay):
            i = bisect(ends, end)  # the turns that end at or before ``end``
            # a turn of a role other than agent or customer: the conditions of any role
            ids = by_role.get(roles[i]) or by_role.get("any")
            if ids:
                for cid in ids:
                    if cid in out:
                        out[cid].add(i)
                    else:
                        out[cid] = {i}
        return out

    def candidates(self, cond: Condition) -> "set[int] | frozenset[int] | None":
        """The turns ``cond`` can match at all (one of its ``any`` phrases or fuzzy pieces
        occurs there, or with a pinyin pack sounds alike), or None when any turn may (no ``any``
        phrases, or ``similar_to``, which no index covers)."""
        if not cond.any or cond.similar_to or cond.learned is not None:
            return None
        return self.hits.get(id(cond), _NOTHING)
