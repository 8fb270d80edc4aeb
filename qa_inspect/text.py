"""Text normalisation: Traditional→Simplified, width, numerals, punctuation, fillers; CER.

Verbatim text is kept for display; ``normalize`` is what matchers and CER compare.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_DIGITS = {"零": "0", "〇": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3", "四": "4",
           "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
# Three or more spoken digits in a row are a number read digit by digit (工号一二三四, 幺零零幺零);
# ASR sometimes puts spaces between them (工号 一 二 三 四): those belong to the number too.
_DIGIT_RUN = re.compile(f"[{''.join(_DIGITS)}](?:[ \t]*[{''.join(_DIGITS)}]){{2,}}")
_PUNCT = re.compile(r"[\s\u3000-\u303f\uff00-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
                    r"!-/:-@\[-`{-~，。！？、；：“”‘’（）《》【】…—·]+")
# not 额: it would turn 余额 (balance) into 余
FILLERS_ZH = ("嗯", "啊", "呃", "哎", "诶", "那个", "就是说")


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text) if text else text


def spoken_digits_to_arabic(text: str) -> str:
    """工号一二三四 → 工号1234; 幺零零幺零 → 10010. Quantities (三个月) are left alone."""
    return _DIGIT_RUN.sub(lambda m: "".join(_DIGITS[c] for c in m.group() if c in _DIGITS), text)


def arabic_to_spoken(text: str, one: str = "一") -> str:
    """1234 → 一二三四 (the other direction, for matching digits read out)."""
    rev = {v: k for k, v in _DIGITS.items() if k not in ("〇", "幺", "两")}
    rev["1"] = one
    return re.sub(r"\d", lambda m: rev[m.group()], text)


# full-width ASCII (！…～) and the ideographic space, as NFKC maps them (a regex: str.translate
# with a dict costs ~0.15 µs per character of the whole text, the regex only per match)
_FULL_WIDTH = re.compile("[\uff01-\uff5e\u3000]")


def _half(m: re.Match) -> str:
    c = m.group()
    return " " if c == "\u3000" else chr(ord(c) - 0xFEE0)


def _nfkc(t: str) -> str:
    """NFKC, fast: CPython's NFKC takes ~1 µs per character once a string has any character it
    changes, and Chinese text always has full-width punctuation; map those first (as NFKC would)
    and run the full NFKC only if something else is left to change."""
    t = _FULL_WIDTH.sub(_half, t)
    return t if unicodedata.is_normalized("NFKC", t) else unicodedata.normalize("NFKC", t)


def normalize(text: str, *, drop_fillers: bool = False) -> str:
    """Comparable form: NFKC (full→half width), Simplified, lower case, digits, no punctuation."""
    t = _nfkc(text or "")
    t = to_simplified(t).lower()
    t = spoken_digits_to_arabic(t)
    if drop_fillers:
        for f in FILLERS_ZH:
            t = t.replace(f, "")
    return _PUNCT.sub("", t)


def normalize_many(texts: list[str], *, drop_fillers: bool = False) -> list[str]:
    """``[normalize(t) for t in texts]`` in one pass over the joined text (a call's turns: the
    per-call cost of rule matching is mostly this, and one OpenCC/NFKC/regex call per call is far
    cheaper than one per turn). NUL separates the texts: no step maps, joins across or removes
    it, and it breaks a digit run or filler at the boundary as the separate calls would."""
    if not texts:
        return []
    joined = "\x00".join((t or "").replace("\x00", "") for t in texts)
    out = normalize(joined, drop_fillers=drop_fillers).split("\x00")
    if len(out) != len(texts):  # cannot happen for the steps above; never risk misaligned turns
        return [normalize(t, drop_fillers=drop_fillers) for t in texts]
    return out


def edit_distance(a: str, b: str) -> int:
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.distance(a, b)


def cer(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edits, reference length) after normalisation; sum both over a corpus, then divide."""
    r, h = normalize(reference), normalize(hypothesis)
    return edit_distance(r, h), len(r)


def mmss(seconds: float | None, unknown: str = "—") -> str:
    """Seconds as "mm:ss" (minutes not wrapped at 60: 3725 s is "62:05"); ``unknown`` for None,
    NaN, infinite, negative or non-numbers. The one mm:ss formatter of the product."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0 \
            or seconds == float("inf"):
        return unknown
    s = int(seconds)
    return f"{s // 60:02d}:{s % 60:02d}"


def highlight(text: str, terms) -> list[tuple[str, bool]]:
    """Split verbatim ``text`` into ``(segment, is_match)`` pieces around ``terms`` (the words a
    rule heard, e.g. ``rules.evidence_terms(e)``): every case-insensitive occurrence of a term in
    the text; a term found only on the normalised text (工号1234 heard in 工号一二三四, a phrase
    split by punctuation) is placed back on the verbatim text at its first occurrence. Where
    spans overlap the first is kept. Segments are raw text: an HTML template escapes each one.
    The one highlighter of the product (batch report, examples gallery, ``rules explain``)."""
    if not text:
        return []
    spans: list[tuple[int, int]] = []
    lo = text.lower()
    norm = norm_len = None
    for term in terms:
        if not term:
            continue
        tl = term.lower()
        i = lo.find(tl)
        if i >= 0:
            while i >= 0:
                spans.append((i, i + len(tl)))
                i = lo.find(tl, i + len(tl))
            continue
        if norm is None:  # norm_len[i]: length of the normalised text[:i] (offsets back to the text)
            norm_len = [len(normalize(text[:i], drop_fillers=True)) for i in range(len(text) + 1)]
            norm = normalize(text, drop_fillers=True)
        nt = normalize(term, drop_fillers=True) or term
        j = norm.find(nt)
        if j < 0 or not nt:
            continue
        a = next(i for i in range(len(text)) if norm_len[i + 1] > j)
        b = next(i for i in range(a, len(text) + 1) if norm_len[i] >= j + len(nt))
        spans.append((a, b))
    out: list[tuple[str, bool]] = []
    pos = 0
    for a, b in sorted(spans):
        if a < pos:  # overlapping: keep the first
            continue
        if a > pos:
            out.append((text[pos:a], False))
        out.append((text[a:b], True))
        pos = b
    if pos < len(text):
        out.append((text[pos:], False))
    return out
