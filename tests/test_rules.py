import json

import pytest

from qa_inspect.errors import RuleError
from qa_inspect.records import Transcript, Turn
from qa_inspect.rules import evaluate, load_pack, parse_pack
from qa_inspect.scoring import score_call

PACK_OF = {"zh": "rules/telecom_zh.yaml", "en": "rules/telecom_en.yaml"}
BOOL_ITEMS = ("greeting", "self_introduction", "identity_verification", "apology", "closing",
              "forbidden_phrase", "escalation_risk")


def reference_calls(samples):
    with open(samples / "transcripts.jsonl", encoding="utf-8") as f:
        return [Transcript.from_dict(json.loads(line)) for line in f if line.strip()]


def test_shipped_packs_load(root):
    for p in PACK_OF.values():
        pack = load_pack(root / p)
        assert pack.rules and pack.hash


def test_reference_transcripts_meet_expected_outcomes(root, samples):
    """Every boolean outcome in samples/expected.json holds on the reference text."""
    expected = json.loads((samples / "expected.json").read_text(encoding="utf-8"))
    packs = {k: load_pack(root / v) for k, v in PACK_OF.items()}
    checked = 0
    for tr in reference_calls(samples):
        results = {r.rule_id: r for r in evaluate(packs[tr.language], tr)}
        for item in BOOL_ITEMS:
            want = expected[tr.call_id].get(item)
            if want is None or item not in results:
                continue
            r = results[item]
            assert r.matched == want, f"{tr.call_id}/{item}: {r.outcome} ({r.reason})"
            checked += 1
        for word in expected[tr.call_id].get("risk_words", []):
            risk = results["escalation_risk"]
            assert any(word.lower() in e.text.lower() for e in risk.evidence), (tr.call_id, word)
    assert checked >= 50


def _tr(*turns):
    return Transcript(call_id="t", language="zh",
                      turns=tuple(Turn(role=r, text=t, start=float(i * 5), end=float(i * 5 + 4))
                                  for i, (r, t) in enumerate(turns)), duration=60.0)


def test_forbidden_phrase_evidence_has_speaker_and_time(root):
    pack = load_pack(root / PACK_OF["zh"])
    tr = _tr(("agent", "您好，工号一二三四为您服务"), ("customer", "我宽带坏了"),
             ("agent", "这个不归我管"), ("agent", "感谢您的来电，再见"))
    res = {r.rule_id: r for r in evaluate(pack, tr)}
    fp = res["forbidden_phrase"]
    assert fp.outcome == "hit" and fp.deduction > 0
    ev = fp.evidence[0]
    assert (ev.role, ev.turn, ev.start, ev.end, ev.matched) == ("agent", 2, 10.0, 14.0, "不归我管")
    assert res["self_introduction"].outcome == "pass"  # 工号一二三四 normalised to 工号1234
    assert res["identity_verification"].outcome == "n/a"


def test_window_and_role_scope(root):
    pack = load_pack(root / PACK_OF["zh"])
    # greeting said only late, and by the customer: the agent's opening has none
    tr = _tr(("agent", "说吧"), ("customer", "您好"), ("agent", "嗯"), ("agent", "您好"))
    res = {r.rule_id: r for r in evaluate(pack, tr)}
    assert res["greeting"].outcome == "fail"
    assert "agent" in res["greeting"].reason


def test_fatal_zeroes_and_grades():
    from qa_inspect.records import RuleResult

    def rr(rid, ded, fatal=False):
        return RuleResult(rule_id=rid, title=rid, category="", severity="major", matched=True,
                          outcome="fail", deduction=ded, fatal=fatal)

    bands = [(90, "A"), (80, "B"), (60, "C"), (0, "D")]
    assert score_call([rr("a", 5), rr("b", 10)], bands).score == 85
    assert score_call([rr("a", 5), rr("b", 10)], bands).grade == "B"
    s = score_call([rr("a", 5), rr("x", 0, fatal=True)], bands)
    assert (s.score, s.grade, s.fatal) == (0, "D", True)
    assert score_call([rr("a", 500)], bands).score == 0


BAD_PACK = """\
pack:
  id: broken
rules:
  - id: greeting
    kind: required
    match:
      role: agent
      anyy: [您好]
  - id: bad_regex
    kind: forbidden
    match:
      regex: '(unclosed'
  - id: greeting
    match: {any: [x]}
  - id: win
    severity: huge
    match:
      any: [a]
      window: {first_turns: 2, last_turns: 2}
"""


def test_validate_lists_every_problem_with_line():
    pack, problems = parse_pack(BAD_PACK, "bad.yaml")
    assert pack is None
    text = "\n".join(map(str, problems))
    assert "bad.yaml:8: rule 'greeting' match: unknown key 'anyy'; did you mean 'any'?" in text
    assert "bad.yaml:12:" in text and "bad regex" in text
    assert "duplicate rule id 'greeting'" in text
    assert "bad.yaml:16:" in text and "severity" in text
    assert "impossible window" in text
    assert len(problems) >= 5


def test_duplicate_yaml_key_names_line(tmp_path):
    p = tmp_path / "dup.yaml"
    p.write_text("pack: {id: x}\nrules:\n  - id: a\n    match: {any: [x]}\n    match: {any: [y]}\n",
                 encoding="utf-8")
    with pytest.raises(RuleError) as e:
        load_pack(p)
    assert f"{p}:5" in str(e.value) and "duplicate key 'match'" in str(e.value)


def test_unknown_variable_is_an_error():
    _, problems = parse_pack("pack: {id: x}\nrules:\n  - id: a\n    match: {regex: '${nope}'}\n", "v.yaml")
    assert any("unknown variable ${nope}" in str(p) and "v.yaml:4" in str(p) for p in problems)


def test_window_share_of_call():
    pack, problems = parse_pack(
        "pack: {id: s}\nrules:\n  - id: late_greeting\n    match: {role: any, any: [您好], window: {last_share: 0.25}}\n"
        "  - id: early\n    match: {role: any, any: [您好], window: {first_share: 0.25}}\n", "s.yaml")
    assert not problems
    tr = _tr(("agent", "您好"), ("customer", "a"), ("agent", "b"), ("customer", "c"), ("agent", "您好再见"))
    res = {r.rule_id: r for r in evaluate(pack, tr)}  # duration 60 s: turns at 0, 5, 10, 15, 20 s
    assert res["early"].evidence[0].turn == 0 and len(res["early"].evidence) == 1
    assert not res["late_greeting"].matched  # last 15 s of a 60 s call: no turn there
    _, problems = parse_pack("pack: {id: s}\nrules:\n  - id: x\n    match: {any: [a], window: {first_share: 1.5}}\n", "b.yaml")
    assert any("b.yaml:4" in str(p) and "share of the call" in str(p) for p in problems)
    _, problems = parse_pack("pack: {id: s}\nrules:\n  - id: x\n    match: {any: [a], window: {first_share: 0.2, last_share: 0.2}}\n", "c.yaml")
    assert any("impossible window" in str(p) for p in problems)
