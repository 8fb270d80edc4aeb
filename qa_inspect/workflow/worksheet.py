"""The review worksheet (XLSX): one row per sampled call and item, written by ``sample`` and
read back by ``review import``.

Sheet ``review`` (``复核``) columns; headers are Chinese by default (``lang="en"``: the
English names below); ``review import`` accepts either (``header_key``):

=================  =========================================================================
row_id (hidden)    ``sample_id|call_id|item``: which machine verdict the row is about
call_id … audio    machine columns: call, agent, start time, item (rule id, or ``(call)``
                   for the whole-call row), title, machine verdict, machine points,
                   evidence text (phone / ID numbers redacted by default), time, audio path
reviewer_verdict   dropdown: 确认 | 误报 | 漏检 (confirmed | false_positive | missed; both
                   languages accepted on import; blank = not reviewed)
manual_score       on the ``(call)`` row: the reviewer's score for the call (0–100)
reviewer_note      free text
check (hidden)     checksum of the machine columns as written
=================  =========================================================================

The machine columns as written are also kept in the database (``qc_sample_items``), so an
edited machine cell is found and named on import. Text cells that a spreadsheet would run as
a formula (``=…``, ``+…``, ``-…``, ``@…``) are written with a leading apostrophe
(``reports.cells.safe_cell``) and compared without it.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from qa_inspect.records import CallResult
from qa_inspect.reports.cells import safe_cell, unsafe_cell
from qa_inspect.reports.i18n import reason_text
from qa_inspect.scoring import evidence_text, mmss

CALL_ITEM = "(call)"
VERDICTS = ("confirmed", "false_positive", "missed")
VERDICT_LABELS = {"zh": {"confirmed": "确认", "false_positive": "误报", "missed": "漏检"},
                  "en": {v: v for v in VERDICTS}}
# what a reviewer may type: the Chinese QC words or the English ones
VERDICT_WORDS = {**{v: v for v in VERDICTS}, "确认": "confirmed", "误报": "false_positive", "漏检": "missed",
                 "false positive": "false_positive"}
MACHINE_COLS = ("call_id", "agent_id", "started_at", "item", "title", "machine_verdict", "machine_points",
                "evidence", "time", "audio")
REVIEWER_COLS = ("reviewer_verdict", "manual_score", "reviewer_note")
COLUMNS = ("row_id",) + MACHINE_COLS + REVIEWER_COLS + ("check",)
HEADERS_ZH = {"row_id": "行ID", "call_id": "通话ID", "agent_id": "坐席工号", "started_at": "通话时间",
              "item": "质检项ID", "title": "质检项", "machine_verdict": "机器判定", "machine_points": "机器得分",
              "evidence": "证据", "time": "时间点", "audio": "录音", "reviewer_verdict": "复核结论",
              "manual_score": "复核得分", "reviewer_note": "复核备注", "check": "校验"}
_HEADER_KEYS = {**{c: c for c in COLUMNS}, **{v: k for k, v in HEADERS_ZH.items()}}
SHEET = "review"
SHEET_NAMES = {"zh": "复核", "en": "review"}
EXTRA_ROWS = 50  # empty rows with the verdict dropdown, for misses the reviewer adds
WHOLE_CALL = {"zh": "整通评分", "en": "whole call"}


OUTCOME_LABELS = {"zh": {"pass": "通过", "fail": "未通过", "hit": "命中", "n/a": "不适用"},
                  "en": {"pass": "pass", "fail": "fail", "hit": "hit", "n/a": "n/a"}}
_OUTCOME_KEYS = {v: k for k, v in OUTCOME_LABELS["zh"].items()}


def outcome_key(v: Any) -> Any:
    """The machine outcome code of a machine-verdict cell (通过/未通过/命中/不适用 → pass/…)."""
    t = norm_cell(v)
    return _OUTCOME_KEYS.get(t, v)


def header_key(name: Any) -> str:
    """The column a header cell names (Chinese or English), or the text itself."""
    t = norm_cell(name)
    return _HEADER_KEYS.get(t, t)


def verdict_key(v: Any) -> str:
    """``confirmed`` / ``false_positive`` / ``missed`` for what the reviewer typed (确认/误报/漏检
    or the English words, any case); "" for blank; the text itself when it is neither."""
    t = norm_cell(v)
    return VERDICT_WORDS.get(t, VERDICT_WORDS.get(t.lower(), t.lower()))


INSTRUCTIONS_ZH = [
    ("人工抽检复核表", ""),
    ("", ""),
    ("填写说明", ""),
    ("复核结论", "每个质检项一行，从下拉列表选择：确认 = 机器判定正确；误报 = 机器判为违规（未通过/命中）"
             "但实际不违规；漏检 = 机器未判违规（通过/不适用）但实际违规。未复核的项留空。"),
    ("复核得分", "每通电话的“整通评分”行：填写整通电话的复核得分（0–100）。"),
    ("补充漏检", "没有对应行的违规：在表格末尾新增一行，填写通话ID、质检项ID（规则ID），复核结论选“漏检”；"
              "隐藏的行ID列留空。"),
    ("请勿修改", "请勿修改机器列（通话ID … 录音）：被修改的行在导入时会被拒绝，其余行照常导入。"),
    ("导入", "qa-inspect review import 本文件.xlsx --db qa.db --reviewer 你的名字"),
    ("", ""),
]
INSTRUCTIONS_EN = [
    ("QC review worksheet", ""),
    ("", ""),
    ("How to fill it in", ""),
    ("reviewer_verdict", "For every item row: confirmed = the machine verdict is right; "
                         "false_positive = the machine flagged it (fail/hit) but it is not a violation; "
                         "missed = the machine did not flag it (pass/n/a) but it is a violation. "
                         "Leave blank if you did not review the item."),
    ("manual_score", "On the (call) row of each call: your score for the whole call, 0–100."),
    ("added misses", "A violation with no row: add a row at the bottom with call_id, item (the rule id) "
                     "and reviewer_verdict = missed; leave the hidden row_id empty."),
    ("do not edit", "Do not edit the machine columns (call_id … audio): such rows are rejected on import, "
                    "every other row is kept."),
    ("import", "qa-inspect review import THIS_FILE.xlsx --db qa.db --reviewer YOUR_NAME"),
    ("", ""),
]
INSTRUCTIONS = INSTRUCTIONS_EN


@dataclass(frozen=True)
class SheetRow:
    sample_id: str
    call_id: str
    agent_id: str
    started_at: str
    item: str
    title: str
    machine_verdict: str
    machine_points: float | None
    evidence: str
    time: str
    audio: str

    @property
    def row_id(self) -> str:
        return f"{self.sample_id}|{self.call_id}|{self.item}"

    def machine_values(self) -> tuple:
        return (self.call_id, self.agent_id, self.started_at, self.item, self.title, self.machine_verdict,
                self.machine_points, self.evidence, self.time, self.audio)

    @property
    def check(self) -> str:
        return checksum(self.row_id, self.machine_values())


def checksum(row_id: str, values: Sequence[Any]) -> str:
    norm = [norm_cell(v) for v in values]
    return hashlib.sha256(json.dumps([row_id, *norm], ensure_ascii=False).encode()).hexdigest()[:12]


def norm_cell(v: Any) -> str:
    """A cell as text, numbers without float noise, a formula-guard apostrophe removed: what was
    written and what is read compare."""
    v = unsafe_cell(v)
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        return f"{round(float(v), 2):g}"
    return str(v).strip()


def rows_for_call(sample_id: str, r: CallResult, redact: Callable[[str], str] | None,
                  lang: str = "zh") -> list[SheetRow]:
    """The whole-call row, then one row per rule result of the call."""
    c, sc = r.call, r.score
    red = redact or (lambda s: s)
    fatal = (" 一票否决" if lang != "en" else " FATAL") if sc and sc.fatal else ""
    verdict = f"{sc.score:g} {sc.grade}{fatal}" if sc else ""
    out = [SheetRow(sample_id, c.call_id, c.agent_id, c.started_at, CALL_ITEM,
                    WHOLE_CALL.get(lang, WHOLE_CALL["zh"]) + (f" ({sc.scorecard_id} {sc.scorecard_version})"
                                                              if sc and sc.scorecard_id else ""),
                    verdict, sc.score if sc else None, "", "", c.path)]
    # the points the score counted (the stored breakdown), never the pack's deductions: a rule
    # the score did not count (a risk flag, an unscored rule) has no points
    points: dict[str, float] = {}
    for b in (sc.breakdown if sc else ()):
        points[b.rule_id] = round(points.get(b.rule_id, 0.0) + b.points, 2)
    for rr in r.rules:
        # a miss has no words: say what was not found, in plain words (not the engine's pattern)
        ev = evidence_text(rr, limit=120) if rr.evidence else \
            reason_text(rr.outcome, rr.reason, title=rr.title, which=lang)
        start = rr.evidence[0].start if rr.evidence else None
        pts = points.get(rr.rule_id)
        out.append(SheetRow(sample_id, c.call_id, c.agent_id, c.started_at, rr.rule_id, rr.title, rr.outcome,
                            pts, red(ev), mmss(start) if start is not None else "", c.path))
    return out


def write_worksheet(path: str | Path, rows: Sequence[SheetRow], meta: dict[str, Any], *, lang: str = "zh") -> Path:
    """Write the review worksheet; ``meta`` (sample id, plan, seed, …) goes on the instructions sheet."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    zh = lang != "en"
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET_NAMES["zh" if zh else "en"]
    ws.append([HEADERS_ZH[c] if zh else c for c in COLUMNS])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    yellow = PatternFill("solid", fgColor="FFF2CC")
    grey = PatternFill("solid", fgColor="EDEDED")
    for row in rows:
        values = list(row.machine_values())
        if row.item != CALL_ITEM:  # shown in the sheet's language; import maps it back (outcome_key)
            i = MACHINE_COLS.index("machine_verdict")
            values[i] = OUTCOME_LABELS["zh" if zh else "en"].get(values[i], values[i])
        ws.append([safe_cell(v) for v in (row.row_id, *values, None, None, None, row.check)])
        if row.item == CALL_ITEM:
            for cell in ws[ws.max_row]:
                cell.fill = grey
                cell.font = Font(bold=True)
    last = ws.max_row + EXTRA_ROWS
    col = {name: i + 1 for i, name in enumerate(COLUMNS)}
    from openpyxl.utils import get_column_letter

    letter = {name: get_column_letter(i) for name, i in col.items()}
    for r in range(2, last + 1):
        for name in REVIEWER_COLS:
            ws.cell(r, col[name]).fill = yellow
    words = [VERDICT_LABELS["zh" if zh else "en"][v] for v in VERDICTS]
    dv = DataValidation(type="list", formula1='"' + ",".join(words) + '"', allow_blank=True,
                        showDropDown=False, showErrorMessage=True,
                        errorTitle="复核结论" if zh else "reviewer_verdict",
                        error=("请选择 确认、误报 或 漏检（或留空）。" if zh else
                               "Choose confirmed, false_positive or missed (or leave blank)."))
    dv.add(f"{letter['reviewer_verdict']}2:{letter['reviewer_verdict']}{last}")
    ws.add_data_validation(dv)
    sv = DataValidation(type="decimal", operator="between", formula1="0", formula2="100", allow_blank=True,
                        showErrorMessage=True, errorTitle="复核得分" if zh else "manual_score",
                        error="0 到 100 之间的分数。" if zh else "A score from 0 to 100.")
    sv.add(f"{letter['manual_score']}2:{letter['manual_score']}{last}")
    ws.add_data_validation(sv)
    widths = {"row_id": 10, "call_id": 24, "agent_id": 9, "started_at": 20, "item": 20, "title": 18,
              "machine_verdict": 12, "machine_points": 9, "evidence": 60, "time": 7, "audio": 30,
              "reviewer_verdict": 16, "manual_score": 12, "reviewer_note": 30, "check": 10}
    for name, w in widths.items():
        ws.column_dimensions[letter[name]].width = w
    for name in ("row_id", "check"):  # the reviewer never needs them; import does
        ws.column_dimensions[letter[name]].hidden = True
    for r in range(2, ws.max_row + 1):
        ws.cell(r, col["evidence"]).alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "C2"
    ws.auto_filter.ref = f"A1:{letter['check']}{max(ws.max_row, 1)}"

    info = wb.create_sheet("说明" if zh else "instructions")
    for a, b in (INSTRUCTIONS_ZH if zh else INSTRUCTIONS_EN):
        info.append([a, b])
    meta_zh = {"sample_id": "抽检批次", "plan": "抽检方案", "seed": "随机种子", "calls": "通话数",
               "redacted": "已脱敏", "created_at": "生成时间"}
    for k, v in meta.items():
        info.append([meta_zh.get(k, k) if zh else k, safe_cell(str(v))])
    info["A1"].font = Font(bold=True, size=14)
    info.column_dimensions["A"].width = 22
    info.column_dimensions["B"].width = 110
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    wb.save(p)
    return p
