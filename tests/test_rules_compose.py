"""Boolean composition of named conditions, repetition and metric hooks in the rule language."""
from __future__ import annotations

import pytest

from qa_inspect.errors import RuleError
from qa_inspect.records import Transcript, Turn
from qa_inspect.rules.engine import evaluate
from qa_inspect.rules.loader import load_pack, parse_expression, parse_pack


def _tr(*turns: tuple[str, str]) -> Transcript:
    ts = tuple(Turn(role=r, text=t, start=i * 5.0, end=i * 5.0 + 4.0) for i, (r, t) in enumerate(turns))
    return Transcript(call_id="c", language="zh", turns=ts, duration=len(ts) * 5.0)


def _pack(rules: str) -> str:
    return "pack: {id: t}\nrules:\n" + rules


def _ok(rules: str):
    pack, problems = parse_pack(_pack(rules), "p.yaml")
    assert not problems, [str(p) for p in problems]
    return pack


def _errors(rules: str) -> list[str]:
    pack, problems = parse_pack(_pack(rules), "p.yaml")
    assert pack is None
    return [str(p) for p in problems]


COMPOSED = """\
  - id: polite
    kind: required
    conditions:
      greet: {role: agent, any: [您好]}
      rude: {role: agent, any: [闭嘴]}
      apology: {role: agent, any: [抱歉]}
      ownership: {role: agent, any: [我来处理]}
    match: "greet and not rude and 1 of (apology, ownership)"
"""


def test_expression_parse_and_precedence():
    e = parse_expression("a or b and not c")
    assert e.op == "or" and e.items[1].op == "and" and e.items[1].items[1].op == "not"
    assert str(parse_expression("(a or b) and c")) == "(a or b) and c"
    e = parse_expression("2 of (a, b, c)")
    assert (e.op, e.n, len(e.items)) == ("of", 2, 3)
    assert parse_expression("all of (a, b)").op == "and"
    for bad in ("a and", "a b", "(a", "3 of (a, b)", "a & b", "", "not"):
        with pytest.raises(ValueError):
            parse_expression(bad)


def test_composed_evaluation():
    pack = _ok(COMPOSED)
    (r,) = evaluate(pack, _tr(("agent", "您好"), ("customer", "网断了"), ("agent", "抱歉，我来处理")))
    assert r.outcome == "pass" and r.matched
    assert {e.matched for e in r.evidence} == {"您好", "抱歉", "我来处理"}
    (r,) = evaluate(pack, _tr(("agent", "您好"), ("agent", "闭嘴，抱歉")))
    assert r.outcome == "fail" and not r.evidence and "rude found" in r.reason
    (r,) = evaluate(pack, _tr(("agent", "您好"), ("agent", "好的")))
    assert r.outcome == "fail" and "apology not found" in r.reason


def test_n_of_and_all_of_and_when_expression():
    pack = _ok("""\
  - id: two_of
    kind: risk
    conditions:
      a: {any: [投诉]}
      b: {any: [曝光]}
      c: {any: [律师]}
      cust: {role: customer, any: [客户]}
    when: "cust or c"
    match: "2 of (a, b, c)"
  - id: all_of
    kind: forbidden
    conditions:
      a: {any: [投诉]}
      b: {any: [曝光]}
    match: "all of (a, b)"
""")
    r1, r2 = evaluate(pack, _tr(("customer", "客户说我要投诉，还要曝光")))
    assert r1.outcome == "hit" and {e.matched for e in r1.evidence} == {"投诉", "曝光"}
    assert r2.outcome == "hit"
    r1, r2 = evaluate(pack, _tr(("customer", "我要投诉")))
    assert r1.outcome == "n/a" and "not applicable" in r1.reason
    assert r2.outcome == "pass"


@pytest.mark.parametrize("rules, expect", [
    ("  - id: r\n    conditions:\n      a: {any: [x]}\n    match: \"a and b\"\n", "p.yaml:6: rule 'r' match: unknown condition 'b'"),
    ("  - id: r\n    conditions:\n      a: {any: [x]}\n    match: \"a and\"\n", "p.yaml:6: rule 'r' match: bad expression"),
    ("  - id: r\n    conditions:\n      a: {any: [x]}\n      b: {any: [y]}\n    match: \"a\"\n",
     "p.yaml:6: rule 'r': condition 'b' is defined but not used"),
    ("  - id: r\n    conditions:\n      a: {any: [x]}\n    match: {any: [x]}\n", "p.yaml:6: rule 'r': with 'conditions:'"),
    ("  - id: r\n    match: \"a\"\n", "p.yaml:4: rule 'r': a string 'match'"),
    ("  - id: r\n    conditions:\n      a: {any: [x]}\n    when: \"a or zz\"\n    match: \"a\"\n",
     "p.yaml:6: rule 'r' when: unknown condition 'zz'"),
    ("  - id: r\n    match: {repeated: 1}\n", "p.yaml:4: rule 'r' match: 'repeated' must be an integer ≥ 2"),
    ("  - id: r\n    match: {metric: {name: loudness, op: gt, value: 1}}\n", "unknown metric 'loudness' (allowed: speech_rate_cpm"),
    ("  - id: r\n    match: {metric: {name: talk_ratio, op: eq, value: 1}}\n", "metric 'op' must be one of gt, ge, lt, le"),
    ("  - id: r\n    match: {any: [x], metric: {name: talk_ratio, op: gt, value: 1}}\n", "cannot be combined with any"),
])
def test_loader_errors(rules, expect):
    errs = _errors(rules)
    assert any(expect in e for e in errs), errs


def test_load_pack_error_has_file_line(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(_pack("  - id: r\n    conditions:\n      a: {any: [x]}\n    match: \"a or (b\"\n"), encoding="utf-8")
    with pytest.raises(RuleError) as ei:
        load_pack(p)
    assert f"{p}:6" in str(ei.value) and "bad expression" in str(ei.value)


def test_repeated_sentence():
    pack = _ok("  - id: parrot\n    kind: forbidden\n    match: {role: agent, repeated: 3}\n")
    tr = _tr(("agent", "请您重启一下光猫。"), ("customer", "重启过了"), ("agent", "好的。请您重启一下光猫！"),
             ("customer", "没用"), ("agent", "请您重启一下光猫"))
    (r,) = evaluate(pack, tr)
    assert r.outcome == "hit" and [e.turn for e in r.evidence] == [0, 2, 4]
    assert {e.matched for e in r.evidence} == {"请您重启一下光猫"} and r.evidence[0].matcher == "repeated"
    (r,) = evaluate(pack, _tr(("agent", "请您重启一下光猫"), ("agent", "请您重启一下光猫"),
                              ("customer", "请您重启一下光猫")))
    assert r.outcome == "pass"  # only twice by the agent


def test_metric_conditions_and_pipeline_hook():
    pack = _ok("""\
  - id: long_silence
    kind: forbidden
    deduction: 3
    match: {metric: {name: max_silence_s, op: gt, value: 10}}
  - id: calm_end
    kind: required
    match: {metric: {name: customer_sentiment_end, op: lt, value: 0.5}}
""")
    tr = _tr(("agent", "您好"))
    r1, r2 = evaluate(pack, tr, {"max_silence_s": 12.3, "customer_sentiment_end": 0.2})
    assert r1.outcome == "hit" and r1.deduction == 3
    (e,) = r1.evidence
    assert (e.role, e.turn, e.start, e.end, e.matcher, e.text) == ("any", -1, None, None, "metric",
                                                                    "max_silence_s = 12.3 > 10")
    assert r2.outcome == "pass"
    r1, r2 = evaluate(pack, tr, {"max_silence_s": 4, "customer_sentiment_end": 0.7})
    assert r1.outcome == "pass" and r2.outcome == "fail"
    r1, r2 = evaluate(pack, tr)
    assert r1.outcome == "n/a" and "metric max_silence_s not available" in r1.reason
    assert r2.outcome == "n/a" and "metric customer_sentiment_end not available" in r2.reason
    # the pipeline passes talk metrics (computed from timestamps) to the rules
    from qa_inspect.batch.inputs import WorkItem
    from qa_inspect.batch.pipeline import score_transcript
    from qa_inspect.records import CallInput

    gap = Transcript(call_id="g", language="zh", duration=30.0,
                     turns=(Turn(role="agent", text="您好", start=0.0, end=2.0),
                            Turn(role="customer", text="喂", start=15.0, end=16.0)))
    res = score_transcript(WorkItem(call=CallInput(call_id="g"), transcript=gap), gap, pack)
    assert res.rules[0].outcome == "hit" and res.rules[0].evidence[0].text == "max_silence_s = 13 > 10"


def test_metric_in_composition():
    pack = _ok("""\
  - id: silent_and_angry
    kind: risk
    conditions:
      silent: {metric: {name: max_silence_s, op: ge, value: 10}}
      angry: {role: customer, any: [投诉]}
    match: "silent and angry"
""")
    (r,) = evaluate(pack, _tr(("customer", "我要投诉")), {"max_silence_s": 10})
    assert r.outcome == "hit" and {e.matcher for e in r.evidence} == {"metric", "keyword"}
    (r,) = evaluate(pack, _tr(("customer", "我要投诉")))
    assert r.outcome == "n/a" and "metric max_silence_s not available" in r.reason
