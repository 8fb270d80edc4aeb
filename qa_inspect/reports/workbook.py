"""The supervisors' workbook (``scorecards.xlsx``): one sheet per view of the agent scorecards.

Chinese by default (sheet names and headers; ``lang="en"`` for English), item titles rather
than rule ids, rates as percent cells, call times as Excel date-times in the team's time zone,
a frozen, bold header row with an autofilter, every text cell guarded against formulas
(``reports.cells``). Numbers stay numbers, so the sheets sort and sum in Excel.

``SHEETS`` are the sheets' keys (English); ``SHEET_TITLES`` and ``HEADERS`` their labels.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence
from zoneinfo import ZoneInfo

from qa_inspect.records import CallResult
from qa_inspect.reports.alerts import TALK_METRICS
from qa_inspect.reports.cells import safe_cell, style_sheet
from qa_inspect.reports.points import fmt_points, lost_items, points_lost
from qa_inspect.text import mmss

SHEETS = ("Summary", "Agents", "Items", "Trend", "Calls")
SHEET_TITLES = {"zh": {"Summary": "班组汇总", "Agents": "坐席", "Items": "质检项", "Trend": "趋势",
                       "Calls": "通话明细"},
                "en": {s: s for s in SHEETS}}
HEADERS_ZH = {
    "team": "班组", "calls": "通话数", "agents": "坐席数", "mean_score": "平均分", "manual_mean": "复核平均分",
    "fatal_calls": "一票否决通话", "risk_calls": "风险通话", "team_rank": "班组排名", "from": "起始日期",
    "to": "截止日期", "agent_id": "坐席工号", "agent": "坐席", "rank_in_team": "组内排名",
    "team_size": "组内人数", "item": "质检项", "applicable": "适用通话", "passed": "通过",
    "pass_rate": "通过率", "team_pass_rate": "班组通过率", "failed_calls": "未通过通话", "rule_id": "规则ID",
    "period_kind": "周期类型", "period": "周期", "call_id": "通话ID", "started_at": "通话时间",
    "score": "得分", "grade": "等级", "fatal": "一票否决", "manual_score": "复核得分",
    "points_lost": "扣分合计", "item_points": "扣分明细", "risk_hits": "风险命中",
    "first_evidence": "首条证据", "evidence_time": "证据时间点",
}
METRIC_HEADERS_ZH = {k: label.split(" / ")[0] for k, label, _ in TALK_METRICS}
PERCENT_KEYS = {"pass_rate", "team_pass_rate", "silence_share"}
DATE_KEYS = {"started_at"}
_ZH_FLAGS = {True: "是", False: "否"}


def header_label(key: str, lang: str) -> str:
    if lang == "en":
        return key
    return HEADERS_ZH.get(key) or METRIC_HEADERS_ZH.get(key) or (
        f"{key[len('grade_'):]}等级通话" if key.startswith("grade_") else key)


def excel_time(started_at: str, tz: str) -> datetime | str:
    """``started_at`` (ISO 8601) as a naive date-time in the team's time zone (Excel has no
    zones); the text itself when it is not a date."""
    try:
        d = datetime.fromisoformat(started_at.strip())
    except (ValueError, AttributeError):
        return started_at or ""
    if d.tzinfo is not None:
        d = d.astimezone(ZoneInfo(tz))
    return d.replace(tzinfo=None, microsecond=0)


def _r(v: float | None, d: int = 2) -> float | None:
    return None if v is None else round(v, d)


def _num(v: Any) -> float | None:
    import math

    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def grade_order(sc) -> list[str]:
    """The grades seen in ``sc`` (``agents.Scorecards``), best first ("A" before "B", "A" before
    "A-"): the one order of the pages and the workbook."""
    from collections import Counter

    seen = Counter(g for grp in sc.teams for g in grp.grades.elements())
    return sorted(seen, key=lambda g: (len(g), g))


def write_workbook(sc, path: Path, *, text: Callable[[str], str] = lambda s: s, lang: str = "zh",
                   tz: str = "Asia/Shanghai") -> Path:
    """One workbook with the sheets in ``SHEETS`` from ``sc`` (``agents.Scorecards``)."""
    from openpyxl import Workbook

    zh = lang != "en"
    wb = Workbook()
    metric_keys = [k for k, _, _ in TALK_METRICS]
    flag = (lambda b: _ZH_FLAGS[bool(b)]) if zh else bool

    def sheet(key: str, header: Sequence[str], rows: Iterable[Sequence[Any]], first: bool = False):
        ws = wb.active if first else wb.create_sheet()
        ws.title = SHEET_TITLES["zh" if zh else "en"][key]
        ws.append([header_label(h, "zh" if zh else "en") for h in header])
        for row in rows:
            ws.append([safe_cell(v) for v in row])
        style_sheet(ws, percent_cols=[i + 1 for i, h in enumerate(header) if h in PERCENT_KEYS],
                    date_cols=[i + 1 for i, h in enumerate(header) if h in DATE_KEYS])
        return ws

    def day(s: str):
        try:
            return datetime.fromisoformat(s).date() if s else None
        except ValueError:
            return s

    sheet("Summary", ["team", "calls", "agents", "mean_score", "manual_mean", "fatal_calls", "risk_calls",
                      "team_rank", "from", "to"],
          ([t.key, t.n, len(sc.agents_of(t)), _r(t.mean), _r(t.manual_mean), t.fatal, t.risk_calls,
            t.rank, day(sc.date_from), day(sc.date_to)] for t in sc.teams), first=True)
    ws = wb.active
    for row in ws.iter_rows(min_row=2, min_col=9, max_col=10):
        for c in row:
            c.number_format = "yyyy-mm-dd"
    grades = grade_order(sc)
    sheet("Agents", ["team", "agent_id", "agent", "calls", "mean_score", "manual_mean", "rank_in_team",
                     "team_size", "fatal_calls", "risk_calls"] + [f"grade_{g}" for g in grades] + metric_keys,
          ([a.team, a.key, a.name, a.n, _r(a.mean), _r(a.manual_mean), a.rank, a.rank_of, a.fatal,
            a.risk_calls] + [a.grades.get(g, 0) for g in grades] + [_r(a.metric_mean(k), 3) for k in metric_keys]
           for t in sc.teams for a in sc.agents_of(t)))
    item_rows = []
    for t in sc.teams:
        for a in sc.agents_of(t):
            for rid, tst in sorted(t.items.items(), key=lambda kv: (kv[1].title, kv[0])):
                st = a.items.get(rid)
                item_rows.append([t.key, a.key, a.name, tst.title, st.applicable if st else 0,
                                  st.passed if st else 0, _r(st.rate if st else None, 4), _r(tst.rate, 4),
                                  ";".join(st.failed_calls) if st else "", rid])
    sheet("Items", ["team", "agent_id", "agent", "item", "applicable", "passed", "pass_rate",
                    "team_pass_rate", "failed_calls", "rule_id"], item_rows)
    period_kind = {"day": "日", "week": "周"}.get(sc.period, sc.period) if zh else sc.period
    trend_rows = []
    for t in sc.teams:
        for p, v, n in t.trend(sc.period, sc.periods):
            trend_rows.append([t.key, "", "（班组）" if zh else "(team)", period_kind, p, n, _r(v)])
        for a in sc.agents_of(t):
            for p, v, n in a.trend(sc.period, sc.periods):
                trend_rows.append([t.key, a.key, a.name, period_kind, p, n, _r(v)])
    sheet("Trend", ["team", "agent_id", "agent", "period_kind", "period", "calls", "mean_score"], trend_rows)
    call_rows = []
    sep = "；" if zh else "; "
    for a in sc.agents:
        r: CallResult
        for r in sorted(a.calls, key=lambda r: (r.call.started_at, r.call.call_id)):
            first_ev = next((e for x in r.failed for e in x.evidence), None)
            call_rows.append([r.call.call_id, a.team, a.key, a.name, excel_time(r.call.started_at, tz),
                              _r(r.score.score if r.score else None), r.score.grade if r.score else "",
                              flag(r.score and r.score.fatal), _r(a.manual.get(r.call.call_id)),
                              points_lost(r),
                              # the points the score counted, per item title (the stored breakdown)
                              sep.join(f"{title}:{fmt_points(-p)}" for _, title, p in lost_items(r)),
                              sep.join(x.title or x.rule_id for x in r.risk_hits),
                              text(first_ev.text) if first_ev else "",
                              mmss(first_ev.start) if first_ev else ""]
                             + [_r(_num(r.metrics.get(k)), 3) for k in metric_keys])
    sheet("Calls", ["call_id", "team", "agent_id", "agent", "started_at", "score", "grade", "fatal",
                    "manual_score", "points_lost", "item_points", "risk_hits", "first_evidence",
                    "evidence_time"] + metric_keys, call_rows)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    wb.save(tmp)
    tmp.replace(path)
    return path
