"""Nightly batch report: one self-contained HTML file plus a CSV, from a list of CallResults.

``write_batch_report(results, out_dir)`` writes ``out_dir/report.html`` and
``out_dir/report.csv`` and returns the HTML path.

All user text (transcripts, evidence, names, error messages) reaches the page through
Jinja2 with autoescape on; highlighting of matched terms is done by splitting the *raw*
text into segments in Python and letting the template escape each segment, so no
user-derived string is ever marked safe.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

import jinja2

from qa_inspect.records import CallResult, Evidence, RuleResult
from qa_inspect.rules.explain import evidence_terms
from qa_inspect.text import highlight as text_highlight, mmss
from qa_inspect.reports.alerts import ALERTS_CSV, call_alerts, collect_alerts, talk_metrics, write_alerts_csv

log = logging.getLogger(__name__)

DEFAULT_TITLE = "质检日报 / Nightly QC report"
HTML_NAME = "report.html"
CSV_NAME = "report.csv"
CSV_COLUMNS = (
    "call_id", "agent_id", "agent_name", "team", "started_at", "status", "error",
    "duration_s", "score", "grade", "fatal", "failed_items", "risk_hits", "deductions_total",
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
    return ROLE_LABELS.get(role, role or ROLE_LABELS["unknown"])


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
    if r.score is not None and r.score.deductions:
        return float(sum(p for _, p in r.score.deductions if _is_num(p)))
    return float(sum(x.deduction for x in r.rules
                     if x.outcome in ("fail", "hit") and _is_num(x.deduction)))


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
    alerts: list[tuple[_RuleView, str]]  # (rule, "risk" | "fatal" | "negative_end")
    # talk metrics (key, label, display) from qa_inspect.reports.alerts.TALK_METRICS
    metrics: list[tuple[str, str, str]] = field(default_factory=list)


def _evidence_view(e: Evidence) -> _EvidenceView:
    return _EvidenceView(
        role=_role(e.role), turn=e.turn, time=fmt_mmss(e.start), span=_span(e.start, e.end),
        segments=text_highlight(e.text, evidence_terms(e)), matcher=e.matcher,
        matched=e.matched, confidence=_num(e.confidence),
    )


def _rule_view(x: RuleResult) -> _RuleView:
    return _RuleView(
        rule_id=x.rule_id, title=x.title or x.rule_id, kind=KIND_LABELS.get(x.kind, x.kind),
        category=x.category, severity=x.severity, outcome=x.outcome,
        outcome_label=OUTCOME_LABELS.get(x.outcome, x.outcome),
        deduction=_num(x.deduction) if _is_num(x.deduction) and x.deduction else "",
        fatal=x.fatal, reason=x.reason,
        evidence=[_evidence_view(e) for e in x.evidence],
    )


def _call_view(i: int, r: CallResult) -> _CallView:
    c, sc = r.call, r.score
    agent = " ".join(p for p in (c.agent_name, f"({c.agent_id})" if c.agent_id else "") if p)
    rules = [_rule_view(x) for x in r.rules]
    by_id = {id(x): v for x, v in zip(r.rules, rules)}
    alerts: list[tuple[_RuleView, str]] = [(by_id[id(x)], "risk") for x in r.risk_hits]
    if sc is not None and sc.fatal:
        alerts += [(by_id[id(x)], "fatal") for x in r.rules
                   if x.fatal and x.outcome in ("fail", "hit") and x.kind != "risk"]
    # customers ending very negative (metric customer_sentiment_end) are alerts too (issue 6)
    for a in call_alerts(r):
        if a.reason == "negative_end":
            ev = ([] if not a.evidence else
                  [_evidence_view(Evidence(role=a.role, turn=a.turn or 0, start=a.start, end=a.end,
                                           text=a.evidence, matcher="metric"))])
            alerts.append((_RuleView(rule_id=a.rule_id, title=a.title, kind="", category="",
                                     severity="", outcome="hit", outcome_label="", deduction="",
                                     fatal=False, reason=a.detail, evidence=ev), a.reason))
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
        started_at=c.started_at, duration=fmt_mmss(dur) if dur is not None else "—",
        duration_s=_num(dur, 1),
        score=_num(sc.score, 1) if sc is not None else "",
        score_sort=float(sc.score) if sc is not None and _is_num(sc.score) else math.inf,
        grade=(sc.grade or "") if sc is not None else "", grade_class=_grade_class(sc.grade if sc else None),
        fatal=bool(sc.fatal) if sc is not None else False, status=r.status, error=r.error,
        failed=[(x.title or x.rule_id, _num(x.deduction) if _is_num(x.deduction) and x.deduction else "")
                for x in r.failed],
        risks=[x.title or x.rule_id for x in r.risk_hits],
        rules=rules, turns=turns, alerts=alerts, metrics=talk_metrics(r.metrics),
    )


def _summary(results: Sequence[CallResult], extra: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    scores = [r.score.score for r in results
              if r.status != "error" and r.score is not None and _is_num(r.score.score)]
    durs = [d for d in (_duration(r) for r in results) if d is not None]
    rows = [
        ("通话总数 / Calls", str(len(results))),
        ("成功 / OK", str(sum(1 for r in results if r.status == "ok"))),
        ("错误 / Errors", str(sum(1 for r in results if r.status == "error"))),
        ("平均分 / Mean score", _num(sum(scores) / len(scores), 1) if scores else "—"),
        ("致命项 / Fatal", str(sum(1 for r in results if r.score is not None and r.score.fatal))),
        ("风险通话 / Risk calls", str(sum(1 for r in results if r.risk_hits))),
        ("音频时长(小时) / Audio hours", _num(sum(durs) / 3600.0, 2) if durs else "0"),
    ]
    for k, v in (extra or {}).items():
        rows.append((str(k), _num(v) if _is_num(v) else str(v)))
    return rows


# --------------------------------------------------------------------------- writers

def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATE_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_batch_html(results: Sequence[CallResult], *, title: str = DEFAULT_TITLE,
                      summary: Mapping[str, Any] | None = None,
                      generated_at: datetime | None = None) -> str:
    """The report page as a string (``write_batch_report`` writes it)."""
    views = [_call_view(i, r) for i, r in enumerate(results)]
    errors = [v for v in views if v.status == "error"]
    calls = sorted((v for v in views if v.status != "error"),
                   key=lambda v: (v.score_sort, v.call_id))
    # risk hits first, then fatal-only; worst score first within each group
    alerts = sorted((v for v in calls if v.alerts),
                    key=lambda v: (not any(k == "risk" for _, k in v.alerts), v.score_sort, v.call_id))
    now = (generated_at or datetime.now().astimezone()).replace(microsecond=0)
    return _env().get_template("batch.html.j2").render(
        title=title, generated_at=now.isoformat(sep=" "), summary=_summary(results, summary),
        alerts=alerts, calls=calls, errors=errors,
    )


def _csv_text(v: str) -> str:
    """Neutralise spreadsheet formulas in free-text cells (CSV injection)."""
    return "'" + v if v[:1] in ("=", "+", "-", "@", "\t", "\r") else v


def _csv_rows(results: Sequence[CallResult]) -> list[dict[str, str]]:
    rows = []
    for r in results:
        c, sc = r.call, r.score
        rows.append({
            # identifiers stay verbatim (they are join keys); free text is neutralised
            "call_id": c.call_id, "agent_id": c.agent_id,
            "agent_name": _csv_text(c.agent_name), "team": _csv_text(c.team),
            "started_at": c.started_at, "status": r.status,
            "error": _csv_text(r.error), "duration_s": _num(_duration(r), 3),
            "score": _num(sc.score) if sc is not None else "",
            "grade": _csv_text(sc.grade or "") if sc is not None else "",
            "fatal": "true" if sc is not None and sc.fatal else "false",
            "failed_items": ";".join(x.rule_id for x in r.failed),
            "risk_hits": ";".join(x.rule_id for x in r.risk_hits),
            "deductions_total": _num(_deductions_total(r)) if r.rules or sc is not None else "",
        })
    return rows


def _atomic_write(path: Path, data: str, *, encoding: str, newline: str | None = None) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline=newline) as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_batch_report(results: Sequence[CallResult], out_dir: Path, *,
                       title: str = DEFAULT_TITLE,
                       summary: Mapping[str, Any] | None = None) -> Path:
    """Write ``out_dir/report.html``, ``out_dir/report.csv`` and ``out_dir/alerts.csv``
    (see ``qa_inspect.reports.alerts``); return the HTML path.

    ``summary`` adds key/value counters to the page header (e.g. pack id, model).
    The CSV is UTF-8 with a BOM so Excel opens Chinese text correctly.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, csv_path = out_dir / HTML_NAME, out_dir / CSV_NAME

    html = render_batch_html(results, title=title, summary=summary)
    _atomic_write(html_path, html, encoding="utf-8")

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\r\n")
    w.writeheader()
    w.writerows(_csv_rows(results))
    _atomic_write(csv_path, buf.getvalue(), encoding="utf-8-sig", newline="")
    # calls to act on today, one row per reason, with the evidence sentence and its time
    write_alerts_csv(collect_alerts(results), out_dir / ALERTS_CSV)

    log.info("batch report: %d calls -> %s, %s", len(results), html_path, csv_path)
    return html_path
