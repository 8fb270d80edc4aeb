"""Rule language extensions: match context relative to `when` (after/before/within), rule
metadata (status/tags/owner) and pack `include:` with overrides."""
import pytest

from qa_inspect.errors import RuleError
from qa_inspect.records import Transcript, Turn
from qa_inspect.rules import evaluate, load_pack, parse_pack
from qa_inspect.rules.examples import run_examples


def _tr(*turns, step=5.0):
    return Transcript(call_id="t", language="zh",
                      turns=tuple(Turn(role=r, text=t, start=i * step, end=i * step + 4)
                                  for i, (r, t) in enumerate(turns)), duration=len(turns) * step)


def _pack(rule_body: str):
    text = "pack: {id: t}\nrules:\n  - id: r\n" + rule_body
    pack, problems = parse_pack(text, "t.yaml")
    assert not problems, [str(p) for p in problems]
    return pack


APOLOGY = """\
    kind: required
    when: {role: customer, any: [投诉]}
    match: {role: agent, any: [抱歉], within: {turns: 2}}
"""

IDENTITY = """\
    kind: required
    when: {role: agent, any: [已经为您办理]}
    match: {role: agent, any: [身份证, 服务密码], before: when}
"""


def test_within_turns_after_complaint():
    pack = _pack(APOLOGY)
    ok = evaluate(pack, _tr(("agent", "您好"), ("customer", "喂"), ("agent", "请讲"),
                            ("customer", "我要投诉"), ("agent", "您稍等"), ("agent", "非常抱歉")))[0]
    assert ok.outcome == "pass" and ok.matched and ok.evidence[0].turn == 5
    assert "within 2 turns after turn 3" in ok.reason
    late = evaluate(pack, _tr(("customer", "我要投诉"), ("agent", "您稍等"), ("agent", "我查一下"),
                              ("agent", "非常抱歉")))[0]
    assert late.outcome == "fail" and not late.matched
    assert "within 2 turns after turn 0" in late.reason
    # an apology before the complaint does not count
    early = evaluate(pack, _tr(("agent", "抱歉久等了"), ("customer", "我要投诉"), ("agent", "好的")))[0]
    assert early.outcome == "fail"


def test_within_turns_counts_from_any_anchor():
    pack = _pack(APOLOGY)
    r = evaluate(pack, _tr(("customer", "我要投诉"), ("agent", "好"), ("agent", "嗯"), ("agent", "查到了"),
                           ("customer", "还是要投诉"), ("agent", "抱歉")))[0]
    assert r.outcome == "pass" and "after turns 0, 4" in r.reason


def test_within_seconds():
    pack = _pack(APOLOGY.replace("{turns: 2}", "{seconds: 8}"))
    # turns every 5 s, each 4 s long: the complaint ends at 4 s; turn 2 starts at 10 s (6 s later)
    ok = evaluate(pack, _tr(("customer", "我要投诉"), ("agent", "好"), ("agent", "抱歉")))[0]
    assert ok.outcome == "pass" and "within 8 s after turn 0" in ok.reason
    # turn 3 starts at 15 s: 11 s after the complaint ended
    late = evaluate(pack, _tr(("customer", "我要投诉"), ("agent", "好"), ("agent", "嗯"), ("agent", "抱歉")))[0]
    assert late.outcome == "fail"


def test_before_when():
    pack = _pack(IDENTITY)
    ok = evaluate(pack, _tr(("agent", "请报一下服务密码"), ("customer", "123456"), ("agent", "已经为您办理好了")))[0]
    assert ok.outcome == "pass" and "before turn 2" in ok.reason
    bad = evaluate(pack, _tr(("agent", "已经为您办理好了"), ("agent", "请报一下服务密码")))[0]
    assert bad.outcome == "fail" and "before turn 0" in bad.reason
    na = evaluate(pack, _tr(("agent", "请报一下服务密码")))[0]
    assert na.outcome == "n/a" and not na.matched  # no anchor: the context is empty


def test_after_when_forbidden():
    pack = _pack("""\
    kind: forbidden
    when: {role: customer, any: [投诉]}
    match: {role: agent, any: [随便你], after: when}
""")
    before = evaluate(pack, _tr(("agent", "随便你"), ("customer", "我要投诉"), ("agent", "抱歉")))[0]
    assert before.outcome == "pass"
    after = evaluate(pack, _tr(("customer", "我要投诉"), ("agent", "随便你")))[0]
    assert after.outcome == "hit" and after.deduction == 0 and "after turn 0" in after.reason


def test_context_examples_run():
    pack = _pack(APOLOGY + """\
    examples:
      hit: [["customer: 我要投诉", "agent: 抱歉"]]
      miss: ["抱歉", ["customer: 我要投诉", "agent: 好", "agent: 嗯", "agent: 抱歉"]]
""")
    outs = run_examples(pack)["r"]
    assert [o.status for o in outs] == ["pass", "pass", "pass"]


@pytest.mark.parametrize("match, line, msg", [
    ("{any: [抱歉], within: {turns: 2}}", 4, "'within' is relative to the rule's 'when'"),
    ("{any: [抱歉], before: when}", 4, "'before' is relative to the rule's 'when'"),
])
def test_context_needs_when(match, line, msg):
    pack, problems = parse_pack(f"pack: {{id: t}}\nrules:\n  - id: r\n    match: {match}\n", "c.yaml")
    assert pack is None
    assert any(msg in str(e) and f"c.yaml:{line}:" in str(e) for e in problems), [str(e) for e in problems]


@pytest.mark.parametrize("extra, line, msg", [
    ("      before: when\n      after: when\n", 8, "contradict"),
    ("      before: when\n      within: {turns: 2}\n", 8, "contradicts 'before'"),
    ("      within: {turns: 0}\n", 7, "within 'turns' must be an integer ≥ 1"),
    ("      within: {turns: -2}\n", 7, "within 'turns' must be an integer ≥ 1"),
    ("      within: {turns: 1.5}\n", 7, "within 'turns' must be an integer ≥ 1"),
    ("      within: {seconds: 0}\n", 7, "within 'seconds' must be a positive number"),
    ("      within: {seconds: -3.5}\n", 7, "within 'seconds' must be a positive number"),
    ("      within: {turns: 2, seconds: 10}\n", 7, "turns or seconds, not both"),
    ("      within: {turn: 2}\n", 7, "unknown key 'turn'; did you mean 'turns'?"),
    ("      within: 2\n", 7, "'within' must be a mapping"),
    ("      after: customer\n", 7, "'after' must be 'when'"),
])
def test_loader_rejects_bad_context_with_line(extra, line, msg):
    text = ("pack: {id: t}\nrules:\n  - id: r\n    when: {role: customer, any: [投诉]}\n"
            "    match:\n      any: [抱歉]\n" + extra)
    pack, problems = parse_pack(text, "c.yaml")
    assert pack is None
    assert any(msg in str(e) and f"c.yaml:{line}:" in str(e) for e in problems), [str(e) for e in problems]


def test_context_keys_not_allowed_on_when():
    text = ("pack: {id: t}\nrules:\n  - id: r\n    when:\n      any: [投诉]\n      after: when\n"
            "    match: {any: [抱歉]}\n")
    _, problems = parse_pack(text, "c.yaml")
    assert any("unknown key 'after'" in str(e) and "c.yaml:6:" in str(e) for e in problems)


# --- metadata ---------------------------------------------------------------------------------

def test_metadata_kept_on_rule():
    pack = _pack("    status: experimental\n    tags: [opening, 合规]\n    owner: qa-team@example.com\n"
                 "    match: {any: [您好]}\n")
    r = pack.rules[0]
    assert (r.status, r.tags, r.owner) == ("experimental", ("opening", "合规"), "qa-team@example.com")
    plain = _pack("    match: {any: [您好]}\n").rules[0]
    assert (plain.status, plain.tags, plain.owner) == ("stable", (), "")


@pytest.mark.parametrize("meta, line, msg", [
    ("    status: beta\n", 4, "status must be one of experimental, test, stable"),
    ("    tags: opening\n", 4, "'tags' must be a list of non-empty strings"),
    ("    tags: [opening, 3]\n", 4, "'tags' must be a list of non-empty strings"),
    ("    owner: [a, b]\n", 4, "'owner' must be a string"),
    ("    owners: x\n", 4, "unknown key 'owners'; did you mean 'owner'?"),
])
def test_loader_rejects_bad_metadata_with_line(meta, line, msg):
    text = "pack: {id: t}\nrules:\n  - id: r\n" + meta + "    match: {any: [您好]}\n"
    pack, problems = parse_pack(text, "m.yaml")
    assert pack is None
    assert any(msg in str(e) and f"m.yaml:{line}:" in str(e) for e in problems), [str(e) for e in problems]


# --- include ----------------------------------------------------------------------------------

BASE = """\
pack: {id: base, language: zh}
variables:
  agent_id_pattern: '工号\\d{4}'
grades:
  - {min: 50, grade: P}
  - {min: 0, grade: F}
rules:
  - id: greeting
    match: {role: agent, any: [您好]}
  - id: self_introduction
    match: {role: agent, regex: '${agent_id_pattern}'}
  - id: closing
    match: {role: agent, any: [再见]}
"""


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def test_include_order_override_and_variables(tmp_path):
    _write(tmp_path, "std/base.yaml", BASE)
    hot = _write(tmp_path, "hotline.yaml", """\
pack: {id: hotline}
include: [std/base.yaml]
variables:
  agent_id_pattern: 'id\\d{6}'
rules:
  - id: greeting
    severity: critical
    match: {role: agent, any: [你好]}
  - id: escalation
    kind: risk
    match: {role: customer, any: [12315]}
""")
    pack = load_pack(hot)
    assert [r.id for r in pack.rules] == ["greeting", "self_introduction", "closing", "escalation"]
    g = pack.rules[0]
    assert g.severity == "critical" and g.match.any == ("你好",) and g.source == str(hot)
    assert pack.rules[1].match.regex == r"id\d{6}" and pack.rules[1].source == str(tmp_path / "std/base.yaml")
    assert pack.language == "zh" and [b.grade for b in pack.grades] == ["P", "F"]
    res = {r.rule_id: r for r in evaluate(pack, _tr(("agent", "你好，ID123456为您服务")))}
    assert res["greeting"].outcome == "pass" and res["self_introduction"].outcome == "pass"
    # the base pack alone keeps its own variable
    base = load_pack(tmp_path / "std/base.yaml")
    assert base.rules[1].match.regex == r"工号\d{4}"


def test_include_only_pack_and_hash_covers_included_text(tmp_path):
    _write(tmp_path, "base.yaml", BASE)
    p = _write(tmp_path, "only.yaml", "pack: {id: only}\ninclude: [base.yaml]\n")
    h1 = load_pack(p).hash
    assert len(load_pack(p).rules) == 3
    _write(tmp_path, "base.yaml", BASE.replace("再见", "再会"))
    h2 = load_pack(p).hash
    assert h1 != h2


def test_nested_include_variables(tmp_path):
    _write(tmp_path, "base.yaml", BASE)
    _write(tmp_path, "mid.yaml", "pack: {id: mid}\ninclude: [base.yaml]\nvariables: {agent_id_pattern: 'M\\d'}\n")
    top = _write(tmp_path, "top.yaml", "pack: {id: top}\ninclude: [mid.yaml]\nvariables: {agent_id_pattern: 'T\\d'}\n")
    assert load_pack(top).rules[1].match.regex == r"T\d"
    assert load_pack(tmp_path / "mid.yaml").rules[1].match.regex == r"M\d"


def test_include_missing_file_names_line(tmp_path):
    p = _write(tmp_path, "a.yaml", "pack: {id: a}\ninclude:\n  - nope.yaml\nrules:\n  - id: r\n    match: {any: [x]}\n")
    with pytest.raises(RuleError) as e:
        load_pack(p)
    assert f"{p}:3" in str(e.value) and "included pack not found" in str(e.value)


def test_include_cycle_names_line(tmp_path):
    a = _write(tmp_path, "a.yaml", "pack: {id: a}\ninclude: [b.yaml]\nrules:\n  - id: ra\n    match: {any: [x]}\n")
    b = _write(tmp_path, "b.yaml", "pack: {id: b}\nrules:\n  - id: rb\n    match: {any: [y]}\ninclude:\n  - a.yaml\n")
    with pytest.raises(RuleError) as e:
        load_pack(a)
    assert f"{b}:6" in str(e.value) and "include cycle: a.yaml → b.yaml → a.yaml" in str(e.value)
    self_ = _write(tmp_path, "s.yaml", "pack: {id: s}\ninclude: [s.yaml]\n")
    with pytest.raises(RuleError) as e:
        load_pack(self_)
    assert f"{self_}:2" in str(e.value) and "include cycle" in str(e.value)


def test_include_errors_in_included_file_carry_its_lines(tmp_path):
    _write(tmp_path, "bad.yaml", "pack: {id: bad}\nrules:\n  - id: r\n    match: {anyy: [x]}\n")
    p = _write(tmp_path, "a.yaml", "pack: {id: a}\ninclude: [bad.yaml]\n")
    _, problems = parse_pack(p.read_text(encoding="utf-8"), str(p))
    assert any(f"{tmp_path / 'bad.yaml'}:4:" in str(e) and "unknown key 'anyy'" in str(e) for e in problems)


@pytest.mark.parametrize("include, msg", [
    ("include: base.yaml\n", None),  # a single path is accepted
    ("include: {a: 1}\n", "'include' must be a list"),
    ("include: [3]\n", "each entry must be a file path"),
])
def test_include_value_forms(tmp_path, include, msg):
    _write(tmp_path, "base.yaml", BASE)
    p = _write(tmp_path, "a.yaml", "pack: {id: a}\n" + include)
    pack, problems = parse_pack(p.read_text(encoding="utf-8"), str(p))
    if msg is None:
        assert not problems and len(pack.rules) == 3
    else:
        assert any(msg in str(e) and f"{p}:2:" in str(e) for e in problems), [str(e) for e in problems]


def test_same_rule_in_two_includes_is_an_error(tmp_path):
    _write(tmp_path, "base.yaml", BASE)
    _write(tmp_path, "base2.yaml", BASE.replace("id: base", "id: base2"))
    p = _write(tmp_path, "a.yaml", "pack: {id: a}\ninclude: [base.yaml, base2.yaml]\n")
    _, problems = parse_pack(p.read_text(encoding="utf-8"), str(p))
    assert any("rule id 'greeting' is included twice" in str(e) and f"{p}:2:" in str(e) for e in problems)


def test_pack_without_include_keeps_its_hash(root):
    import hashlib

    p = root / "rules/telecom_zh.yaml"
    assert load_pack(p).hash == hashlib.sha256(p.read_text(encoding="utf-8").encode()).hexdigest()[:16]


def test_hotline_pack_on_shipped_standard_via_cli(root, tmp_path):
    import os

    from click.testing import CliRunner

    from qa_inspect.cli import main

    std = os.path.relpath(root / "rules/telecom_zh.yaml", tmp_path)
    p = _write(tmp_path, "hotline.yaml", f"pack: {{id: hotline_10099}}\ninclude: ['{std}']\n"
                                         "variables: {agent_id_pattern: '(工号|公号)(是)?\\d{4}'}\n")
    pack = load_pack(p)
    assert len(pack.rules) == len(load_pack(root / "rules/telecom_zh.yaml").rules)
    assert pack.rules[1].match.regex == r"(工号|公号)(是)?\d{4}"
    for cmd in ("validate", "test"):
        res = CliRunner().invoke(main, ["rules", cmd, str(p)])
        assert res.exit_code == 0, res.output
    bad = _write(tmp_path, "bad.yaml", "pack: {id: b}\ninclude: [missing.yaml]\n")
    res = CliRunner().invoke(main, ["rules", "validate", str(bad)])
    assert res.exit_code == 1 and f"{bad}:2" in res.output


def test_explain_shows_context_scope(tmp_path):
    import json

    from click.testing import CliRunner

    from qa_inspect.cli import main

    p = _write(tmp_path, "p.yaml", "pack: {id: t}\nrules:\n  - id: r\n" + APOLOGY.replace("turns: 2", "turns: 1"))
    turns = [{"role": "customer", "text": "我要投诉", "start": 0, "end": 2},
             {"role": "agent", "text": "好", "start": 3, "end": 4},
             {"role": "agent", "text": "抱歉", "start": 5, "end": 6}]
    t = _write(tmp_path, "t.jsonl", json.dumps({"call_id": "c1", "language": "zh", "turns": turns},
                                               ensure_ascii=False) + "\n")
    res = CliRunner().invoke(main, ["rules", "explain", str(p), "--transcript", str(t), "--call", "c1"])
    assert res.exit_code == 0, res.output
    assert "missing: any of 抱歉 in agent turns (whole call) within 1 turn after turn 0" in res.output
    assert "looked at agent turn 1 " in res.output and "turn 2 agent" not in res.output
