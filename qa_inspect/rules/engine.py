"""Evaluate a rule pack over a transcript. Works on transcripts only: no audio, no ASR.

Phrases and regexes are matched on the normalised text (Simplified, half width, lower case,
spoken digit runs as Arabic digits, no punctuation or spaces), so 工號一二三四 matches 工号\\d{4}.

ASR tolerance for ``any``/``all`` phrases, tried in order and only when the previous step
found nothing in the turn: exact (matcher "keyword", confidence 1.0), then with ``pinyin: true``
a span of the turn with the same toneless pinyin ("pinyin", 0.9), then with ``fuzzy: N`` a
window within N character edits ("fuzzy", 1 - edits/len(phrase)). A turn's pinyin is computed
once, lazily, and only for conditions that ask for it; it is read character by character
(each character's default reading, cached), on both the phrase and the turn side, and written
one character per syllable (``_sounds``), aligned with the text.

Semantic matching (``similar_to``) comes last, as an alternative to ``any``: a turn whose
sentence embedding (qa_inspect.enrich.embeddings, on the verbatim text) has cosine similarity ≥ the
condition's ``threshold`` to one of its example sentences matches ("semantic", confidence = the
similarity). A turn is embedded at most once per ``prepare`` (lazily, and only for conditions
that use ``similar_to``); a condition's examples are embedded once per condition object.

Speed: a condition's normalised phrases and compiled regexes are prepared once per condition
object (``_prep``); a pinyin search is skipped unless every syllable of the phrase occurs in the
turn (a set test before the substring search). ``evaluate`` goes further: every ``any`` phrase
of the pack goes into one Aho-Corasick automaton per pack (as sounds if any condition uses
pinyin: ``PackIndex``), the whole call is scanned once, and a condition with ``any`` phrases
only looks at the turns where one of its phrases (or, with ``fuzzy``, a piece of one) occurs or
sounds alike — the same results as testing every turn, since such a condition can match no
other turn (conditions with ``similar_to`` still look at every turn in scope).
"""
from __future__ import annotations

import re
from bisect import bisect
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import accumulate

import ahocorasick
from rapidfuzz.distance import Levenshtein

from qa_inspect.records import Evidence, RuleResult, Transcript
from qa_inspect.text import normalize, normalize_many
from qa_inspect.rules.model import FUZZY_MIN_LEN, PINYIN_MIN_LEN, REPEAT_MIN_LEN, Condition, Context, Expr, Rule, RulePack

PINYIN_CONFIDENCE = 0.9
_HAN = re.compile(r"[\u3400-\u9fff\U00020000-\U0003134f]")


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
        toneless syllable (``_sounds``): the haystack for a phrase's pinyin, aligned with ``norm``."""
        return _sounds(self.norm)

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
    return [_built(PreparedTurn, {"index": i, "role": t.role, "start": t.start, "end": t.end,
                                  "text": t.text, "norm": n})
            for i, (t, n) in enumerate(zip(transcript.turns, norms))]


@lru_cache(maxsize=4096)
def _norm_phrase(p: str) -> str:
    return normalize(p)


@lru_cache(maxsize=1024)
def _compile(p: str) -> re.Pattern:
    return re.compile(p)


@lru_cache(maxsize=65536)
def _char_pinyin(c: str) -> str:
    """The toneless pinyin of one character (its default reading); the character itself when
    it has none (digits, Latin letters)."""
    from pypinyin import Style, lazy_pinyin

    items = lazy_pinyin(c, style=Style.NORMAL, errors=lambda chars: list(chars))
    return items[0] if len(items) == 1 and items[0] else c


_SYLLABLE: dict[str, str] = {}  # character -> syllable: a plain dict is the fastest cache here


def _syllable(c: str) -> str:
    """The character's syllable (``_char_pinyin``), cached."""
    syl = _SYLLABLE.get(c)
    if syl is None:
        _SYLLABLE[c] = syl = _char_pinyin(c)
    return syl


# Each toneless syllable is written as one character, so that a text's "pinyin" is a string as
# long as the text, aligned with it, built by one ``str.translate`` and searched with plain
# substring search (no separators, no position arithmetic). A syllable of one character (the
# character itself when it has no reading, or a reading such as "a" or "e") stands for itself;
# longer ones get a code from Unicode's supplementary private-use planes, as do the (never
# seen in transcripts) characters of those planes, so no two syllables share a character.
_PRIVATE = 0xF0000
_SOUND: dict[str, str] = {}  # syllable of several characters -> its code


def _sound_of(syl: str) -> str:
    if len(syl) == 1 and ord(syl) < _PRIVATE:
        return syl
    got = _SOUND.get(syl)
    if got is None:
        if _PRIVATE + len(_SOUND) > 0x10FFFF:  # needs >131,000 distinct syllables and private characters
            raise ValueError("too many distinct syllables for the pinyin index")
        got = _SOUND[syl] = chr(_PRIVATE + len(_SOUND))
    return got


class _SoundTable(dict):
    """A ``str.translate`` table: character code -> the character standing for its syllable,
    worked out on first use."""

    def __missing__(self, code: int) -> str:
        self[code] = out = _sound_of(_syllable(chr(code)))
        return out


_SOUNDS = _SoundTable()


def _sounds(s: str) -> str:
    """One character per character of ``s``, equal where their toneless syllables are equal.
    Read per character (not with pypinyin's phrase segmentation) so that a phrase and a turn read
    the same characters the same way, and each character is looked up once per process."""
    if len(s) >= 400:  # a long call: a numpy table lookup (~15 µs + a few ns per character)
        # beats str.translate with a dict (~90 ns per character) from a few hundred characters
        try:
            return _sounds_array(s)
        except UnicodeEncodeError:  # a lone surrogate: no UTF-32 form
            pass
    return s.translate(_SOUNDS)


_BMP_SOUND = None  # numpy arrays over the Basic Multilingual Plane: code -> sound code, and
_BMP_KNOWN = None  # whether that entry is filled in yet (from _SOUNDS, so both always agree)


def _sounds_array(s: str) -> str:
    global _BMP_SOUND, _BMP_KNOWN
    import numpy as np

    codes = np.frombuffer(s.encode("utf-32-le"), dtype=np.uint32)
    if codes.size and int(codes.max()) > 0xFFFF:  # rare characters beyond the BMP: the dict
        return s.translate(_SOUNDS)
    if _BMP_SOUND is None:
        _BMP_SOUND, _BMP_KNOWN = np.zeros(0x10000, np.uint32), np.zeros(0x10000, bool)
    seen = _BMP_KNOWN[codes]
    if not seen.all():
        for c in np.unique(codes[~seen]).tolist():
            _BMP_SOUND[c] = ord(_SOUNDS[c])
            _BMP_KNOWN[c] = True
    return _BMP_SOUND[codes].tobytes().decode("utf-32-le")


@lru_cache(maxsize=4096)
def _phrase_pinyin_info(p: str) -> tuple[str, frozenset[str]]:
    """(the normalised phrase's sounds as a search needle, its syllables), or ("", ∅) if
    pinyin does not apply."""
    n = _norm_phrase(p)
    if len(n) < PINYIN_MIN_LEN or not _HAN.search(n):
        return "", frozenset()
    needle = _sounds(n)
    return needle, frozenset(needle)


def _pinyin_find(t: PreparedTurn, p: str) -> str | None:
    """The heard span of ``t`` that sounds like phrase ``p``, or None."""
    needle, syls = _phrase_pinyin_info(p)
    if not needle or not syls <= t.syllable_set:  # some syllable never occurs in the turn
        return None
    return _pinyin_scan(t, needle, _norm_phrase(p))


def _fuzzy_find(p: str, s: str, budget: int,
                chars: frozenset[str] | None = None) -> tuple[int, str] | None:
    """(edits, heard window) for the closest window of ``s`` within ``budget`` edits of phrase ``p``."""
    n = _norm_phrase(p)
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


def _built(cls, values: dict):
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
Hit = tuple[str, str, float]


def _find_phrase(t: PreparedTurn, p: str, cond: Condition, step: str) -> Hit | None:
    if step == "keyword":
        n = _norm_phrase(p)
        return ("keyword", p, 1.0) if n and n in t.norm else None
    if step == "pinyin":
        heard = _pinyin_find(t, p)
        return ("pinyin", f"{p}≈{heard}", PINYIN_CONFIDENCE) if heard else None
    f = _fuzzy_find(p, t.norm, cond.fuzzy, t.chars)
    if f is None:
        return None
    edits, heard = f
    return ("fuzzy", f"{p}≈{heard}", round(1 - edits / len(_norm_phrase(p)), 3))


def _steps(cond: Condition) -> tuple[str, ...]:
    return ("keyword",) + (("pinyin",) if cond.pinyin else ()) + (("fuzzy",) if cond.fuzzy else ())


def _weakest(hits: list[Hit]) -> Hit:
    """The least confident hit; on a tie the last one (so matched reads as before: any over all)."""
    out = hits[0]
    for h in hits[1:]:
        if h[2] <= out[2]:
            out = h
    return out


def _scope(turns: list[PreparedTurn], cond: Condition, duration: float | None,
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
    exclude: re.Pattern | None
    regex: re.Pattern | None
    pinyin: tuple[tuple[str, str, frozenset[str], str], ...]  # (phrase, needle, syllables, norm)
    steps: tuple[str, ...]
    windowless: bool  # no position window: the scope is the role alone
    # only ``any`` phrases decide (no all/none/regex/exclude_regex/similar_to): a turn matches
    # on its first exact phrase, else on the tolerant steps
    simple: bool


_PREPARED: dict[int, tuple[Condition, _Prepared]] = {}


def _prep(cond: Condition) -> _Prepared:
    got = _PREPARED.get(id(cond))
    if got is not None and got[0] is cond:
        return got[1]
    pin = []
    if cond.pinyin:
        for p in cond.any:
            needle, syls = _phrase_pinyin_info(p)
            if needle:
                pin.append((p, needle, syls, _norm_phrase(p)))
    prepared = _Prepared(
        none=tuple(n for p in cond.none if (n := _norm_phrase(p))),
        all=tuple(_norm_phrase(p) for p in cond.all),
        any=tuple((p, n) for p in cond.any if (n := _norm_phrase(p))),
        exclude=_compile(cond.exclude_regex) if cond.exclude_regex else None,
        regex=_compile(cond.regex) if cond.regex else None,
        pinyin=tuple(pin), steps=_steps(cond),
        windowless=not any(vars(cond.window).values()),
        simple=bool(cond.any) and not (cond.all or cond.none or cond.regex or cond.exclude_regex
                                       or cond.similar_to))
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
    return ("semantic", cond.similar_to[i], round(min(sim, 1.0), 3))


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
    ``_find_phrase`` step by step, phrase by phrase)."""
    for step in prep.steps[1:]:
        if step == "pinyin":
            have = t.syllable_set
            for p, needle, syls, n in prep.pinyin:
                if syls <= have and (heard := _pinyin_scan(t, needle, n)):
                    return ("pinyin", f"{p}≈{heard}", PINYIN_CONFIDENCE)
        else:
            for p in cond.any:
                if h := _find_phrase(t, p, cond, step):
                    return h
    return None


def _match_turn(t: PreparedTurn, cond: Condition, prep: _Prepared | None = None) -> Hit | None:
    """(matcher, what matched, confidence) or None. ``prep``: ``_prep(cond)``, if already at hand."""
    if prep is None:
        prep = _prep(cond)
    s = t.norm
    if prep.simple:  # the common case, without the tests it does not have
        for p, n in prep.any:
            if n in s:
                return ("keyword", p, 1.0)
        return _any_tolerant(t, cond, prep) if len(prep.steps) > 1 else None
    for n in prep.none:
        if n in s:
            return None
    if prep.exclude is not None and prep.exclude.search(s):
        return None
    hits: list[Hit] = []
    if cond.all:
        if all(n in s for n in prep.all):  # the fast path: every phrase exact
            hits.append(("keyword", "+".join(cond.all), 1.0))
        else:
            parts = []
            for p in cond.all:
                h = next((h for step in prep.steps if (h := _find_phrase(t, p, cond, step))), None)
                if h is None:
                    return None
                parts.append(h)
            weakest = _weakest(parts)
            hits.append((weakest[0], "+".join(h[1] for h in parts), weakest[2]))
    m = None
    if prep.regex is not None:  # checked before any semantic step (cheap first); appended last
        m = prep.regex.search(s)
        if m is None:
            return None
    if cond.any or cond.similar_to:
        found = None
        for p, n in prep.any:
            if n in s:
                found = p
                break
        if found is not None:  # the fast path: an exact hit
            hits.append(("keyword", found, 1.0))
        else:
            h = _any_tolerant(t, cond, prep) if cond.any and len(prep.steps) > 1 else None
            if h is None and cond.similar_to:
                h = _semantic(t, cond)
            if h is None:
                return None
            hits.append(h)
    if m is not None:
        hits.append(("regex", m.group(0), 1.0))
    if len(hits) == 1:
        return hits[0]
    return _weakest(hits) if hits else None


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
    (``_sounds``) and scans the call's sounds: a turn where a phrase occurs or one that sounds
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
        by_sound = any(_prep(c).pinyin for c in conds)
        words: dict[str, set[tuple[int, str]]] = {}
        for c in conds:
            for _, n in _prep(c).any:
                for w in [n] + _fuzzy_pieces(n, c.fuzzy):
                    words.setdefault(_sounds(w) if by_sound else w, set()).add((id(c), c.role))
        users = {w: {tr: ids for tr in ("agent", "customer", "any")
                     if (ids := tuple(sorted(cid for cid, r in v if r == tr or r == "any")))}
                 for w, v in words.items()}
        plain = {id(r): None for r in pack.rules
                 if r.match_expr is None and _indexable(r.match)
                 and (r.when is None or _indexable(r.when))}
        return cls(_automaton(users), by_sound, plain)


def _indexable(c: Condition) -> bool:
    """Whether ``CallIndex.candidates`` bounds where ``c`` can match (and nothing else decides)."""
    return c.metric is None and not c.repeated and bool(c.any) and not c.similar_to


def _fuzzy_pieces(n: str, budget: int) -> list[str]:
    """Pieces of normalised phrase ``n`` of which any window within the fuzzy budget keeps at
    least one intact: k edits touch at most k of k + 1 disjoint pieces (pigeonhole), so a turn
    with no piece cannot hold a fuzzy hit. Empty when fuzzy matching does not apply."""
    k = min(budget, (len(n) - 1) // 2)  # as _fuzzy_find
    if not budget or len(n) < FUZZY_MIN_LEN or k < 1:
        return []
    size = len(n) // (k + 1)
    return [n[i * size:(i + 1) * size if i < k else len(n)] for i in range(k + 1)]


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
        self.hits = self._hits(pidx.automaton, _sounds(hay) if pidx.by_sound else hay)
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
        if not cond.any or cond.similar_to:
            return None
        return self.hits.get(id(cond), _NOTHING)


def context_turns(turns: list[PreparedTurn], ctx: Context, anchors: list[int]) -> set[int]:
    """The turn indexes a match with context ``ctx`` may look at, given the anchor turns (where
    the rule's ``when`` matched, in order): after/before the first anchor, or within N turns /
    S seconds after any anchor. No anchor, no turn. Turns without times pass a seconds test."""
    if not anchors:
        return set()
    first = anchors[0]
    if ctx.before:
        return {t.index for t in turns if t.index < first}
    if not (ctx.within_turns or ctx.within_seconds):  # after
        return {t.index for t in turns if t.index > first}
    out: set[int] = set()
    anchor_set = set(anchors)
    last: int | None = None  # the latest anchor before the current turn
    last_end: float | None = None
    for t in turns:
        if last is not None and t.index > last:
            ok = True
            if ctx.within_turns and t.index - last > ctx.within_turns:
                ok = False
            if ok and ctx.within_seconds and t.start is not None and last_end is not None:
                ok = t.start - last_end <= ctx.within_seconds
            if ok:
                out.add(t.index)
        if t.index in anchor_set:
            last = t.index
            end = t.end if t.end is not None else t.start
            last_end = end if last_end is None or end is None else max(last_end, end)
    return out


def find(turns: list[PreparedTurn], cond: Condition, duration: float | None,
         allowed: set[int] | None = None, index: CallIndex | None = None, limit: int = 0) -> list[Evidence]:
    """Evidence for every turn in scope that matches (the condition holds if ≥ min_count);
    ``allowed`` (turn indexes, from ``context_turns``) narrows the scope further. With
    ``repeated`` the evidence is the turns of the most repeated sentence, if it repeats enough.
    ``index`` (from ``evaluate``) skips the turns that cannot match. ``limit`` > 0: stop at that
    many (enough to know a ``when`` holds: with ``limit=min_count`` the list is complete
    whenever the condition does not hold)."""
    if cond.repeated:
        return _find_repeated(turns, cond, duration, allowed)
    cand = index.candidates(cond) if index is not None else None
    prep = _prep(cond)
    if cand is not None:
        if not cand:
            return []
        allowed = cand if allowed is None else allowed & cand
        if prep.windowless:  # the candidates are already of the condition's role
            scope = [turns[i] for i in sorted(allowed)]
        else:
            scope = [t for t in _scope(turns, cond, duration, index) if t.index in allowed]
        allowed = None
    else:
        scope = _scope(turns, cond, duration, index)
    out = []
    for t in scope:
        if allowed is not None and t.index not in allowed:
            continue
        hit = _match_turn(t, cond, prep)
        if hit:
            out.append(_built(Evidence, {"role": t.role, "turn": t.index, "start": t.start, "end": t.end,
                                         "text": t.text, "matcher": hit[0], "matched": hit[1],
                                         "confidence": hit[2]}))
            if len(out) == limit:
                break
    return out


_SENTENCE_END = re.compile(r"[。！？.!?]+")


def _has_turn_test(cond: Condition) -> bool:
    return bool(cond.any or cond.all or cond.regex or cond.similar_to)


def _find_repeated(turns: list[PreparedTurn], cond: Condition, duration: float | None,
                   allowed: set[int] | None) -> list[Evidence]:
    """A sentence (a turn's normalised text, or a piece of it split on 。！？.!?) of at least
    REPEAT_MIN_LEN characters that occurs ≥ ``cond.repeated`` times over the turns in scope (those
    matching the condition's phrase tests, if it has any): one evidence per turn saying it."""
    counts: dict[str, int] = {}
    where: dict[str, list[PreparedTurn]] = {}
    for t in _scope(turns, cond, duration):
        if allowed is not None and t.index not in allowed:
            continue
        if _has_turn_test(cond) and _match_turn(t, cond) is None:
            continue
        pieces = [n for p in _SENTENCE_END.split(t.text) if len(n := normalize(p, drop_fillers=True)) >= REPEAT_MIN_LEN]
        units = list(pieces)
        if len(pieces) != 1 and len(t.norm) >= REPEAT_MIN_LEN and t.norm not in units:
            units.append(t.norm)
        for u in units:
            counts[u] = counts.get(u, 0) + (pieces.count(u) if u in pieces else 1)
            if t not in where.setdefault(u, []):
                where[u].append(t)
    if not counts:
        return []
    best = max(counts, key=lambda u: counts[u])  # first seen wins a tie
    if counts[best] < cond.repeated:
        return []
    return [Evidence(role=t.role, turn=t.index, start=t.start, end=t.end, text=t.text, matcher="repeated",
                     matched=best, confidence=1.0) for t in where[best]]


def _metric_evidence(cond: Condition, metrics: dict | None) -> tuple[list[Evidence], str]:
    """(evidence if the metric test holds, a note such as "metric X not available")."""
    mt = cond.metric
    assert mt is not None
    v = (metrics or {}).get(mt.name)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return [], f"metric {mt.name} not available"
    if not mt.test(float(v)):
        return [], f"{mt.name} = {v:g}, not {mt.describe().split(' ', 1)[1]}"
    text = f"{mt.name} = {v:g} {mt.describe().split(' ', 1)[1]}"
    return [Evidence(role="any", turn=-1, start=None, end=None, text=text, matcher="metric",
                     matched=text, confidence=1.0)], ""


def _holds(cond: Condition, ev: list[Evidence]) -> bool:
    return len(ev) >= cond.min_count


_DESCRIBED: dict[int, tuple[Condition, str]] = {}


def _describe(cond: Condition, anchors: list[int] | None = None) -> str:
    if anchors:
        return _describe_uncached(cond, anchors)
    got = _DESCRIBED.get(id(cond))  # a failing rule's reason is built for every call
    if got is not None and got[0] is cond:
        return got[1]
    text = _describe_uncached(cond)
    if len(_DESCRIBED) >= 4096:
        _DESCRIBED.clear()
    _DESCRIBED[id(cond)] = (cond, text)
    return text


def _describe_uncached(cond: Condition, anchors: list[int] | None = None) -> str:
    if cond.metric is not None:
        return f"metric {cond.metric.describe()}"
    what = []
    if cond.any:
        what.append("any of " + "/".join(cond.any[:4]) + ("…" if len(cond.any) > 4 else ""))
    if cond.all:
        what.append("all of " + "+".join(cond.all))
    if cond.regex:
        what.append(f"/{cond.regex}/")
    if cond.similar_to:
        ex = "/".join(cond.similar_to[:2]) + ("…" if len(cond.similar_to) > 2 else "")
        what.append(f"similar to {ex} (≥ {cond.threshold:g})")
    if cond.repeated:
        what.append(f"a sentence repeated ≥ {cond.repeated} times")
    tol = [x for x in ("pinyin" if cond.pinyin else "", f"fuzzy {cond.fuzzy}" if cond.fuzzy else "") if x]
    more = f" [{', '.join(tol)}]" if tol else ""
    count = f" in ≥ {cond.min_count} turns" if cond.min_count > 1 else ""
    where = f" {cond.context.describe(anchors or ())}" if cond.context else ""
    return f"{' and '.join(what)}{more}{count} in {cond.role} turns ({cond.window.describe()}){where}"


def _eval_expr(e: Expr, found: dict[str, tuple[bool, list[Evidence]]]) -> tuple[bool, list[Evidence]]:
    """(value, evidence of the conditions that make it true; a negated one gives none)."""
    if e.op == "name":
        return found[e.name]
    if e.op == "not":
        return not _eval_expr(e.items[0], found)[0], []
    vals = [_eval_expr(i, found) for i in e.items]
    ev = [x for ok, evs in vals if ok for x in evs]
    ok = {"and": all, "or": any}.get(e.op)
    value = ok(v for v, _ in vals) if ok else sum(v for v, _ in vals) >= e.n
    return value, ev if value else []


def _uniq(ev: list[Evidence]) -> list[Evidence]:
    seen, out = set(), []
    for e in ev:
        if e not in seen:
            seen.add(e)
            out.append(e)
    return out


def _evaluate_composed(rule: Rule, turns: list[PreparedTurn], duration: float | None,
                       metrics: dict | None, index: CallIndex | None = None) -> RuleResult:
    found: dict[str, tuple[bool, list[Evidence]]] = {}
    notes: dict[str, str] = {}
    for name, cond in rule.conditions:
        if cond.metric is not None:
            ev, notes[name] = _metric_evidence(cond, metrics)
        else:
            ev = find(turns, cond, duration, index=index)
        found[name] = (_holds(cond, ev), ev)

    def status(expr: Expr) -> str:
        parts = []
        for name in sorted(expr.names()):
            ok, ev = found[name]
            extra = f": {notes[name]}" if notes.get(name) else ""
            parts.append(f"{name} {'found' if ok else 'not found'}{extra}")
        return "; ".join(parts)

    if rule.when_expr is not None:
        if not _eval_expr(rule.when_expr, found)[0]:
            holds, ev = _eval_expr(rule.match_expr, found)
            return _outcome(rule, holds, "n/a", _uniq(ev)[:3] if holds else [],
                            f"not applicable: when \"{rule.when_expr}\" is false ({status(rule.when_expr)})")
    elif rule.when is not None and not _holds(rule.when, find(turns, rule.when, duration, index=index,
                                                               limit=rule.when.min_count)):
        holds, ev = _eval_expr(rule.match_expr, found)
        return _outcome(rule, holds, "n/a", _uniq(ev)[:3] if holds else [],
                        f"not applicable: no {_describe(rule.when)}")
    holds, ev = _eval_expr(rule.match_expr, found)
    ev = _uniq(ev)
    expr, why = rule.match_expr, status(rule.match_expr)
    if rule.kind == "required":
        return _outcome(rule, holds, "pass" if holds else "fail", ev if holds else [],
                        f"{'satisfied' if holds else 'not satisfied'}: \"{expr}\" ({why})")
    return _outcome(rule, holds, "hit" if holds else "pass", ev if holds else [],
                    f"{'matched' if holds else 'not matched'}: \"{expr}\" ({why})")


# rule results without evidence, by (id(rule), matched, outcome, reason); the rule is kept
# alive with its entry so that its id stays its own
_NO_EVIDENCE: dict[tuple, tuple[Rule, RuleResult]] = {}


def _result(rule: Rule, matched: bool, outcome: str, evidence: tuple[Evidence, ...], reason: str) -> RuleResult:
    deduct = rule.deduction if outcome in ("fail", "hit") else 0.0
    return _built(RuleResult, {"rule_id": rule.id, "title": rule.title, "category": rule.category,
                               "severity": rule.severity, "matched": matched, "outcome": outcome,
                               "deduction": deduct, "fatal": rule.fatal and outcome in ("fail", "hit"),
                               "kind": rule.kind, "evidence": evidence, "reason": reason})


def _outcome(rule: Rule, matched: bool, outcome: str, evidence: list[Evidence], reason: str) -> RuleResult:
    """The rule's result; one without evidence (most rules on most calls: the same result every
    time) is built once and reused."""
    if evidence:
        return _result(rule, matched, outcome, tuple(evidence), reason)
    key = (id(rule), matched, outcome, reason)
    got = _NO_EVIDENCE.get(key)
    if got is not None and got[0] is rule:
        return got[1]
    if len(_NO_EVIDENCE) >= 65536:
        _NO_EVIDENCE.clear()
    _NO_EVIDENCE[key] = (rule, _result(rule, matched, outcome, (), reason))
    return _NO_EVIDENCE[key][1]


def evaluate_rule(rule: Rule, turns: list[PreparedTurn], duration: float | None,
                  metrics: dict | None = None, index: CallIndex | None = None) -> RuleResult:
    if rule.match_expr is not None:
        return _evaluate_composed(rule, turns, duration, metrics, index)
    if rule.match.metric is not None or (rule.when is not None and rule.when.metric is not None):
        return _evaluate_metric(rule, turns, duration, metrics, index)
    ctx = rule.match.context
    anchored = rule.when is not None and bool(ctx)  # the match looks relative to the when turns
    wev = [] if rule.when is None else find(turns, rule.when, duration, index=index,
                                            limit=0 if anchored else rule.when.min_count)
    anchors: list[int] = []
    if anchored:  # anchor turns worked out once per rule and call
        anchors = [e.turn for e in wev]
        ev = find(turns, rule.match, duration, context_turns(turns, ctx, anchors), index)
    else:
        ev = find(turns, rule.match, duration, index=index)
    where = f" ({ctx.describe(anchors)})" if anchored else ""
    holds = _holds(rule.match, ev)
    need = rule.match.min_count
    if rule.when is not None:
        if not _holds(rule.when, wev):
            # not applicable, but still say whether the thing was found ("matched" is a fact)
            short = f" (found in {len(wev)} turn(s))" if wev else ""
            return _outcome(rule, holds, "n/a", ev[:3] if holds else [],
                            f"not applicable: no {_describe(rule.when)}{short}")
    if rule.kind == "required":
        if holds:
            best = sorted(ev, key=lambda e: -e.confidence)[:3]  # stable: exact hits first, then by turn
            count = f" in {len(ev)} turns (≥ {need} required)" if need > 1 else ""
            return _outcome(rule, True, "pass", best, f"found {best[0].matched!r} at turn {best[0].turn}{count}{where}")
        if ev:
            return _outcome(rule, False, "fail", [], f"found in only {len(ev)} turn(s), needs ≥ {need}: "
                            f"{_describe(rule.match, anchors)}")
        return _outcome(rule, False, "fail", [], f"missing: {_describe(rule.match, anchors)}")
    if holds:
        count = f" (≥ {need} required)" if need > 1 else ""
        return _outcome(rule, True, "hit", ev, f"{len(ev)} hit(s){count}{where}: "
                        f"{', '.join(sorted({e.matched for e in ev}))}")
    if ev:
        return _outcome(rule, False, "pass", [], f"only {len(ev)} hit(s), below min_count {need}{where}: "
                        f"{', '.join(sorted({e.matched for e in ev}))}")
    return _outcome(rule, False, "pass", [], f"none of {_describe(rule.match, anchors)}")


def _evaluate_metric(rule: Rule, turns: list[PreparedTurn], duration: float | None,
                     metrics: dict | None, index: CallIndex | None = None) -> RuleResult:
    """A plain rule whose match or when is a ``metric:`` test (no turn context applies)."""
    def test(cond: Condition) -> tuple[bool, list[Evidence], str]:
        if cond.metric is not None:
            ev, note = _metric_evidence(cond, metrics)
            return bool(ev), ev, note
        ev = find(turns, cond, duration, index=index)
        return _holds(cond, ev), ev, ""

    holds, ev, note = test(rule.match)
    if rule.when is not None:
        wok, _, wnote = test(rule.when)
        if not wok:
            return _outcome(rule, holds, "n/a", ev[:3] if holds else [],
                            f"not applicable: {wnote or 'no ' + _describe(rule.when)}")
    if rule.kind == "required":
        if holds:
            return _outcome(rule, True, "pass", ev[:3], f"found {ev[0].matched!r}")
        return _outcome(rule, False, "fail", [], note or f"missing: {_describe(rule.match)}")
    if holds:
        return _outcome(rule, True, "hit", ev, f"{len(ev)} hit(s): {', '.join(sorted({e.matched for e in ev}))}")
    return _outcome(rule, False, "pass", [], note or f"none of {_describe(rule.match)}")


def evaluate(pack: RulePack, transcript: Transcript, metrics: dict | None = None) -> tuple[RuleResult, ...]:
    """``metrics``: the call's metrics (talk, acoustic, sentiment) for ``metric:`` conditions."""
    turns = prepare(transcript)
    pidx = pack_index(pack)
    index = CallIndex(turns, pidx)
    out = []
    for r in pack.rules:
        if (id(r) in pidx.plain and not index.candidates(r.match)
                and (r.when is None or not index.candidates(r.when))):
            # nothing it looks for occurs in the call: the rule's no-evidence result (fail /
            # pass, or n/a when it has a ``when``), as evaluate_rule builds it on any call
            # without those phrases; worked out once
            res = pidx.plain[id(r)]
            if res is None:
                res = pidx.plain[id(r)] = evaluate_rule(r, [], None)
            out.append(res)
        else:
            out.append(evaluate_rule(r, turns, transcript.duration, metrics, index))
    return tuple(out)


def match_context(rule: Rule, turns: list[PreparedTurn], duration: float | None) -> set[int] | None:
    """The turn indexes the rule's ``match`` may look at given its context (None: no context)."""
    if not rule.match.context or rule.when is None:
        return None
    return context_turns(turns, rule.match.context, [e.turn for e in find(turns, rule.when, duration)])


def scope_turns(transcript: Transcript, cond: Condition, when: Condition | None = None) -> list[PreparedTurn]:
    """The turns ``cond`` looks at in ``transcript`` (its role and window, and its context
    relative to ``when`` if it has one), for explaining a result."""
    turns = prepare(transcript)
    sel = _scope(turns, cond, transcript.duration)
    if cond.context and when is not None:
        allowed = context_turns(turns, cond.context, [e.turn for e in find(turns, when, transcript.duration)])
        sel = [t for t in sel if t.index in allowed]
    return sel


def describe_condition(cond: Condition) -> str:
    """One line: what ``cond`` looks for and where (as used in RuleResult.reason)."""
    return _describe(cond)
