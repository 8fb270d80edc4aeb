"""Risk alerts: the calls a supervisor should call back today, one line per call.

A call raises an alert when

* a fatal item failed (一票否决: a scorecard ``fatal`` item or a rule the pack marks fatal) —
  always level **紧急** (urgent);
* a risk rule hit (escalation threats: 12315, 工信部, 媒体, 律师 …, complaints) — at the level
  the rule pack gives the rule (below);
* the customer ended the call very negative: call metric ``customer_sentiment_end`` (-1..1)
  below ``NEGATIVE_END`` — level 关注 (watch). Calls without the metric cannot raise it.

**Levels are pack configuration**, written as rule tags::

    tags: [alert:紧急]                          # this rule's hit is urgent
    tags: [alert:高+customer_negative_end, alert:关注]
        # 高 (high) when rule customer_negative_end also hit in the call, else 关注 (watch)
    tags: [alert:none]                          # never alerts

Levels: 紧急/urgent, 高/high, 关注/watch (or none). ``+NAME`` makes a tag conditional on
another rule of the pack hitting in the same call, or on ``negative_end`` (the metric alert
above). A risk rule without an ``alert:`` tag alerts at 紧急 when its severity is critical,
else 关注. ``alert_policy(pack)`` reads and checks the tags.

One line per call: its level is the strongest of its reasons; the strongest reason and its
strongest evidence (most confident, then earliest) come first, the other reasons are listed
after. ``write_alerts_csv`` writes ``alerts.csv`` (UTF-8 with BOM, cells neutralised against
formula injection).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from qa_inspect.errors import RuleError
from qa_inspect.records import CallResult, Evidence, RuleResult
from qa_inspect.reports.cells import write_csv
from qa_inspect.reports.i18n import TALK_METRICS, reason_text, tr
from qa_inspect.text import mmss

NEGATIVE_END = -0.5  # customer_sentiment_end below this (on -1..1) is "ending very negative"
ALERTS_CSV = "alerts.csv"
LEVELS = ("urgent", "high", "watch")
LEVEL_LABELS = {"zh": {"urgent": "紧急", "high": "高", "watch": "关注"},
                "en": {"urgent": "urgent", "high": "high", "watch": "watch"}}
_LEVEL_WORDS = {"紧急": "urgent", "urgent": "urgent", "高": "high", "high": "high",
                "关注": "watch", "watch": "watch", "none": None, "无": None}
REASON_LABELS = {"zh": {"fatal": "一票否决", "risk": "风险", "negative_end": "客户情绪差"},
                 "en": {"fatal": "fatal item", "risk": "risk", "negative_end": "customer ended negative"}}
_KIND_ORDER = {"fatal": 0, "risk": 1, "negative_end": 2}
COLUMNS = ("level", "call_id", "agent_id", "agent_name", "team", "started_at", "reason", "rule_id",
           "title", "time", "role", "evidence", "score", "detail", "other_reasons")
COLUMN_LABELS = {"zh": ("级别", "通话ID", "坐席工号", "坐席", "班组", "通话时间", "原因", "规则ID", "预警项",
                        "时间点", "说话人", "证据原句", "得分", "说明", "其他原因"),
                 "en": COLUMNS}
ROLE_LABELS = {"zh": {"agent": "坐席", "customer": "客户"}, "en": {"agent": "agent", "customer": "customer"}}


# --------------------------------------------------------------------------- pack configuration

@dataclass(frozen=True)
class AlertTag:
    """One ``alert:`` tag of a rule: its level (None: never alerts), and the rule id (or
    ``negative_end``) that must also hit in the call for it to apply ("" = always)."""

    level: str | None
    with_: str = ""


AlertPolicy = Mapping[str, tuple[AlertTag, ...]]  # rule id -> its alert tags


def alert_policy(pack) -> dict[str, tuple[AlertTag, ...]]:
    """The alert tags of ``pack``'s rules (rules without one are absent: they get the
    default by severity). A bad tag raises RuleError naming the pack file and the rule line."""
    ids = {r.id for r in pack.rules}
    out: dict[str, tuple[AlertTag, ...]] = {}
    for r in pack.rules:
        tags = []
        for t in r.tags:
            if not t.startswith("alert:"):
                continue
            level, _, with_ = t[len("alert:"):].partition("+")
            level, with_ = level.strip(), with_.strip()
            where = f"{r.source or pack.source}:{r.line}"
            if level not in _LEVEL_WORDS:
                raise RuleError(f"rule '{r.id}': unknown alert level in tag '{t}' (use 紧急, 高, 关注 "
                                "or urgent, high, watch, none)", where)
            if with_ and with_ not in ids and with_ != "negative_end":
                raise RuleError(f"rule '{r.id}': tag '{t}' names '{with_}', which is neither a rule of "
                                f"pack '{pack.id}' nor negative_end", where)
            tags.append(AlertTag(_LEVEL_WORDS[level], with_))
        if tags:
            out[r.id] = tuple(tags)
    return out


def _risk_level(x: RuleResult, tags: Sequence[AlertTag] | None, hit: set[str]) -> str | None:
    """The level of a risk hit: the strongest tag whose condition holds; the default by
    severity when the rule has no tag (or none of its conditional tags holds)."""
    if tags:
        apply = [t for t in tags if not t.with_ or t.with_ in hit]
        if apply:
            levels = [t.level for t in apply]
            live = [lv for lv in levels if lv is not None]
            return min(live, key=LEVELS.index) if live else None
    return "urgent" if x.severity == "critical" else "watch"


# --------------------------------------------------------------------------- alerts

@dataclass(frozen=True)
class Reason:
    kind: str  # fatal | risk | negative_end
    level: str  # urgent | high | watch
    rule_id: str
    title: str
    evidence: Evidence | None
    detail: str = ""  # the matched term, the sentiment value


@dataclass(frozen=True)
class Alert:
    """One line per call: the strongest reason and its evidence first, the rest after."""

    call_id: str
    agent_id: str
    agent_name: str
    team: str
    started_at: str
    level: str  # urgent | high | watch
    reasons: tuple[Reason, ...]
    score: float | None

    @property
    def top(self) -> Reason:
        return self.reasons[0]

    @property
    def reason(self) -> str:
        return self.top.kind

    @property
    def rule_id(self) -> str:
        return self.top.rule_id

    @property
    def title(self) -> str:
        return self.top.title

    @property
    def time(self) -> str:
        e = self.top.evidence
        return mmss(e.start) if e else "—"

    @property
    def start(self) -> float | None:
        return self.top.evidence.start if self.top.evidence else None

    @property
    def end(self) -> float | None:
        return self.top.evidence.end if self.top.evidence else None

    @property
    def turn(self) -> int | None:
        return self.top.evidence.turn if self.top.evidence else None

    @property
    def role(self) -> str:
        return self.top.evidence.role if self.top.evidence else ""

    @property
    def evidence(self) -> str:
        return self.top.evidence.text if self.top.evidence else ""

    @property
    def detail(self) -> str:
        return self.top.detail

    @property
    def priority(self) -> int:
        return LEVELS.index(self.level) + 1

    def level_label(self, lang: str = "zh") -> str:
        return LEVEL_LABELS.get(lang, LEVEL_LABELS["zh"])[self.level]

    def others(self, lang: str = "zh") -> list[str]:
        """The other reasons, e.g. ["关注·风险：客户投诉/不满"]."""
        lv, rs = LEVEL_LABELS.get(lang, LEVEL_LABELS["zh"]), REASON_LABELS.get(lang, REASON_LABELS["zh"])
        sep = "：" if lang == "zh" else ": "
        return [f"{lv[r.level]}·{rs[r.kind]}{sep}{r.title}" for r in self.reasons[1:]]


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def strongest(evidence: Sequence[Evidence]) -> Evidence | None:
    """The evidence to put first: the most confident match (an exact keyword before a pinyin
    or fuzzy guess), then the earliest (the supervisor listens from there)."""
    return min(evidence, key=lambda e: (-(e.confidence or 0.0), e.start is None, e.start or 0.0,
                                        e.turn), default=None)


def call_alerts(r: CallResult, policy: AlertPolicy | None = None, *,
                negative_end: float = NEGATIVE_END) -> Alert | None:
    """The call's alert line (None for error rows and calls with nothing to act on)."""
    if r.status != "ok":
        return None
    c, sc = r.call, r.score
    by_id = {x.rule_id: x for x in r.rules}
    reasons: list[Reason] = []
    # fatal: the scorecard's fatal lines (一票否决), and rules the pack marks fatal
    fatal_ids: list[str] = []
    if sc is not None and sc.fatal:
        fatal_ids += [b.rule_id for b in sc.breakdown if b.section == "fatal" and b.outcome in ("fail", "hit")]
    fatal_ids += [x.rule_id for x in r.rules if x.fatal and x.outcome in ("fail", "hit") and x.kind != "risk"]
    for rid in dict.fromkeys(fatal_ids):
        x = by_id.get(rid)
        reasons.append(Reason("fatal", "urgent", rid, (x.title if x else "") or rid,
                              strongest(x.evidence) if x else None,
                              reason_text(x.outcome, x.reason, title=x.title) if x else ""))
    end = _num(r.metrics.get("customer_sentiment_end"))
    neg = end is not None and end < negative_end
    hit = {x.rule_id for x in r.risk_hits} | ({"negative_end"} if neg else set())
    for x in r.risk_hits:
        level = _risk_level(x, (policy or {}).get(x.rule_id), hit)
        if level is None:
            continue
        ev = strongest(x.evidence)
        reasons.append(Reason("risk", level, x.rule_id, x.title or x.rule_id, ev, ev.matched if ev else x.reason))
    if neg:
        ev = None
        if r.transcript is not None:  # the customer's last words are the evidence
            last = [(i, t) for i, t in enumerate(r.transcript.turns) if t.role == "customer"]
            if last:
                i, t = last[-1]
                ev = Evidence(role="customer", turn=i, start=t.start, end=t.end, text=t.text,
                              matcher="metric", matched="customer_sentiment_end")
        reasons.append(Reason("negative_end", "watch", "customer_sentiment_end", "客户结束时情绪很差", ev,
                              f"customer_sentiment_end={end:.2f} < {negative_end:g}"))
    if not reasons:
        return None
    reasons.sort(key=lambda x: (LEVELS.index(x.level), _KIND_ORDER[x.kind]))
    return Alert(call_id=c.call_id, agent_id=c.agent_id, agent_name=c.agent_name, team=c.team,
                 started_at=c.started_at, level=reasons[0].level, reasons=tuple(reasons),
                 score=sc.score if sc is not None else None)


def collect_alerts(results: Sequence[CallResult], policies: Mapping[str, AlertPolicy] | None = None, *,
                   negative_end: float = NEGATIVE_END) -> list[Alert]:
    """One alert per call that has one: urgent first, then high, then watch; worst score
    first within a level. ``policies``: pack id -> ``alert_policy(pack)``."""
    out = []
    for r in results:
        a = call_alerts(r, (policies or {}).get(r.pack_id), negative_end=negative_end)
        if a is not None:
            out.append(a)
    return sorted(out, key=lambda a: (a.priority, a.score if a.score is not None else math.inf, a.call_id))


def alert_counts(alerts: Sequence[Alert]) -> dict[str, int]:
    """Calls per level, every level present (0 when none)."""
    return {lv: sum(1 for a in alerts if a.level == lv) for lv in LEVELS}


def alert_rows(alerts: Sequence[Alert], *, redact: bool = False, lang: str = "zh") -> list[list[Any]]:
    from qa_inspect.redact import redact_text

    roles = ROLE_LABELS.get(lang, ROLE_LABELS["zh"])
    kinds = REASON_LABELS.get(lang, REASON_LABELS["zh"])
    rows = []
    for a in alerts:
        ev = redact_text(a.evidence) if redact else a.evidence
        rows.append([a.level_label(lang), a.call_id, a.agent_id, a.agent_name, a.team, a.started_at,
                     kinds[a.reason], a.rule_id, a.title, a.time, roles.get(a.role, a.role), ev,
                     a.score, a.detail, "；".join(a.others(lang)) if lang == "zh" else "; ".join(a.others(lang))])
    return rows


def write_alerts_csv(alerts: Sequence[Alert], path: Path, *, redact: bool = False, lang: str = "zh") -> Path:
    """Write ``alerts.csv`` (header even when there are no alerts, so a cron job can rely on it).

    Unredacted by default: it goes to the supervisor who calls the customer back.
    """
    return write_csv(Path(path), COLUMN_LABELS.get(lang, COLUMN_LABELS["zh"]),
                     alert_rows(alerts, redact=redact, lang=lang))


# --------------------------------------------------------------------------- talk metrics
# Shown in the batch report (per call) and the agent scorecards (per agent/team means).
# Keys come from CallResult.metrics (filled by the enrichment and metrics stages); a key that
# is absent is shown as "—" — older results and text-only inputs simply lack some of them.
# TALK_METRICS (key, label, format) live with the other labels in reports.i18n


def fmt_metric(value: Any, fmt: str) -> str:
    """Display form of one metric value; "—" when absent or not a number."""
    v = _num(value)
    if v is None:
        return "—"
    if fmt == "pct":
        return f"{v * 100:.0f}%" if abs(v) <= 1.0 else f"{v:.0f}%"
    if fmt == "int":
        return f"{v:.0f}" if v == int(v) else f"{v:.1f}"
    if fmt == "sent":
        return f"{v:+.2f}"
    if fmt == "ratio":
        return f"{v:.2f}"
    return f"{v:.1f}"


def talk_metrics(metrics: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(key, label, display)`` for every talk metric, "—" for those absent."""
    return [(k, tr(label), fmt_metric(metrics.get(k), fmt)) for k, label, fmt in TALK_METRICS]
