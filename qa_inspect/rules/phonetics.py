"""Phonetics for ASR-tolerant matching: each character's toneless pinyin, and a text's "sounds"
(one character per syllable, aligned with the text) so that homophones compare equal with plain
substring search (投诉 ≈ 头诉)."""
from __future__ import annotations

import re
from functools import lru_cache

from qa_inspect.text import normalize
from qa_inspect.rules.model import PINYIN_MIN_LEN

HAN = re.compile(r"[\u3400-\u9fff\U00020000-\U0003134f]")


@lru_cache(maxsize=4096)
def norm_phrase(p: str) -> str:
    """A phrase's normalised form (as turns are normalised), cached."""
    return normalize(p)


@lru_cache(maxsize=65536)
def char_pinyin(c: str) -> str:
    """The toneless pinyin of one character (its default reading); the character itself when
    it has none (digits, Latin letters)."""
    from pypinyin import Style, lazy_pinyin

    items = lazy_pinyin(c, style=Style.NORMAL, errors=lambda chars: list(chars))
    return items[0] if len(items) == 1 and items[0] else c


_SYLLABLE: dict[str, str] = {}  # character -> syllable: a plain dict is the fastest cache here


def syllable(c: str) -> str:
    """The character's syllable (``char_pinyin``), cached."""
    syl = _SYLLABLE.get(c)
    if syl is None:
        _SYLLABLE[c] = syl = char_pinyin(c)
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
        self[code] = out = _sound_of(syllable(chr(code)))
        return out


SOUNDS = _SoundTable()


def sounds(s: str) -> str:
    """One character per character of ``s``, equal where their toneless syllables are equal.
    Read per character (not with pypinyin's phrase segmentation) so that a phrase and a turn read
    the same characters the same way, and each character is looked up once per process."""
    if len(s) >= 400:  # a long call: a numpy table lookup (~15 µs + a few ns per character)
        # beats str.translate with a dict (~90 ns per character) from a few hundred characters
        try:
            return _sounds_array(s)
        except UnicodeEncodeError:  # a lone surrogate: no UTF-32 form
            pass
    return s.translate(SOUNDS)


_BMP_SOUND = None  # numpy arrays over the Basic Multilingual Plane: code -> sound code, and
_BMP_KNOWN = None  # whether that entry is filled in yet (from SOUNDS, so both always agree)


def _sounds_array(s: str) -> str:
    global _BMP_SOUND, _BMP_KNOWN
    import numpy as np

    codes = np.frombuffer(s.encode("utf-32-le"), dtype=np.uint32)
    if codes.size and int(codes.max()) > 0xFFFF:  # rare characters beyond the BMP: the dict
        return s.translate(SOUNDS)
    if _BMP_SOUND is None:
        _BMP_SOUND, _BMP_KNOWN = np.zeros(0x10000, np.uint32), np.zeros(0x10000, bool)
    seen = _BMP_KNOWN[codes]
    if not seen.all():
        for c in np.unique(codes[~seen]).tolist():
            _BMP_SOUND[c] = ord(SOUNDS[c])
            _BMP_KNOWN[c] = True
    return _BMP_SOUND[codes].tobytes().decode("utf-32-le")


@lru_cache(maxsize=4096)
def phrase_pinyin_info(p: str) -> tuple[str, frozenset[str]]:
    """(the normalised phrase's sounds as a search needle, its syllables), or ("", ∅) if
    pinyin does not apply."""
    n = norm_phrase(p)
    if len(n) < PINYIN_MIN_LEN or not HAN.search(n):
        return "", frozenset()
    needle = sounds(n)
    return needle, frozenset(needle)

