"""Nightly batch report: files, escaping, sections, self-containment, CSV."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from dataclasses import replace

from qa_inspect.scoring import score_call

from qa_inspect.records import (CallInput, CallResult, Evidence, RuleResult, Score,
                                Transcript, Turn)
from qa_inspect.reports.batch import fmt_mmss, highlight, render_batch_html, write_batch_report

XSS = "<script>alert(1)</script>"


def _call(cid: str, **kw) -> CallInput:
    return CallInput(call_id=cid, path=f"/audio/{cid}.wav", agent_id=kw.get("agent_id", "A01"),
                     agent_name=kw.get("agent_name", "张三"), team=kw.get("team", "一组"),
                     started_at="2024-05-01 09:00:00")


def _results() -> list[CallResult]:
    greet_fail = RuleResult(
        rule_id="greeting", title="开场问候 / Greeting", category="礼貌", severity="minor",
        matched=False, outcome="fail", deduction=5.0, kind="required",
        reason="未找到问候语 / no greeting found")
    rude = RuleResult(
        rule_id="rude", title="禁用语 / Rude words", category="礼貌", severity="major",
        matched=True, outcome="hit", deduction=10.0, kind="forbidden",
        evidence=(Evidence(role="agent", turn=1, start=65.2, end=68.0,
                           text=f"你烦不烦 {XSS} & 我说了", matched="烦不烦"),),
        reason="命中禁用语")
    ok_call = CallResult(
        call=_call("C-OK"), status="ok",
        transcript=Transcript(call_id="C-OK", language="zh", turns=(
            Turn(role="customer", text="你好 & 再见", start=0.0, end=2.5),
            Turn(role="agent", text=f"你烦不烦 {XSS} & 我说了", start=65.2, end=68.0),
        )),
        rules=(greet_fail, rude),
        score=score_call([greet_fail, rude], GRADES),  # 85 B, with its breakdown
        metrics={"duration_s": 1800.0})

    risk = RuleResult(
        rule_id="complaint_12315", title="投诉风险 / Complaint threat", category="风险",
        severity="critical", matched=True, outcome="hit", deduction=0.0, kind="risk",
        evidence=(Evidence(role="customer", turn=0, start=125.0, end=130.0,
                           text="我要打12315投诉你们", matched="12315"),),
        reason="客户提及投诉渠道")
    risk_call = CallResult(
        call=_call("C-RISK", agent_id="A02", agent_name="李四"), status="ok",
        transcript=Transcript(call_id="C-RISK", language="zh", turns=(
            Turn(role="customer", text="我要打12315投诉你们", start=125.0, end=130.0),)),
        rules=(risk,), score=replace(score_call([risk], GRADES), score=95.0),
        metrics={"duration_s": 1800.0})

    leak = RuleResult(
        rule_id="id_leak", title="泄露身份证 / ID leak", category="合规", severity="fatal",
        matched=True, outcome="hit", deduction=100.0, fatal=True, kind="forbidden",
        evidence=(Evidence(role="agent", turn=0, start=3.0, end=9.0,
                           text="您的身份证号是110101199001011234", matcher="regex",
                           matched=r"\d{17}[\dX]"),),
        reason="坐席读出完整身份证号")
    fatal_call = CallResult(
        call=_call("C-FATAL", agent_id="A03", agent_name="王五"), status="ok",
        rules=(leak,), score=score_call([leak], GRADES),
        metrics={})

    err = CallResult(call=_call("C-ERR"), status="error",
                     error="audio.wav: 无法解码 / cannot decode (<empty file>)")
    return [ok_call, risk_call, fatal_call, err]


GRADES = [(90, "A"), (80, "B"), (60, "C"), (0, "D")]


@pytest.fixture()
def report(tmp_path: Path) -> tuple[Path, str]:
    out = tmp_path / "nested" / "out"
    html_path = write_batch_report(_results(), out, summary={"规则包 / Pack": "default@1", "model": "small"})
    return html_path, html_path.read_text(encoding="utf-8")


def test_files_exist(report):
    html_path, _ = report
    assert html_path == html_path.parent / "report.html"
    assert html_path.is_file()
    assert (html_path.parent / "report.csv").is_file()
    assert html_path.parent.name == "out"


def test_user_text_is_escaped(report):
    _, html = report
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "你好 &amp; 再见" in html
    # exactly one <script> block: the report's own inline sorter
    assert html.count("<script") == 1


def test_highlight_is_escaped_per_segment(report):
    _, html = report
    assert "<mark>烦不烦</mark> &lt;script&gt;" in html
    assert "<mark>12315</mark>" in html
    # regex evidence is highlighted too
    assert "<mark>110101199001011234</mark>" in html


def test_header_counters(report):
    _, html = report
    # Chinese by default, one language per label (no "通话总数 / Calls")
    assert "<h1>质检日报</h1>" in html and "Nightly QC report" not in html
    assert " / Calls" not in html and "通话总数" in html
    assert "default@1" in html and "small" in html and "规则包" in html  # extra counters too
    # 2 * 1800 s = 1 h; mean of 85, 95, 0 = 60
    m = re.search(r"音频时长\(小时\)</span><b>([^<]*)</b>", html)
    assert m and m.group(1) == "1"
    m = re.search(r"平均分</span><b>([^<]*)</b>", html)
    assert m and m.group(1) == "60"


def test_english_by_option(tmp_path):
    html = write_batch_report(_results(), tmp_path, lang="en").read_text(encoding="utf-8")
    assert "<h1>Nightly QC report</h1>" in html and '<html lang="en">' in html
    assert re.search(r"Mean score</span><b>60</b>", html)
    assert "通话总数" not in html and "风险预警" not in html


def test_header_time_in_team_time_zone(tmp_path):
    from datetime import datetime, timezone

    at = datetime(2026, 11, 23, 16, 30, tzinfo=timezone.utc)
    html = render_batch_html(_results(), generated_at=at)
    assert "2026-11-24 00:30:00 (Asia/Shanghai, UTC+0800)" in html  # not the UTC time
    html = render_batch_html(_results(), generated_at=at, tz="Europe/London")
    assert "2026-11-23 16:30:00 (Europe/London" in html


def test_errors_section(report):
    _, html = report
    errors = html[html.index('id="errors"'):html.index('id="details"')]
    assert "C-ERR" in errors
    assert "/audio/C-ERR.wav" in errors
    assert "无法解码 / cannot decode (&lt;empty file&gt;)" in errors
    # error rows are not in the call table
    table = html[html.index('id="call-table"'):html.index('id="errors"')]
    assert "C-ERR" not in table


def test_risk_section_first_and_ordered(report):
    _, html = report
    risk = html.index('id="risk"')
    assert risk < html.index('id="call-table"')
    section = html[risk:html.index('id="calls"')]
    # both urgent (a fatal item; a critical risk rule without an alert tag): worst score first
    assert section.index("C-FATAL") < section.index("C-RISK")
    assert section.count('data-level="urgent"') == 2
    assert "C-OK" not in section
    assert "我要打<mark>12315</mark>投诉你们" in section
    assert "客户" in section and "Customer" not in section and "02:05–02:10" in section


def test_call_table_sorted_worst_first(report):
    _, html = report
    table = html[html.index('id="call-table"'):html.index('id="errors"')]
    ids = re.findall(r'<td><a href="#call-\d+">([^<]+)</a></td>', table)
    assert ids == ["C-FATAL", "C-OK", "C-RISK"]
    assert "开场问候 / Greeting (−5)" in table
    assert "张三 (A01)" in table


def test_details_per_call(report):
    _, html = report
    assert html.count("<details") == 3
    assert "01:05–01:08" in html  # evidence / turn time
    assert "未找到问候语 / no greeting found" in html


def test_self_contained(report):
    _, html = report
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "@import" not in html
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", html, re.I)


def test_csv(report):
    html_path, _ = report
    raw = (html_path.parent / "report.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with open(html_path.parent / "report.csv", encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == [
            "call_id", "agent_id", "agent_name", "team", "started_at", "status", "error",
            "duration_s", "score", "grade", "fatal", "failed_items", "risk_hits",
            "deductions_total", "item_points"]
        rows = {r["call_id"]: r for r in reader}
    assert list(rows) == ["C-OK", "C-RISK", "C-FATAL", "C-ERR"]
    ok = rows["C-OK"]
    assert ok["agent_name"] == "张三" and ok["team"] == "一组" and ok["status"] == "ok"
    assert ok["score"] == "85" and ok["grade"] == "B" and ok["fatal"] == "false"
    assert ok["failed_items"] == "greeting;rude" and ok["risk_hits"] == ""
    assert ok["deductions_total"] == "15" and ok["duration_s"] == "1800"
    assert ok["item_points"] == "greeting:-5;rude:-10"  # from the stored breakdown
    assert rows["C-RISK"]["risk_hits"] == "complaint_12315"
    assert rows["C-RISK"]["failed_items"] == ""
    fatal = rows["C-FATAL"]
    assert fatal["fatal"] == "true" and fatal["score"] == "0" and fatal["failed_items"] == "id_leak"
    assert fatal["duration_s"] == "" and fatal["deductions_total"] == "100"
    err = rows["C-ERR"]
    assert err["status"] == "error" and "cannot decode" in err["error"]
    assert err["score"] == "" and err["grade"] == "" and err["fatal"] == "false"


def test_empty_batch(tmp_path: Path):
    p = write_batch_report([], tmp_path, title="空 & <b>")
    html = p.read_text(encoding="utf-8")
    assert "空 &amp; &lt;b&gt;" in html
    with open(tmp_path / "report.csv", encoding="utf-8-sig", newline="") as f:
        assert list(csv.DictReader(f)) == []


def test_helpers():
    assert fmt_mmss(65.9) == "01:05"
    assert fmt_mmss(None) == "—"
    assert fmt_mmss(3725) == "62:05"
    assert highlight("aXb", "x") == [("a", False), ("X", True), ("b", False)]
    assert highlight("abc", "(", "regex") == [("abc", False)]  # bad regex: no crash
    assert highlight("", "x") == []


def test_csv_formula_injection_neutralised(tmp_path: Path):
    r = CallResult(call=CallInput(call_id="+8613800000000-1", agent_name="=HYPERLINK(1)"),
                   status="error", error="@SUM(A1)")
    write_batch_report([r], tmp_path)
    with open(tmp_path / "report.csv", encoding="utf-8-sig", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["call_id"] == "'+8613800000000-1"  # every cell, ids too (issue 17)
    assert row["agent_name"] == "'=HYPERLINK(1)"
    assert row["error"] == "'@SUM(A1)"


def test_call_times_in_team_time_zone(tmp_path):
    from dataclasses import replace as rep

    ok = _results()[0]
    utc = rep(ok, call=rep(ok.call, started_at="2026-11-23T01:12:05Z"))
    html = render_batch_html([utc])
    assert "<td>2026-11-23 09:12</td>" in html  # shown in Asia/Shanghai, not UTC
    assert "<td>2026-11-23 01:12</td>" in render_batch_html([utc], tz="UTC")


def test_engine_reasons_in_plain_chinese():
    from qa_inspect.reports.i18n import reason_text

    miss = "missing: /(工号|公号)(是)?\\d{3,6}/ in agent turns (first turns 3)"
    assert reason_text("fail", miss, title="自报工号", description="坐席在开场自报工号。") == "未找到：坐席在开场自报工号。"
    assert reason_text("fail", miss, title="自报工号") == "未找到：自报工号"  # no description: the title
    assert reason_text("hit", "2 hit(s): 不归我管, 我不知道") == "命中 2 处：不归我管、我不知道"
    assert reason_text("hit", "1 hit(s): agent_interruptions = 3 ≥ 2") == "命中 1 处：坐席抢话 = 3 ≥ 2"
    assert reason_text("pass", "found '您好' at turn 0") == "已说到“您好”（#0）"
    assert reason_text("pass", "max_silence_s = 0.6, not ≥ 10") == "最长静音 0.6（阈值 ≥ 10，未触发）"
    assert reason_text("fail", miss, title="x", which="en") == "not found: x"
    assert reason_text("pass", "something new") == "something new"  # unknown text: unchanged


def test_a_large_batch_page_shows_the_worst_and_alerted_calls_and_the_csv_holds_every_call(tmp_path):
    """A batch over the page's limit: the page keeps the lowest scores, the alerted calls and the
    error rows up to the limit (memory bounded by the limit, not the batch); every call is in
    report.csv, every alert in alerts.csv, and the page says how many more there are."""
    import csv as _csv

    base = _results()
    results = []
    for k in range(12):  # 12 copies of the four kinds of call, with distinct ids and scores
        for r in base:
            sc = r.score if r.score is None else replace(r.score, score=max(0.0, r.score.score - k))
            results.append(replace(r, call=replace(r.call, call_id=f"{r.call.call_id}-{k:02d}"), score=sc))
    out = tmp_path / "big"
    write_batch_report(iter(results), out, max_calls=5)  # any iterable: a generator from the store
    html = (out / "report.html").read_text(encoding="utf-8")
    ids_on_page = set(re.findall(r'<details id="call-\d+">\s*<summary>[^<]*?(C-[A-Z]+-\d\d)', html))
    scored = sorted((r for r in results if r.status == "ok"), key=lambda r: (r.score.score, r.call.call_id))
    worst = {r.call.call_id for r in scored[:5]}
    assert worst <= ids_on_page
    assert len(ids_on_page) <= 10  # the worst 5 and the calls of the first 5 alerts, no more
    assert 'id="calls-cut"' in html and 'id="alerts-cut"' in html and 'id="errors-cut"' in html
    assert re.search(r"<h2>通话列表 \(\d+ / 36\)</h2>", html)  # shown / all ok calls
    assert "<h2>错误 (12)</h2>" in html and html.count("<td>C-ERR-") == 5
    tickets = [{"id": k, "grade": "普通", "status": "待派单", "customer": f"c{k}", "opened_at": "", "owner": "—",
                "late": ""} for k in range(1, 9)]
    page = render_batch_html(results, max_calls=5, tickets=tickets)
    assert "<h2>投诉工单 (8)</h2>" in page and 'id="tickets-cut"' in page
    assert page.count('class="ticket') == 5
    with open(out / "report.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(_csv.DictReader(f))
    assert [r["call_id"] for r in rows] == [r.call.call_id for r in results]  # every call, input order
    with open(out / "alerts.csv", encoding="utf-8-sig", newline="") as f:
        alert_rows = list(_csv.reader(f))[1:]
    small = tmp_path / "small"
    write_batch_report(results, small, max_calls=1000)
    with open(small / "alerts.csv", encoding="utf-8-sig", newline="") as f:
        assert list(_csv.reader(f))[1:] == alert_rows  # the cut page loses no alert from the CSV
    full = (small / "report.html").read_text(encoding="utf-8")
    assert 'id="calls-cut"' not in full and 'id="alerts-cut"' not in full
    assert len(re.findall(r'<details id="call-\d+">', full)) == 36
