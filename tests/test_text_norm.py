"""Text normalisation for matching: Traditional→Simplified, numerals both ways, width, fillers."""
import pytest

from qa_inspect.records import Transcript, Turn
from qa_inspect.rules import evaluate, parse_pack
from qa_inspect.text import arabic_to_spoken, normalize, normalize_many, spoken_digits_to_arabic, to_simplified


def test_traditional_to_simplified():
    assert to_simplified("您好，這裡是客服中心，請問有什麼可以幫您？") == "您好，这里是客服中心，请问有什么可以帮您？"
    assert normalize("謝謝您的來電") == "谢谢您的来电"


@pytest.mark.parametrize("spoken, digits", [
    ("工号一二三四", "工号1234"),
    ("请拨打幺零零幺零", "请拨打10010"),          # telephone 幺 = 1
    ("尾号两八六", "尾号286"),                    # 两 read as a digit inside a run
    ("工号 一 二 三 四", "工号 1234"),            # ASR spacing inside the number
    ("号码是一三八零零一三八零零零", "号码是13800138000"),
])
def test_spoken_digits_to_arabic(spoken, digits):
    assert spoken_digits_to_arabic(spoken) == digits


def test_quantities_are_not_digit_strings():
    assert spoken_digits_to_arabic("三个月内退还两百元") == "三个月内退还两百元"


def test_arabic_to_spoken_and_back():
    assert arabic_to_spoken("工号1234") == "工号一二三四"
    assert arabic_to_spoken("10010", one="幺") == "幺零零幺零"
    for n in ("1234", "10086", "5321"):
        assert spoken_digits_to_arabic(arabic_to_spoken(n, one="幺")) == n


def test_full_width_to_half_width_and_lower_case():
    assert normalize("ＶＩＰ客户，工号１２３４！") == "vip客户工号1234"
    assert normalize("Ｈｅｌｌｏ　Ｗｏｒｌｄ") == "helloworld"


def test_fillers_dropped_for_matching_only():
    verbatim = "嗯，那个，您好啊，请问有什么可以帮您？"
    assert normalize(verbatim, drop_fillers=True) == "您好请问有什么可以帮您"
    assert normalize(verbatim) == "嗯那个您好啊请问有什么可以帮您"  # without the flag they stay
    assert normalize("我想查一下话费余额", drop_fillers=True) == "我想查一下话费余额"  # 额 is not a filler


def test_normalize_many_matches_one_by_one():
    texts = ["嗯，工號一二三四", "幺零零幺零", "", "ＯＫ，那个好的"]
    assert normalize_many(texts, drop_fillers=True) == [normalize(t, drop_fillers=True) for t in texts]


def test_rules_match_normalised_text_and_evidence_keeps_verbatim():
    pack, problems = parse_pack("""
pack: {id: t}
rules:
  - id: self_id
    kind: required
    severity: minor
    deduction: 5
    match: {role: agent, regex: "工号\\\\d{4}"}
  - id: help
    kind: required
    severity: minor
    deduction: 5
    match: {role: agent, any: [请问有什么可以帮您]}
""", "t.yaml")
    assert not problems
    said = "嗯，您好，這裡是客服，工號幺二三四，那个，請問有什麼可以幫您？"
    tr = Transcript("c", "zh", (Turn("agent", said, 0.0, 5.0),))
    r1, r2 = evaluate(pack, tr, {})
    assert r1.matched and r2.matched
    assert r1.evidence[0].text == said and r2.evidence[0].text == said  # display text is verbatim
