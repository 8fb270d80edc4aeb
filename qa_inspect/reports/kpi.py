"""Service KPI tables (issue 15): the figures the store computes in SQL (``kpi_rows``), laid out
with Chinese headers, targets from the service documents beside the figures that have one,
and "—" wherever no call of the group carries what a figure needs (never 0).

Targets (../shared/seeds, 联通 10010 hotline standard): 一次性问题解决率 90 % — the repeat-contact
rate is its proxy, so its target is at most 10 %; 热线满意度 85 分 — shown against the QC mean
score (no survey score is stored); 投诉答复率 100 % — against 投诉解决及时率.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

from qa_inspect.reports.cells import csv_text, safe_cell, style_sheet, write_text

# (key, zh header, en header, format)  formats: n (count), s (seconds), pct, num, sent
COLUMNS = (
    ("key", "对象", "group", "str"),
    ("period", "周期", "period", "str"),
    ("calls", "通话量", "calls", "n"),
    ("aht_s", "平均处理时长(秒)", "AHT (s)", "s"),
    ("hold_share", "保持占比", "hold share", "pct"),
    ("silence_share", "静音占比", "silence share", "pct"),
    ("talk_ratio", "坐席/客户说话比", "talk ratio", "num"),
    ("interruptions", "每通抢话/插话", "interruptions per call", "num"),
    ("score_mean", "质检均分", "QC mean score", "num"),
    ("score_target", "满意度目标(分)", "satisfaction target", "n"),
    ("pass_rate", "质检合格率", "QC pass rate", "pct"),
    ("complaint_rate", "投诉率", "complaint rate", "pct"),
    ("sentiment_end", "客户结束情绪", "customer sentiment (end)", "sent"),
    ("repeat_rate", "重复来电率", "repeat-contact rate", "pct"),
    ("fcr", "一次性解决率(估)", "FCR (proxy)", "pct"),
    ("fcr_target", "一次性解决率目标", "FCR target", "pct"),
)
TARGETS = {"fcr_target": 0.90, "score_target": 85}
BY_LABELS = {"agent": "坐席", "team": "班组", "queue": "技能组"}
PERIOD_LABELS = {"day": "日", "week": "周", "month": "月"}
DASH = "—"


def kpi_table(raw: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Store rows (``kpi_sql.KPI_COLS``) as dicts of the ``COLUMNS`` keys (None = not known)."""
    out = []
    for (key, period, calls, aht, hold, silence, ratio, inter, score, pass_rate, complaint, sent,
         repeat, repeat_base) in raw:
        out.append({"key": key or "", "period": period or "", "calls": int(calls), "aht_s": aht,
                    "hold_share": hold, "silence_share": silence, "talk_ratio": ratio,
                    "interruptions": inter, "score_mean": score, "score_target": TARGETS["score_target"],
                    "pass_rate": pass_rate, "complaint_rate": complaint, "sentiment_end": sent,
                    "repeat_rate": repeat if repeat_base else None,
                    "fcr": 1 - repeat if repeat_base and repeat is not None else None,
                    "fcr_target": TARGETS["fcr_target"]})
    return out


def fmt(v: Any, kind: str) -> str:
    if kind == "str":
        return str(v) if v else DASH
    if v is None:
        return DASH
    v = float(v)
    if kind == "pct":
        return f"{v * 100:.1f}%"
    if kind == "n":
        return f"{v:.0f}"
    if kind == "s":
        return f"{v:.1f}"
    if kind == "sent":
        return f"{v:+.2f}"
    return f"{v:.2f}"


def headers(lang: str = "zh") -> list[str]:
    return [zh if lang != "en" else en for _k, zh, en, _f in COLUMNS]


def text_rows(table: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [[fmt(r[k], f) for k, _zh, _en, f in COLUMNS] for r in table]


def render_text(table: Sequence[dict[str, Any]], lang: str = "zh") -> str:
    """A plain aligned table (CJK characters count two columns)."""
    rows = [headers(lang)] + text_rows(table)
    w = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c + " " * (w[i] - _width(c)) for i, c in enumerate(r)).rstrip() for r in rows)


def _width(s: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)


def write_csv(table: Sequence[dict[str, Any]], path: Path, lang: str = "zh") -> Path:
    """CSV with a BOM (Excel opens Chinese text); figures as displayed, "—" where unknown."""
    return write_text(Path(path), csv_text(headers(lang), text_rows(table)), bom=True)


def write_xlsx(table: Sequence[dict[str, Any]], path: Path, lang: str = "zh") -> Path:
    """One sheet; numbers stay numbers (rates as percent cells), unknown figures "—"."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "服务指标" if lang != "en" else "KPIs"
    ws.append([safe_cell(h) for h in headers(lang)])
    for r in table:
        ws.append([safe_cell((r[k] or DASH) if f == "str" else (DASH if r[k] is None else r[k]))
                   for k, _zh, _en, f in COLUMNS])
    style_sheet(ws, percent_cols=[i + 1 for i, c in enumerate(COLUMNS) if c[3] == "pct"])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    os.close(fd)
    try:
        wb.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
