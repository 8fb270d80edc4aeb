"""The export records are built field by field (no dataclasses.asdict, issue 18): the dicts must
stay what asdict gave, and every field must be in them (a field added later and forgotten fails)."""
import json
from dataclasses import asdict, fields

from qa_inspect.records import Evidence, RuleResult, ScoreItem, Turn, Word


def _evidence():
    return (Evidence("agent", 3, 12.5, 14.0, "您好请问有什么可以帮您", matcher="pinyin", matched="您好≈你好",
                     confidence=0.8, heard=("您好",)),
            Evidence("customer", 7, None, None, "我要投诉", heard=["投诉", "我要"]))


def test_rule_result_and_score_item_dicts_are_what_asdict_gave():
    r = RuleResult("greeting", "问候", "opening", "major", True, "pass", 5.0, fatal=True, kind="required",
                   evidence=_evidence(), reason="found")
    want = asdict(r)
    want["evidence"] = [asdict(e) for e in r.evidence]
    got = r.to_dict()
    assert got == want and list(got) == [f.name for f in fields(RuleResult)]
    assert list(got["evidence"][0]) == [f.name for f in fields(Evidence)]
    assert json.dumps(got, ensure_ascii=False) == json.dumps(want, ensure_ascii=False)
    assert RuleResult.from_dict(json.loads(json.dumps(got))) == r

    item = ScoreItem("greeting", "opening", "fail", -5.0, possible=5.0, note="n/a", evidence="turn 3", turns=(3, 4))
    want = asdict(item)
    want["turns"] = list(item.turns)
    assert item.to_dict() == want and list(item.to_dict()) == [f.name for f in fields(ScoreItem)]
    assert ScoreItem.from_dict(json.loads(json.dumps(item.to_dict()))) == item


def test_turn_dict_is_what_asdict_gave():
    t = Turn("agent", "您好", 0.0, 1.5, words=(Word("您好", 0.0, 1.5, 0.9),), channel=0,
             metrics={"sentiment": 0.2, "interruptions": [1.0, 2.0], "x": {"a": 1}})
    want = asdict(t)
    assert t.to_dict() == want and list(t.to_dict()) == [f.name for f in fields(Turn)]


def test_is_filler_short_cached_and_long_agree():
    from qa_inspect.enrich.sentiment.lexicon import _is_filler, is_filler

    for text in ("", "嗯", "嗯嗯啊", "喂喂", "好的", "嗯好", "嗯" * 64, "嗯" * 65, "嗯" * 200 + "好"):
        assert is_filler(text) == _is_filler(text) == is_filler(text), text
    assert is_filler("嗯" * 65) and not is_filler("嗯" * 200 + "好")
