"""The rule language's parsed form: frozen dataclasses, built only by the loader."""
from __future__ import annotations

from dataclasses import dataclass

KINDS = ("required", "forbidden", "risk")
SEVERITIES = ("info", "minor", "major", "critical")
WINDOW_KEYS = {"first_turns", "last_turns", "first_seconds", "last_seconds"}
CONDITION_KEYS = {"role", "any", "all", "none", "regex", "exclude_regex", "window", "pinyin", "fuzzy",
                  "min_count"}
FUZZY_MIN_LEN = 3  # fuzzy matching applies to phrases of at least this many (normalised) characters
PINYIN_MIN_LEN = 2  # pinyin matching applies to phrases of at least this many characters
RULE_KEYS = {"id", "title", "description", "category", "kind", "severity", "deduction", "fatal",
             "match", "when", "examples"}
EXAMPLE_KINDS = ("hit", "miss", "todo")  # hit: must match; miss: must not; todo: known gap, should match
ROLES = ("agent", "customer")


@dataclass(frozen=True)
class Window:
    """Where in the call to look, counted over the turns of the condition's role."""

    first_turns: int | None = None
    last_turns: int | None = None
    first_seconds: float | None = None
    last_seconds: float | None = None

    def describe(self) -> str:
        parts = [f"{k.replace('_', ' ')} {v:g}" for k, v in vars(self).items() if v]
        return ", ".join(parts) if parts else "whole call"


@dataclass(frozen=True)
class Condition:
    """A turn matches when it has any of ``any``, all of ``all``, matches ``regex``,
    and has none of ``none`` nor ``exclude_regex``. The condition holds if at least
    ``min_count`` turns in scope match.

    ASR tolerance (``any``/``all`` phrases only; ``none`` and regexes stay exact): with
    ``pinyin`` a phrase also matches a span that sounds the same (toneless pinyin, 投诉 ≈ 头诉);
    with ``fuzzy: N`` a phrase of ≥ 3 characters also matches a window within N edits.
    An exact hit is always preferred."""

    role: str = "any"
    any: tuple[str, ...] = ()
    all: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    regex: str = ""
    exclude_regex: str = ""
    window: Window = Window()
    pinyin: bool = False
    fuzzy: int = 0  # edit budget per phrase; 0 = off
    min_count: int = 1


@dataclass(frozen=True)
class Example:
    """A small dialogue kept next to a rule: ``hit`` must make the rule's match condition
    found, ``miss`` must not, ``todo`` should but is a known gap (reported, not a failure)."""

    kind: str  # hit | miss | todo
    turns: tuple[tuple[str, str], ...]  # (role, text)
    line: int = 0
    index: int = 0  # position within its kind's list

    def describe(self) -> str:
        return " / ".join(f"{r}: {t}" for r, t in self.turns)


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    description: str
    category: str
    kind: str  # required: must be found; forbidden: must not be found; risk: flag when found
    severity: str
    deduction: float
    fatal: bool
    match: Condition
    when: Condition | None  # the rule applies only if this holds (else outcome n/a)
    line: int = 0
    examples: tuple[Example, ...] = ()


@dataclass(frozen=True)
class GradeBand:
    min: float
    grade: str


@dataclass(frozen=True)
class RulePack:
    id: str
    version: str
    title: str
    language: str
    rules: tuple[Rule, ...]
    grades: tuple[GradeBand, ...]
    source: str = ""
    hash: str = ""
