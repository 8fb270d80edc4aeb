"""Nightly batch report: one self-contained HTML file plus a CSV, from a list of CallResults.

``write_batch_report(results, out_dir)`` writes ``out_dir/report.html`` and
``out_dir/report.csv`` and returns the HTML path.

All user text (transcripts, evidence, names, error messages) reaches the page through
Jinja2 with autoescape on; highlighting of matched terms is done by splitting the *raw*
text into segments in Python and letting the template escape each segment, so no
user-derived string is ever marked safe.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import jinja2

from qa_inspect.records import CallResult, Evidence, RuleResult
from qa_inspect.reports.cells import write_csv, write_text
from qa_inspect.reports.i18n import local_time, reason_text, template_env, tr, use_lang
from qa_inspect.reports.points import fmt_points, item_points, lost_items, points_lost
from qa_inspect.reports.alerts import (ALERTS_CSV, LEVEL_LABELS, REASON_LABELS, Alert, AlertPolicy, alert_counts,
                                       call_alerts, talk_metrics, write_alerts_csv)
from qa_inspect.rules.explain import evidence_terms
from qa_inspect.text import highlight as text_highlight, mmss

log = logging.getLogger(__name__)

DEFAULT_TZ = "Asia/Shanghai"
DEFAULT_TITLE = "质检日报 / Nightly QC report"
HTML_NAME = "report.html"
CSV_NAME = "report.csv"
CSV_COLUMNS = (
    "call_id", "agent_id", "agent_name", "team", "started_at", "status", "error",
    "duration_s", "score", "grade", "fatal", "failed_items", "risk_hits", "deductions_total",
    "item_points",
)

_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

ROLE_LABELS = {
    "agent": "坐席 / Agent",
    "customer": "客户 / Customer",
    "unknown": "未知 / Unknown",
}
OUTCOME_LABELS = {
    "pass": "通过 / Pass",
    "fail": "不合格 / Fail",
    "hit": "命中 / Hit",
    "n/a": "不适用 / N/A",
}
KIND_LABELS = {
    "required": "必须 / Required",
    "forbidden": "禁止 / Forbidden",
    "risk": "风险 / Risk",
}
# grade -> css class suffix (colors live in the template's CSS)
_GRADE_CLASSES = {
    "S": "s", "A": "a", "B": "b", "C": "c", "D": "d", "E": "e", "F": "f",
    "优": "a", "优秀": "a", "良": "b", "良好": "b", "中": "c", "合格": "c",
    "及格": "c", "差": "d", "不合格": "f", "不及格": "f",
}


# --------------------------------------------------------------------------- helpers

def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _num(v: Any, digits: int = 2) -> str:
    """Compact number: 85 -> "85", 2.5 -> "2.5", 1/3 -> "0.33"; None -> ""."""
    if not _is_num(v):
        return ""
    r = round(float(v), digits)
    if r == int(r):
        return str(int(r))
    return f"{r:.{digits}f}".rstrip("0").rstrip(".")


def fmt_mmss(seconds: float | None) -> str:
    """Seconds -> "mm:ss" (minutes not wrapped at 60); "—" when unknown."""
    return mmss(seconds)


def _span(start: float | None, end: float | None) -> str:
    if not _is_num(start) and not _is_num(end):
        return "—"
    return f"{fmt_mmss(start)}–{fmt_mmss(end)}"


def _role(role: str) -> str:
    return tr(ROLE_LABELS.get(role, role or ROLE_LABELS["unknown"]))


def _grade_class(grade: str | None) -> str:
    if not grade:
        return "none"
    g = grade.strip()
    return _GRADE_CLASSES.get(g) or _GRADE_CLASSES.get(g[:1].upper(), "other")


def _duration(r: CallResult) -> float | None:
    v = r.metrics.get("duration_s") if r.metrics else None
    return float(v) if _is_num(v) else None


def highlight(text: str, term: str, matcher: str = "keyword") -> list[tuple[str, bool]]:
    """Split raw ``text`` into ``(segment, is_match)`` pieces around ``term`` (an evidence's
    ``matched`` written the old way, "a+b" / "投诉≈头诉"): ``qa_inspect.text.highlight``."""
    return text_highlight(text, evidence_terms(Evidence(role="", turn=0, start=None, end=None, text=text,
                                                        matcher=matcher, matched=term)))


def _deductions_total(r: CallResult) -> float:
    """Points the call lost, from the stored breakdown (see ``reports.points``)."""
    return points_lost(r)


# --------------------------------------------------------------------------- view models

@dataclass
class _EvidenceView:
    role: str
    turn: int
    time: str
    span: str
    segments: list[tuple[str, bool]]
    matcher: str
    matched: str
    confidence: str


@dataclass
class _RuleView:
    rule_id: str
    title: str
    kind: str
    category: str
    severity: str
    outcome: str
    outcome_label: str
    deduction: str
    fatal: bool
    reason: str
    evidence: list[_EvidenceView] = field(default_factory=list)


@dataclass
class _CallView:
    anchor: str
    call_id: str
    path: str
    agent: str
    team: str
    started_at: str
    duration: str
    duration_s: str
    score: str
    score_sort: float
    grade: str
    grade_class: str
    fatal: bool
    status: str
    error: str
    failed: list[tuple[str, str]]  # (title, deduction)
    risks: list[str]
    rules: list[_RuleView]
    turns: list[dict[str, Any]]
    # talk metrics (key, label, display) from qa_inspect.reports.alerts.TALK_METRICS
    metrics: list[tuple[str, str, str]] = field(default_factory=list)


MATCHER_LABELS = {"keyword": "关键词 / keyword", "regex": "正则 / regex", "pinyin": "拼音近音 / pinyin",
                  "fuzzy": "近似 / fuzzy", "semantic": "语义 / semantic", "metric": "指标 / metric"}


def _evidence_view(e: Evidence) -> _EvidenceView:
    return _EvidenceView(
        role=_role(e.role), turn=e.turn, time=fmt_mmss(e.start), span=_span(e.start, e.end),
        segments=text_highlight(e.text, evidence_terms(e)), matcher=tr(MATCHER_LABELS.get(e.matcher, e.matcher)),
        matched=e.matched, confidence=_num(e.confidence),
    )


def _rule_view(x: RuleResult, points: Mapping[str, float] | None = None, description: str = "") -> _RuleView:
    """``points``: the call's points per rule from its stored breakdown (the only place a
    deduction shown on the page comes from)."""
    lost = -(points or {}).get(x.rule_id, 0.0)
    return _RuleView(
        rule_id=x.rule_id, title=x.title or x.rule_id, kind=tr(KIND_LABELS.get(x.kind, x.kind)),
        category=x.category, severity=x.severity, outcome=x.outcome,
        outcome_label=tr(OUTCOME_LABELS.get(x.outcome, x.outcome)),
        deduction=fmt_points(lost) if lost > 0 else "",
        fatal=x.fatal, reason=reason_text(x.outcome, x.reason, title=x.title, description=description),
        evidence=[_evidence_view(e) for e in x.evidence],
    )


def _call_view(i: int, r: CallResult, descriptions: Mapping[tuple[str, str], str] | None = None) -> _CallView:
    c, sc = r.call, r.score
    agent = " ".join(p for p in (c.agent_name, f"({c.agent_id})" if c.agent_id else "") if p)
    pts = item_points(r)
    desc = descriptions or {}
    rules = [_rule_view(x, pts, desc.get((r.pack_id, x.rule_id), "")) for x in r.rules]
    ev_turns = {e.turn for x in r.rules if x.outcome in ("fail", "hit") or x.matched
                for e in x.evidence}
    turns = []
    if r.transcript is not None:
        for n, t in enumerate(r.transcript.turns):
            turns.append({"n": n, "role": _role(t.role), "role_key": t.role,
                          "span": _span(t.start, t.end), "text": t.text,
                          "evidence": n in ev_turns})
    dur = _duration(r)
    return _CallView(
        anchor=f"call-{i}", call_id=c.call_id, path=c.path, agent=agent, team=c.team,
        started_at=local_time(c.started_at), duration=fmt_mmss(dur) if dur is not None else "—",
        duration_s=_num(dur, 1),
        score=_num(sc.score, 1) if sc is not None else "",
        score_sort=float(sc.score) if sc is not None and _is_num(sc.score) else math.inf,
        grade=(sc.grade or "") if sc is not None else "", grade_class=_grade_class(sc.grade if sc else None),
        fatal=bool(sc.fatal) if sc is not None else False, status=r.status, error=r.error,
        failed=[(title, fmt_points(p)) for _, title, p in lost_items(r)],
        risks=[x.title or x.rule_id for x in r.risk_hits],
        rules=rules, turns=turns, metrics=talk_metrics(r.metrics),
    )


@dataclass
class _AlertView:
    call_id: str
    anchor: str
    agent: str
    team: str
    score: str
    grade: str
    grade_class: str
    fatal: bool
    level: str  # urgent | high | watch
    level_label: str
    reason_label: str
    title: str
    detail: str
    evidence: _EvidenceView | None
    others: list[str]


def _alert_view(a: Alert, c: _CallView, lang: str) -> _AlertView:
    e = a.top.evidence
    return _AlertView(
        call_id=a.call_id, anchor=c.anchor, agent=c.agent, team=c.team, score=c.score, grade=c.grade,
        grade_class=c.grade_class, fatal=c.fatal, level=a.level, level_label=a.level_label(lang),
        reason_label=REASON_LABELS.get(lang, REASON_LABELS["zh"])[a.reason], title=a.title,
        detail=a.detail if a.reason != "risk" else "",
        evidence=_evidence_view(e) if e is not None else None, others=a.others(lang))


# --------------------------------------------------------------------------- writers

def _env(lang: str = "zh") -> jinja2.Environment:
    return template_env(_TEMPLATE_DIR, lang)


def _summary_rows(counts: Mapping[str, Any], extra: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    n_scores = counts["scored"]
    rows = [
        (tr("通话总数 / Calls"), str(counts["calls"])),
        (tr("成功 / OK"), str(counts["ok"])),
        (tr("错误 / Errors"), str(counts["errors"])),
        (tr("平均分 / Mean score"), _num(counts["score_sum"] / n_scores, 1) if n_scores else "—"),
        (tr("一票否决 / Fatal"), str(counts["fatal"])),
        (tr("风险通话 / Risk calls"), str(counts["risky"])),
        (tr("音频时长(小时) / Audio hours"), _num(counts["audio_s"] / 3600.0, 2) if counts["timed"] else "0"),
    ]
    for k, v in (extra or {}).items():
        rows.append((tr(str(k)), _num(v) if _is_num(v) else str(v)))
    return rows


# --------------------------------------------------------------------------- the report, in one pass

REPORT_MAX_CALLS = 500  # calls shown on the page with their details; every call is in report.csv
MAX_CALLS_ENV = "QA_INSPECT_REPORT_MAX_CALLS"


def report_max_calls() -> int:
    """The page's call limit: ``$QA_INSPECT_REPORT_MAX_CALLS`` (a positive whole number), else 500."""
    v = os.environ.get(MAX_CALLS_ENV, "").strip()
    return int(v) if v.isdigit() and int(v) > 0 else REPORT_MAX_CALLS


class BatchReport:
    """The batch report built in one pass over the results, in memory bounded by the page's
    call limit, not by the batch: every call is counted and goes to ``report.csv``, every
    alert to ``alerts.csv``; the page shows the ``max_calls`` lowest-scored calls, the calls of
    the first ``max_calls`` alerts (urgent first, worst score first) and the first ``max_calls``
    error rows, with their details, and says how many more the CSV files hold. A batch within
    the limit gets the whole page, as before. ``add`` each result, then ``write`` or ``html``."""

    def __init__(self, *, alert_policies: Mapping[str, AlertPolicy] | None = None,
                 rule_descriptions: Mapping[tuple[str, str], str] | None = None,
                 max_calls: int | None = None) -> None:
        self.policies = alert_policies
        self.descriptions = rule_descriptions
        self.max_calls = max_calls or report_max_calls()
        self.counts: dict[str, Any] = dict(calls=0, ok=0, errors=0, scored=0, score_sum=0.0, fatal=0,
                                           risky=0, audio_s=0.0, timed=0)
        self.rows: list[list[str]] = []  # report.csv, in the order the results came
        self.alerts: list[Alert] = []
        self._worst: list[tuple[float, str, int, CallResult]] = []  # lowest scores kept
        self._alerted: list[tuple[tuple, int, CallResult]] = []  # calls of the first alerts kept
        self._errors: list[tuple[int, CallResult]] = []

    def add(self, r: CallResult) -> Alert | None:
        """Count ``r`` in; return its alert (None: none, or an error row), for callers that
        need it too (the complaint loop) without working it out again."""
        i, c, sc = self.counts["calls"], self.counts, r.score
        c["calls"] += 1
        c["ok"] += r.status == "ok"
        c["errors"] += r.status == "error"
        if r.status != "error" and sc is not None and _is_num(sc.score):
            c["scored"] += 1
            c["score_sum"] += sc.score
        c["fatal"] += bool(sc is not None and sc.fatal)
        c["risky"] += bool(r.risk_hits)
        d = _duration(r)
        if d is not None:
            c["timed"] += 1
            c["audio_s"] += d
        row = _csv_row(r)
        self.rows.append([row[k] for k in CSV_COLUMNS])
        if r.status == "error":
            if len(self._errors) < self.max_calls:
                self._errors.append((i, r))
            return None
        score = float(sc.score) if sc is not None and _is_num(sc.score) else math.inf
        self._worst.append((score, r.call.call_id, i, r))
        if len(self._worst) >= 2 * self.max_calls:  # amortised: sort and cut now and then
            self._worst = sorted(self._worst, key=lambda x: x[:3])[:self.max_calls]
        a = call_alerts(r, (self.policies or {}).get(r.pack_id))
        if a is not None:
            self.alerts.append(a)
            self._alerted.append((_alert_key(a), i, r))
            if len(self._alerted) >= 2 * self.max_calls:
                self._alerted = sorted(self._alerted, key=lambda x: x[:2])[:self.max_calls]
        return a

    def extend(self, results: Iterable[CallResult]) -> "BatchReport":
        for r in results:
            self.add(r)
        return self

    def sorted_alerts(self) -> list[Alert]:
        """Every alert of the batch in page order (``alerts.collect_alerts``' order)."""
        return sorted(self.alerts, key=_alert_key)

    def html(self, *, title: str = DEFAULT_TITLE, summary: Mapping[str, Any] | None = None,
             generated_at: datetime | None = None, lang: str = "zh", tz: str = DEFAULT_TZ,
             tickets: Sequence[Mapping[str, Any]] = ()) -> str:
        with use_lang(lang, tz):  # labels and times built in the views in the page's language and zone
            return self._render(title, summary, generated_at, lang, tz, tickets)

    def _render(self, title, summary, generated_at, lang, tz, tickets) -> str:
        kept: dict[int, CallResult] = {i: r for _s, _c, i, r in sorted(self._worst, key=lambda x: x[:3])[:self.max_calls]}
        kept.update((i, r) for _k, i, r in sorted(self._alerted, key=lambda x: x[:2])[:self.max_calls])
        views = {i: _call_view(i, r, self.descriptions) for i, r in kept.items()}
        calls = sorted(views.values(), key=lambda v: (v.score_sort, v.call_id))
        errors = [_call_view(i, r, self.descriptions) for i, r in self._errors]
        # one line per call: urgent first, then high; the watch level is folded (issue 14)
        by_id = {v.call_id: v for v in calls}
        alert_list = self.sorted_alerts()
        alerts = [_alert_view(a, by_id[a.call_id], lang) for a in alert_list[:self.max_calls]
                  if a.call_id in by_id]
        n_ok = self.counts["calls"] - self.counts["errors"]
        zone = ZoneInfo(tz)  # the team's time zone: the header is not UTC while the calls are +08:00
        now = (generated_at or datetime.now(zone)).astimezone(zone).replace(microsecond=0)
        return _env(lang).get_template("batch.html.j2").render(
            title=tr(title), generated_at=f"{now:%Y-%m-%d %H:%M:%S} ({tz}, UTC{now:%z})",
            summary=_summary_rows(self.counts, summary),
            alerts=[a for a in alerts if a.level != "watch"], watch=[a for a in alerts if a.level == "watch"],
            alert_counts=alert_counts(alert_list), level_labels=LEVEL_LABELS.get(lang, LEVEL_LABELS["zh"]),
            calls=calls, errors=errors, tickets=list(tickets)[:self.max_calls], tickets_total=len(tickets),
            alerts_total=len(alert_list), calls_total=n_ok, errors_total=self.counts["errors"],
        )

    def write(self, out_dir: Path, *, title: str = DEFAULT_TITLE, summary: Mapping[str, Any] | None = None,
              lang: str = "zh", tz: str = DEFAULT_TZ, tickets: Sequence[Mapping[str, Any]] = ()) -> Path:
        """Write ``out_dir/report.html``, ``report.csv`` (every call) and ``alerts.csv`` (every
        alert); return the HTML path."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        html_path, csv_path = out_dir / HTML_NAME, out_dir / CSV_NAME
        write_text(html_path, self.html(title=title, summary=summary, lang=lang, tz=tz, tickets=tickets))
        write_csv(csv_path, list(CSV_COLUMNS), self.rows)
        # calls to act on today, one row per reason, with the evidence sentence and its time
        with use_lang(lang):
            write_alerts_csv(self.sorted_alerts(), out_dir / ALERTS_CSV, lang=lang)
        log.info("batch report: %d calls -> %s, %s", self.counts["calls"], html_path, csv_path)
        return html_path


def _alert_key(a: Alert) -> tuple:
    return (a.priority, a.score if a.score is not None else math.inf, a.call_id)


def render_batch_html(results: Iterable[CallResult], *, title: str = DEFAULT_TITLE,
                      summary: Mapping[str, Any] | None = None,
                      generated_at: datetime | None = None,
                      alert_policies: Mapping[str, AlertPolicy] | None = None,
                      lang: str = "zh", tz: str = DEFAULT_TZ,
                      rule_descriptions: Mapping[tuple[str, str], str] | None = None,
                      tickets: Sequence[Mapping[str, Any]] = (), max_calls: int | None = None) -> str:
    """The report page as a string (``write_batch_report`` writes it). ``alert_policies``:
    pack id -> ``alerts.alert_policy(pack)`` (the pack's alert levels); ``lang``: zh | en;
    ``tz``: the team's time zone (the page's times are shown there). ``tickets``: open
    complaint tickets as display rows (id, grade, status, customer, opened_at, owner, late),
    overdue first — listed above the alerts (issue 15). ``max_calls``: see ``BatchReport``."""
    b = BatchReport(alert_policies=alert_policies, rule_descriptions=rule_descriptions, max_calls=max_calls)
    return b.extend(results).html(title=title, summary=summary, generated_at=generated_at, lang=lang, tz=tz,
                                  tickets=tickets)


def _csv_row(r: CallResult) -> dict[str, str]:
    c, sc = r.call, r.score
    return {
        # every cell is neutralised against formulas by reports.cells.write_csv
        "call_id": c.call_id, "agent_id": c.agent_id,
        "agent_name": (c.agent_name), "team": (c.team),
        "started_at": c.started_at, "status": r.status,
        "error": (r.error), "duration_s": _num(_duration(r), 3),
        "score": _num(sc.score) if sc is not None else "",
        "grade": (sc.grade or "") if sc is not None else "",
        "fatal": "true" if sc is not None and sc.fatal else "false",
        "failed_items": ";".join(x.rule_id for x in r.failed),
        "risk_hits": ";".join(x.rule_id for x in r.risk_hits),
        "deductions_total": _num(_deductions_total(r)) if r.rules or sc is not None else "",
        # per item, the points the score counted: "closing:-20;self_introduction:-8"
        "item_points": ";".join(f"{rid}:{fmt_points(p)}" for rid, p in item_points(r).items() if p),
    }


def write_batch_report(results: Iterable[CallResult], out_dir: Path, *,
                       title: str = DEFAULT_TITLE,
                       summary: Mapping[str, Any] | None = None,
                       alert_policies: Mapping[str, AlertPolicy] | None = None,
                       lang: str = "zh", tz: str = DEFAULT_TZ,
                       rule_descriptions: Mapping[tuple[str, str], str] | None = None,
                       tickets: Sequence[Mapping[str, Any]] = (), max_calls: int | None = None) -> Path:
    """Write ``out_dir/report.html``, ``out_dir/report.csv`` and ``out_dir/alerts.csv``
    (see ``qa_inspect.reports.alerts``); return the HTML path.

    ``summary`` adds key/value counters to the page header (e.g. pack id, model).
    The CSV is UTF-8 with a BOM so Excel opens Chinese text correctly.
    """
    b = BatchReport(alert_policies=alert_policies, rule_descriptions=rule_descriptions, max_calls=max_calls)
    return b.extend(results).write(out_dir, title=title, summary=summary, lang=lang, tz=tz, tickets=tickets)
