"""Issue 14, "one score everywhere": the nightly `run` scores every call with its pack's
scorecard by default, and every output — batch report (HTML + CSV), export, agent
scorecards (XLSX), review worksheet — shows the same total and the same per-item points,
all read from the one stored breakdown. Runs the real CLI on the sample transcripts."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from qa_inspect.cli import main
from qa_inspect.workflow.worksheet import CALL_ITEM

ROOT = Path(__file__).resolve().parents[1]


def _invoke(*args: str) -> str:
    res = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def _col(header, *names) -> int:
    """Index of the first of ``names`` in a header row (Chinese or English headers)."""
    for n in names:
        if n in header:
            return header.index(n)
    raise AssertionError(f"none of {names} in {header}")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("one_score")
    db, out = tmp / "qa.db", tmp / "reports"
    _invoke("run", str(ROOT / "samples/transcripts.jsonl"), "--db", str(db), "--out", str(out))
    exp = _invoke("export", "--db", str(db))
    _invoke("report", "agents", "--db", str(db), "--out", str(tmp / "cards"))
    plan = tmp / "all.yaml"  # review every call, so the worksheet holds them all
    plan.write_text("plan: {id: all}\ninclude: {fatal: true, risk: true}\nrandom_share: 1.0\n", encoding="utf-8")
    _invoke("sample", "--db", str(db), "--plan", str(plan), "--seed", "7", "--out", str(tmp / "ws.xlsx"))
    return {"export": [json.loads(x) for x in exp.splitlines() if x.strip()],
            "csv": out / "report.csv", "html": (out / "report.html").read_text(encoding="utf-8"),
            "cards": tmp / "cards" / "scorecards.xlsx", "ws": tmp / "ws.xlsx"}


def test_default_scorecard_scores_forbidden_phrase_zero(outputs):
    by = {r["call_id"]: r for r in outputs["export"]}
    assert by["zh_forbidden_phrase"]["score"] == 0 and by["zh_forbidden_phrase"]["fatal"]
    assert by["zh_forbidden_phrase"]["scorecard_id"] == "telecom_zh_card"
    assert by["en_billing_inquiry"]["scorecard_id"] == "telecom_en_card"


def test_same_total_and_items_in_every_output(outputs):
    exp = {r["call_id"]: r for r in outputs["export"]}
    # the truth: the stored breakdown, as exported
    truth_total = {cid: float(r["score"]) for cid, r in exp.items()}
    truth_items = {cid: {b["rule_id"]: round(b["points"], 2) for b in r["score_breakdown"] if b["points"]}
                   for cid, r in exp.items()}
    assert any(len(v) >= 2 for v in truth_items.values())  # some call lost points on several items
    assert any(t not in (0.0, 100.0) for t in truth_total.values())

    with open(outputs["csv"], encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    h = rows[0]
    ci, si, pi = _col(h, "call_id", "通话ID"), _col(h, "score", "得分"), _col(h, "item_points", "各项得分")
    for row in rows[1:]:
        assert float(row[si]) == truth_total[row[ci]]
        items = dict(x.rsplit(":", 1) for x in row[pi].split(";") if x)
        assert {k: float(v) for k, v in items.items()} == truth_items[row[ci]], row[ci]

    wb = load_workbook(outputs["cards"])
    ws = next(wb[n] for n in wb.sheetnames if n in ("Calls", "通话明细"))
    vals = list(ws.values)
    h = list(vals[0])
    ci, si = _col(h, "call_id", "通话ID"), _col(h, "score", "得分")
    pi = _col(h, "item_points", "扣分明细")
    for row in vals[1:]:
        assert row[si] == pytest.approx(truth_total[row[ci]])
        # the workbook names items by their titles (Chinese), e.g. "开场问候:-12；标准结束语:-40"
        titles = {r["rule_id"]: r["title"] for r in exp[row[ci]]["rules"]}
        lost = {k: float(v) for k, v in (x.rsplit(":", 1) for x in (row[pi] or "").split("；") if x)}
        assert lost == {titles[k]: v for k, v in truth_items[row[ci]].items() if v < 0}, row[ci]

    wb = load_workbook(outputs["ws"])
    ws = wb.worksheets[0]
    vals = list(ws.values)
    h = list(vals[0])
    ci, ii = _col(h, "call_id", "通话ID"), _col(h, "item", "质检项ID")
    pi = _col(h, "machine_points", "机器得分")
    seen: dict[str, dict[str, float]] = {}
    for row in vals[1:]:
        cid, item, pts = row[ci], row[ii], row[pi]
        if item == CALL_ITEM:
            assert pts == pytest.approx(truth_total[cid])
        elif pts:
            seen.setdefault(cid, {})[item] = pts
    assert seen == {c: v for c, v in truth_items.items() if v}

    # the batch page: the total and each lost item's points, as stored
    html = outputs["html"]
    table = html[html.index('id="call-table"'):]
    for cid, items in truth_items.items():
        m = re.search(rf'>{re.escape(cid)}</a></td>(.*?)</tr>', table, re.S)
        assert m, cid
        cells = m.group(1)
        assert re.search(rf'>{truth_total[cid]:g}<', cells), (cid, truth_total[cid])
        for rid, p in items.items():
            if p < 0:
                assert f"(−{-p:g})" in cells, (cid, rid, p)


def test_pages_speak_plain_chinese(outputs):
    """A missed item shows what should have been said (the rule's description), not the
    engine's pattern; a hit shows its words; no doubled "中文 / English" labels."""
    html = outputs["html"]
    assert "未找到：坐席在开场自报工号。" in html
    assert r"\d{3,6}" not in html and "missing:" not in html and "hit(s)" not in html
    assert "命中 2 处：不归我管、我不知道" in html
    assert "通话总数 / Calls" not in html and "得分 / Score" not in html
