"""The review worksheet (XLSX): one row per sampled call and item, written by ``sample`` and
read back by ``review import``.

Sheet ``review`` columns (header names are the contract ``review import`` checks):

=================  =========================================================================
row_id (hidden)    ``sample_id|call_id|item``: which machine verdict the row is about
call_id … audio    machine columns: call, agent, start time, item (rule id, or ``(call)``
                   for the whole-call row), title, machine verdict, machine points,
                   evidence text (phone / ID numbers redacted by default), time, audio path
reviewer_verdict   dropdown: confirmed | false_positive | missed (blank = not reviewed)
manual_score       on the ``(call)`` row: the reviewer's score for the call (0–100)
reviewer_note      free text
check (hidden)     checksum of the machine columns as written
=================  =========================================================================

The machine columns as written are also kept in the database (``qc_sample_items``), so an
edited machine cell is found and named on import.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from qa_inspect.records import CallResult
from qa_inspect.scoring import evidence_text, mmss

CALL_ITEM = "(call)"
VERDICTS = ("confirmed", "false_positive", "missed")
# what Chinese QC staff type: 确认 / 误报 / 漏检 (the workspace's words) read as the verdicts above
VERDICT_ALIASES = {"确认": "confirmed", "误报": "false_positive", "漏检": "missed"}
MACHINE_COLS = ("call_id", "agent_id", "started_at", "item", "title", "machine_verdict", "machine_points",
                "evidence", "time", "audio")
REVIEWER_COLS = ("reviewer_verdict", "manual_score", "reviewer_note")
COLUMNS = ("row_id",) + MACHINE_COLS + REVIEWER_COLS + ("check",)
SHEET = "review"
EXTRA_ROWS = 50  # empty rows with the verdict dropdown, for misses the reviewer adds

INSTRUCTIONS = [
    ("人工抽检复核表 / QC review worksheet", ""),
    ("", ""),
    ("How to fill it in", ""),
    ("reviewer_verdict", "For every item row: confirmed = the machine verdict is right; "
                         "false_positive = the machine flagged it (fail/hit) but it is not a violation; "
                         "missed = the machine did not flag it (pass/n/a) but it is a violation. "
                         "Leave blank if you did not review the item."),
    ("manual_score", "On the (call) row of each call: your score for the whole call, 0–100 (复核得分)."),
    ("added misses", "A violation with no row: add a row at the bottom with call_id, item (the rule id) "
                     "and reviewer_verdict = missed; leave the hidden row_id empty."),
    ("do not edit", "Do not edit the machine columns (call_id … audio): such rows are rejected on import, "
                    "every other row is kept."),
    ("import", "qa-inspect review import THIS_FILE.xlsx --db qa.db --reviewer YOUR_NAME"),
    ("", ""),
]


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
    """A cell as text, numbers without float noise: what was written and what is read compare."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        return f"{round(float(v), 2):g}"
    return str(v).strip()


def rows_for_call(sample_id: str, r: CallResult, redact: Callable[[str], str] | None) -> list[SheetRow]:
    """The whole-call row, then one row per rule result of the call."""
    c, sc = r.call, r.score
    red = redact or (lambda s: s)
    verdict = f"{sc.score:g} {sc.grade}{' FATAL' if sc.fatal else ''}" if sc else ""
    out = [SheetRow(sample_id, c.call_id, c.agent_id, c.started_at, CALL_ITEM,
                    "整通评分 / whole call" + (f" ({sc.scorecard_id} {sc.scorecard_version})"
                                           if sc and sc.scorecard_id else ""),
                    verdict, sc.score if sc else None, "", "", c.path)]
    points: dict[str, float] = {}
    for b in (sc.breakdown if sc else ()):
        points[b.rule_id] = points.get(b.rule_id, 0.0) + b.points
    for rr in r.rules:
        ev = evidence_text(rr, limit=120)
        start = rr.evidence[0].start if rr.evidence else None
        pts = points.get(rr.rule_id, -rr.deduction if rr.deduction else 0.0)
        out.append(SheetRow(sample_id, c.call_id, c.agent_id, c.started_at, rr.rule_id, rr.title, rr.outcome,
                            round(pts, 2), red(ev), mmss(start) if start is not None else "", c.path))
    return out


def write_worksheet(path: str | Path, rows: Sequence[SheetRow], meta: dict[str, Any]) -> Path:
    """Write the review worksheet; ``meta`` (sample id, plan, seed, …) goes on the instructions sheet."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    ws = wb.active
    ws.title = SHEET
    ws.append(list(COLUMNS))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    yellow = PatternFill("solid", fgColor="FFF2CC")
    grey = PatternFill("solid", fgColor="EDEDED")
    for row in rows:
        ws.append([row.row_id, *row.machine_values(), None, None, None, row.check])
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
    dv = DataValidation(type="list", formula1='"' + ",".join(VERDICTS) + '"', allow_blank=True,
                        showErrorMessage=True, errorTitle="reviewer_verdict",
                        error="Choose confirmed, false_positive or missed (or leave blank).")
    dv.add(f"{letter['reviewer_verdict']}2:{letter['reviewer_verdict']}{last}")
    ws.add_data_validation(dv)
    sv = DataValidation(type="decimal", operator="between", formula1="0", formula2="100", allow_blank=True,
                        showErrorMessage=True, errorTitle="manual_score", error="A score from 0 to 100.")
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

    info = wb.create_sheet("instructions")
    for a, b in INSTRUCTIONS:
        info.append([a, b])
    for k, v in meta.items():
        info.append([k, str(v)])
    info["A1"].font = Font(bold=True, size=14)
    info.column_dimensions["A"].width = 22
    info.column_dimensions["B"].width = 110
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    wb.save(p)
    return p
