"""Learned conditions: trained from labelled calls, stored next to the pack with their hash,
explained by the turns that drove them, and part of the pack's hash."""
import json

import pytest
from click.testing import CliRunner

from qa_inspect.cli import main
from qa_inspect.errors import RuleError
from qa_inspect.records import Transcript, Turn
from qa_inspect.rules import evaluate, load_pack
from qa_inspect.rules.learned import LabelledCall, labelled_calls, load_model, save_model, train_item

RUDE = ["你听不懂吗我说了多少遍了", "这不归我管你自己去找商家", "我已经跟你说过了别再问了", "你自己的问题怪谁",
        "烦不烦啊说了没办法", "你自己不看清楚还打电话来", "跟我说没用自己想办法", "你到底听没听我说话"]
POLITE = ["您好请问有什么可以帮您", "非常抱歉给您带来不便", "好的我马上帮您联系商家", "请您稍等我帮您查询一下",
          "感谢您的耐心等待", "这边给您申请了退款", "还有其他可以帮您的吗", "祝您生活愉快再见"]


def _calls():
    """Ten calls: five where the agent is rude in one turn (the evidence), five polite."""
    trs, labels = {}, {}
    for i in range(5):
        turns = [Turn(role="customer", text="我的外卖送错了"), Turn(role="agent", text=POLITE[i]),
                 Turn(role="customer", text="那怎么办"), Turn(role="agent", text=RUDE[i])]
        trs[f"r{i}"] = Transcript(call_id=f"r{i}", language="zh", turns=tuple(turns))
        labels[f"r{i}"] = {"agent_impolite": True, "evidence": {"agent_impolite": [3]}}
    for i in range(5):
        turns = [Turn(role="customer", text="我的外卖送错了"), Turn(role="agent", text=POLITE[i]),
                 Turn(role="customer", text="那怎么办"), Turn(role="agent", text=POLITE[i + 3])]
        trs[f"p{i}"] = Transcript(call_id=f"p{i}", language="zh", turns=tuple(turns))
        labels[f"p{i}"] = {"agent_impolite": False}
    return trs, labels


PACK = """pack: {id: learned_test, version: "1", language: zh}
rules:
  - id: agent_impolite
    title: 坐席不礼貌
    kind: forbidden
    severity: major
    deduction: 10
    match:
      role: agent
      learned: model.json
"""


def test_a_model_trained_on_a_tiny_set_reproduces_its_verdicts(tmp_path):
    trs, labels = _calls()
    calls = labelled_calls(trs, labels, "agent_impolite", "agent")
    assert [c.evidence for c in calls if c.label] == [[1]] * 5  # turn 3 is the role's second turn
    model = save_model(train_item(calls, "agent_impolite", "agent", folds=5), tmp_path / "model.json")
    assert 0 < model.threshold < 1 and model.training["calls"] == 10 and model.training["positives"] == 5
    (tmp_path / "pack.yaml").write_text(PACK, encoding="utf-8")
    pack = load_pack(tmp_path / "pack.yaml")
    for cid, tr in trs.items():
        (res,) = evaluate(pack, tr, {})
        assert res.matched is labels[cid]["agent_impolite"], cid
        if res.matched:  # the evidence is the turn that drove the verdict
            assert res.evidence[0].turn == 3 and res.evidence[0].matcher == "learned"
            assert model.threshold <= res.evidence[0].confidence <= 1


def test_a_changed_model_changes_the_pack_hash_and_a_missing_one_is_a_load_error(tmp_path):
    trs, labels = _calls()
    calls = labelled_calls(trs, labels, "agent_impolite", "agent")
    save_model(train_item(calls, "agent_impolite", "agent"), tmp_path / "model.json")
    (tmp_path / "pack.yaml").write_text(PACK, encoding="utf-8")
    h1 = load_pack(tmp_path / "pack.yaml").hash
    d = json.loads((tmp_path / "model.json").read_text())
    d["threshold"] = min(0.99, d["threshold"] + 0.01)
    (tmp_path / "model.json").write_text(json.dumps(d))
    assert load_pack(tmp_path / "pack.yaml").hash != h1
    (tmp_path / "model.json").unlink()
    with pytest.raises(RuleError) as e:
        load_pack(tmp_path / "pack.yaml")
    assert f"{tmp_path / 'pack.yaml'}:10" in str(e.value) and "rules learn" in str(e.value)


def test_training_needs_both_classes():
    calls = [LabelledCall(f"c{i}", ["好的"], [0], True) for i in range(4)]
    with pytest.raises(RuleError, match="2 positive and 2 negative"):
        train_item(calls, "x", "agent")


def test_rules_learn_command(tmp_path):
    trs, labels = _calls()
    (tmp_path / "calls.jsonl").write_text("".join(
        json.dumps({"call_id": c, "language": "zh", "turns": [{"role": t.role, "text": t.text} for t in tr.turns]},
                   ensure_ascii=False) + "\n" for c, tr in trs.items()), encoding="utf-8")
    (tmp_path / "labels.jsonl").write_text("".join(json.dumps({"id": c, **lab}) + "\n" for c, lab in labels.items()))
    r = CliRunner().invoke(main, ["rules", "learn", "--transcripts", str(tmp_path / "calls.jsonl"),
                                  "--labels", str(tmp_path / "labels.jsonl"), "--item", "agent_impolite",
                                  "--out", str(tmp_path / "m.json")])
    assert r.exit_code == 0, r.output
    assert "10 calls, 5 positive" in r.output and "cross-validated F1" in r.output
    assert load_model(tmp_path / "m.json").item == "agent_impolite"
    r = CliRunner().invoke(main, ["rules", "learn", "--transcripts", str(tmp_path / "calls.jsonl"),
                                  "--labels", str(tmp_path / "labels.jsonl"), "--item", "nothing_like_it",
                                  "--out", str(tmp_path / "n.json")])
    assert r.exit_code == 2 and "no labelled call" in r.output and not (tmp_path / "n.json").exists()
