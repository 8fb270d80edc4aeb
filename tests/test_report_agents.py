"""Agent and team scorecards: selection, statistics, ranking, pages and the XLSX workbook."""
from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import replace

from datetime import date, datetime

import openpyxl
import pytest
from click.testing import CliRunner

from qa_inspect.cli import main
from qa_inspect.records import CallInput, CallResult, Evidence, RuleResult, Score
from qa_inspect.reports.agents import SHEETS, build, write_agent_reports
from qa_inspect.reports.workbook import HEADERS_ZH, METRIC_HEADERS_ZH, SHEET_TITLES
from qa_inspect.store import open_store
from report_fixtures import build_db


@pytest.fixture(scope="module")
def db(root, samples, tmp_path_factory):
    return build_db(root, samples, tmp_path_factory.mktemp("agents") / "qa.db")


@pytest.fixture(scope="module")
def stored(db):
    with open_store(db) as s:
        return [r for r in s.results() if r.status == "ok"]


_KEY_OF = {v: k for k, v in HEADERS_ZH.items()} | {v: k for k, v in METRIC_HEADERS_ZH.items()}


def _sheet(path, name):
    """Rows of sheet ``name`` (its English key) as dicts keyed by the English column keys
    (the workbook is Chinese by default)."""
    ws = openpyxl.load_workbook(path)[SHEET_TITLES["zh"][name]]
    rows = list(ws.iter_rows(values_only=True))
    keys = [_KEY_OF.get(h, h) for h in rows[0]]
    return [dict(zip(keys, r)) for r in rows[1:]]


def test_cli_writes_pages_and_workbook(db, stored, tmp_path):
    out = tmp_path / "sc"
    r = CliRunner().invoke(main, ["report", "agents", "--db", str(db), "--from", "2026-11-23",
                                  "--to", "2026-11-24", "--out", str(out)])
    assert r.exit_code == 0, r.output
    agents = {x.call.agent_id for x in stored}
    assert len(list(out.glob("agent-*.html"))) == len(agents) == 5
    assert len(list(out.glob("team-*.html"))) == 2 and (out / "index.html").exists()
    wb = openpyxl.load_workbook(out / "scorecards.xlsx")
    assert wb.sheetnames == [SHEET_TITLES["zh"][x] for x in SHEETS]
    # means and ranks computed independently from the stored results
    by_agent = defaultdict(list)
    for x in stored:
        by_agent[x.call.agent_id].append(x.score.score)
    rows = {a["agent_id"]: a for a in _sheet(out / "scorecards.xlsx", "Agents")}
    for a, scores in by_agent.items():
        assert rows[a]["calls"] == len(scores)
        assert rows[a]["mean_score"] == pytest.approx(statistics.mean(scores), abs=0.01)
    for team in {a["team"] for a in rows.values()}:
        mine = sorted((a for a in rows.values() if a["team"] == team), key=lambda a: a["rank_in_team"])
        assert [a["rank_in_team"] for a in mine] == list(range(1, len(mine) + 1))
        assert all(p["mean_score"] >= q["mean_score"] for p, q in zip(mine, mine[1:]))
    calls = _sheet(out / "scorecards.xlsx", "Calls")
    assert len(calls) == len(stored)
    page = (out / "agent-A002.html").read_text(encoding="utf-8")
    assert "李娜" in page and "<svg" in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")


def test_item_pass_rate_against_team(stored, tmp_path):
    sc = build(stored)
    a002 = next(a for a in sc.agents if a.key == "A002")
    team = sc.team_of(a002)
    # A002 has 3 calls; zh_no_greeting misses the greeting
    assert (a002.items["greeting"].passed, a002.items["greeting"].applicable) == (2, 3)
    team_calls = [x for x in stored if x.call.team == team.key]
    passed = sum(1 for x in team_calls for y in x.rules if y.rule_id == "greeting" and y.outcome == "pass")
    applicable = sum(1 for x in team_calls for y in x.rules if y.rule_id == "greeting" and y.outcome != "n/a")
    assert team.items["greeting"].rate == pytest.approx(passed / applicable)
    assert a002.items["greeting"].failed_calls == ["zh_no_greeting"]
    items = _sheet(write_agent_reports(stored, tmp_path)[-1], "Items")
    row = next(i for i in items if i["agent_id"] == "A002" and i["rule_id"] == "greeting")
    assert row["pass_rate"] == pytest.approx(2 / 3, abs=1e-3) and row["failed_calls"] == "zh_no_greeting"


def test_date_and_team_filters(db, tmp_path):
    out = tmp_path / "d"
    r = CliRunner().invoke(main, ["report", "agents", "--db", str(db), "--from", "2026-11-24",
                                  "--to", "2026-11-24", "--team", "一组", "--out", str(out)])
    assert r.exit_code == 0, r.output
    calls = _sheet(out / "scorecards.xlsx", "Calls")
    # call times are Excel date-times (in the team's time zone), not text
    assert calls and all(c["started_at"].date() == date(2026, 11, 24) and c["team"] == "一组" for c in calls)
    assert {s["team"] for s in _sheet(out / "scorecards.xlsx", "Summary")} == {"一组"}
    trend = _sheet(out / "scorecards.xlsx", "Trend")
    assert {t["period"] for t in trend} == {"2026-11-24"}


@pytest.mark.parametrize("args,msg", [
    (["--from", "23/11/2026"], "expected a date"),
    (["--from", "2030-01-01"], "no scored calls"),
])
def test_bad_input_is_one_line_error(db, tmp_path, args, msg):
    r = CliRunner().invoke(main, ["report", "agents", "--db", str(db), "--out", str(tmp_path / "x"), *args])
    assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output


def _res(cid, agent, day, score, evidence_text="", team="一组", name="坐席"):
    rules = (RuleResult("forbidden_phrase", "禁语", "礼貌", "major", bool(evidence_text),
                        "hit" if evidence_text else "pass", 10.0 if evidence_text else 0.0, kind="forbidden",
                        evidence=(Evidence("agent", 1, 65.0, 68.0, evidence_text, "keyword", "不归我管"),)
                        if evidence_text else ()),)
    return CallResult(call=CallInput(call_id=cid, agent_id=agent, agent_name=name, team=team,
                                     started_at=f"{day}T10:00:00+08:00"),
                      status="ok", rules=rules, score=Score(score, "A", False))


def test_weekly_trend_manual_scores_redaction_and_escaping(tmp_path):
    res = [_res("c1", "A1", "2026-10-01", 80, "这不归我管，你打13800138000问 <b>", name="<script>x</script>"),
           _res("c2", "A1", "2026-11-20", 100), _res("c3", "A2", "2026-11-21", 90)]
    paths = write_agent_reports(res, tmp_path / "r", manual={"c1": 70.0})
    page = (tmp_path / "r" / "agent-A1.html").read_text(encoding="utf-8")
    assert "13800138000" not in page and "[手机号]" in page          # redacted by default
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page  # escaped
    assert 'href="#ev-forbidden_phrase"' in page and 'id="ev-forbidden_phrase"' in page
    assert "01:05" in page  # the evidence time
    agents = {a["agent_id"]: a for a in _sheet(paths[-1], "Agents")}
    assert agents["A1"]["manual_mean"] == 70.0 and agents["A2"]["manual_mean"] is None
    trend = _sheet(paths[-1], "Trend")
    assert all(t["period_kind"] == "周" for t in trend)  # > 31 days: weeks
    assert {t["period"] for t in trend if t["agent_id"] == "A1" and t["calls"]} == {"2026-W40", "2026-W47"}
    calls = {c["call_id"]: c for c in _sheet(paths[-1], "Calls")}
    assert calls["c1"]["manual_score"] == 70.0 and "[手机号]" in calls["c1"]["first_evidence"]
    write_agent_reports(res, tmp_path / "raw", redact=False)
    assert "13800138000" in (tmp_path / "raw" / "agent-A1.html").read_text(encoding="utf-8")


def test_metrics_mean_or_dash(stored, tmp_path):
    key = "agent_sentiment_mean"
    bare = [replace(r, metrics={k: v for k, v in r.metrics.items() if k != key}) for r in stored]
    one = [replace(bare[0], metrics={**bare[0].metrics, key: 0.25})] + bare[1:]
    a = next(g for g in build(one).agents if g.key == stored[0].call.agent_id)
    assert a.metric_mean(key) == pytest.approx(0.25)  # the mean over the calls that have it
    write_agent_reports(bare, tmp_path)
    page = (tmp_path / "agent-A001.html").read_text(encoding="utf-8")
    row = page[page.index("坐席平均情绪"):][:200]
    assert "—" in row and "0.00" not in row  # absent from every call: a dash, not 0


def test_manual_column_uses_review_workflow(root, samples, tmp_path):
    pytest.importorskip("qa_inspect.workflow")
    from qa_inspect.reports.agents import manual_scores
    from qa_inspect.workflow import decide_appeal, open_appeal

    db = build_db(root, samples, tmp_path / "qa.db")
    with open_store(db) as s:
        assert manual_scores(s) == {}  # nobody reviewed anything: machine scores only, no manual column
        a = open_appeal(s, "zh_no_greeting", "客户先开口，问候被打断", "A002")
        decide_appeal(s, a.appeal_id, True, "组长", score=95.0)
        assert manual_scores(s) == {"zh_no_greeting": 95.0}
    out = tmp_path / "m"
    r = CliRunner().invoke(main, ["report", "agents", "--db", str(db), "--out", str(out)])
    assert r.exit_code == 0, r.output
    calls = {c["call_id"]: c for c in _sheet(out / "scorecards.xlsx", "Calls")}
    assert calls["zh_no_greeting"]["manual_score"] == 95.0 and calls["zh_no_greeting"]["score"] == 80.0
    assert calls["zh_polite_inquiry"]["manual_score"] is None
    agents = {x["agent_id"]: x for x in _sheet(out / "scorecards.xlsx", "Agents")}
    assert agents["A002"]["manual_mean"] == 95.0


@pytest.mark.parametrize("cmd", [["report", "agents"], ["examples", "--rule", "greeting"]])
def test_missing_database_is_not_created(tmp_path, cmd):
    db = tmp_path / "nope.db"
    r = CliRunner().invoke(main, [*cmd, "--db", str(db), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "not found" in r.output and not db.exists()


def test_workbook_chinese_percent_dates_filter(stored, tmp_path):
    """Issue 14: Chinese sheet names and headers, item titles not ids, percent cells, dates as
    dates, frozen header and autofilter — read back with openpyxl; English by option."""
    path = write_agent_reports(stored, tmp_path / "zh")[-1]
    wb = openpyxl.load_workbook(path)
    items = wb["质检项"]
    header = [c.value for c in items[1]]
    assert header[:4] == ["班组", "坐席工号", "坐席", "质检项"] and "通过率" in header
    rate_col = header.index("通过率") + 1
    rates = [items.cell(r, rate_col) for r in range(2, items.max_row + 1)]
    assert any(isinstance(c.value, float) for c in rates)
    assert all(c.number_format == "0.0%" for c in rates if c.value is not None)
    titles = {items.cell(r, 4).value for r in range(2, items.max_row + 1)}
    assert "开场问候" in titles and "greeting" not in titles  # rule titles, not ids
    calls = wb["通话明细"]
    t = calls.cell(2, [c.value for c in calls[1]].index("通话时间") + 1)
    assert isinstance(t.value, datetime) and t.number_format.startswith("yyyy-mm-dd")
    for ws in wb.worksheets:
        assert ws.freeze_panes == "A2" and ws.auto_filter.ref and ws.auto_filter.ref.startswith("A1:")
    en = openpyxl.load_workbook(write_agent_reports(stored, tmp_path / "en", lang="en")[-1])
    assert en.sheetnames == list(SHEETS) and en["Items"]["G1"].value == "pass_rate"
