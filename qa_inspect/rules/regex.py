"""Rule regexes on RE2 (google-re2): linear time in the text, so no pattern can hang a batch
(``(a+)+$`` on a long turn takes microseconds where Python's ``re`` backtracks for hours; issue 17).

A small adapter over re2's public API. Patterns are compiled as UTF-8 bytes and searched on the
turn's normalised text encoded once per turn: that skips re2's per-call character/byte offset
translation (about 1.4 µs a search instead of 7; Python's ``re`` takes ~0.2 µs on a short turn,
so a regex rule costs a few µs per call more than it did: the price of never hanging). RE2 has no backreferences or lookarounds;
such a pattern is a load error. Python's ``\\d``/``\\w`` match any Unicode digit/letter, RE2's
only ASCII ones: outside character classes they are rewritten to their Unicode forms, so a pack
means what it meant under ``re``. ``\\b`` stays RE2's ASCII word boundary (there is no Unicode
one): between Chinese characters and letters it does not see a boundary Python's ``re`` saw.
"""
from __future__ import annotations

from functools import lru_cache

import re2

__all__ = ["Regex", "compile_regex", "first_chars", "regex_problem"]

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a bad pattern is our error line, not a log line on stderr
_OPTIONS.never_capture = True  # only the whole match is reported: no submatch work (~10 % faster)

# Python's Unicode classes, in RE2 syntax (outside a character class only)
_UNICODE = {"d": r"\p{Nd}", "D": r"\P{Nd}", "w": r"[\p{L}\p{N}_]", "W": r"[^\p{L}\p{N}_]"}
_UNICODE_IN_CLASS = {"d": r"\p{Nd}", "w": r"\p{L}\p{N}_"}


def _unicode_classes(p: str) -> str:
    out, i, in_class = [], 0, False
    while i < len(p):
        c = p[i]
        if c == "\\" and i + 1 < len(p):
            nxt = p[i + 1]
            rep = (_UNICODE_IN_CLASS if in_class else _UNICODE).get(nxt)
            out.append(rep if rep else p[i:i + 2])
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
            out.append(c)
            if p[i + 1:i + 2] == "^":
                out.append("^")
                i += 1
            if p[i + 1:i + 2] == "]":  # a leading ] is a literal
                out.append("]")
                i += 1
        elif c == "]" and in_class:
            in_class = False
            out.append(c)
        else:
            out.append(c)
        i += 1
    return "".join(out)


_SPECIAL = set("\\.^$*+?()[]{}|")


def _split_top(p: str) -> list[str] | None:
    """``p`` split on its top-level ``|`` (None when brackets do not balance)."""
    parts, depth, start, i, in_class = [], 0, 0, 0, False
    while i < len(p):
        c = p[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append(p[start:i])
            start = i + 1
        i += 1
    return None if depth or in_class else parts + [p[start:]]


def first_chars(p: str) -> frozenset[str] | None:
    """Characters one of which every match of ``p`` starts with, or None when that is not plain
    from the pattern (classes, escapes, anchors, flags, an optional first item). Conservative:
    a turn without any of them cannot match, so the RE2 search is skipped (~0.1 µs, not ~1.5)."""
    branches = _split_top(p)
    if branches is None:
        return None
    out: set[str] = set()
    for b in branches:
        if not b:
            return None
        if b[0] == "(":
            if b.startswith("(?") and not b.startswith("(?:"):
                return None
            depth, j = 0, 0
            while j < len(b):  # the group's closing parenthesis
                if b[j] == "\\":
                    j += 2
                    continue
                depth += {"(": 1, ")": -1}.get(b[j], 0)
                if depth == 0:
                    break
                j += 1
            if j >= len(b) or b[j + 1:j + 2] in ("?", "*", "{"):
                return None
            inner = first_chars(b[3 if b.startswith("(?:") else 1:j])
            if inner is None:
                return None
            out |= inner
        elif b[0] in _SPECIAL or b[1:2] in ("?", "*", "{"):
            return None
        else:
            out.add(b[0])
    return frozenset(out)


class Regex:
    """A compiled rule regex: ``search(text)`` gives the first match's text or None."""

    __slots__ = ("pattern", "_re", "first")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._re = re2.compile(_unicode_classes(pattern).encode("utf-8"), _OPTIONS)
        self.first = first_chars(pattern)  # (the pattern compiled, so it is well formed)

    def may_match(self, text: str) -> bool:
        """False when ``text`` holds none of the characters every match starts with."""
        if self.first is None:
            return True
        for c in self.first:  # (a loop: a generator costs more than the few tests here)
            if c in text:
                return True
        return False

    def search_bytes(self, text: bytes) -> str | None:
        """The first match in UTF-8 ``text`` (decoded), or None."""
        m = self._re.search(text)
        return None if m is None else m.group(0).decode("utf-8", "surrogatepass")

    def search(self, text: str) -> str | None:
        return self.search_bytes(text.encode("utf-8", "surrogatepass"))


@lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> Regex:
    return Regex(pattern)


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be a rule regex (RE2 cannot compile it), or None."""
    try:
        compile_regex(pattern)
    except re2.error as e:
        msg = e.args[0] if e.args else e
        msg = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
        return f"{msg} (rule regexes run on RE2: no backreferences or lookarounds)"
    return None
