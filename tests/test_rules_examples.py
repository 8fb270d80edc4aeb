"""Rule examples (hit/miss/todo) kept in the packs, and the `rules test` command."""
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from qa_inspect.cli import main
from qa_inspect.rules import parse_pack
from qa_inspect.rules.examples import run_examples

PACKS = ("rules/telecom_zh.yaml", "rules/telecom_en.yaml", "rules/customer_service_zh.yaml")

BAD_PACK = """\
pack: {id: bad_examples}
rules:
  - id: greeting
    kind: required
    match:
      role: agent
      any: [您好]
    examples:
      hit:
        - "您好，工号1234"
        - ["customer: 我要投诉", "agent: 喂，说吧"]
      miss:
        - "你好啊"
      todo:
        - "泥好"
  - id: closing
    kind: required
    match: {role: agent, any: [再见]}
"""


@pytest.mark.parametrize("pack_path", PACKS)
def test_shipped_pack_examples_pass(root, pack_path):
    text = (root / pack_path).read_text(encoding="utf-8")
    pack, problems = parse_pack(text, pack_path)
    assert not problems, problems
    for rule in pack.rules:
        if rule.match.metric is not None and rule.match_expr is None:
            assert not rule.examples, rule.id  # metric rules: example dialogues carry no metrics
            continue
        kinds = [e.kind for e in rule.examples]
        assert 2 <= kinds.count("hit") <= 6 and 1 <= kinds.count("miss") <= 4, rule.id
    failures = [f"{o.where} {o.rule_id} {o.name}: {o.example.describe()} — {o.reason}"
                for outs in run_examples(pack).values() for o in outs if o.status == "fail"]
    assert not failures, "\n".join(failures)


def test_rules_test_cli_passes_on_shipped_packs(root):
    res = CliRunner().invoke(main, ["rules", "test", *(str(root / p) for p in PACKS)])
    assert res.exit_code == 0, res.output
    assert "greeting" in res.output and "FAIL" not in res.output


def test_wrong_example_fails_and_names_rule_and_example(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(BAD_PACK, encoding="utf-8")
    junit = tmp_path / "out.xml"
    res = CliRunner().invoke(main, ["rules", "test", str(p), "--junit", str(junit)])
    assert res.exit_code == 1, res.output
    out = res.output
    assert "FAIL" in out and "rule 'greeting' hit[1]" in out and f"{p}:11" in out
    assert "喂，说吧" in out and "missing" in out  # the failing dialogue and the engine's reason
    assert "no examples" in out  # closing: lint warning
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("4", "1", "1")
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 4 and suite.get("failures") == "1"
    failed = [c for c in cases if c.find("failure") is not None]
    assert [(c.get("classname"), c.get("name")) for c in failed] == [("bad_examples.greeting", "hit[1]")]
    assert len([c for c in cases if c.find("skipped") is not None]) == 1


def test_todo_that_passes_is_reported(tmp_path):
    p = tmp_path / "todo.yaml"
    p.write_text(BAD_PACK.replace('"您好，工号1234"', '"您好"').replace('"agent: 喂，说吧"', '"agent: 您好"')
                 .replace('"泥好"', '"您好啊"'), encoding="utf-8")
    res = CliRunner().invoke(main, ["rules", "test", str(p)])
    assert res.exit_code == 0, res.output
    assert "todo now passes — move it to hit" in res.output


@pytest.mark.parametrize("examples, line, msg", [
    ('      hit: ["您好"]\n      maybe: ["你好"]\n', 10, "unknown key 'maybe'"),
    ('      hit:\n        - ["agnet: 您好"]\n', 10, "role prefix"),
    ('      hit:\n        - ["您好"]\n', 10, "role prefix"),
    ('      hit: "您好"\n', 9, "must be a list"),
])
def test_loader_rejects_bad_example_with_line(examples, line, msg):
    text = ("pack: {id: p}\nrules:\n  - id: greeting\n    kind: required\n    match:\n"
            "      role: agent\n      any: [您好]\n    examples:\n" + examples)
    pack, problems = parse_pack(text, "p.yaml")
    assert pack is None
    assert any(msg in str(e) and f"p.yaml:{line}" in str(e) for e in problems), [str(e) for e in problems]


def test_examples_are_stored_on_rule():
    text = ("pack: {id: p}\nrules:\n  - id: r\n    match: {role: customer, any: [投诉]}\n"
            "    examples:\n      hit: [我要投诉, ['agent: 您好', 'customer: 我要投诉']]\n      miss: [{agent: 我要投诉}]\n")
    pack, problems = parse_pack(text, "p.yaml")
    assert not problems
    ex = pack.rules[0].examples
    assert [(e.kind, e.turns) for e in ex] == [
        ("hit", (("customer", "我要投诉"),)), ("hit", (("agent", "您好"), ("customer", "我要投诉"))),
        ("miss", (("agent", "我要投诉"),))]
    assert isinstance(ex, tuple)
