"""Example library: choosing examples, cutting clips (real sample audio), beeping personal
data, the gallery page."""
from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from qa_inspect.cli import main
from qa_inspect.records import CallInput, CallResult, Evidence, RuleResult, Score, Transcript, Turn
from qa_inspect.reports.examples import Example, cut_clips, pick_examples
from qa_inspect.store import open_store
from report_fixtures import build_db


@pytest.fixture(scope="module")
def db(root, samples, tmp_path_factory):
    return build_db(root, samples, tmp_path_factory.mktemp("examples") / "qa.db")


def _res(cid, agent, outcome="hit", conf=1.0, matcher="keyword", score=90.0, fatal=False, sent=None,
         risk=False, evidence=True):
    ev = (Evidence("agent", 0, 1.0, 3.0, "这个不归我管", matcher, "不归我管", conf),) if evidence else ()
    rules = [RuleResult("rule_x", "规则X", "礼貌", "major", outcome != "pass", outcome, 5.0, kind="forbidden",
                        evidence=ev if outcome != "pass" else ()),
             RuleResult("greet", "问候", "礼貌", "minor", True, "pass", 0.0, kind="required",
                        evidence=(Evidence("agent", 0, 0.0, 1.0, "您好", "keyword", "您好", conf),))]
    if risk:
        rules.append(RuleResult("esc", "升级", "风险", "critical", True, "hit", 0.0, kind="risk"))
    return CallResult(call=CallInput(call_id=cid, agent_id=agent, path=""), status="ok",
                      transcript=Transcript(cid, "zh", (Turn("agent", "您好，这个不归我管", 0.0, 3.0),)),
                      rules=tuple(rules), score=Score(score, "A", fatal),
                      metrics={} if sent is None else {"customer_sentiment_end": sent})


def test_violations_strongest_first_spread_over_agents():
    res = [_res("a1", "A", conf=1.0), _res("a2", "A", conf=0.95), _res("a3", "A", conf=0.9),
           _res("b1", "B", conf=0.6, matcher="fuzzy"), _res("c1", "C", evidence=False),
           _res("p1", "D", outcome="pass")]
    picked = [e.result.call.call_id for e in pick_examples(res, "rule_x", n=4)]
    # each agent's best first (by strength), then second-best: diversity over raw strength
    assert picked == ["a1", "b1", "c1", "a2"]
    assert [e.result.call.call_id for e in pick_examples(res, "rule_x", n=10)][-1] == "a3"


def test_best_practice_needs_clean_call_and_good_sentiment():
    res = [_res("good", "A", outcome="pass", sent=0.8), _res("ok", "B", outcome="pass", sent=0.1),
           _res("angry", "C", outcome="pass", sent=-0.6), _res("fatal", "D", outcome="pass", fatal=True),
           _res("risk", "E", outcome="pass", risk=True), _res("nosent", "F", outcome="pass", score=95.0),
           _res("forbidden", "G")]  # violates rule_x: not an example of doing greet well
    picked = [e.result.call.call_id for e in pick_examples(res, "greet", kind="best", n=10)]
    # missing sentiment counts as neutral (0): "ok" (+0.1, score 90) edges out "nosent" (score 95)
    assert picked == ["good", "ok", "nosent"]


def test_cli_gallery_with_real_clips(db, root, tmp_path):
    out = tmp_path / "g"
    r = CliRunner().invoke(main, ["examples", "--db", str(db), "--rule", "escalation_risk", "--n", "10",
                                  "--out", str(out), "--rules", str(root / "rules/telecom_zh.yaml")])
    assert r.exit_code == 0, r.output
    html = (out / "examples.html").read_text(encoding="utf-8")
    clips = re.findall(r'<audio controls preload="auto" src="([^"]+)"', html)
    with open_store(db) as s:
        hits = [x for x in s.results() if any(y.rule_id == "escalation_risk" and y.matched for y in x.rules)]
    assert len(clips) == len(hits) == 3
    for c in clips:
        info = sf.info(str(out / c))
        assert info.samplerate == 16000 and 2.0 < info.duration < 20.0
        x, _ = sf.read(str(out / c))
        assert np.sqrt(np.mean(x ** 2)) > 0.005  # speech, not silence: the clip is the call's audio
    assert "<mark>12315</mark>" in html and "<mark>工信部</mark>" in html
    assert "需当日回访" in html  # the rule's description from the pack
    # complaint_intent hits twice for A001 and once for A002: two examples = two agents
    r = CliRunner().invoke(main, ["examples", "--db", str(db), "--rule", "complaint_intent", "--n", "2",
                                  "--out", str(tmp_path / "ci")])
    assert r.exit_code == 0, r.output
    agents = re.findall(r"<h2>#\d+ · [^·]+· ([^·<]+)", (tmp_path / "ci" / "examples.html").read_text(encoding="utf-8"))
    assert sorted(a.strip() for a in agents) == ["李娜 (A002)", "王芳 (A001)"]


def test_beep_covers_spoken_number(db, tmp_path):
    with open_store(db) as s:
        r = s.get_result("zh_no_greeting")
    turn = r.transcript.turns[3]
    assert turn.text.startswith("13800138000")
    rule = next(x for x in r.rules if x.rule_id == "greeting")
    ex = Example(r, rule, None, anchor_turn=3, strength=1.0, why="test")
    cut_clips([ex], tmp_path / "clips", context=1.0, redact=True)
    assert ex.clip_file and ex.beeped
    x, sr = sf.read(str(tmp_path / ex.clip_file))
    (b0, b1), = ex.beeped
    assert turn.start - 0.3 <= b0 and b1 <= turn.end + 0.3
    seg = x[int((b0 - ex.clip_start) * sr) + 160:int((b1 - ex.clip_start) * sr) - 160]
    spec = np.abs(np.fft.rfft(seg))
    assert abs(np.argmax(spec) * sr / len(seg) - 1000.0) < 5  # the number is a 1 kHz tone now
    ex2 = Example(r, rule, None, anchor_turn=3, strength=1.0, why="test")
    cut_clips([ex2], tmp_path / "raw", context=1.0, redact=False)
    y, _ = sf.read(str(tmp_path / ex2.clip_file))
    seg2 = y[int((b0 - ex2.clip_start) * sr) + 160:int((b1 - ex2.clip_start) * sr) - 160]
    assert abs(np.argmax(np.abs(np.fft.rfft(seg2))) * sr / len(seg2) - 1000.0) > 20  # speech unbeeped


def test_gallery_redacts_excerpt_and_survives_missing_audio(db, tmp_path):
    with open_store(db) as s:
        results = [x for x in s.results() if x.status == "ok"]
    results = [replace(x, call=replace(x.call, path="/nonexistent/x.wav")) if x.call.call_id == "zh_no_greeting"
               else x for x in results]
    r = CliRunner().invoke(main, ["examples", "--db", str(db), "--rule", "greeting", "--out", str(tmp_path / "x")])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "x" / "examples.html").read_text(encoding="utf-8")
    assert "zh_no_greeting" in html
    from qa_inspect.reports.examples import write_gallery

    page, ex = write_gallery(results, "greeting", tmp_path / "y", context=10.0)
    text = page.read_text(encoding="utf-8")
    assert "13800138000" not in text and "[手机号]" in text
    assert "file not found" in text and not ex[0].clip_file


def test_unknown_rule_is_an_error(db, tmp_path):
    r = CliRunner().invoke(main, ["examples", "--db", str(db), "--rule", "nope", "--out", str(tmp_path / "n")])
    assert r.exit_code == 2 and "nope" in r.output
