"""ASR-tolerant phrase matching (pinyin homophones, fuzzy edits) and min_count."""
import pytest

from qa_inspect.records import Transcript, Turn
from qa_inspect.rules import evaluate, load_pack, parse_pack
from qa_inspect.rules import prepare


def _tr(*turns):
    return Transcript(call_id="t", language="zh",
                      turns=tuple(Turn(role=r, text=t, start=float(i * 5), end=float(i * 5 + 4))
                                  for i, (r, t) in enumerate(turns)), duration=60.0)


def _pack(cond: str, kind: str = "risk"):
    text = f"pack: {{id: t}}\nrules:\n  - id: r\n    kind: {kind}\n    match:\n{cond}"
    pack, problems = parse_pack(text, "t.yaml")
    assert not problems, problems
    return pack


def _one(pack, *turns):
    return evaluate(pack, _tr(*turns))[0]


@pytest.fixture(scope="module")
def zh(root):
    return load_pack(root / "rules/telecom_zh.yaml")


def test_homophone_complaint_matches_by_pinyin(zh):
    res = {r.rule_id: r for r in evaluate(zh, _tr(("agent", "您好"), ("customer", "我要头诉你们")))}
    ev = res["complaint_intent"].evidence[0]
    assert res["complaint_intent"].outcome == "hit"
    assert (ev.matcher, ev.matched, ev.confidence) == ("pinyin", "投诉≈头诉", 0.9)


def test_homophone_regulator_is_escalation_risk(zh):
    res = {r.rule_id: r for r in evaluate(zh, _tr(("agent", "您好"), ("customer", "我去公信不告你们")))}
    ev = res["escalation_risk"].evidence[0]
    assert (ev.matcher, ev.matched, ev.turn) == ("pinyin", "工信部≈公信不", 1)


def test_homophone_apology_and_when(zh):
    # the complaint (头诉) makes apology applicable; 不变 is heard for 不便
    tr = _tr(("agent", "您好"), ("customer", "我要头诉"), ("agent", "给您带来不变了"))
    ap = {r.rule_id: r for r in evaluate(zh, tr)}["apology"]
    assert ap.outcome == "pass" and ap.evidence[0].matcher == "pinyin"
    assert ap.evidence[0].matched == "给您带来不便≈给您带来不变"


def test_exact_hit_wins_over_pinyin():
    pack = _pack("      any: [投诉]\n      pinyin: true\n")
    r = _one(pack, ("customer", "头诉，不对，是投诉"))
    assert [(e.matcher, e.matched, e.confidence) for e in r.evidence] == [("keyword", "投诉", 1.0)]


def test_pinyin_off_means_no_homophone_match():
    r = _one(_pack("      any: [投诉]\n"), ("customer", "我要头诉"))
    assert r.outcome == "pass" and not r.matched


def test_two_syllable_pinyin_needs_a_shared_character():
    # 消协 ≈ 小写 shares no character: too ambiguous to call a hit
    r = _one(_pack("      any: [消协]\n      pinyin: true\n"), ("customer", "这里要小写"))
    assert not r.matched


def test_turn_pinyin_is_computed_once_and_lazily(monkeypatch):
    from qa_inspect.rules import engine, matching

    calls = []
    real = matching.sounds
    monkeypatch.setattr(matching, "sounds", lambda s: calls.append(s) or real(s))
    turns = prepare(_tr(("customer", "我要去头诉"), ("customer", "没别的")))
    pack = _pack("      any: [投诉, 工信部, 曝光, 律师]\n      pinyin: true\n")
    engine.evaluate_rule(pack.rules[0], turns, 60.0)
    engine.evaluate_rule(pack.rules[0], turns, 60.0)
    assert sorted(c for c in calls if c in ("我要去头诉", "没别的")) == ["我要去头诉", "没别的"]
    calls.clear()
    plain = _pack("      any: [投诉]\n")  # no pinyin: no pinyin work at all
    engine.evaluate_rule(plain.rules[0], prepare(_tr(("customer", "别的话"))), 60.0)
    assert calls == []


def test_fuzzy_hit_and_confidence():
    pack = _pack("      any: [感谢您的来电]\n      fuzzy: 1\n", kind="required")
    r = _one(pack, ("agent", "好的，感谢您来电，再见"))
    ev = r.evidence[0]
    assert r.outcome == "pass"
    assert (ev.matcher, ev.matched) == ("fuzzy", "感谢您的来电≈感谢您来电")
    assert ev.confidence == pytest.approx(1 - 1 / 6, abs=1e-3)


def test_fuzzy_substitution_in_shipped_closing(zh):
    tr = _tr(("agent", "您好，工号1234"), ("agent", "还有其他可以帮到的吗"))
    ev = {r.rule_id: r for r in evaluate(zh, tr)}["closing"].evidence[0]
    assert ev.matcher == "fuzzy" and ev.matched == "还有其他可以帮您≈还有其他可以帮到"
    assert ev.confidence == pytest.approx(0.875)


def test_near_miss_beyond_budget_does_not_match():
    pack = _pack("      any: [感谢您的来电]\n      fuzzy: 1\n", kind="required")
    r = _one(pack, ("agent", "感谢您打来的电话"))  # 3 edits away: over the budget of 1
    assert r.outcome == "fail" and not r.matched and r.evidence == ()
    # phrases shorter than 3 characters are never fuzzy-matched
    short = _pack("      any: [再见, 感谢您的来电]\n      fuzzy: 1\n", kind="required")
    assert _one(short, ("agent", "再建")).outcome == "fail"


@pytest.mark.parametrize("snippet,line,message", [
    ("      any: [感谢您的来电]\n      fuzzy: 0\n", 7, "'fuzzy' must be an integer ≥ 1, got 0"),
    ("      any: [感谢您的来电]\n      fuzzy: \"x\"\n", 7, "'fuzzy' must be an integer ≥ 1, got 'x'"),
    ("      any: [感谢您的来电]\n      fuzzy: true\n", 7, "'fuzzy' must be an integer ≥ 1"),
    ("      any: [投诉]\n      pinyin: yes-please\n", 7, "'pinyin' must be true or false, got 'yes-please'"),
    ("      any: [再见, 感谢来电]\n      fuzzy: 2\n", 7, "fuzzy budget too large for phrase '感谢来电'"),
    ("      any: [再见]\n      fuzzy: 1\n", 7, "phrases of ≥ 3 characters"),
    ("      regex: 'x'\n      pinyin: true\n", 7, "'pinyin' applies to any/all phrases"),
    ("      any: [投诉]\n      min_count: 0\n", 7, "'min_count' must be an integer ≥ 1, got 0"),
    ("      any: [投诉]\n      min_count: 1.5\n", 7, "'min_count' must be an integer ≥ 1"),
    ("      any: [投诉]\n      pinyn: true\n", 7, "unknown key 'pinyn'; did you mean 'pinyin'?"),
])
def test_loader_rejects_bad_tolerance_keys_with_line(snippet, line, message):
    text = f"pack: {{id: t}}\nrules:\n  - id: r\n    kind: risk\n    match:\n{snippet}"
    pack, problems = parse_pack(text, "t.yaml")
    assert pack is None
    assert any(str(p).startswith(f"t.yaml:{line}: ") and message in str(p) for p in problems), problems


def test_fuzzy_budget_checked_in_when_too():
    text = ("pack: {id: t}\nrules:\n  - id: r\n    when:\n      any: [一二三]\n      fuzzy: 3\n"
            "    match: {any: [x]}\n")
    _, problems = parse_pack(text, "t.yaml")
    assert any("t.yaml:6:" in str(p) and "fuzzy budget too large for phrase '一二三'" in str(p)
               for p in problems)


def test_min_count_required():
    pack = _pack("      role: agent\n      any: [抱歉, 对不起]\n      min_count: 2\n", kind="required")
    once = _one(pack, ("agent", "抱歉"), ("customer", "哼"), ("agent", "好的"))
    assert once.outcome == "fail" and not once.matched
    assert "only 1 turn(s), needs ≥ 2" in once.reason
    twice = _one(pack, ("agent", "抱歉"), ("customer", "哼"), ("agent", "真对不起"))
    assert twice.outcome == "pass" and twice.matched
    assert "in 2 turns (≥ 2 required)" in twice.reason
    assert [e.turn for e in twice.evidence] == [0, 2]


def test_min_count_risk_and_when():
    pack = _pack("      role: customer\n      any: [投诉]\n      min_count: 2\n")
    assert _one(pack, ("customer", "投诉")).outcome == "pass"
    assert "below min_count 2" in _one(pack, ("customer", "投诉")).reason
    hit = _one(pack, ("customer", "投诉"), ("customer", "我要投诉"))
    assert hit.outcome == "hit" and "2 hit(s) (≥ 2 required)" in hit.reason
    text = ("pack: {id: t}\nrules:\n  - id: r\n    when: {role: customer, any: [投诉], min_count: 2}\n"
            "    match: {role: agent, any: [抱歉]}\n")
    pack, _ = parse_pack(text, "t.yaml")
    na = evaluate(pack, _tr(("customer", "投诉"), ("agent", "好")))[0]
    assert na.outcome == "n/a" and "found in 1 turn(s)" in na.reason
    applies = evaluate(pack, _tr(("customer", "投诉"), ("customer", "投诉"), ("agent", "好")))[0]
    assert applies.outcome == "fail"


def test_required_pass_prefers_exact_evidence():
    pack = _pack("      any: [投诉]\n      pinyin: true\n", kind="required")
    r = _one(pack, ("customer", "头诉"), ("customer", "投诉"))
    assert [e.matcher for e in r.evidence] == ["keyword", "pinyin"]
    assert "'投诉' at turn 1" in r.reason
