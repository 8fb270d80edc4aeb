"""Per-agent and per-team scorecards: HTML pages (self-contained, inline-SVG charts) and one
XLSX workbook, from the stored results of a date range.

``write_agent_reports(results, out_dir)`` writes::

    out_dir/index.html            teams and agents, ranked
    out_dir/team-<n>.html         one per team: ranking, item pass rates per agent, trend
    out_dir/agent-<n>.html        one per agent: KPIs, grade distribution, trend vs team,
                                  item pass rate vs team, top failed items with evidence,
                                  talk metrics vs team, calls (machine and manual score)
    out_dir/scorecards.xlsx       sheets Summary, Agents, Items, Trend, Calls

Item pass rate = calls where the item passed / calls where it applied (outcome pass, fail or
hit; ``n/a`` is left out); risk rules are not scorecard items and are counted separately.
Evidence text is redacted by default (``redact=False`` to keep it verbatim).
"""
from __future__ import annotations

import logging
import math
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from qa_inspect.errors import QAError
from qa_inspect.records import CallResult
from qa_inspect.redact import redact_text
from qa_inspect.text import mmss
from qa_inspect.reports.alerts import TALK_METRICS, fmt_metric

log = logging.getLogger(__name__)

XLSX_NAME = "scorecards.xlsx"
SHEETS = ("Summary", "Agents", "Items", "Trend", "Calls")
_ITEM_KINDS = ("required", "forbidden")


# --------------------------------------------------------------------------- selection

def call_date(r: CallResult) -> date | None:
    """The local date the call started (the date written in ``started_at``), or None."""
    s = (r.call.started_at or "").strip()
    m = re.match(r"(\d{4})-(\d{2})-(\d{2})", s)
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def parse_date(s: str | None, what: str) -> date | None:
    if not s:
        return None
    try:
        return date.fromisoformat(s.strip())
    except ValueError:
        raise QAError(f"{what}: expected a date like 2026-11-23, got {s!r}") from None


def select(results: Iterable[CallResult], *, date_from: date | None = None,
           date_to: date | None = None, team: str | None = None) -> list[CallResult]:
    """Scored (status ok) calls started within [date_from, date_to] (inclusive), of ``team``.

    With a date bound given, calls without a readable ``started_at`` are left out.
    """
    out = []
    for r in results:
        if r.status != "ok" or r.score is None:
            continue
        if team and r.call.team != team:
            continue
        if date_from or date_to:
            d = call_date(r)
            if d is None or (date_from and d < date_from) or (date_to and d > date_to):
                continue
        out.append(r)
    return out


# --------------------------------------------------------------------------- manual review

def manual_scores(store: Any) -> dict[str, float]:
    """Human scores by call id: the upheld appeal's score, else the latest manual review
    (复核), from ``qa_inspect.workflow.final_scores``. Calls nobody reviewed are absent (their
    "manual" column shows "—"); if the workflow tables cannot be read the column stays empty
    rather than breaking the supervisor's report."""
    try:
        from qa_inspect.workflow import final_scores
    except ImportError:  # a build without the review workflow
        return {}
    try:
        finals = final_scores(store)
    except Exception as e:  # optional column: log and carry on
        log.warning("manual review scores unavailable: %s", e)
        return {}
    return {cid: float(f.final) for cid, f in finals.items()
            if f.source in ("manual", "appeal") and _num(f.final) is not None}


# --------------------------------------------------------------------------- statistics

def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def period_of(d: date, period: str) -> str:
    if period == "week":
        y, w, _ = d.isocalendar()
        return f"{y}-W{w:02d}"
    return d.isoformat()


@dataclass
class ItemStat:
    rule_id: str
    title: str
    applicable: int = 0
    passed: int = 0
    failed_calls: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        return self.passed / self.applicable if self.applicable else None


@dataclass
class EvidenceRow:
    call_id: str
    anchor: str
    rule_id: str
    title: str
    time: str
    role: str
    text: str
    matched: str


@dataclass
class Group:
    """One agent or one team over the selected calls."""

    key: str
    name: str
    team: str
    slug: str
    calls: list[CallResult]
    manual: dict[str, float]
    items: dict[str, ItemStat] = field(default_factory=dict)
    rank: int = 0
    rank_of: int = 0

    @property
    def n(self) -> int:
        return len(self.calls)

    @property
    def scores(self) -> list[float]:
        return [float(r.score.score) for r in self.calls if r.score is not None and _num(r.score.score) is not None]

    @property
    def mean(self) -> float | None:
        return _mean(self.scores)

    @property
    def manual_mean(self) -> float | None:
        return _mean([self.manual[r.call.call_id] for r in self.calls if r.call.call_id in self.manual])

    @property
    def grades(self) -> Counter:
        return Counter(r.score.grade for r in self.calls if r.score is not None and r.score.grade)

    @property
    def fatal(self) -> int:
        return sum(1 for r in self.calls if r.score is not None and r.score.fatal)

    @property
    def risk_calls(self) -> int:
        return sum(1 for r in self.calls if r.risk_hits)

    def metric_mean(self, key: str) -> float | None:
        cache = self.__dict__.setdefault("_metric_means", {})  # asked per page and per sheet
        if key not in cache:
            cache[key] = _mean([v for v in (_num(r.metrics.get(key)) for r in self.calls) if v is not None])
        return cache[key]

    def trend(self, period: str, periods: Sequence[str]) -> list[tuple[str, float | None, int]]:
        by: dict[str, list[float]] = defaultdict(list)
        for r in self.calls:
            d = call_date(r)
            if d is not None and r.score is not None:
                by[period_of(d, period)].append(float(r.score.score))
        return [(p, _mean(by.get(p, [])), len(by.get(p, []))) for p in periods]


def _item_stats(calls: Sequence[CallResult]) -> dict[str, ItemStat]:
    stats: dict[str, ItemStat] = {}
    for r in calls:
        for x in r.rules:
            if x.kind not in _ITEM_KINDS or x.outcome == "n/a":
                continue
            st = stats.setdefault(x.rule_id, ItemStat(x.rule_id, x.title or x.rule_id))
            st.applicable += 1
            if x.outcome == "pass":
                st.passed += 1
            else:
                st.failed_calls.append(r.call.call_id)
    return stats


def _slug(prefix: str, key: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", key).strip("-") or "x"
    s, i = f"{prefix}-{base}", 2
    while s in used:
        s, i = f"{prefix}-{base}-{i}", i + 1
    used.add(s)
    return s


@dataclass
class Scorecards:
    teams: list[Group]
    agents: list[Group]
    periods: list[str]
    period: str
    date_from: str
    date_to: str
    manual_available: bool

    def team_of(self, agent: Group) -> Group:
        return next(t for t in self.teams if t.key == agent.team)

    def agents_of(self, team: Group) -> list[Group]:
        return sorted((a for a in self.agents if a.team == team.key), key=lambda a: a.rank)


def build(results: Sequence[CallResult], *, period: str = "auto", manual: Mapping[str, float] | None = None,
          date_from: date | None = None, date_to: date | None = None) -> Scorecards:
    """Group calls by team and agent, compute item pass rates and rank agents within teams."""
    manual = dict(manual or {})
    days = sorted({d for d in (call_date(r) for r in results) if d is not None})
    if period == "auto":
        period = "week" if days and (days[-1] - days[0]).days > 31 else "day"
    if period not in ("day", "week"):
        raise QAError(f"period must be day, week or auto, not {period!r}")
    lo, hi = date_from or (days[0] if days else None), date_to or (days[-1] if days else None)
    periods: list[str] = []
    if lo and hi:
        d = lo
        while d <= hi and len(periods) < 400:
            p = period_of(d, period)
            if p not in periods:
                periods.append(p)
            d = date.fromordinal(d.toordinal() + 1)
    used: set[str] = set()
    by_team: dict[str, list[CallResult]] = defaultdict(list)
    by_agent: dict[tuple[str, str], list[CallResult]] = defaultdict(list)
    for r in results:
        team = r.call.team or "—"
        by_team[team].append(r)
        by_agent[(team, r.call.agent_id or r.call.agent_name or "—")].append(r)
    teams = []
    for t in sorted(by_team):
        g = Group(key=t, name=t, team=t, slug=_slug("team", f"{len(teams) + 1}", used),
                  calls=by_team[t], manual=manual)
        g.items = _item_stats(g.calls)
        teams.append(g)
    agents = []
    for (t, a) in sorted(by_agent):
        calls = by_agent[(t, a)]
        name = next((r.call.agent_name for r in calls if r.call.agent_name), "")
        g = Group(key=a, name=f"{name} ({a})" if name and name != a else a, team=t,
                  slug=_slug("agent", a, used), calls=calls, manual=manual)
        g.items = _item_stats(calls)
        agents.append(g)
    for t in teams:  # rank within team: mean score, then more calls first, then id
        mine = sorted((a for a in agents if a.team == t.key),
                      key=lambda a: (-(a.mean if a.mean is not None else -1), -a.n, a.key))
        for i, a in enumerate(mine, 1):
            a.rank, a.rank_of = i, len(mine)
    for i, t in enumerate(sorted(teams, key=lambda t: (-(t.mean or 0), t.key)), 1):
        t.rank, t.rank_of = i, len(teams)
    return Scorecards(teams=teams, agents=agents, periods=periods, period=period,
                      date_from=lo.isoformat() if lo else "", date_to=hi.isoformat() if hi else "",
                      manual_available=bool(manual))


# --------------------------------------------------------------------------- views

def _f(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.0f}%"


def _grade_order(sc: Scorecards) -> list[str]:
    seen = Counter(g for grp in sc.teams for g in grp.grades.elements())
    return sorted(seen, key=lambda g: (len(g), g))


def _evidence_rows(g: Group, text: Callable[[str], str]) -> list[EvidenceRow]:
    rows = []
    for r in g.calls:
        for x in r.rules:
            if x.kind in _ITEM_KINDS and x.outcome in ("fail", "hit"):
                evs = x.evidence or ()
                if not evs:
                    rows.append(EvidenceRow(r.call.call_id, f"ev-{x.rule_id}", x.rule_id, x.title or x.rule_id,
                                            "—", "", x.reason or "（未说 / not said）", ""))
                for e in evs:
                    rows.append(EvidenceRow(r.call.call_id, f"ev-{x.rule_id}", x.rule_id, x.title or x.rule_id,
                                            mmss(e.start), e.role, text(e.text), text(e.matched)))
    return rows


def _agent_view(sc: Scorecards, a: Group, text: Callable[[str], str]) -> dict[str, Any]:
    from qa_inspect.reports import svg

    team = sc.team_of(a)
    items = []
    for rid, tst in sorted(team.items.items(), key=lambda kv: kv[0]):
        mine = a.items.get(rid)
        rate = mine.rate if mine else None
        items.append({"rule_id": rid, "title": tst.title, "rate": _pct(rate), "team_rate": _pct(tst.rate),
                      "delta": "—" if rate is None or tst.rate is None else f"{(rate - tst.rate) * 100:+.0f}",
                      "worse": rate is not None and tst.rate is not None and rate < tst.rate - 0.1,
                      "fails": len(mine.failed_calls) if mine else 0,
                      "applicable": mine.applicable if mine else 0, "r": rate, "t": tst.rate})
    top_failed = sorted((i for i in items if i["fails"]), key=lambda i: (-i["fails"], i["rule_id"]))[:5]
    trend = a.trend(sc.period, sc.periods)
    team_trend = [v for _, v, _ in team.trend(sc.period, sc.periods)]
    grades = _grade_order(sc)
    calls = []
    for r in sorted(a.calls, key=lambda r: (r.call.started_at, r.call.call_id)):
        calls.append({"call_id": r.call.call_id, "started_at": r.call.started_at,
                      "score": _f(r.score.score if r.score else None), "grade": r.score.grade if r.score else "",
                      "fatal": bool(r.score and r.score.fatal),
                      "manual": _f(a.manual.get(r.call.call_id)),
                      "failed": [x.title or x.rule_id for x in r.failed],
                      "risks": [x.title or x.rule_id for x in r.risk_hits]})
    return {
        "kind": "agent", "title": f"坐席质检报告 / Agent scorecard · {a.name}", "g": a, "team": team,
        "kpis": _kpis(a, team), "items": items, "top_failed": top_failed,
        "evidence": _evidence_rows(a, text),
        "metrics": [(label, fmt_metric(a.metric_mean(k), f), fmt_metric(team.metric_mean(k), f))
                    for k, label, f in TALK_METRICS],
        "calls": calls, "manual_available": sc.manual_available,
        "chart_trend": svg.line_chart(trend, title=f"平均分趋势 / Mean score by {sc.period} (— team)",
                                      ref=team_trend),
        "chart_items": svg.bar_pairs([(i["title"], i["r"], i["t"]) for i in items],
                                     title="各项通过率 / Item pass rate", labels=(a.name, f"{team.name} 班组 / team")),
        "chart_grades": svg.histogram([(g, a.grades.get(g, 0)) for g in grades],
                                      title="等级分布 / Grade distribution"),
    }


def _kpis(g: Group, team: Group | None) -> list[tuple[str, str]]:
    k = [("通话数 / Calls", str(g.n)), ("平均分 / Mean score", _f(g.mean)),
         ("人工复核均分 / Manual mean", _f(g.manual_mean)),
         ("致命 / Fatal calls", str(g.fatal)), ("风险通话 / Risk calls", str(g.risk_calls))]
    if team is not None and g is not team:
        k.append(("班组排名 / Rank in team", f"{g.rank} / {g.rank_of}"))
        k.append(("班组均分 / Team mean", _f(team.mean)))
    return k


def _team_view(sc: Scorecards, t: Group) -> dict[str, Any]:
    from qa_inspect.reports import svg

    agents = sc.agents_of(t)
    item_ids = sorted(t.items)
    grades = _grade_order(sc)
    rows = []
    for a in agents:
        rows.append({"g": a, "mean": _f(a.mean), "manual": _f(a.manual_mean),
                     "grades": [a.grades.get(g, 0) for g in grades],
                     "cells": [(_pct(a.items[i].rate) if i in a.items else "—",
                                i in a.items and a.items[i].rate is not None and t.items[i].rate is not None
                                and a.items[i].rate < t.items[i].rate - 0.1) for i in item_ids],
                     "metrics": [fmt_metric(a.metric_mean(k), f) for k, _, f in TALK_METRICS]})
    return {
        "kind": "team", "title": f"班组质检报告 / Team scorecard · {t.name}", "g": t, "team": t,
        "kpis": _kpis(t, None) + [("坐席数 / Agents", str(len(agents)))],
        "rows": rows, "grades": grades, "item_titles": [t.items[i].title for i in item_ids],
        "item_rates": [_pct(t.items[i].rate) for i in item_ids],
        "metric_labels": [label for _, label, _ in TALK_METRICS],
        "team_metrics": [fmt_metric(t.metric_mean(k), f) for k, _, f in TALK_METRICS],
        "manual_available": sc.manual_available,
        "chart_trend": svg.line_chart(t.trend(sc.period, sc.periods), title=f"平均分趋势 / Mean score by {sc.period}"),
        "chart_grades": svg.histogram([(g, t.grades.get(g, 0)) for g in grades], title="等级分布 / Grade distribution"),
        "chart_items": svg.bar_pairs([(t.items[i].title, t.items[i].rate, None) for i in item_ids],
                                     title="各项通过率 / Item pass rate"),
    }


# --------------------------------------------------------------------------- writers

def _env():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def write_agent_reports(results: Sequence[CallResult], out_dir: Path, *, period: str = "auto",
                        manual: Mapping[str, float] | None = None, redact: bool = True,
                        date_from: date | None = None, date_to: date | None = None,
                        generated_at: datetime | None = None) -> list[Path]:
    """Write the pages and the workbook (see the module doc); return their paths, index first."""
    if not results:
        raise QAError("no scored calls in the selected range/team: nothing to report")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sc = build(results, period=period, manual=manual, date_from=date_from, date_to=date_to)
    text = redact_text if redact else (lambda s: s)
    env = _env()
    tpl = env.get_template("scorecard.html.j2")
    now = (generated_at or datetime.now().astimezone()).replace(microsecond=0).isoformat(sep=" ")
    common = {"generated_at": now, "date_from": sc.date_from, "date_to": sc.date_to,
              "teams": sc.teams, "sc": sc, "redacted": redact}
    paths = []
    # pages first, each written aside and renamed into place, the index last: a report
    # interrupted at any point never has an index linking a page that does not exist
    index = {"kind": "index", "title": "坐席与班组质检 / Agent & team scorecards",
             "kpis": [("通话数 / Calls", str(len(results))), ("班组 / Teams", str(len(sc.teams))),
                      ("坐席 / Agents", str(len(sc.agents))),
                      ("平均分 / Mean score", _f(_mean([float(r.score.score) for r in results if r.score])))],
             "team_rows": [(t, sc.agents_of(t)) for t in sc.teams], "fmt": _f}
    for t in sc.teams:
        paths.append(_write_aside(out_dir / f"{t.slug}.html", tpl.render(**common, **_team_view(sc, t))))
    for a in sc.agents:
        paths.append(_write_aside(out_dir / f"{a.slug}.html", tpl.render(**common, **_agent_view(sc, a, text))))
    tmp = out_dir / f".{XLSX_NAME}.tmp{os.getpid()}"
    try:
        write_workbook(sc, tmp, text=text)
        paths.append(out_dir / XLSX_NAME)
        os.replace(tmp, paths[-1])
    finally:
        tmp.unlink(missing_ok=True)
    paths.insert(0, _write_aside(out_dir / "index.html", tpl.render(**common, **index)))
    log.info("agent scorecards: %d teams, %d agents -> %s", len(sc.teams), len(sc.agents), out_dir)
    return paths


def _write_aside(path: Path, text: str) -> Path:
    """Write ``path`` whole or not at all (a temporary file beside it, then renamed)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _cell(v: Any) -> Any:
    """Neutralise formulas in free-text cells (a transcript saying '=HYPERLINK(…)')."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@"):
        return "'" + v
    return v


def write_workbook(sc: Scorecards, path: Path, *, text: Callable[[str], str] = redact_text) -> Path:
    """One workbook with the sheets in ``SHEETS``; numbers are numbers (sortable in Excel)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    metric_keys = [k for k, _, _ in TALK_METRICS]

    def sheet(name: str, header: Sequence[str], rows: Iterable[Sequence[Any]], first: bool = False):
        ws = wb.active if first else wb.create_sheet(name)
        ws.title = name
        ws.append(list(header))
        for c in ws[1]:
            c.font = Font(bold=True)
        for row in rows:
            ws.append([_cell(v) for v in row])
        ws.freeze_panes = "A2"
        for col in ws.iter_cols(max_row=min(ws.max_row, 200)):  # a sample is enough for widths
            width = max(len(str(c.value or "")) for c in col)
            ws.column_dimensions[col[0].column_letter].width = min(max(10, width + 2), 60)
        return ws

    def r1(v: float | None, d: int = 2) -> float | None:
        return None if v is None else round(v, d)

    sheet("Summary", ["team", "calls", "agents", "mean_score", "manual_mean", "fatal_calls", "risk_calls",
                      "team_rank", "from", "to"],
          ([t.key, t.n, len(sc.agents_of(t)), r1(t.mean), r1(t.manual_mean), t.fatal, t.risk_calls,
            t.rank, sc.date_from, sc.date_to] for t in sc.teams), first=True)
    grades = _grade_order(sc)
    sheet("Agents", ["team", "agent_id", "agent", "calls", "mean_score", "manual_mean", "rank_in_team",
                     "team_size", "fatal_calls", "risk_calls"] + [f"grade_{g}" for g in grades] + metric_keys,
          ([a.team, a.key, a.name, a.n, r1(a.mean), r1(a.manual_mean), a.rank, a.rank_of, a.fatal,
            a.risk_calls] + [a.grades.get(g, 0) for g in grades] + [r1(a.metric_mean(k), 3) for k in metric_keys]
           for t in sc.teams for a in sc.agents_of(t)))
    item_rows = []
    for t in sc.teams:
        for a in sc.agents_of(t):
            for rid, tst in sorted(t.items.items()):
                st = a.items.get(rid)
                item_rows.append([t.key, a.key, a.name, rid, tst.title, st.applicable if st else 0,
                                  st.passed if st else 0, r1(st.rate if st else None, 3), r1(tst.rate, 3),
                                  ";".join(st.failed_calls) if st else ""])
    sheet("Items", ["team", "agent_id", "agent", "rule_id", "item", "applicable", "passed", "pass_rate",
                    "team_pass_rate", "failed_calls"], item_rows)
    trend_rows = []
    for t in sc.teams:
        for p, v, n in t.trend(sc.period, sc.periods):
            trend_rows.append([t.key, "", "(team)", sc.period, p, n, r1(v)])
        for a in sc.agents_of(t):
            for p, v, n in a.trend(sc.period, sc.periods):
                trend_rows.append([t.key, a.key, a.name, sc.period, p, n, r1(v)])
    sheet("Trend", ["team", "agent_id", "agent", "period_kind", "period", "calls", "mean_score"], trend_rows)
    call_rows = []
    for a in sc.agents:
        for r in sorted(a.calls, key=lambda r: (r.call.started_at, r.call.call_id)):
            first_ev = next((e for x in r.failed for e in x.evidence), None)
            call_rows.append([r.call.call_id, a.team, a.key, a.name, r.call.started_at,
                              r1(r.score.score if r.score else None), r.score.grade if r.score else "",
                              bool(r.score and r.score.fatal), r1(a.manual.get(r.call.call_id)),
                              ";".join(x.rule_id for x in r.failed), ";".join(x.rule_id for x in r.risk_hits),
                              text(first_ev.text) if first_ev else "",
                              mmss(first_ev.start) if first_ev else ""]
                             + [r1(_num(r.metrics.get(k)), 3) for k in metric_keys])
    sheet("Calls", ["call_id", "team", "agent_id", "agent", "started_at", "score", "grade", "fatal",
                    "manual_score", "failed_items", "risk_hits", "first_evidence", "evidence_time"] + metric_keys,
          call_rows)
    path = Path(path)
    wb.save(path)
    return path
