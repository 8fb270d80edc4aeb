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


def test_rule_regexes_find_what_python_re_finds():
    """RE2 (with the first-character pre-check that skips most searches) finds the same first
    match as Python's re on ordinary patterns, in the engine's turn search too."""
    import random
    import re

    from qa_inspect.rules import prepare
    from qa_inspect.rules.regex import first_chars

    patterns = [r"^您好", r"再见$", r"^好的$", r"(工号|公号)(是)?\d{3,6}", r"不是(要)?投诉|不投诉|12315",
                r"[^的]{2}的", r"您.*服务", r"((ab)|c)d", r"(?:x|y)z", r"(a+)+$", r"撤销|撤回"]
    words = ["您好", "工号1234", "公号是567", "为您服务", "好的", "不是投诉", "不投诉", "12315", "abc", "cd",
             "xz", "aaa", "再见", "的", "我", "撤回"]
    rng = random.Random(7)
    for pat in patterns:
        rx = compile_regex(pat)
        for _ in range(200):
            s = "".join(rng.choice(words) for _ in range(rng.randint(0, 5)))
            m = re.search(pat, s)
            assert rx.search(s) == (m.group(0) if m else None), (pat, s)
            assert rx.may_match(s) or m is None, (pat, s, first_chars(pat))
            (t,) = prepare(_call(s))
            if t.norm == s:
                assert t.search(rx) == (m.group(0) if m else None), (pat, s)
