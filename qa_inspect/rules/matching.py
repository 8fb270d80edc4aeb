"""Matching one condition against one turn: prepared turns, a condition's prepared inputs, the
exact / pinyin / fuzzy / semantic steps, and the turns a condition looks at (role and window).
The module docstring of qa_inspect.rules.engine tells the whole matching story."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from qa_inspect.records import Transcript
from qa_inspect.text import normalize_many
from qa_inspect.rules.fuzzy import fuzzy_find
from qa_inspect.rules.model import Condition
from qa_inspect.rules.regex import Regex, compile_regex
from qa_inspect.rules.phonetics import norm_phrase, phrase_pinyin_info, sounds

if TYPE_CHECKING:
    from qa_inspect.rules.index import CallIndex

PINYIN_CONFIDENCE = 0.9


@dataclass(frozen=True)
class PreparedTurn:
    index: int
    role: str
    start: float | None
    end: float | None
    text: str  # verbatim, for evidence
    norm: str  # for matching

    @cached_property
    def sounds(self) -> str:
        """``norm`` with each character replaced by the one character that stands for its
        toneless syllable (``phonetics.sounds``): the haystack for a phrase's pinyin, aligned with ``norm``."""
        return sounds(self.norm)

    def search(self, rx: Regex) -> str | None:
        """The first match of ``rx`` in ``norm``, or None; a turn is searched once per regex (RE2
        costs ~1.5 µs a search; a pack's variables put one pattern in several rules). Cached in
        the instance dict by hand: ``functools.cached_property`` takes a lock on every first use."""
        d = self.__dict__
        found = d.get("_regex_found")
        if found is None:
            found = d["_regex_found"] = {}
        elif rx in found:
            return found[rx]
        got = None
        if rx.may_match(self.norm):
            raw = d.get("_norm_bytes")
            if raw is None:
                raw = d["_norm_bytes"] = self.norm.encode("utf-8", "surrogatepass")
            got = rx.search_bytes(raw)
        found[rx] = got
        return got

    @cached_property
    def syllable_set(self) -> frozenset[str]:
        return frozenset(self.sounds)

    @cached_property
    def chars(self) -> frozenset[str]:
        return frozenset(self.norm)

    @cached_property
    def embedding(self):
        """The turn's unit sentence vector (computed on first use and kept on the turn)."""
        from qa_inspect.enrich import embeddings

        return embeddings.embed([self.text.strip()])[0]


def prepare(transcript: Transcript) -> list[PreparedTurn]:
    norms = normalize_many([t.text for t in transcript.turns], drop_fillers=True)
    return [built_record(PreparedTurn, {"index": i, "role": t.role, "start": t.start, "end": t.end,
                                  "text": t.text, "norm": n})
            for i, (t, n) in enumerate(zip(transcript.turns, norms))]


def _pinyin_find(t: PreparedTurn, p: str) -> str | None:
    """The heard span of ``t`` that sounds like phrase ``p``, or None."""
    needle, syls = phrase_pinyin_info(p)
    if not needle or not syls <= t.syllable_set:  # some syllable never occurs in the turn
        return None
    return _pinyin_scan(t, needle, norm_phrase(p))


def built_record(cls, values: dict):
    """A frozen dataclass instance from a value for every field, set in one ``__dict__`` update.
    The generated ``__init__`` of a frozen dataclass sets each field through
    ``object.__setattr__``: about 1.4 µs for an Evidence against 0.3 µs here, and the engine
    builds some 40 evidence and result objects per call. The object is the same (equal, same
    hash, pickles alike); tests/test_rules_index.py checks every field is given."""
    obj = _NEW(cls)
    obj.__dict__.update(values)
    return obj


_NEW = object.__new__

# a hit: (matcher, matched, confidence)
Hit = tuple[str, str, float, tuple[str, ...]]


def find_phrase(t: PreparedTurn, p: str, cond: Condition, step: str) -> Hit | None:
    if step == "keyword":
        n = norm_phrase(p)
        return ("keyword", p, 1.0, (n,)) if n and n in t.norm else None
    if step == "pinyin":
        heard = _pinyin_find(t, p)
        return ("pinyin", f"{p}≈{heard}", PINYIN_CONFIDENCE, (heard,)) if heard else None
    f = fuzzy_find(p, t.norm, cond.fuzzy, t.chars)
    if f is None:
        return None
    edits, heard = f
    return ("fuzzy", f"{p}≈{heard}", round(1 - edits / len(norm_phrase(p)), 3), (heard,))


def _steps(cond: Condition) -> tuple[str, ...]:
    return ("keyword",) + (("pinyin",) if cond.pinyin else ()) + (("fuzzy",) if cond.fuzzy else ())


def _weakest(hits: list[Hit]) -> Hit:
    """The least confident hit; on a tie the last one (so matched reads as before: any over all)."""
    out = hits[0]
    for h in hits[1:]:
        if h[2] <= out[2]:
            out = h
    return out


def turns_in_scope(turns: list[PreparedTurn], cond: Condition, duration: float | None,
           index: "CallIndex | None" = None) -> list[PreparedTurn]:
    """The turns ``cond`` looks at: its role, then its window. ``index``: the call's index, which
    keeps each role's turns (the returned list may be that list: do not change it)."""
    sel = index.role_turns(cond.role) if index is not None else \
        [t for t in turns if cond.role == "any" or t.role == cond.role]
    w = cond.window
    if w.first_turns:
        sel = sel[: int(w.first_turns)]
    if w.last_turns:
        sel = sel[-int(w.last_turns):]
    if w.first_seconds:
        sel = [t for t in sel if t.start is None or t.start < w.first_seconds]
    if w.last_seconds or w.first_share or w.last_share:
        end = (duration or max((t.end or 0.0) for t in turns)) if turns else 0.0
        if w.last_seconds:
            sel = [t for t in sel if t.end is None or t.end > end - w.last_seconds]
        if w.first_share:
            sel = [t for t in sel if t.start is None or t.start < end * w.first_share]
        if w.last_share:
            sel = [t for t in sel if t.end is None or t.end > end * (1 - w.last_share)]
    return sel


@dataclass(frozen=True)
class _Prepared:
    """A condition's matching inputs, worked out once per condition object."""

    none: tuple[str, ...]  # normalised, non-empty
    all: tuple[str, ...]  # normalised (an empty one is trivially present, as before)
    any: tuple[tuple[str, str], ...]  # (phrase, normalised), non-empty only
    exclude: Regex | None
    regex: Regex | None
    pinyin: tuple[tuple[str, str, frozenset[str], str], ...]  # (phrase, needle, syllables, norm)
    steps: tuple[str, ...]
    windowless: bool  # no position window: the scope is the role alone
    # only ``any`` phrases decide (no all/none/regex/exclude_regex/similar_to): a turn matches
    # on its first exact phrase, else on the tolerant steps
    simple: bool


_PREPARED: dict[int, tuple[Condition, _Prepared]] = {}


def condition_inputs(cond: Condition) -> _Prepared:
    got = _PREPARED.get(id(cond))
    if got is not None and got[0] is cond:
        return got[1]
    pin = []
    if cond.pinyin:
        for p in cond.any:
            needle, syls = phrase_pinyin_info(p)
            if needle:
                pin.append((p, needle, syls, norm_phrase(p)))
    prepared = _Prepared(
        none=tuple(n for p in cond.none if (n := norm_phrase(p))),
        all=tuple(norm_phrase(p) for p in cond.all),
        any=tuple((p, n) for p in cond.any if (n := norm_phrase(p))),
        exclude=compile_regex(cond.exclude_regex) if cond.exclude_regex else None,
        regex=compile_regex(cond.regex) if cond.regex else None,
        pinyin=tuple(pin), steps=_steps(cond),
        windowless=not any(vars(cond.window).values()),
        simple=bool(cond.any) and not (cond.all or cond.none or cond.regex or cond.exclude_regex
                                       or cond.similar_to or cond.learned))
    if len(_PREPARED) >= 4096:  # conditions are few; this only bounds a long-lived process
        _PREPARED.clear()
    _PREPARED[id(cond)] = (cond, prepared)  # the condition is kept alive, so its id stays its own
    return prepared


_EXAMPLES: dict[int, tuple[Condition, object]] = {}


def _example_vectors(cond: Condition):
    """The condition's ``similar_to`` examples as unit vectors, embedded once per condition object."""
    got = _EXAMPLES.get(id(cond))
    if got is not None and got[0] is cond:
        return got[1]
    from qa_inspect.enrich import embeddings

    vecs = embeddings.embed(list(cond.similar_to))
    if len(_EXAMPLES) >= 4096:
        _EXAMPLES.clear()
    _EXAMPLES[id(cond)] = (cond, vecs)
    return vecs


def _semantic(t: PreparedTurn, cond: Condition) -> Hit | None:
    """("semantic", the closest example, similarity) if it reaches the threshold, else None."""
    if not t.text.strip():
        return None
    sims = _example_vectors(cond) @ t.embedding
    i = int(sims.argmax())
    sim = float(sims[i])
    if sim < cond.threshold:
        return None
    return ("semantic", cond.similar_to[i], round(min(sim, 1.0), 3), ())


def _learned(t: PreparedTurn, cond: Condition) -> Hit | None:
    """("learned", the model, probability) if the turn's probability reaches the model's threshold."""
    if not t.text.strip():
        return None
    model = cond.learned
    p = float(model.turn_scores(t.embedding[None, :])[0])
    if p < model.threshold:
        return None
    return ("learned", f"{model.item} p={p:.2f}", round(p, 3), ())


def _pinyin_scan(t: PreparedTurn, needle: str, n: str) -> str | None:
    """The heard span of ``t`` that sounds like ``needle`` (the sounds of normalised phrase ``n``)."""
    hay = t.sounds
    pos = hay.find(needle)
    while pos >= 0:
        heard = t.norm[pos:pos + len(n)]
        # two syllables alone are too ambiguous (消协 ≈ 小写): a two-character phrase must keep
        # one of its characters (投诉 ≈ 头诉, 不便 ≈ 不变)
        if len(n) > 2 or any(a == b for a, b in zip(n, heard)):
            return heard
        pos = hay.find(needle, pos + 1)
    return None


def _any_tolerant(t: PreparedTurn, cond: Condition, prep: _Prepared) -> Hit | None:
    """The first pinyin hit over the ``any`` phrases, else the first fuzzy hit (as
    ``find_phrase`` step by step, phrase by phrase)."""
    for step in prep.steps[1:]:
        if step == "pinyin":
            have = t.syllable_set
            for p, needle, syls, n in prep.pinyin:
                if syls <= have and (heard := _pinyin_scan(t, needle, n)):
                    return ("pinyin", f"{p}≈{heard}", PINYIN_CONFIDENCE, (heard,))
        else:
            for p in cond.any:
                if h := find_phrase(t, p, cond, step):
                    return h
    return None


def match_turn(t: PreparedTurn, cond: Condition, prep: _Prepared | None = None) -> Hit | None:
    """(matcher, what matched, confidence) or None. ``prep``: ``condition_inputs(cond)``, if already at hand."""
    if prep is None:
        prep = condition_inputs(cond)
    s = t.norm
    if prep.simple:  # the common case, without the tests it does not have
        for p, n in prep.any:
            if n in s:
                return ("keyword", p, 1.0, (n,))
        return _any_tolerant(t, cond, prep) if len(prep.steps) > 1 else None
    for n in prep.none:
        if n in s:
            return None
    if prep.exclude is not None and t.search(prep.exclude) is not None:
        return None
    hits: list[Hit] = []
    if cond.all:
        if all(n in s for n in prep.all):  # the fast path: every phrase exact
            hits.append(("keyword", "+".join(cond.all), 1.0, prep.all))
        else:
            parts = []
            for p in cond.all:
                h = next((h for step in prep.steps if (h := find_phrase(t, p, cond, step))), None)
                if h is None:
                    return None
                parts.append(h)
            weakest = _weakest(parts)
            hits.append((weakest[0], "+".join(h[1] for h in parts), weakest[2], tuple(w for h in parts for w in h[3])))
    m = None
    if prep.regex is not None:  # checked before any semantic step (cheap first); appended last
        m = t.search(prep.regex)
        if m is None:
            return None
    if cond.any or cond.similar_to or cond.learned:
        found = None
        for p, n in prep.any:
            if n in s:
                found = ("keyword", p, 1.0, (n,))
                break
        if found is not None:  # the fast path: an exact hit
            hits.append(found)
        else:
            h = _any_tolerant(t, cond, prep) if cond.any and len(prep.steps) > 1 else None
            if h is None and cond.similar_to:
                h = _semantic(t, cond)
            if h is None and cond.learned:
                h = _learned(t, cond)
            if h is None:
                return None
            hits.append(h)
    if m is not None:
        hits.append(("regex", m, 1.0, (m,)))
    if len(hits) == 1:
        return hits[0]
    return _weakest(hits) if hits else None
