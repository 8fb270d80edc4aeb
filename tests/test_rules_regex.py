"""Rule regexes run on RE2 (issue 17): a catastrophic pattern cannot hang a batch, and a pattern
RE2 cannot run is a load error with file:line."""
import time

import pytest

from qa_inspect.records import Transcript, Turn
from qa_inspect.rules import evaluate, parse_pack
from qa_inspect.rules.regex import compile_regex


def _pack(regex_lines: str, kind: str = "forbidden"):
    text = f"""pack: {{id: p}}
rules:
  - id: r
    kind: {kind}
    severity: minor
    deduction: 1
    match:
      role: any
{regex_lines}"""
    return parse_pack(text, "p.yaml")


def _call(*texts):
    return Transcript(call_id="c", language="zh",
                      turns=tuple(Turn(role="customer", text=t, start=float(i), end=i + 0.5)
                                  for i, t in enumerate(texts)))


def test_catastrophic_regex_on_a_long_turn_returns_in_milliseconds():
    pack, problems = _pack("      regex: '(a+)+$'\n")
    assert not problems
    long_turn = "a" * 100_000 + "b"  # no match: Python's re backtracks ~2^100000 steps here
    t0 = time.perf_counter()
    (res,) = evaluate(pack, _call("你好", long_turn))
    assert time.perf_counter() - t0 < 0.5
    assert res.outcome == "pass"
    (res,) = evaluate(pack, _call("aaaa"))
    assert res.outcome == "hit" and res.evidence[0].matched == "aaaa"


def test_exclude_regex_is_safe_too():
    pack, problems = _pack("      any: [投诉]\n      exclude_regex: '(x+x+)+y'\n")
    assert not problems
    t0 = time.perf_counter()
    (res,) = evaluate(pack, _call("我要投诉" + "x" * 50_000))
    assert time.perf_counter() - t0 < 0.5 and res.outcome == "hit"
    (res,) = evaluate(pack, _call("我要投诉xxy"))
    assert res.outcome == "pass"


@pytest.mark.parametrize("pattern, says", [(r"(a)\1", "invalid escape sequence"),
                                           (r"(?<=工号)\d+", "invalid perl operator"),
                                           ("[", "missing ]")])
def test_a_pattern_re2_cannot_compile_is_a_load_error_with_line(pattern, says):
    pack, problems = _pack(f"      regex: '{pattern}'\n")
    assert pack is None
    msg = str(problems[0])  # (then: the condition, left without its regex, can never match)
    assert msg.startswith("p.yaml:9: rule 'r' match: bad regex in 'regex': ") and says in msg and "RE2" in msg, msg


def test_unicode_classes_mean_what_they_meant_under_python_re():
    assert compile_regex(r"工号\d{4}").search("工号１２３４") == "工号１２３４"  # any Unicode digit
    assert compile_regex(r"\w+").search("！您好abc_1") == "您好abc_1"
    assert compile_regex(r"[\d]+").search("x١٢") == "١٢"
    assert compile_regex(r"\W").search("您好，") == "，"
    assert compile_regex(r"[^\]]+").search("]]ab") == "ab"


def test_one_search_per_call_gives_what_searching_each_turn_gives():
    """``evaluate`` searches a regex once over the whole call (turns as lines); a rule evaluated
    without the call index searches turn by turn: both must agree, anchors included."""
    import random

    from qa_inspect.rules import evaluate_rule, prepare

    patterns = [r"^您好", r"再见$", r"^好的$", r"工号\d{3,6}", r"(不是)?投诉|12315", r"\b[a-z]+\b",
                r"[^的]{2}的", r"您.*服务", r"您好.+再见"]
    words = ["您好", "工号1234", "为您服务", "好的", "不是投诉", "投诉", "12315", "abc", "再见", "的", "我"]
    rng = random.Random(7)
    for pat in patterns:
        for kind, key in (("risk", "regex"), ("forbidden", "exclude_regex")):
            body = f"      {key}: '{pat}'\n" + ("      any: [投诉, 您好, 好的]\n" if key == "exclude_regex" else "")
            pack, problems = _pack(body, kind)
            assert not problems, problems
            for _ in range(30):
                tr = _call(*("".join(rng.choice(words) for _ in range(rng.randint(0, 4)))
                             for _ in range(rng.randint(1, 9))))
                (fast,) = evaluate(pack, tr)
                slow = evaluate_rule(pack.rules[0], prepare(tr), tr.duration)
                assert fast == slow, (pat, key, [t.text for t in tr.turns])
