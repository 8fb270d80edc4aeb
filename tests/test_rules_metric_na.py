"""A metric rule whose metric is missing (a transcript without times: 抢话, 静音, 语速) is n/a,
not passed, and the scorecard counts it as n/a: no points either way (issue 14)."""
from qa_inspect.enrich.talk import talk_metrics
from qa_inspect.records import Transcript, Turn
from qa_inspect.rules import evaluate, load_pack, parse_pack
from qa_inspect.scoring import score
from qa_inspect.scoring.scorecard import load_scorecard

METRIC_RULES = ("long_silence", "agent_interrupts", "speech_too_fast")


def _call(timed: bool) -> Transcript:
    lines = [("agent", "您好，工号1234，很高兴为您服务"), ("customer", "我想查一下话费"),
             ("agent", "好的，请稍等，我帮您查询"), ("customer", "好的谢谢"),
             ("agent", "还有什么可以帮您？感谢您的来电，再见")]
    turns = tuple(Turn(role=r, text=t, start=i * 4.0 if timed else None, end=i * 4.0 + 3.0 if timed else None)
                  for i, (r, t) in enumerate(lines))
    return Transcript(call_id="c1", language="zh", turns=turns)


def test_metric_rules_are_na_without_times(root):
    pack = load_pack(root / "rules/telecom_zh.yaml")
    tr = _call(timed=False)
    by_id = {r.rule_id: r for r in evaluate(pack, tr, talk_metrics(tr))}
    for rid in METRIC_RULES:
        r = by_id[rid]
        assert r.outcome == "n/a" and r.deduction == 0 and not r.matched, r
        assert "not available" in r.reason and r.reason.startswith("not applicable")
    timed = _call(timed=True)
    by_id = {r.rule_id: r for r in evaluate(pack, timed, talk_metrics(timed))}
    assert by_id["long_silence"].outcome == "pass" and by_id["agent_interrupts"].outcome == "pass"


def test_scorecard_counts_missing_metrics_as_na(root):
    pack = load_pack(root / "rules/telecom_zh.yaml")
    card = load_scorecard(root / "rules/scorecard_telecom_zh.yaml", pack)
    untimed, timed = _call(timed=False), _call(timed=True)
    s_untimed = score(pack, evaluate(pack, untimed, talk_metrics(untimed)), card)
    items = {i.rule_id: i for i in s_untimed.breakdown}
    for rid in METRIC_RULES:
        assert items[rid].outcome == "n/a" and items[rid].points == 0, items[rid]
    s_timed = score(pack, evaluate(pack, timed, talk_metrics(timed)), card)
    timed_items = {i.rule_id: i for i in s_timed.breakdown}
    assert timed_items["long_silence"].outcome == "pass"


def test_composed_rule_with_a_missing_metric_is_na():
    pack, problems = parse_pack("""pack: {id: p}
rules:
  - id: silent_and_rude
    kind: forbidden
    severity: minor
    deduction: 3
    conditions:
      silent: {metric: {name: max_silence_s, op: ge, value: 10}}
      rude: {role: agent, any: [不知道]}
    match: "silent or rude"
""", "p.yaml")
    assert not problems, problems
    tr = _call(timed=False)
    (r,) = evaluate(pack, tr, talk_metrics(tr))
    assert r.outcome == "n/a" and "max_silence_s not available" in r.reason
    (r,) = evaluate(pack, tr, {"max_silence_s": 12.0})
    assert r.outcome == "hit" and r.deduction == 3
