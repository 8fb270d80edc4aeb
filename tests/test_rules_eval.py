"""Measuring a rule pack against labelled calls: the math, the CLI, the shipped generic pack."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa_inspect.cli import main
from qa_inspect.records import Transcript, Turn
from qa_inspect.rules import load_pack
from qa_inspect.rules.evaluation import ItemScore, evaluate_pack_against_labels, macro_f1, read_labels
from qa_inspect.rules.loader import parse_pack

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "dialogues-zh"

PACK = """
pack: {id: tiny, language: zh}
rules:
  - id: greeting
    kind: required
    match: {role: agent, window: {first_turns: 1}, any: [您好]}
  - id: complaint
    kind: risk
    match: {role: customer, any: [投诉]}
"""


def _call(cid, agent, customer):
    return Transcript(call_id=cid, language="zh",
                      turns=(Turn("agent", agent), Turn("customer", customer)))


CALLS = [
    _call("c1", "您好请讲", "我要投诉"),      # greeting tp, complaint tp
    _call("c2", "您好请讲", "查一下话费"),    # greeting fp (label false), complaint tn
    _call("c3", "请讲", "我要投诉"),          # greeting fn, complaint fp (label false)
    _call("c4", "请讲", "查一下"),            # greeting tn, complaint fn (label true)
    _call("c5", "您好", "投诉"),              # greeting tp, complaint tp
    _call("unlabelled", "您好", "投诉"),      # no label: not counted
]
LABELS = {
    "c1": {"greeting": True, "complaint": True},
    "c2": {"greeting": False, "complaint": False},
    "c3": {"greeting": True, "complaint": False},
    "c4": {"greeting": False, "complaint": True},
    "c5": {"greeting": True, "complaint": True, "not_a_rule": True},
}


def _pack():
    pack, problems = parse_pack(PACK, "tiny.yaml")
    assert not problems
    return pack


def test_counts_precision_recall_f1_and_error_ids():
    scores = {s.item: s for s in evaluate_pack_against_labels(_pack(), CALLS, LABELS)}
    assert list(scores) == ["greeting", "complaint"]  # pack order; unlabelled items not scored
    g = scores["greeting"]
    assert (g.tp, g.fp, g.fn, g.tn, g.n) == (2, 1, 1, 1, 5)
    assert g.precision == pytest.approx(2 / 3) and g.recall == pytest.approx(2 / 3)
    assert g.f1 == pytest.approx(2 / 3)
    assert g.false_positives == ["c2"] and g.false_negatives == ["c3"]
    c = scores["complaint"]
    assert (c.tp, c.fp, c.fn, c.tn) == (2, 1, 1, 1)
    assert c.false_positives == ["c3"] and c.false_negatives == ["c4"]
    assert macro_f1(list(scores.values())) == pytest.approx(2 / 3)


def test_unequal_precision_and_recall_and_empty_denominators():
    s = ItemScore("x", tp=3, fp=1, fn=2, tn=4)
    assert s.precision == pytest.approx(0.75) and s.recall == pytest.approx(0.6)
    assert s.f1 == pytest.approx(2 * 0.75 * 0.6 / (0.75 + 0.6))
    assert ItemScore("none", tn=5).f1 == 1.0  # nothing to find, nothing predicted
    miss = ItemScore("miss", fn=2, tn=3)
    assert (miss.precision, miss.recall, miss.f1) == (1.0, 0.0, 0.0)
    assert macro_f1([]) == 0.0
    assert macro_f1([ItemScore("a", tp=1), ItemScore("b", fn=1)]) == pytest.approx(0.5)


def test_a_call_without_a_label_for_an_item_does_not_count_for_it():
    labels = {"c1": {"greeting": True}, "c2": {"greeting": False, "complaint": False}}
    scores = {s.item: s for s in evaluate_pack_against_labels(_pack(), CALLS, labels)}
    assert scores["greeting"].n == 2 and scores["complaint"].n == 1


def test_read_labels_ignores_non_bool_fields_and_maps_items(tmp_path):
    f = tmp_path / "l.jsonl"
    f.write_text(json.dumps({"id": "7", "opening_greeting": True, "apology": False,
                             "evidence": {"apology": [1]}, "note": "x"}) + "\n\n"
                 + json.dumps({"call_id": "8", "apology": True}) + "\n", encoding="utf-8")
    assert read_labels(f, {"opening_greeting": "greeting"}) == {
        "7": {"greeting": True, "apology": False}, "8": {"apology": True}}


def _write_inputs(tmp_path):
    tr = tmp_path / "t.jsonl"
    tr.write_text("".join(json.dumps({"call_id": t.call_id, "turns": [{"role": x.role, "text": x.text}
                                                                     for x in t.turns]},
                                     ensure_ascii=False) + "\n" for t in CALLS), encoding="utf-8")
    lab = tmp_path / "l.jsonl"
    rows = [{"id": cid, **{("hello" if k == "greeting" else k): v for k, v in d.items()}, "note": "n"}
            for cid, d in LABELS.items()]
    lab.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    pack = tmp_path / "p.yaml"
    pack.write_text(PACK, encoding="utf-8")
    return pack, tr, lab


def test_cli_prints_table_macro_f1_and_errors(tmp_path):
    pack, tr, lab = _write_inputs(tmp_path)
    res = CliRunner().invoke(main, ["rules", "eval", str(pack), "--transcripts", str(tr), "--labels", str(lab),
                                    "--map", "hello=greeting", "--show-errors"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert "5 labelled call(s)" in lines[0]
    assert lines[1].split() == ["rule", "n", "tp", "fp", "fn", "precision", "recall", "F1"]
    assert lines[2].split() == ["greeting", "5", "2", "1", "1", "0.667", "0.667", "0.667"]
    assert lines[3].split() == ["complaint", "5", "2", "1", "1", "0.667", "0.667", "0.667"]
    assert "macro F1 0.667 over 2 rule(s) with positives" in res.output
    assert "greeting false positives: c2" in res.output and "complaint false negatives: c4" in res.output
    assert "not_a_rule" in res.stderr and "not_a_rule" not in res.stdout  # noted as not scored


def test_cli_json_and_unmapped_items(tmp_path):
    pack, tr, lab = _write_inputs(tmp_path)
    res = CliRunner().invoke(main, ["rules", "eval", str(pack), "--transcripts", str(tr), "--labels", str(lab),
                                    "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [i["item"] for i in out["items"]] == ["complaint"]  # 'hello' has no rule without --map
    assert out["calls"] == 5 and out["macro_f1"] == pytest.approx(2 / 3)


def test_cli_bad_inputs_exit_2(tmp_path):
    pack, tr, lab = _write_inputs(tmp_path)
    r = CliRunner()
    assert r.invoke(main, ["rules", "eval", str(pack), "--transcripts", str(tr),
                           "--labels", str(tmp_path / "missing.jsonl")]).exit_code == 2
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"id": "zz", "greeting": True}) + "\n", encoding="utf-8")
    res = r.invoke(main, ["rules", "eval", str(pack), "--transcripts", str(tr), "--labels", str(other)])
    assert res.exit_code == 2 and "ids line up" in res.output
    res = r.invoke(main, ["rules", "eval", str(pack), "--transcripts", str(tr), "--labels", str(lab),
                          "--map", "nonsense"])
    assert res.exit_code == 2 and "LABEL=RULE" in res.output


def test_customer_service_pack_loads_with_exactly_the_labelled_items():
    pack = load_pack(ROOT / "rules" / "customer_service_zh.yaml")
    assert [r.id for r in pack.rules] == ["greeting", "self_introduction", "offer_help", "apology", "closing",
                                          "customer_complaint", "escalation_threat", "agent_impolite",
                                          "customer_negative_end"]  # a metric rule (issue 4)


def test_customer_service_pack_follows_the_labelling_notes():
    pack = load_pack(ROOT / "rules" / "customer_service_zh.yaml")
    from qa_inspect.rules.engine import evaluate

    def matched(agent=(), customer=()):
        turns = tuple(Turn("agent", a) for a in agent) + tuple(Turn("customer", c) for c in customer)
        return {r.rule_id for r in evaluate(pack, Transcript("x", "zh", turns)) if r.matched}

    assert "greeting" not in matched(agent=["很高兴为您服务我是客服"])
    assert {"greeting", "self_introduction", "offer_help"} <= matched(agent=["您好客服中心请问有什么可以帮您"])
    assert "apology" not in matched(agent=["让您久等了"], customer=["我要投诉"])
    assert "apology" in matched(agent=["给您添麻烦了"], customer=["我要投诉"])
    assert "escalation_threat" not in matched(customer=["我要投诉你们"])
    assert "customer_complaint" in matched(customer=["我要投诉你们"])
    assert "escalation_threat" in matched(customer=["我要打12315"])
    assert "agent_impolite" in matched(agent=["这个不归我管"])


@pytest.mark.skipif(not (SHARED / "musied-dev-labels.jsonl").exists(), reason="../shared/data is absent")
def test_customer_service_pack_on_the_labelled_musied_calls(tmp_path):
    out = tmp_path / "calls.jsonl"
    subprocess.run([sys.executable, str(ROOT / "bench" / "musied_to_transcripts.py"),
                    str(SHARED / "musied-dev-calls.jsonl"), str(out)], check=True, capture_output=True)
    res = CliRunner().invoke(main, ["rules", "eval", str(ROOT / "rules" / "customer_service_zh.yaml"),
                                    "--transcripts", str(out), "--labels", str(SHARED / "musied-dev-labels.jsonl"),
                                    "--map", "opening_greeting=greeting", "--map", "offers_help=offer_help",
                                    "--map", "closing_courtesy=closing", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["calls"] == 60
    # 0.98 when the pack was tuned on these 60 alone; since issue 16 it is tuned on 241 calls
    # labelled by three people (bench/data), which costs a little on this reviewer's 60 (0.949)
    assert data["macro_f1"] >= 0.94


def test_cli_item_without_positives_says_so(tmp_path):
    """An item nobody labelled positive gets "no positives", not a perfect F1 1.000 (issue 14)."""
    pack, tr, lab = _write_inputs(tmp_path)
    rows = [{"id": cid, "complaint": False} for cid in LABELS]
    lab.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    res = CliRunner().invoke(main, ["rules", "eval", str(pack), "--transcripts", str(tr), "--labels", str(lab)])
    assert res.exit_code == 0, res.output
    line = next(x for x in res.stdout.splitlines() if x.startswith("complaint"))
    assert "no positives in the labels" in line and "1.000" not in line
    assert "0 rule(s) with positives; 1 rule(s) without positives left out" in res.stdout
    out = json.loads(CliRunner().invoke(main, ["rules", "eval", str(pack), "--transcripts", str(tr),
                                               "--labels", str(lab), "--json"]).stdout)
    assert out["without_positives"] == ["complaint"] and out["items"][0]["positives"] == 0


def test_rules_test_on_the_shipped_folder_skips_scorecards_and_plans(root):
    res = CliRunner().invoke(main, ["rules", "test", str(root / "rules")])
    assert res.exit_code == 0, res.output
    for pack in ("telecom_zh", "telecom_en", "customer_service_zh"):
        assert f"(pack {pack} " in res.stdout
    assert "scorecard_telecom_zh.yaml: skipped" in res.stderr and "sampling_plan.yaml: skipped" in res.stderr
