"""Risk alerts: the calls a supervisor should act on today, one row per reason.

A call raises an alert when

* a risk rule hit (escalation threats: 12315, 工信部, 媒体, 律师 …) — reason ``risk``;
* a fatal item failed (the call scores zero) — reason ``fatal``;
* the customer ended the call very negative: call metric ``customer_sentiment_end`` (scale
  -1..1, written by the enrichment stage) below ``NEGATIVE_END`` — reason ``negative_end``.
  Calls without the metric simply cannot raise this alert.

Each alert carries the evidence sentence and its time (mm:ss) so the supervisor can call the
customer back with the words in front of them. ``write_alerts_csv`` writes ``alerts.csv``
(UTF-8 with BOM for Excel, free text neutralised against formula injection).
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from qa_inspect.records import CallResult, Evidence
from qa_inspect.text import mmss

NEGATIVE_END = -0.5  # customer_sentiment_end below this (on -1..1) is "ending very negative"
ALERTS_CSV = "alerts.csv"
CSV_COLUMNS = ("priority", "call_id", "agent_id", "agent_name", "team", "started_at", "reason",
               "rule_id", "title", "time", "role", "evidence", "score", "detail")
REASON_LABELS = {"risk": "风险 / Risk", "fatal": "致命项 / Fatal item",
                 "negative_end": "客户情绪差 / Customer ended negative"}
_PRIORITY = {"risk": 1, "fatal": 2, "negative_end": 3}


@dataclass(frozen=True)
class Alert:
    call_id: str
    agent_id: str
    agent_name: str
    team: str
    started_at: str
    reason: str  # risk | fatal | negative_end
    rule_id: str
    title: str
    time: str  # "mm:ss" of the evidence, "—" when unknown
    start: float | None
    role: str
    evidence: str  # the sentence said
    score: float | None
    detail: str = ""  # e.g. the matched term or the sentiment value
    turn: int | None = None  # index of the evidence turn in the transcript
    end: float | None = None

    @property
    def priority(self) -> int:
        return _PRIORITY.get(self.reason, 9)

    @property
    def reason_label(self) -> str:
        return REASON_LABELS.get(self.reason, self.reason)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def call_alerts(r: CallResult, *, negative_end: float = NEGATIVE_END) -> list[Alert]:
    """Every reason to act on call ``r`` (empty for error rows and clean calls)."""
    if r.status != "ok":
        return []
    c, sc = r.call, r.score
    score = sc.score if sc is not None else None

    def make(reason: str, rule_id: str, title: str, e: Evidence | None, detail: str = "") -> Alert:
        return Alert(call_id=c.call_id, agent_id=c.agent_id, agent_name=c.agent_name, team=c.team,
                     started_at=c.started_at, reason=reason, rule_id=rule_id, title=title,
                     time=mmss(e.start) if e else "—", start=e.start if e else None,
                     role=e.role if e else "", evidence=e.text if e else "", score=score,
                     detail=detail, turn=e.turn if e else None, end=e.end if e else None)

    out: list[Alert] = []
    for x in r.risk_hits:
        # one row per rule: the first evidence is the earliest (the supervisor listens from there)
        ev = min(x.evidence, key=lambda e: (e.start is None, e.start or 0.0), default=None)
        out.append(make("risk", x.rule_id, x.title or x.rule_id, ev, ev.matched if ev else x.reason))
    for x in r.rules:
        if x.fatal and x.outcome in ("fail", "hit") and x.kind != "risk":
            ev = x.evidence[0] if x.evidence else None
            out.append(make("fatal", x.rule_id, x.title or x.rule_id, ev, x.reason))
    end = _num(r.metrics.get("customer_sentiment_end"))
    if end is not None and end < negative_end:
        ev = None
        if r.transcript is not None:  # the customer's last words are the evidence
            last = [(i, t) for i, t in enumerate(r.transcript.turns) if t.role == "customer"]
            if last:
                i, t = last[-1]
                ev = Evidence(role="customer", turn=i, start=t.start, end=t.end, text=t.text,
                              matcher="metric", matched="customer_sentiment_end")
        out.append(make("negative_end", "customer_sentiment_end", "客户结束时情绪很差 / Customer ended very negative",
                        ev, f"customer_sentiment_end={end:.2f} < {negative_end:g}"))
    return out


def collect_alerts(results: Sequence[CallResult], *, negative_end: float = NEGATIVE_END) -> list[Alert]:
    """All alerts of a batch: risk first, then fatal, then negative endings; worst score first."""
    alerts = [a for r in results for a in call_alerts(r, negative_end=negative_end)]
    return sorted(alerts, key=lambda a: (a.priority, a.score if a.score is not None else math.inf,
                                         a.call_id, a.start if a.start is not None else math.inf))


def _safe(v: str) -> str:
    """Neutralise spreadsheet formulas in free-text cells (CSV injection)."""
    return "'" + v if v[:1] in ("=", "+", "-", "@", "\t", "\r") else v


def alerts_csv_text(alerts: Sequence[Alert], *, redact: bool = False) -> str:
    from qa_inspect.redact import redact_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for a in alerts:
        ev = redact_text(a.evidence) if redact else a.evidence
        w.writerow([a.priority, a.call_id, a.agent_id, _safe(a.agent_name), _safe(a.team),
                    a.started_at, a.reason, a.rule_id, _safe(a.title), a.time, a.role, _safe(ev),
                    "" if a.score is None else f"{a.score:g}", _safe(a.detail)])
    return buf.getvalue()


def write_alerts_csv(alerts: Sequence[Alert], path: Path, *, redact: bool = False) -> Path:
    """Write ``alerts.csv`` (header even when there are no alerts, so a cron job can rely on it).

    Unredacted by default: it goes to the supervisor who calls the customer back.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(alerts_csv_text(alerts, redact=redact), encoding="utf-8-sig", newline="")
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------- talk metrics
# Shown in the batch report (per call) and the agent scorecards (per agent/team means).
# Keys come from CallResult.metrics (filled by the enrichment and metrics stages); a key that
# is absent is shown as "—" — older results and text-only inputs simply lack some of them.
TALK_METRICS: tuple[tuple[str, str, str], ...] = (
    # (key, label, format)  format: "num" | "pct" (a 0..1 share) | "int" | "sent" (-1..1) | "s" | "ratio"
    ("speech_rate_agent", "坐席语速 / Agent speech rate", "num"),
    ("max_silence_s", "最长静音 / Longest silence (s)", "s"),
    ("silence_share", "静音占比 / Silence share", "pct"),
    ("agent_interruptions", "坐席抢话 / Agent interruptions", "int"),
    ("customer_interruptions", "客户插话 / Customer interruptions", "int"),
    ("talk_ratio", "坐席/客户说话比 / Agent:customer talk time", "ratio"),
    ("customer_sentiment_end", "客户结束情绪 / Customer sentiment (end)", "sent"),
    ("customer_sentiment_min", "客户最低情绪 / Customer sentiment (min)", "sent"),
    ("agent_sentiment_mean", "坐席平均情绪 / Agent sentiment (mean)", "sent"),
)


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
    return [(k, label, fmt_metric(metrics.get(k), fmt)) for k, label, fmt in TALK_METRICS]
