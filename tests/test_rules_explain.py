"""`qa-inspect rules explain`: one call, every rule, what matched where and why not."""
import json

import pytest
from click.testing import CliRunner

from qa_inspect.cli import main
from qa_inspect.records import Transcript, Turn
from qa_inspect.rules import load_pack
from qa_inspect.rules.engine import scope_turns


@pytest.fixture(scope="module")
def zh_pack(root):
    return str(root / "rules/telecom_zh.yaml")


def _section(out: str, rule_id: str) -> str:
    """The lines of one rule's block."""
    blocks = out.split("\n\n")
    return next(b for b in blocks if f"] {rule_id} " in b.splitlines()[0])


def _explain(*args):
    res = CliRunner().invoke(main, ["rules", "explain", *map(str, args)])
    return res


def test_forbidden_phrase_marks_term_and_time(zh_pack, samples):
    res = _explain(zh_pack, "--transcript", samples / "transcripts.jsonl", "--call", "zh_forbidden_phrase")
    assert res.exit_code == 0, res.output
    assert res.output.startswith("call zh_forbidden_phrase (7 turns")
    block = _section(res.output, "forbidden_phrase")
    assert block.splitlines()[0].startswith("[HIT ] forbidden_phrase") and "-20" in block
    assert "turn 2 agent 00:12  宽带安装这个【不归我管】。  [keyword '不归我管', confidence 1.00]" in block
    assert "【我不知道】" in block
    assert "when:   always applies" in block
    assert res.output.splitlines()[-1].startswith("score ") and "total deduction" in res.output


def test_no_greeting_explains_what_was_looked_at(zh_pack, samples):
    res = _explain(zh_pack, "--transcript", samples / "transcripts.jsonl", "--call", "zh_no_greeting")
    assert res.exit_code == 0, res.output
    block = _section(res.output, "greeting")
    assert block.splitlines()[0] == "[FAIL] greeting 开场问候 (required, major)  -5"
    assert "reason: missing: any of 您好/你好" in block
    assert "looked at agent turns 0, 2 (first turns 2):" in block
    assert "turn 0 agent 00:00  喂，说吧，什么事？" in block
    assert "turn 2 agent 00:06  手机号报一下。" in block
    assert "customer" not in block.split("looked at")[1]


def test_when_is_reported(zh_pack, samples):
    res = _explain(zh_pack, "--transcript", samples / "transcripts.jsonl", "--call", "zh_forbidden_phrase")
    na = _section(res.output, "identity_verification")
    assert na.startswith("[N/A ]") and "when:   does not hold:" in na and "looked at turns 0–6" in na
    res = _explain(zh_pack, "--transcript", samples / "transcripts.jsonl", "--call", "zh_billing_12315")
    ap = _section(res.output, "apology")
    assert "when:   holds:" in ap and "【投诉】" in ap and "【抱歉】" in ap


def test_pinyin_and_normalised_hits_are_marked_on_verbatim_text(zh_pack, tmp_path):
    tr = {"call_id": "c1", "language": "zh", "turns": [
        {"role": "agent", "text": "您好，工號一二三四為您服務", "start": 0.0, "end": 3.0},
        {"role": "customer", "text": "我要頭訴你們！", "start": 65.0, "end": 68.0}]}
    f = tmp_path / "one.jsonl"
    f.write_text(json.dumps(tr, ensure_ascii=False) + "\n", encoding="utf-8")
    res = _explain(zh_pack, "--transcript", f)  # one call: --call not needed
    assert res.exit_code == 0, res.output
    assert "【工號一二三四】為您服務  [regex '工号1234'" in _section(res.output, "self_introduction")
    ci = _section(res.output, "complaint_intent")
    assert "turn 1 customer 01:05  我要【頭訴】你們！  [pinyin '投诉≈头诉', confidence 0.90]" in ci


def test_explain_from_db(zh_pack, samples, tmp_path):
    src = tmp_path / "calls.jsonl"
    src.write_text((samples / "transcripts.jsonl").read_text(encoding="utf-8").splitlines()[0] + "\n",
                   encoding="utf-8")
    db = tmp_path / "q.db"
    runner = CliRunner()
    res = runner.invoke(main, ["run", str(src), "--rules", zh_pack, "--db", str(db), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    res = _explain(zh_pack, "--db", db, "--call", "zh_billing_12315")
    assert res.exit_code == 0, res.output
    assert res.output.startswith("call zh_billing_12315 (9 turns")
    esc = _section(res.output, "escalation_risk")
    assert "turn 3 customer 00:19" in esc and "【12315】" in esc
    assert "score 100 A" in res.output
    # the stored transcript gives the same explanation as the JSONL it came from
    assert _explain(zh_pack, "--transcript", src).output == res.output


def test_explain_errors(zh_pack, samples, tmp_path):
    res = _explain(zh_pack, "--transcript", samples / "transcripts.jsonl")
    assert res.exit_code == 2 and "pick one with --call" in res.output
    res = _explain(zh_pack, "--transcript", samples / "transcripts.jsonl", "--call", "nope")
    assert res.exit_code == 2 and "no call 'nope'" in res.output
    res = _explain(zh_pack, "--db", tmp_path / "missing.db", "--call", "x")
    assert res.exit_code == 2 and "not found" in res.output
    res = _explain(zh_pack, "--call", "x")
    assert res.exit_code == 2 and "exactly one of" in res.output


def test_scope_turns_follows_role_and_window(root):
    pack = load_pack(root / "rules/telecom_zh.yaml")
    rule = next(r for r in pack.rules if r.id == "greeting")
    tr = Transcript("t", "zh", tuple(Turn("agent" if i % 2 == 0 else "customer", f"t{i}", i * 2.0, i * 2.0 + 1)
                                     for i in range(7)), duration=14.0)
    assert [t.index for t in scope_turns(tr, rule.match)] == [0, 2]


def test_composed_rule_explains_each_named_condition(tmp_path):
    pack = tmp_path / "p.yaml"
    pack.write_text("""pack: {id: comp, language: zh}
rules:
  - id: courteous
    title: 礼貌处理
    kind: required
    deduction: 4
    conditions:
      greet: {role: agent, any: [您好]}
      rude: {role: agent, any: [闭嘴]}
      apology: {role: agent, any: [抱歉]}
      slow: {metric: {name: max_silence_s, op: gt, value: 8}}
    match: "greet and not rude and 1 of (apology, slow)"
""", encoding="utf-8")
    calls = tmp_path / "calls.jsonl"
    turns = [{"role": "agent", "text": "您好，请讲", "start": 0.0, "end": 2.0},
             {"role": "customer", "text": "我的网断了", "start": 2.5, "end": 4.0},
             {"role": "agent", "text": "我查一下", "start": 14.0, "end": 15.0}]
    calls.write_text(json.dumps({"call_id": "c1", "language": "zh", "turns": turns}, ensure_ascii=False) + "\n",
                     encoding="utf-8")
    res = _explain(pack, "--transcript", calls)
    assert res.exit_code == 0, res.output
    block = _section(res.output, "courteous")
    assert block.splitlines()[0].startswith("[PASS] courteous")
    assert 'match:  "greet and not rude and 1 of (apology, slow)"' in block
    assert "greet: found" in block and "【您好】" in block
    assert "rude: not found" in block and "apology: not found" in block
    # the metric comes from the call's talk metrics: a 10 s gap before the agent's second turn
    assert "slow: found" in block and "max_silence_s = 10" in block
