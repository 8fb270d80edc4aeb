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
from qa_inspect.reports.i18n import lang as _lang
from qa_inspect.reports.i18n import local_time, reason_text, template_env, tr, use_lang
from qa_inspect.reports.points import fmt_points, lost_items
from qa_inspect.reports.workbook import SHEETS, grade_order, write_workbook

__all__ = ["SHEETS", "XLSX_NAME", "build", "write_agent_reports", "write_workbook"]

log = logging.getLogger(__name__)

XLSX_NAME = "scorecards.xlsx"
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


def _evidence_rows(g: Group, text: Callable[[str], str]) -> list[EvidenceRow]:
    rows = []
    for r in g.calls:
        for x in r.rules:
            if x.kind in _ITEM_KINDS and x.outcome in ("fail", "hit"):
                evs = x.evidence or ()
                if not evs:
                    rows.append(EvidenceRow(r.call.call_id, f"ev-{x.rule_id}", x.rule_id, x.title or x.rule_id,
                                            "—", "", reason_text(x.outcome, x.reason, title=x.title) if x.reason else tr("（未说） / (not said)"), ""))
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
    grades = grade_order(sc)
    calls = []
    for r in sorted(a.calls, key=lambda r: (r.call.started_at, r.call.call_id)):
        calls.append({"call_id": r.call.call_id, "started_at": local_time(r.call.started_at),
                      "score": _f(r.score.score if r.score else None), "grade": r.score.grade if r.score else "",
                      "fatal": bool(r.score and r.score.fatal),
                      "manual": _f(a.manual.get(r.call.call_id)),
                      "failed": [f"{t} −{fmt_points(p)}" for _, t, p in lost_items(r)],
                      "risks": [x.title or x.rule_id for x in r.risk_hits]})
    return {
        "kind": "agent", "title": f"{tr('坐席质检报告 / Agent scorecard')} · {a.name}", "g": a, "team": team,
        "kpis": _kpis(a, team), "items": items, "top_failed": top_failed,
        "evidence": _evidence_rows(a, text),
        "metrics": [(tr(label), fmt_metric(a.metric_mean(k), f), fmt_metric(team.metric_mean(k), f))
                    for k, label, f in TALK_METRICS],
        "calls": calls, "manual_available": sc.manual_available,
        "chart_trend": svg.line_chart(trend, title=L(f"平均分趋势（按{_PERIOD_ZH.get(sc.period, sc.period)}，虚线为班组）", f"Mean score by {sc.period} (— team)"),
                                      ref=team_trend),
        "chart_items": svg.bar_pairs([(i["title"], i["r"], i["t"]) for i in items],
                                     title=tr("各项通过率 / Item pass rate"), labels=(a.name, L(f"{team.name} 班组", f"{team.name} team"))),
        "chart_grades": svg.histogram([(g, a.grades.get(g, 0)) for g in grades],
                                      title=tr("等级分布 / Grade distribution")),
    }


def _kpis(g: Group, team: Group | None) -> list[tuple[str, str]]:
    k = [(tr("通话数 / Calls"), str(g.n)), (tr("平均分 / Mean score"), _f(g.mean)),
         (tr("人工复核均分 / Manual mean"), _f(g.manual_mean)),
         (tr("一票否决 / Fatal calls"), str(g.fatal)), (tr("风险通话 / Risk calls"), str(g.risk_calls))]
    if team is not None and g is not team:
        k.append((tr("班组排名 / Rank in team"), f"{g.rank} / {g.rank_of}"))
        k.append((tr("班组均分 / Team mean"), _f(team.mean)))
    return k


def _team_view(sc: Scorecards, t: Group) -> dict[str, Any]:
    from qa_inspect.reports import svg

    agents = sc.agents_of(t)
    item_ids = sorted(t.items)
    grades = grade_order(sc)
    rows = []
    for a in agents:
        rows.append({"g": a, "mean": _f(a.mean), "manual": _f(a.manual_mean),
                     "grades": [a.grades.get(g, 0) for g in grades],
                     "cells": [(_pct(a.items[i].rate) if i in a.items else "—",
                                i in a.items and a.items[i].rate is not None and t.items[i].rate is not None
                                and a.items[i].rate < t.items[i].rate - 0.1) for i in item_ids],
                     "metrics": [fmt_metric(a.metric_mean(k), f) for k, _, f in TALK_METRICS]})
    return {
        "kind": "team", "title": f"{tr('班组质检报告 / Team scorecard')} · {t.name}", "g": t, "team": t,
        "kpis": _kpis(t, None) + [(tr("坐席数 / Agents"), str(len(agents)))],
        "rows": rows, "grades": grades, "item_titles": [t.items[i].title for i in item_ids],
        "item_rates": [_pct(t.items[i].rate) for i in item_ids],
        "metric_labels": [tr(label) for _, label, _ in TALK_METRICS],
        "team_metrics": [fmt_metric(t.metric_mean(k), f) for k, _, f in TALK_METRICS],
        "manual_available": sc.manual_available,
        "chart_trend": svg.line_chart(t.trend(sc.period, sc.periods), title=L(f"平均分趋势（按{_PERIOD_ZH.get(sc.period, sc.period)}）", f"Mean score by {sc.period}")),
        "chart_grades": svg.histogram([(g, t.grades.get(g, 0)) for g in grades], title=tr("等级分布 / Grade distribution")),
        "chart_items": svg.bar_pairs([(t.items[i].title, t.items[i].rate, None) for i in item_ids],
                                     title=tr("各项通过率 / Item pass rate")),
    }


# --------------------------------------------------------------------------- writers

_PERIOD_ZH = {"day": "日", "week": "周"}


def L(zh: str, en: str) -> str:
    """The label of the language being rendered (for labels built with values)."""
    return zh if _lang() == "zh" else en


def _env(lang: str = "zh"):
    return template_env(Path(__file__).parent / "templates", lang)


def write_agent_reports(results: Sequence[CallResult], out_dir: Path, *, period: str = "auto",
                        manual: Mapping[str, float] | None = None, redact: bool = True,
                        date_from: date | None = None, date_to: date | None = None,
                        generated_at: datetime | None = None, lang: str = "zh",
                        tz: str = "Asia/Shanghai", service_kpis: Mapping[str, dict] | None = None) -> list[Path]:
    """Write the pages and the workbook (see the module doc); return their paths, index first.
    ``lang``: zh | en (pages, the workbook's sheets and headers); ``tz``: the team's time zone.
    ``service_kpis``: the service KPIs per agent id (``reports.kpi.kpi_table`` rows over all stored
    calls), shown on each agent's page with their targets.

    Pages first, each written aside and renamed into place, then the workbook, the index
    last: a report interrupted at any point never has an index linking a page that does not
    exist."""
    if not results:
        raise QAError("no scored calls in the selected range/team: nothing to report")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sc = build(results, period=period, manual=manual, date_from=date_from, date_to=date_to)
    with use_lang(lang, tz):  # labels and times built in the views in the pages' language and zone
        paths, index_html = _write_pages(sc, results, out_dir, redact, generated_at, lang, tz, service_kpis or {})
    # write_workbook saves beside the target and renames it into place
    paths.append(write_workbook(sc, out_dir / XLSX_NAME, text=redact_text if redact else (lambda s: s),
                                lang=lang, tz=tz))
    paths.insert(0, _write_aside(out_dir / "index.html", index_html))
    log.info("agent scorecards: %d teams, %d agents -> %s", len(sc.teams), len(sc.agents), out_dir)
    return paths


def _write_pages(sc, results, out_dir: Path, redact: bool, generated_at, lang: str,
                 tz: str, service_kpis: Mapping[str, dict]) -> tuple[list[Path], str]:
    """The team and agent pages (written), and the index page's HTML (written last by the caller)."""
    from zoneinfo import ZoneInfo

    text = redact_text if redact else (lambda s: s)
    tpl = _env(lang).get_template("scorecard.html.j2")
    zone = ZoneInfo(tz)  # the team's time zone
    now = (generated_at or datetime.now(zone)).astimezone(zone).replace(microsecond=0)
    common = {"generated_at": f"{now:%Y-%m-%d %H:%M:%S} ({tz})", "date_from": sc.date_from,
              "date_to": sc.date_to, "teams": sc.teams, "sc": sc, "redacted": redact}
    index = {"kind": "index", "title": tr("坐席与班组质检 / Agent & team scorecards"),
             "kpis": [(tr("通话数 / Calls"), str(len(results))), (tr("班组 / Teams"), str(len(sc.teams))),
                      (tr("坐席 / Agents"), str(len(sc.agents))),
                      (tr("平均分 / Mean score"), _f(_mean([float(r.score.score) for r in results if r.score])))],
             "team_rows": [(t, sc.agents_of(t)) for t in sc.teams], "fmt": _f}
    paths = []
    for t in sc.teams:
        paths.append(_write_aside(out_dir / f"{t.slug}.html", tpl.render(**common, **_team_view(sc, t))))
    for a in sc.agents:
        paths.append(_write_aside(out_dir / f"{a.slug}.html", tpl.render(
            **common, **_agent_view(sc, a, text), service=_service_rows(service_kpis.get(a.key), lang))))
    return paths, tpl.render(**common, **index)


def _service_rows(row: dict | None, lang: str) -> list[tuple[str, str, str]]:
    """(figure, value, target) of an agent's service KPIs; "—" for what is not known."""
    from qa_inspect.reports.kpi import COLUMNS, fmt

    if not row:
        return []
    targets = {"score_mean": ("score_target", "n"), "fcr": ("fcr_target", "pct")}
    out = []
    for k, zh, en, f in COLUMNS:
        if k in ("key", "period") or k.endswith("_target"):
            continue
        t = targets.get(k)
        out.append((en if lang == "en" else zh, fmt(row.get(k), f), fmt(row.get(t[0]), t[1]) if t else ""))
    return out


def _write_aside(path: Path, text: str) -> Path:
    """Write ``path`` whole or not at all (a temporary file beside it, then renamed)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
