"""The rule language's parsed form: frozen dataclasses, built only by the loader."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

KINDS = ("required", "forbidden", "risk")
SEVERITIES = ("info", "minor", "major", "critical")
WINDOW_KEYS = {"first_turns", "last_turns", "first_seconds", "last_seconds", "first_share", "last_share"}
CONDITION_KEYS = {"role", "any", "all", "none", "regex", "exclude_regex", "window", "pinyin", "fuzzy",
                  "min_count", "similar_to", "threshold", "repeated", "metric", "learned"}
CONTEXT_KEYS = {"after", "before", "within"}  # match only: relative to the turns where `when` holds
WITHIN_KEYS = {"turns", "seconds"}
STATUSES = ("experimental", "test", "stable")
FUZZY_MIN_LEN = 3  # fuzzy matching applies to phrases of at least this many (normalised) characters
PINYIN_MIN_LEN = 2  # pinyin matching applies to phrases of at least this many characters
SEMANTIC_THRESHOLD = 0.6  # default cosine similarity a turn needs to a ``similar_to`` example
RULE_KEYS = {"id", "title", "description", "category", "kind", "severity", "deduction", "fatal",
             "match", "when", "conditions", "examples", "status", "tags", "owner"}
EXAMPLE_KINDS = ("hit", "miss", "todo")  # hit: must match; miss: must not; todo: known gap, should match
ROLES = ("agent", "customer")
REPEAT_MIN_LEN = 4  # a repeated sentence needs at least this many normalised characters
# call-level metrics a ``metric:`` condition may test (values come from the metrics mapping
# passed to ``evaluate``: talk metrics, acoustic and sentiment operators)
METRICS = ("speech_rate_cpm", "speech_rate_agent", "speech_rate_customer", "duration_s",
           "max_silence_s", "silence_share", "hold_count", "hold_s", "dead_air_count", "overlap_s",
           "agent_interruptions", "customer_interruptions", "talk_ratio",
           "agent_agitation_max", "customer_agitation_max",
           "customer_sentiment_start", "customer_sentiment_end", "customer_sentiment_min",
           "customer_sentiment_delta", "agent_sentiment_mean")
METRIC_OPS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
METRIC_KEYS = {"name", "op", "value"}
EXPR_KEYWORDS = ("and", "or", "not", "of", "all")


@dataclass(frozen=True)
class Metric:
    """``metric: {name: max_silence_s, op: gt, value: 10}``: holds if the call's metric compares so."""

    name: str
    op: str  # gt | ge | lt | le
    value: float

    def test(self, v: float) -> bool:
        return {"gt": v > self.value, "ge": v >= self.value, "lt": v < self.value, "le": v <= self.value}[self.op]

    def describe(self) -> str:
        return f"{self.name} {METRIC_OPS[self.op]} {self.value:g}"


@dataclass(frozen=True)
class Expr:
    """A boolean expression over a rule's named conditions (``match: "greet and not rude"``).

    op: "name" (``name``), "not" (``items[0]``), "and"/"or" (``items``), "of" (at least ``n`` of
    ``items``; ``all of (...)`` is parsed as "and")."""

    op: str
    name: str = ""
    n: int = 0
    items: tuple["Expr", ...] = ()

    def names(self) -> set[str]:
        if self.op == "name":
            return {self.name}
        return set().union(*(i.names() for i in self.items)) if self.items else set()

    def __str__(self) -> str:
        if self.op == "name":
            return self.name
        if self.op == "not":
            return f"not {_paren(self.items[0])}"
        if self.op == "of":
            return f"{self.n} of ({', '.join(map(str, self.items))})"
        return f" {self.op} ".join(_paren(i) for i in self.items)


def _paren(e: Expr) -> str:
    return f"({e})" if e.op in ("and", "or") else str(e)


@dataclass(frozen=True)
class Window:
    """Where in the call to look, counted over the turns of the condition's role."""

    first_turns: int | None = None
    last_turns: int | None = None
    first_seconds: float | None = None
    last_seconds: float | None = None
    first_share: float | None = None  # share of the call's duration, 0 < x ≤ 1
    last_share: float | None = None

    def describe(self) -> str:
        parts = [f"{k.replace('_', ' ')} {v:g}" for k, v in vars(self).items() if v]
        return ", ".join(parts) if parts else "whole call"


@dataclass(frozen=True)
class Context:
    """Where a ``match`` looks relative to the anchor turns (the turns where the rule's ``when``
    matches): ``after``/``before`` the first anchor, or ``within`` N turns / S seconds after any."""

    after: bool = False
    before: bool = False
    within_turns: int | None = None
    within_seconds: float | None = None

    def __bool__(self) -> bool:
        return bool(self.after or self.before or self.within_turns or self.within_seconds)

    def describe(self, anchors: list[int] | tuple[int, ...] = ()) -> str:
        """e.g. "within 2 turns after turn 3" (anchors: turn indexes where ``when`` matched)."""
        if not anchors:
            at = "the `when` turn"
        elif self.within_turns or self.within_seconds:
            shown = ", ".join(map(str, anchors[:3])) + ("…" if len(anchors) > 3 else "")
            at = f"turn{'s' if len(anchors) > 1 else ''} {shown}"
        else:
            at = f"turn {anchors[0]}"
        parts = []
        if self.within_turns:
            parts.append(f"{self.within_turns} turn{'s' if self.within_turns != 1 else ''}")
        if self.within_seconds:
            parts.append(f"{self.within_seconds:g} s")
        if parts:
            return f"within {' and '.join(parts)} after {at}"
        return f"{'before' if self.before else 'after'} {at}"


@dataclass(frozen=True)
class Condition:
    """A turn matches when it has any of ``any``, all of ``all``, matches ``regex``,
    and has none of ``none`` nor ``exclude_regex``. The condition holds if at least
    ``min_count`` turns in scope match.

    ASR tolerance (``any``/``all`` phrases only; ``none`` and regexes stay exact): with
    ``pinyin`` a phrase also matches a span that sounds the same (toneless pinyin, 投诉 ≈ 头诉);
    with ``fuzzy: N`` a phrase of ≥ 3 characters also matches a window within N edits.
    An exact hit is always preferred.

    ``similar_to`` (example sentences) is an alternative to ``any``, tried last: a turn whose
    sentence embedding has cosine similarity ≥ ``threshold`` to an example matches (matcher
    "semantic"). Without ``any`` it is the condition's only phrase test.

    ``learned`` (a model file trained by ``qa-inspect rules learn``) is another alternative,
    tried after ``similar_to``: a turn whose probability under the model reaches the model's
    threshold matches (matcher "learned", confidence = the probability)."""

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
    similar_to: tuple[str, ...] = ()
    threshold: float = SEMANTIC_THRESHOLD
    context: Context = Context()  # match only; empty = anywhere in scope
    repeated: int = 0  # ≥ 2: holds if one sentence occurs this many times in scope
    metric: Metric | None = None  # a call-level metric test instead of a turn test
    learned: Any = None  # rules.learned.LearnedModel: a turn whose probability reaches its threshold matches


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
    status: str = "stable"  # experimental | test | stable
    tags: tuple[str, ...] = ()
    owner: str = ""
    source: str = ""  # the file the rule was written in (an included pack's file for included rules)
    # composition: named conditions and string expressions over them; with ``match_expr`` set,
    # ``match`` is the first condition the expression names (its role sets the examples' default)
    conditions: tuple[tuple[str, Condition], ...] = ()
    match_expr: Expr | None = None
    when_expr: Expr | None = None


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

    @cached_property
    def metric_names(self) -> frozenset[str]:
        """The call-level metrics its ``metric:`` conditions read (match, when, named conditions)."""
        conds = [c for r in self.rules for c in (r.match, r.when, *(c for _, c in r.conditions))]
        return frozenset(c.metric.name for c in conds if c is not None and c.metric is not None)
