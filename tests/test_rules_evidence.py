"""Evidence carries the heard words as a field (issue 12): one highlighter marks them in the
batch report, the examples gallery and `rules explain`; records stored without the field load
and highlight as before; one mm:ss formatter."""
import json

from qa_inspect.records import Evidence, RuleResult
from qa_inspect.records import Transcript, Turn
from qa_inspect.reports.batch import fmt_mmss, highlight as batch_highlight
from qa_inspect.rules import evaluate, evidence_terms, mark, parse_pack
from qa_inspect.text import highlight, mmss

PACK = """pack: {id: p}
rules:
  - id: complaint
    kind: risk
    severity: minor
    deduction: 0
    match: {role: customer, any: [投诉, 工信部], pinyin: true}
  - id: closing
    kind: required
    severity: minor
    deduction: 1
    match: {role: agent, any: [感谢您的来电], fuzzy: 1}
  - id: both
    kind: risk
    severity: minor
    deduction: 0
    match: {role: customer, all: [话费, 乱扣]}
  - id: agent_id
    kind: required
    severity: minor
    deduction: 1
    match: {role: agent, regex: '工号\\d{4}'}
"""


def _results():
    pack, problems = parse_pack(PACK, "p.yaml")
    assert not problems, problems
    tr = Transcript(call_id="c", language="zh", turns=(
        Turn(role="agent", text="您好，工号一二三四为您服务", start=0.0, end=2.0),
        Turn(role="customer", text="我要去公信不头诉你们，话费乱扣！", start=2.0, end=5.0),
        Turn(role="agent", text="好的，感谢您来电，再见", start=65.0, end=67.0)))
    return {r.rule_id: r for r in evaluate(pack, tr)}


def test_engine_fills_heard_for_every_matcher():
    r = _results()
    (e,) = r["complaint"].evidence
    assert e.matcher == "pinyin" and e.heard in (("公信不",), ("头诉",)) and "≈" in e.matched
    assert r["closing"].evidence[0].heard == ("感谢您来电",) and r["closing"].evidence[0].matcher == "fuzzy"
    assert r["both"].evidence[0].heard == ("话费", "乱扣")
    assert r["agent_id"].evidence[0].heard == ("工号1234",)  # on the normalised text


def test_one_highlighter_marks_heard_words_on_the_verbatim_text():
    r = _results()
    e = r["agent_id"].evidence[0]
    assert mark(e.text, evidence_terms(e)) == "您好，【工号一二三四】为您服务"  # mapped back from 工号1234
    e = r["both"].evidence[0]
    assert highlight(e.text, evidence_terms(e)) == [("我要去公信不头诉你们，", False), ("话费", True),
                                                   ("乱扣", True), ("！", False)]
    e = r["closing"].evidence[0]
    assert mark(e.text, evidence_terms(e)) == "好的，【感谢您来电】，再见"
    assert highlight("aXbx", ["x"]) == [("a", False), ("X", True), ("b", False), ("x", True)]


def test_heard_round_trips_through_json_and_old_records_still_load():
    r = _results()["both"]
    back = RuleResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r and back.evidence[0].heard == ("话费", "乱扣") and hash(back) == hash(r)
    old = {"role": "customer", "turn": 1, "start": 2.0, "end": 5.0, "text": "我要去公信不头诉你们",
           "matcher": "pinyin", "matched": "投诉≈头诉", "confidence": 0.9}  # stored before `heard`
    e = Evidence(**old)
    assert e.heard == () and evidence_terms(e) == ("头诉",)
    assert mark(e.text, evidence_terms(e)) == "我要去公信不【头诉】你们"
    assert batch_highlight(e.text, e.matched, e.matcher) == highlight(e.text, ["头诉"])
    # a hand-made record holding a regex pattern: found with RE2, a bad pattern marks nothing
    pat = Evidence(role="agent", turn=0, start=None, end=None, text="证号110101199001011234", matcher="regex",
                   matched=r"\d{17}[\dX]")
    assert evidence_terms(pat) == ("110101199001011234",)
    assert batch_highlight("abc", "(", "regex") == [("abc", False)]


def test_one_mmss():
    assert mmss(65.9) == "01:05" and mmss(3725) == "62:05" and mmss(None) == "—"
    assert mmss(-1) == "—" and mmss(float("nan")) == "—" and mmss(float("inf")) == "—" and mmss(None, "--:--") == "--:--"
    assert fmt_mmss(65.9) == mmss(65.9)
