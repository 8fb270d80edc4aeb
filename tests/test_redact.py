"""Personal-data redaction: numbers as digits / Chinese numerals / English words, names,
addresses; what is deliberately kept (agent ids, service numbers, prices, dates); beep spans."""
import json

import pytest

from qa_inspect.records import Turn, Word
from qa_inspect.redact import find_pii, redact_call_dict, redact_spans, redact_text, redact_turn

MOBILE_FORMS = [
    "13800138000",                       # Arabic digits
    "１３８００１３８０００",              # full width
    "138 0013 8000",                     # grouped with spaces
    "138-0013-8000",                     # dashes
    "一三八零零一三八零零零",             # spoken Chinese numerals
    "幺三八 零零幺三 八零零零",           # 幺 for one, spaced
    "一三八，零零一三，八零零零",         # pauses transcribed as commas
    "138零零一三8000",                   # mixed digits and numerals
    "one three eight oh oh one three eight zero zero zero",
]


@pytest.mark.parametrize("num", MOBILE_FORMS)
def test_mobile_number_redacted_in_every_spelling(num):
    assert redact_text(f"我的手机是{num}，你记一下") == "我的手机是[手机号]，你记一下"


@pytest.mark.parametrize("text,label", [
    ("身份证号11010519491231002X。", "[身份证号]"),
    ("身份证号11010519491231002x。", "[身份证号]"),
    ("身份证是一一零一零五一九四九一二三一零零二叉。", "[身份证号]"),
    ("卡号是6222 0212 3456 7890 123。", "[银行卡号]"),
    ("卡号六二二二零二一二三四五六七八九零一二三。", "[银行卡号]"),
    ("座机010-62345678。", "[号码]"),
    ("身份证后四位是3321。", "[身份证号]"),
    ("验证码是 4 8 2 9 1 3。", "[号码]"),
    ("银行卡尾号六六八八。", "[银行卡号]"),
])
def test_identity_and_card_numbers(text, label):
    out = redact_text(text)
    assert label in out
    assert not any(c.isdigit() for c in out.replace(label, ""))
    # the X of an ID card goes with it
    assert "X" not in out and "x" not in out and "叉" not in out


@pytest.mark.parametrize("text", [
    "您好，我是工号1234的客服代表。",     # agent id: staff number, not personal data
    "我要去12315投诉你们！",             # service numbers must stay visible in risk alerts
    "打10086或者12315，12345都没用",    # comma-joined short numbers are not a phone
    "套餐每月五十八元，一共12345678元。",  # prices / amounts
    "2026-11-23 09:12:05 办理的",       # dates and times
    "工单号是6015，二十四小时内联系您。",   # short ticket number
    "三个月前办的，两三天就好。",
    "那我打电话12315投诉，或者拨400-810-8888。",  # public service numbers, even after 电话
])
def test_ordinary_text_is_kept(text):
    assert redact_text(text) == text


def test_names_and_addresses():
    assert redact_text("机主叫张明，身份证后四位是3321。") == "机主叫[姓名]，身份证后四位是[身份证号]。"
    assert redact_text("我叫王小明想问一下") == "我叫[姓名]想问一下"
    assert redact_text("在和平路二十八号，阳光小区三号楼。") == "在[地址]，[地址]。"
    assert redact_text("我的地址是北京市朝阳区建国路88号，谢谢") == "我的地址是[地址]，谢谢"
    assert redact_text("my name is Jing, agent ID 5321") == "my name is [姓名], agent ID 5321"
    assert redact_text("写信到 li.na@example.com 吧") == "写信到 [邮箱] 吧"


def test_spans_are_ordered_and_disjoint():
    spans = find_pii("我叫张明，电话13800138000，住在和平路8号")
    assert [s.kind for s in spans] == ["name", "mobile", "address"]
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))


def _words(chunks):
    t, out = 1.0, []
    for c in chunks:
        out.append(Word(c, t, t + 0.4))
        t += 0.5
    return tuple(out)


def test_redact_spans_from_word_timestamps():
    words = _words(["我的", "号码", "是", "一三八", "零零一三", "八零零零", "，", "谢谢"])
    turn = Turn(role="customer", text="".join(w.text for w in words), start=1.0, end=5.0,
                words=words)
    spans = redact_spans(turn, pad=0.0)
    assert len(spans) == 1
    # the three number words: 2.5–2.9, 3.0–3.4, 3.5–3.9
    assert spans[0].start == pytest.approx(2.5) and spans[0].end == pytest.approx(3.9)
    assert spans[0].kind == "mobile" and not spans[0].approximate
    red = redact_turn(turn)
    assert "[手机号]" in red.text and "八零零零" not in "".join(w.text for w in red.words)
    assert [w.start for w in red.words] == [w.start for w in words]  # timings kept


def test_redact_spans_without_words_is_approximate():
    turn = Turn(role="customer", text="13800138000。", start=10.0, end=16.0)
    (sp,) = redact_spans(turn)
    assert sp.approximate and 10.0 <= sp.start < 11.0 and 14.5 < sp.end <= 16.0


def test_redact_export_record(samples):
    line = next(l for l in (samples / "transcripts.jsonl").read_text(encoding="utf-8").splitlines()
                if "zh_no_greeting" in l)
    tr = json.loads(line)
    d = {"call_id": tr["call_id"], "transcript": {"call_id": tr["call_id"], "language": "zh",
                                                  "turns": tr["turns"]},
         "rules": [{"rule_id": "x", "evidence": [{"text": "13800138000。", "matched": ""}]}]}
    out = redact_call_dict(d)
    text = json.dumps(out, ensure_ascii=False)
    assert "13800138000" not in text and "[手机号]" in text
    assert "13800138000" in json.dumps(d, ensure_ascii=False)  # input left untouched


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_redact_flag(samples, tmp_path, fmt):
    ROOT = samples.parent
    from click.testing import CliRunner

    from qa_inspect.cli import main

    from report_fixtures import build_db

    db = build_db(ROOT, samples, tmp_path / "qa.db")  # the sample calls, scored
    plain = CliRunner().invoke(main, ["export", "--db", str(db), "--format", fmt])
    red = CliRunner().invoke(main, ["export", "--db", str(db), "--format", fmt, "--redact"])
    assert plain.exit_code == red.exit_code == 0
    if fmt == "jsonl":
        assert "13800138000" in plain.output and "张明" in plain.output
        assert "13800138000" not in red.output and "张明" not in red.output
        assert "[手机号]" in red.output and "工号1234" in red.output
        assert len(red.output.splitlines()) == len(plain.output.splitlines()) == 13
    else:  # the CSV carries rules/evidence only: still no personal data once redacted
        assert len(red.output.splitlines()) == len(plain.output.splitlines())
        assert "13800138000" not in red.output
