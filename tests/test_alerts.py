"""Risk alerts: which calls, in which order, with evidence and time; alerts.csv beside the
batch report; talk metrics in the batch report."""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from dataclasses import replace

import pytest

from qa_inspect.errors import RuleError
from qa_inspect.records import CallInput, CallResult, Evidence, RuleResult, Score, ScoreItem, Transcript, Turn
from qa_inspect.reports.alerts import (NEGATIVE_END, AlertTag, alert_policy, call_alerts, collect_alerts,
                                       talk_metrics)
from qa_inspect.rules import load_pack
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


def _complaint(severity="major"):
    return RuleResult(rule_id="complaint_intent", title="客户投诉意向", category="风险", severity=severity,
                      matched=True, outcome="hit", deduction=0, kind="risk",
                      evidence=(Evidence("customer", 1, 3.0, 9.5, "你们太差了，我不满意！", "pinyin", "不满意", 0.8),
                                Evidence("customer", 1, 3.0, 9.5, "你们太差了，我不满意！", "keyword", "太差", 1.0)))


POLICY = {"complaint_intent": (AlertTag("high", "negative_end"), AlertTag("watch")),
          "escalation_risk": (AlertTag("urgent"),)}


def test_one_line_per_call_levels_and_evidence():
    res = _results() + [_call("C-both", agent="A05", score=60.0, rules=[_risk(), _complaint()],
                              metrics={"customer_sentiment_end": -0.9})]
    alerts = collect_alerts(res, {"": POLICY})
    assert [(a.call_id, a.level, a.reason) for a in alerts] == [
        ("C-fatal", "urgent", "fatal"), ("C-both", "urgent", "risk"), ("C-risk", "urgent", "risk"),
        ("C-neg", "watch", "negative_end")]
    assert len({a.call_id for a in alerts}) == len(alerts)  # one line per call
    both = alerts[1]
    # the strongest reason first; the others listed after it
    assert both.rule_id == "escalation_risk"
    assert both.others() == ["高·风险：客户投诉意向", "关注·客户情绪差：客户结束时情绪很差"]
    risk = alerts[2]
    # equally confident evidence: the earliest first (the supervisor listens from there)
    assert (risk.time, risk.evidence, risk.detail) == ("01:01", f"找媒体曝光 {XSS}", "媒体")
    neg = alerts[3]
    # the customer's last words are the evidence of a negative ending, at 06:12
    assert (neg.evidence, neg.time, neg.role, neg.turn) == ("算了，再见。", "06:12", "customer", 3)
    assert "-0.82" in neg.detail
    assert call_alerts(_results()[-1]) is None  # error rows have nothing to act on


def test_complaint_level_depends_on_the_ending_and_pack_config():
    neg = _call("C1", rules=[_complaint()], metrics={"customer_sentiment_end": -0.9})
    calm = _call("C2", rules=[_complaint()], metrics={"customer_sentiment_end": 0.3})
    assert call_alerts(neg, POLICY).level == "high"
    assert call_alerts(calm, POLICY).level == "watch"
    # strongest evidence first: the exact keyword (confidence 1.0) before the pinyin guess
    assert call_alerts(calm, POLICY).detail == "太差"
    # without pack configuration: by severity (critical → urgent, else watch)
    assert call_alerts(neg).level == "watch"
    assert call_alerts(_call("C3", rules=[_complaint("critical")])).level == "urgent"
    assert call_alerts(calm, {"complaint_intent": (AlertTag(None),)}) is None  # alert:none


def test_fatal_scorecard_item_always_alerts():
    """A scorecard fatal item (the pack's rule is not fatal itself) is an urgent alert."""
    rude = RuleResult(rule_id="forbidden_phrase", title="服务禁语", category="服务", severity="critical",
                      matched=True, outcome="hit", deduction=20, kind="forbidden",
                      evidence=(Evidence("agent", 1, 12.0, 14.0, "这个不归我管", "keyword", "不归我管"),))
    sc = Score(0.0, "D", True, breakdown=(ScoreItem("forbidden_phrase", "fatal", "hit", -100.0),))
    r = replace(_call("C-rude", rules=[rude]), score=sc)
    a = call_alerts(r)
    assert (a.level, a.reason, a.rule_id, a.evidence, a.time) == ("urgent", "fatal", "forbidden_phrase",
                                                                  "这个不归我管", "00:12")


def test_alert_tags_are_checked(root):
    pack = load_pack(root / "rules/customer_service_zh.yaml")
    pol = alert_policy(pack)
    assert pol["escalation_threat"] == (AlertTag("urgent"),)
    assert AlertTag("high", "customer_negative_end") in pol["customer_complaint"]
    bad = replace(pack, rules=tuple(replace(r, tags=("alert:严重",)) if r.id == "customer_complaint" else r
                                    for r in pack.rules))
    with pytest.raises(RuleError, match="unknown alert level.*alert:严重"):
        alert_policy(bad)
    bad = replace(pack, rules=tuple(replace(r, tags=("alert:高+nope",)) if r.id == "customer_complaint" else r
                                    for r in pack.rules))
    with pytest.raises(RuleError, match="'nope'"):
        alert_policy(bad)


def test_threshold_is_configurable():
    res = _results()
    assert {a.call_id for a in collect_alerts(res, negative_end=0.7) if a.reason == "negative_end"} == \
        {"C-clean", "C-neg", "C-boundary"}


def test_batch_report_writes_alerts_csv_and_lists_alerts_first(tmp_path):
    html_path = write_batch_report(_results(), tmp_path)
    rows = list(csv.DictReader((tmp_path / "alerts.csv").open(encoding="utf-8-sig")))
    assert [(r["通话ID"], r["级别"], r["原因"], r["时间点"]) for r in rows] == [
        ("C-fatal", "紧急", "一票否决", "01:15"), ("C-risk", "紧急", "风险", "01:01"),
        ("C-neg", "关注", "客户情绪差", "06:12")]
    assert rows[1]["坐席"] == "李四" and rows[1]["证据原句"] == f"找媒体曝光 {XSS}"
    assert rows[0]["证据原句"].startswith("'=SUM")  # formula neutralised for Excel
    html = html_path.read_text(encoding="utf-8")
    assert html.index('id="risk"') < html.index('id="calls"')
    risk_section = html[html.index('id="risk"'):html.index('id="calls"')]
    for cid in ("C-risk", "C-fatal", "C-neg"):
        assert f'data-call-id="{cid}"' in risk_section
    # urgent ones shown, the watch level folded
    folded = risk_section[risk_section.index('<details id="watch">'):]
    assert 'data-call-id="C-neg"' in folded and 'data-call-id="C-fatal"' not in folded
    assert "C-clean" not in risk_section and "C-boundary" not in risk_section
    assert "算了，再见。" in risk_section and "alerts.csv" in risk_section
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_alerts_csv_written_even_without_alerts(tmp_path):
    write_batch_report([_call("C-ok")], tmp_path)
    lines = (tmp_path / "alerts.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 1 and lines[0].startswith("级别,通话ID")
    write_batch_report([_call("C-ok")], tmp_path, lang="en")
    assert (tmp_path / "alerts.csv").read_text(encoding="utf-8-sig").startswith("level,call_id")


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
    by = {x["通话ID"]: x for x in rows}
    assert len(by) == len(rows)  # one line per call
    assert by["zh_billing_12315"]["说明"] == "12315" and by["zh_billing_12315"]["时间点"] == "00:19"
    assert by["zh_billing_12315"]["级别"] == "紧急"  # escalation_risk is tagged alert:紧急 in the pack
    # zh_media_threat's customer ends at -0.8 (the fixture's sentiment metric): listed after the threat
    assert "客户情绪差" in by["zh_media_threat"]["其他原因"]
    # the scorecard's fatal item (禁语) alerts, the pack's scorecard being the default
    assert by["zh_forbidden_phrase"]["级别"] == "紧急" and by["zh_forbidden_phrase"]["原因"] == "一票否决"


MUSIED = Path(__file__).resolve().parents[2] / "shared" / "data" / "dialogues-zh" / "musied-dev-calls.jsonl"


@pytest.mark.skipif(not MUSIED.is_file(), reason="../shared/data (MUSIED calls) not present")
def test_real_musied_calls_fatal_calls_alert_and_levels_are_few(root, tmp_path):
    """The 339 real hotline calls: every fatal call (telecom_zh's 禁语, 一票否决 by its default
    scorecard) is an urgent alert line; with customer_service_zh one line per call, and the
    urgent + high levels are a minority of the calls."""
    import json
    import sys

    from qa_inspect.batch.inputs import read_input
    from qa_inspect.batch.score import score_transcript
    from qa_inspect.cli.config import load_packs

    sys.path.insert(0, str(root / "bench"))
    from musied_to_transcripts import convert_line

    src = tmp_path / "m.jsonl"
    with open(src, "w", encoding="utf-8") as out:
        for line in MUSIED.read_text(encoding="utf-8").splitlines():
            if line.strip() and (c := convert_line(json.loads(line)))["turns"]:
                out.write(json.dumps(c, ensure_ascii=False) + "\n")
    items = read_input(src)
    assert len(items) == 339
    for pack in ("telecom_zh", "customer_service_zh"):
        packs = load_packs([str(root / f"rules/{pack}.yaml")])
        scored = packs.for_language("zh")
        res = [score_transcript(it, it.transcript, scored) for it in items]
        alerts = collect_alerts(res, {scored.pack.id: alert_policy(scored.pack)})
        by = {a.call_id: a for a in alerts}
        assert len(by) == len(alerts)  # one line per call
        fatal = {r.call.call_id for r in res if r.score.fatal}
        assert all(by[c].level == "urgent" and by[c].reason == "fatal" for c in fatal)
        if pack == "telecom_zh":
            assert fatal  # 禁语 calls exist in the real data
        else:
            levels = Counter(a.level for a in alerts)
            assert levels["urgent"] + levels["high"] < 0.3 * len(res)
