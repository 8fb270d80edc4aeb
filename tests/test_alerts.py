"""Risk alerts: which calls, in which order, with evidence and time; alerts.csv beside the
batch report; talk metrics in the batch report."""
from __future__ import annotations

import csv

from qa_inspect.records import CallInput, CallResult, Evidence, RuleResult, Score, Transcript, Turn
from qa_inspect.reports.alerts import NEGATIVE_END, call_alerts, collect_alerts, talk_metrics
from qa_inspect.reports.batch import write_batch_report

XSS = "<img src=x onerror=alert(1)>"


def _call(cid, agent="A01", name="张三", score=90.0, fatal=False, rules=(), metrics=None, turns=None):
    turns = turns or (Turn("agent", "您好", 0.0, 2.0), Turn("customer", "好的", 3.0, 4.0))
    return CallResult(call=CallInput(call_id=cid, agent_id=agent, agent_name=name, team="一组",
                                     started_at="2026-11-23T09:00:00+08:00"),
                      status="ok", transcript=Transcript(call_id=cid, language="zh", turns=turns),
                      rules=tuple(rules), score=Score(score, "A" if score >= 90 else "C", fatal),
                      metrics=dict(metrics or {}))


def _risk():
    return RuleResult(rule_id="escalation_risk", title="升级投诉风险", category="风险", severity="critical",
                      matched=True, outcome="hit", deduction=0, kind="risk",
                      evidence=(Evidence("customer", 3, 125.4, 130.0, "我要打12315投诉你们", "keyword", "12315"),
                                Evidence("customer", 1, 61.0, 63.0, f"找媒体曝光 {XSS}", "keyword", "媒体")))


def _fatal():
    return RuleResult(rule_id="id_leak", title="泄露身份证", category="合规", severity="fatal", matched=True,
                      outcome="hit", deduction=100, fatal=True, kind="forbidden",
                      evidence=(Evidence("agent", 2, 75.0, 78.0, "=SUM(A1) 您的身份证号是…", "regex", "身份证"),))


def _results():
    neg_turns = (Turn("agent", "您好", 0.0, 2.0), Turn("customer", "你们太差了，我不满意！", 3.0, 9.5),
                 Turn("agent", "抱歉", 10.0, 11.0), Turn("customer", "算了，再见。", 372.0, 375.0))
    return [
        _call("C-clean", metrics={"customer_sentiment_end": 0.6, "speech_rate_agent": 250.0}),
        _call("C-risk", agent="A02", name="李四", score=95.0, rules=[_risk()]),
        _call("C-fatal", agent="A03", name="王五", score=0.0, fatal=True, rules=[_fatal()]),
        _call("C-neg", agent="A04", name="赵六", score=70.0, turns=neg_turns,
              metrics={"customer_sentiment_end": -0.82, "silence_share": 0.125}),
        _call("C-boundary", metrics={"customer_sentiment_end": NEGATIVE_END}),  # not below: no alert
        CallResult(call=CallInput(call_id="C-error"), status="error", error="cannot decode"),
    ]


def test_alert_reasons_order_and_evidence():
    alerts = collect_alerts(_results())
    assert [(a.call_id, a.reason) for a in alerts] == [
        ("C-risk", "risk"), ("C-fatal", "fatal"), ("C-neg", "negative_end")]
    risk = alerts[0]
    # the earliest evidence of the rule is where to listen from
    assert (risk.time, risk.evidence, risk.detail) == ("01:01", f"找媒体曝光 {XSS}", "媒体")
    neg = alerts[2]
    # the customer's last words are the evidence of a negative ending, at 06:12
    assert (neg.evidence, neg.time, neg.role, neg.turn) == ("算了，再见。", "06:12", "customer", 3)
    assert "-0.82" in neg.detail
    assert call_alerts(_results()[-1]) == []  # error rows have nothing to act on


def test_threshold_is_configurable():
    res = _results()
    assert {a.call_id for a in collect_alerts(res, negative_end=0.7) if a.reason == "negative_end"} == \
        {"C-clean", "C-neg", "C-boundary"}


def test_batch_report_writes_alerts_csv_and_lists_alerts_first(tmp_path):
    html_path = write_batch_report(_results(), tmp_path)
    rows = list(csv.DictReader((tmp_path / "alerts.csv").open(encoding="utf-8-sig")))
    assert [(r["call_id"], r["reason"], r["time"]) for r in rows] == [
        ("C-risk", "risk", "01:01"), ("C-fatal", "fatal", "01:15"), ("C-neg", "negative_end", "06:12")]
    assert rows[0]["agent_name"] == "李四" and rows[0]["evidence"] == f"找媒体曝光 {XSS}"
    assert rows[1]["evidence"].startswith("'=SUM")  # formula neutralised for Excel
    html = html_path.read_text(encoding="utf-8")
    assert html.index('id="risk"') < html.index('id="calls"')
    risk_section = html[html.index('id="risk"'):html.index('id="calls"')]
    for cid in ("C-risk", "C-fatal", "C-neg"):
        assert f'data-call-id="{cid}"' in risk_section
    assert "C-clean" not in risk_section and "C-boundary" not in risk_section
    assert "算了，再见。" in risk_section and "alerts.csv" in risk_section
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_alerts_csv_written_even_without_alerts(tmp_path):
    write_batch_report([_call("C-ok")], tmp_path)
    lines = (tmp_path / "alerts.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 1 and lines[0].startswith("priority,call_id")


def test_talk_metrics_shown_when_present_dash_when_absent(tmp_path):
    shown = dict((k, v) for k, _, v in talk_metrics({"silence_share": 0.125, "talk_ratio": 1.5,
                                                       "customer_sentiment_end": -0.82}))
    assert shown["silence_share"] == "12%" and shown["talk_ratio"] == "1.50"
    assert shown["customer_sentiment_end"] == "-0.82" and shown["speech_rate_agent"] == "—"
    html = write_batch_report(_results(), tmp_path).read_text(encoding="utf-8")
    assert 'data-metric="speech_rate_agent">250.0<' in html
    assert 'data-metric="silence_share">12%<' in html
    assert 'data-metric="agent_sentiment_mean">—<' in html


def test_rescore_cli_writes_alerts_csv(root, samples, tmp_path):
    from click.testing import CliRunner

    from qa_inspect.cli import main
    from report_fixtures import build_db

    db = build_db(root, samples, tmp_path / "qa.db")  # scored sample calls (no model loading)
    r = CliRunner().invoke(main, ["rescore", "--db", str(db), "--out", str(tmp_path / "rep"),
                                  "--rules", str(root / "rules/telecom_zh.yaml"),
                                  "--rules", str(root / "rules/telecom_en.yaml")])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader((tmp_path / "rep" / "alerts.csv").open(encoding="utf-8-sig")))
    assert {"zh_billing_12315", "zh_media_threat"} <= {x["call_id"] for x in rows}
    assert any(x["detail"] == "12315" and "12315" in x["evidence"] and x["time"] == "00:19" for x in rows)
    # zh_media_threat's customer ends at -0.8 (the fixture's sentiment metric): a negative-end alert
    assert any(x["call_id"] == "zh_media_threat" and x["reason"] == "negative_end" for x in rows)
