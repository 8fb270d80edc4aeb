"""Manual sampling (人工抽检): a seeded, reproducible draw of calls by a YAML plan.

Plan (``rules/sampling_plan.yaml``)::

    plan: {id: daily_qc, version: "1"}
    include:
      fatal: true                  # every fatal (一票否决) call
      alert_levels: [紧急, 高]      # calls whose alert is at these levels (urgent, high, watch)
      risk: false                  # every call with any risk hit (old plans; off by default)
    per_agent: {n: 2, stratify_by: grade}  # then up to n calls per agent, spread over score bands
    random_share: 0.1              # then this share of the calls still not drawn
    caps: {per_agent: 4, per_day: 30, total: 60}   # never more than this, whatever the reason
    filters:                       # applied first
      min_duration_s: 20           # calls of unknown duration are kept (unknown is not "short")
      exclude_agents: [A999]
      exclude_calls: [test_call_1]

Priority (the caps keep the first-come): fatal calls, then alert levels in the order listed,
then per agent by score band (worst band first, round robin, so an agent's sample covers their
bad and good calls; calls drawn earlier count toward the agent's ``n``), then the random
share. Within a priority, calls are taken worst score first, ties in a seeded random order.
A call a cap keeps out is counted in ``Draw.capped``. Same database + plan + seed → the same
sample (calls are visited in call-id order and one ``random.Random(seed)`` makes every choice).

A call's duration is the audio's (the transcript's ``duration``), else the end of its last
timed turn, else unknown.
"""
from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence


from qa_inspect.errors import RuleError
from qa_inspect.records import CallResult
from qa_inspect.strict_yaml import ParseContext, YamlMap, check_keys, line_of, raise_problems, read_strict_yaml

TOP_KEYS = {"plan", "include", "per_agent", "random_share", "filters", "caps", "reviewers"}
META_KEYS = {"id", "version", "title", "description"}
INCLUDE_KEYS = {"fatal", "risk", "alert_levels"}
CAP_KEYS = {"per_agent", "per_day", "total"}
_LEVEL_WORDS = {"紧急": "urgent", "urgent": "urgent", "高": "high", "high": "high", "关注": "watch", "watch": "watch"}
PER_AGENT_KEYS = {"n", "stratify_by"}
FILTER_KEYS = {"min_duration_s", "exclude_agents", "exclude_calls"}


@dataclass(frozen=True)
class SamplingPlan:
    id: str
    version: str = "1"
    title: str = ""
    include_fatal: bool = True
    include_risk: bool = False
    alert_levels: tuple[str, ...] = ()  # urgent | high | watch, in priority order
    per_agent: int = 0
    stratify_by: str = "grade"  # grade | none
    random_share: float = 0.0
    min_duration_s: float = 0.0
    exclude_agents: tuple[str, ...] = ()
    exclude_calls: tuple[str, ...] = ()
    cap_per_agent: int | None = None
    cap_per_day: int | None = None
    cap_total: int | None = None
    reviewers: tuple[str, ...] = ()  # the drawn calls go round-robin to them (workspace queue)
    source: str = ""
    hash: str = ""


def parse_plan(text: str, file: str = "<plan>") -> SamplingPlan:
    """Parse a plan strictly (unknown/duplicate keys, wrong types); RuleError with file:line."""
    doc = read_strict_yaml(text, file)
    if not isinstance(doc, YamlMap):
        raise RuleError("a sampling plan must be a mapping with 'plan:'", f"{file}:1")
    ctx = ParseContext(file=file, problems=[], variables={})
    check_keys(ctx, doc, TOP_KEYS, "sampling plan")

    def section(key: str, allowed: set[str]) -> YamlMap:
        m = doc.get(key)
        if m is None:
            e = YamlMap()
            e.line, e.key_lines = 0, {}
            return e
        if not isinstance(m, YamlMap):
            ctx.err(line_of(doc, key), f"'{key}' must be a mapping")
            e = YamlMap()
            e.line, e.key_lines = 0, {}
            return e
        check_keys(ctx, m, allowed, key)
        return m

    meta = section("plan", META_KEYS)
    if "id" not in meta:
        ctx.err(line_of(doc, "plan") or 1, "'plan:' with an 'id' is required")
    inc, per, flt = section("include", INCLUDE_KEYS), section("per_agent", PER_AGENT_KEYS), section("filters", FILTER_KEYS)
    caps = section("caps", CAP_KEYS)

    def boolean(m: YamlMap, key: str, default: bool) -> bool:
        v = m.get(key, default)
        if not isinstance(v, bool):
            ctx.err(line_of(m, key), f"'{key}' must be true or false, not {v!r}")
            return default
        return v

    def number(m: YamlMap, key: str, default: float, lo: float, hi: float | None = None, integer: bool = False) -> float:
        v = m.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)) \
                or v < lo or (hi is not None and v > hi):
            rng = f"{lo:g}…{hi:g}" if hi is not None else f"≥ {lo:g}"
            ctx.err(line_of(m, key), f"'{key}' must be {'an integer' if integer else 'a number'} {rng}, not {v!r}")
            return default
        return v

    def ids(m: YamlMap, key: str) -> tuple[str, ...]:
        v = m.get(key) or []
        if not isinstance(v, list) or not all(isinstance(x, (str, int)) for x in v):
            ctx.err(line_of(m, key), f"'{key}' must be a list of ids")
            return ()
        return tuple(str(x) for x in v)

    def cap(key: str) -> int | None:
        if key not in caps:
            return None
        return int(number(caps, key, 1, 1, integer=True))

    levels_raw = inc.get("alert_levels", [])
    levels: list[str] = []
    if not isinstance(levels_raw, list) or not all(isinstance(x, str) and x in _LEVEL_WORDS for x in levels_raw):
        ctx.err(_line(inc, "alert_levels"), f"'alert_levels' must be a list of 紧急, 高, 关注 "
                                            f"(or urgent, high, watch), not {levels_raw!r}")
    else:
        levels = list(dict.fromkeys(_LEVEL_WORDS[x] for x in levels_raw))

    strat = per.get("stratify_by", "grade")
    if strat not in ("grade", "none"):
        ctx.err(line_of(per, "stratify_by"), f"'stratify_by' must be grade or none, not {strat!r}")
    plan = SamplingPlan(
        id=str(meta.get("id", "")), version=str(meta.get("version", "1")), title=str(meta.get("title", "")),
        include_fatal=boolean(inc, "fatal", True), include_risk=boolean(inc, "risk", False),
        alert_levels=tuple(levels),
        cap_per_agent=cap("per_agent"), cap_per_day=cap("per_day"), cap_total=cap("total"),
        per_agent=int(number(per, "n", 0, 0, integer=True)), stratify_by=str(strat),
        random_share=float(number(doc, "random_share", 0.0, 0.0, 1.0)),
        min_duration_s=float(number(flt, "min_duration_s", 0.0, 0.0)),
        exclude_agents=ids(flt, "exclude_agents"), exclude_calls=ids(flt, "exclude_calls"),
        reviewers=ids(doc, "reviewers"), source=file, hash=hashlib.sha256(text.encode()).hexdigest()[:16])
    raise_problems(ctx.problems, file)
    return plan


def load_plan(path: str | Path) -> SamplingPlan:
    p = Path(path)
    if not p.is_file():
        raise RuleError("sampling plan not found", str(p))
    return parse_plan(p.read_text(encoding="utf-8"), str(p))


def call_duration(r: CallResult) -> float | None:
    """Seconds of the call: the audio's (the transcript's duration), else the end of its last
    timed turn, else None (unknown: transcripts without times)."""
    tr = r.transcript
    if tr is None:
        return None
    if tr.duration and tr.duration > 0:
        return float(tr.duration)
    ends = [t.end for t in tr.turns if t.end is not None and t.end > 0]
    return float(max(ends)) if ends else None


def call_day(r: CallResult) -> str:
    """The call's date (YYYY-MM-DD of ``started_at``), "" when unknown (its own day for caps)."""
    return (r.call.started_at or "")[:10]


@dataclass(frozen=True)
class Drawn:
    call_id: str
    reason: str  # fatal | alert:<level> | risk:rule,… | per_agent:<grade> | random


@dataclass
class Draw:
    calls: list[Drawn] = field(default_factory=list)
    considered: int = 0  # ok calls with a score
    excluded: dict[str, int] = field(default_factory=dict)  # why → count
    capped: dict[str, int] = field(default_factory=dict)  # which cap kept a wanted call out → count
    unknown_duration: int = 0  # eligible calls whose duration is unknown (kept)

    @property
    def ids(self) -> list[str]:
        return [d.call_id for d in self.calls]


def draw_sample(results: Sequence[CallResult], plan: SamplingPlan, seed: int,
                alert_levels: Mapping[str, str] | None = None) -> Draw:
    """The calls to review, each with why it was drawn (pure: no database).
    ``alert_levels``: call id -> its alert level (``reports.alerts``), for ``include.alert_levels``."""
    rng = random.Random(seed)
    out = Draw()
    eligible: list[CallResult] = []
    for r in sorted(results, key=lambda r: r.call.call_id):
        if r.status != "ok" or r.score is None:
            continue
        out.considered += 1
        why = ""
        if r.call.call_id in plan.exclude_calls:
            why = "excluded call"
        elif r.call.agent_id in plan.exclude_agents:
            why = "excluded agent"
        elif plan.min_duration_s:
            d = call_duration(r)
            if d is None:
                out.unknown_duration += 1  # unknown is not "short": keep it
            elif d < plan.min_duration_s:
                why = f"shorter than {plan.min_duration_s:g} s"
        if why:
            out.excluded[why] = out.excluded.get(why, 0) + 1
        else:
            eligible.append(r)

    chosen: dict[str, str] = {}
    per_agent: dict[str, int] = defaultdict(int)
    per_day: dict[str, int] = defaultdict(int)

    def take(r: CallResult, reason: str) -> bool:
        cid = r.call.call_id
        if cid in chosen:
            return False
        cap = ""
        if plan.cap_total is not None and len(chosen) >= plan.cap_total:
            cap = "total"
        elif plan.cap_per_agent is not None and per_agent[r.call.agent_id] >= plan.cap_per_agent:
            cap = "per_agent"
        elif plan.cap_per_day is not None and per_day[call_day(r)] >= plan.cap_per_day:
            cap = "per_day"
        if cap:
            out.capped[cap] = out.capped.get(cap, 0) + 1
            return False
        chosen[cid] = reason
        per_agent[r.call.agent_id] += 1
        per_day[call_day(r)] += 1
        return True

    def worst_first(calls: list[CallResult]) -> list[CallResult]:
        keyed = [(r.score.score, rng.random(), r) for r in calls]
        return [r for *_, r in sorted(keyed, key=lambda t: (t[0], t[1]))]

    if plan.include_fatal:
        for r in worst_first([r for r in eligible if r.score.fatal]):
            take(r, "fatal")
    levels = alert_levels or {}
    for lv in plan.alert_levels:
        for r in worst_first([r for r in eligible if levels.get(r.call.call_id) == lv]):
            take(r, f"alert:{lv}")
    if plan.include_risk:
        for r in worst_first([r for r in eligible if r.risk_hits]):
            take(r, "risk:" + ",".join(x.rule_id for x in r.risk_hits))

    if plan.per_agent:
        by_agent: dict[str, list[CallResult]] = defaultdict(list)
        for r in eligible:
            by_agent[r.call.agent_id].append(r)
        for agent in sorted(by_agent):
            calls = by_agent[agent]
            need = plan.per_agent - sum(1 for r in calls if r.call.call_id in chosen)
            bands: dict[str, list[CallResult]] = defaultdict(list)
            for r in calls:
                if r.call.call_id not in chosen:
                    bands[r.score.grade if plan.stratify_by == "grade" else "all"].append(r)
            # worst band first: by the band's lowest score, then by name
            order = sorted(bands, key=lambda g: (min(r.score.score for r in bands[g]), g))
            while need > 0 and any(bands[g] for g in order):
                for g in order:
                    if need <= 0 or not bands[g]:
                        continue
                    r = bands[g].pop(rng.randrange(len(bands[g])))
                    if take(r, f"per_agent:{g}" if g != "all" else "per_agent"):
                        need -= 1

    if plan.random_share:
        rest = [r for r in eligible if r.call.call_id not in chosen]
        k = round(plan.random_share * len(rest))
        for r in sorted(rng.sample(rest, k), key=lambda r: r.call.call_id):
            take(r, "random")

    out.calls = [Drawn(cid, chosen[cid]) for cid in sorted(chosen)]
    return out


def sample_id_for(plan: SamplingPlan, seed: int, call_ids: Sequence[str]) -> str:
    """Same plan, seed and calls → the same sample id (re-running ``sample`` is idempotent)."""
    h = hashlib.sha256(f"{plan.id}|{plan.hash}|{seed}|{'|'.join(sorted(call_ids))}".encode()).hexdigest()
    return f"{plan.id}-s{seed}-{h[:8]}"


def describe_draw(d: Draw) -> dict[str, Any]:
    reasons: dict[str, int] = defaultdict(int)
    for c in d.calls:
        reasons[c.reason.split(":")[0]] += 1
    return {"considered": d.considered, "drawn": len(d.calls), "by_reason": dict(reasons),
            "excluded": dict(d.excluded), "capped": dict(d.capped), "unknown_duration": d.unknown_duration}
