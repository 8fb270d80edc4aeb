"""Scorecards: strict loading, validation against the pack, the scoring maths, pipeline wiring."""
import json
import textwrap

import pytest
from click.testing import CliRunner

from qa_inspect.cli import main
from qa_inspect.errors import RuleError
from qa_inspect.speech.fakes import ReferenceTranscriber
from qa_inspect.batch.inputs import read_input
from qa_inspect.batch.pipeline import PackSet, run_batch
from qa_inspect.batch.score import config_hash
from qa_inspect.records import CallResult, RuleResult
from qa_inspect.rules import load_pack
from qa_inspect.rules.model import GradeBand, RulePack
from qa_inspect.scoring import ScoredPack
from qa_inspect.scoring.scorecard import apply_scorecard, bind, check_against_pack, load_scorecard, parse_scorecard
from qa_inspect.store import open_store

CARD = textwrap.dedent("""\
    scorecard: {id: t, version: "1", pack: p, base: 100}
    grades:
      - {min: 90, grade: A}
      - {min: 60, grade: C}
      - {min: 0, grade: D}
    sections:
      - id: sa
        weight: 50
        items:
          - {rule: x, points: 25}
          - {rule: y, points: 25}
      - id: sb
        weight: 50
        items:
          - {rule: z, points: 50}
    """)


def rr(rule_id, outcome, fatal=False, kind="required"):
    return RuleResult(rule_id=rule_id, title=rule_id, category="c", severity="major",
                      matched=outcome in ("pass", "hit"), outcome=outcome, deduction=0.0, fatal=fatal, kind=kind)


def card(text=CARD):
    sc, problems = parse_scorecard(text, "card.yaml")
    assert not problems, problems
    return sc


def check_sum(score):
    assert round(100 + sum(b.points for b in score.breakdown), 1) == score.score


def test_shipped_scorecards_validate_against_their_packs(root):
    for lang in ("zh", "en"):
        pack = load_pack(root / f"rules/telecom_{lang}.yaml")
        sc = load_scorecard(root / f"rules/scorecard_telecom_{lang}.yaml", pack)
        assert sc.pack == pack.id
        assert check_against_pack(sc, pack) == []  # every pack rule scored or listed as unscored
        assert all(i.points for s in sc.sections for i in s.items)  # defaults resolved from the pack
    en = load_scorecard(root / "rules/scorecard_telecom_en.yaml", load_pack(root / "rules/telecom_en.yaml"))
    apology = next(i for s in en.sections for i in s.items if i.rule == "apology")
    assert apology.points == 10  # not given in the card: the rule's deduction in the pack


def test_no_failure_no_na_scores_base_and_a_failed_item_costs_its_points():
    sc = card()
    s = apply_scorecard(sc, [rr("x", "pass"), rr("y", "pass"), rr("z", "pass")])
    assert (s.score, s.grade, s.fatal, s.scorecard_id) == (100.0, "A", False, "t")
    s = apply_scorecard(sc, [rr("x", "fail"), rr("y", "pass"), rr("z", "pass")])
    assert s.score == 75.0 and s.grade == "C"
    x = next(b for b in s.breakdown if b.rule_id == "x")
    assert (x.points, x.possible, x.section, x.outcome) == (-25.0, 25.0, "sa", "fail")
    check_sum(s)


def test_na_item_is_excluded_not_passed():
    # z does not apply: its section leaves the score, which is then over section sa alone
    s = apply_scorecard(card(), [rr("x", "fail"), rr("y", "pass"), rr("z", "n/a")])
    assert s.score == 50.0  # 25 of 50 applicable points; counting z as passed would give 75
    z = next(b for b in s.breakdown if b.rule_id == "z")
    assert z.points == 0 and z.note.startswith("n/a: excluded")
    check_sum(s)
    # the item-level policy na: pass counts it as passed instead
    s2 = apply_scorecard(card(CARD.replace("{rule: z, points: 50}", "{rule: z, points: 50, na: pass}")),
                         [rr("x", "fail"), rr("y", "pass"), rr("z", "n/a")])
    assert s2.score == 75.0
    # everything n/a: nothing to deduct, the base stands
    assert apply_scorecard(card(), [rr("x", "n/a"), rr("y", "n/a"), rr("z", "n/a")]).score == 100.0


def test_section_cap_limits_what_a_section_can_lose():
    sc = card(CARD.replace("weight: 50\n    items:\n      - {rule: x", "weight: 50\n    cap: 10\n    items:\n      - {rule: x"))
    assert sc.sections[0].cap == 10
    s = apply_scorecard(sc, [rr("x", "fail"), rr("y", "fail"), rr("z", "pass")])
    assert s.score == 90.0  # 50 points failed, only 10 lost
    assert [b.points for b in s.breakdown if b.section == "sa"] == [-5.0, -5.0]
    assert "cap 10" in s.breakdown[0].note
    check_sum(s)


def test_bonus_and_fatal():
    text = CARD.replace('base: 100}', 'base: 100, max_score: 102}') + textwrap.dedent("""\
        bonus:
          - {rule: b1, points: 3}
          - {rule: b2, points: 3}
        bonus_cap: 4
        fatal:
          - {rule: f}
        """)
    sc = card(text)
    base = [rr("x", "fail"), rr("y", "pass"), rr("z", "pass"), rr("b1", "pass"), rr("b2", "pass"),
            rr("f", "pass", kind="forbidden")]
    s = apply_scorecard(sc, base)
    assert s.score == 79.0  # 75 + 3 + 1 (bonus_cap 4)
    assert [b.points for b in s.breakdown if b.section == "bonus"] == [3.0, 1.0]
    check_sum(s)
    full = [rr("x", "pass")] + base[1:]
    assert apply_scorecard(sc, full).score == 102.0  # max_score, not 104
    s = apply_scorecard(sc, base[:-1] + [rr("f", "hit", kind="forbidden")])
    assert (s.score, s.fatal, s.grade) == (0.0, True, "D")
    f = next(b for b in s.breakdown if b.section == "fatal")
    assert f.points == -79.0 and "fatal" in f.note
    check_sum(s)
    # a rule the pack itself marks fatal zeroes the call even if the card does not list it
    s = apply_scorecard(card(), [rr("x", "pass"), rr("y", "pass"), rr("z", "fail", fatal=True)])
    assert s.score == 0.0 and s.fatal


@pytest.mark.parametrize("bad, line, words", [
    (CARD.replace("    weight: 50\n    items:\n      - {rule: z", "    weigth: 50\n    items:\n      - {rule: z"),
     13, "unknown key 'weigth'; did you mean 'weight'"),
    (CARD.replace("{rule: y, points: 25}", "{rule: x, points: 25}"), 11, "rule 'x' appears twice"),
    (CARD.replace("points: 50}", "points: -5}"), 15, "'points' must be > 0"),
    (CARD.replace("sections:", "sections:\n  - {id: sa, weight: 1, items: [q]}\nextra: 1\nsections2:"), 8,
     "unknown key 'extra'"),
    (CARD + "grades: []\n", 16, "duplicate key 'grades'"),
    (CARD.replace('{id: t, version: "1", pack: p, base: 100}', "{id: t, base: 100}"), 1,
     "scorecard: 'version' is required"),
    ("sections: []\n", 1, "'scorecard:' with 'id', 'version' and 'pack' is required"),
])
def test_strict_loading_errors_carry_file_and_line(bad, line, words):
    sc, problems = parse_scorecard(bad, "card.yaml")
    assert sc is None
    text = "\n".join(map(str, problems))
    assert f"card.yaml:{line}:" in text and words in text, text


def test_validation_against_pack_unknown_rule_is_an_error_with_line(root, tmp_path):
    pack = load_pack(root / "rules/telecom_zh.yaml")
    text = (root / "rules/scorecard_telecom_zh.yaml").read_text(encoding="utf-8").replace(
        "{rule: offer_help, points: 4}", "{rule: offer_hlep, points: 4}")
    p = tmp_path / "card.yaml"
    p.write_text(text, encoding="utf-8")
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "offer_hlep" in ln)
    with pytest.raises(RuleError) as e:
        load_scorecard(p, pack)
    assert f"{p}:{line}" in str(e.value) and "unknown rule id 'offer_hlep'" in str(e.value)
    assert "did you mean 'offer_help'" in str(e.value)
    findings = check_against_pack(load_scorecard(p), pack)
    assert {f.severity for f in findings} == {"error", "warning"}  # offer_help now unscored: a warning
    r = CliRunner().invoke(main, ["scorecard", "validate", str(p), "--rules", str(root / "rules/telecom_zh.yaml")])
    assert r.exit_code == 1 and f"{p}:{line}" in r.output


def test_config_hash_follows_the_scorecard(root, tmp_path):
    pack = load_pack(root / "rules/telecom_zh.yaml")
    sc = load_scorecard(root / "rules/scorecard_telecom_zh.yaml")
    plain = config_hash("asr", pack)
    bound = ScoredPack(pack, bind(sc, pack))  # a pack and its scorecard travel as a pair
    assert bound.pack.rules == pack.rules
    assert config_hash("asr", bound) != plain
    p = tmp_path / "c.yaml"
    p.write_text((root / "rules/scorecard_telecom_zh.yaml").read_text(encoding="utf-8").replace(
        "weight: 20\n    cap: 15", "weight: 20\n    cap: 16"), encoding="utf-8")
    assert config_hash("asr", ScoredPack(pack, load_scorecard(p, pack))) != config_hash("asr", bound)
    with pytest.raises(RuleError, match="not loaded"):
        PackSet([load_pack(root / "rules/telecom_en.yaml")], [sc])


def test_pipeline_stores_the_breakdown_and_rescore_applies_a_changed_card(root, samples, tmp_path):
    zh, en = load_pack(root / "rules/telecom_zh.yaml"), load_pack(root / "rules/telecom_en.yaml")
    cards = [load_scorecard(root / f"rules/scorecard_telecom_{x}.yaml") for x in ("zh", "en")]
    items = read_input(samples / "transcripts.jsonl")  # given transcripts: no audio to decode
    fake = ReferenceTranscriber(samples / "transcripts.jsonl")
    db = tmp_path / "q.db"
    with open_store(db) as store:
        run_batch(items, PackSet([zh, en]), store, lambda: fake, "fake-asr")
        plain = {r.call.call_id: r for r in store.results() if r.status == "ok"}
        s = run_batch(items, PackSet([zh, en], cards), store, lambda: fake, "fake-asr")
        assert s.skipped == 0 and s.ok == 13  # a scorecard changes the config: everything re-scored
        carded = {r.call.call_id: r for r in store.results() if r.status == "ok"}
    fp = carded["zh_forbidden_phrase"]
    assert fp.score.fatal and fp.score.score == 0 and fp.score.scorecard_id == "telecom_zh_card"
    assert plain["zh_forbidden_phrase"].score.score > 0 and plain["zh_forbidden_phrase"].score.scorecard_id == ""
    ng = carded["zh_no_greeting"].score
    # greeting, self_introduction, offer_help and closing fail; business and complaint are n/a;
    # call handling (the metric rules) passes → opening keeps 5 of 20 (cap 15), closing 0 of 20,
    # manner 10 of 10: 100 × 15 / 50. One opening point is worth 100 × 20/50 / 20 = 2 here, and
    # the cap keeps 15/20 of each failed item's points
    assert ng.score == 30.0 and ng.grade == "D"
    assert {b.rule_id: b.points for b in ng.breakdown if b.points} == {
        "greeting": -12.0, "self_introduction": -12.0, "offer_help": -6.0, "closing": -40.0}
    # the export record carries the breakdown and reads back
    d = json.loads(json.dumps(carded["zh_no_greeting"].to_dict(), ensure_ascii=False))
    assert d["scorecard_id"] == "telecom_zh_card" and len(d["score_breakdown"]) == 11  # 9 items, 1 bonus, 1 fatal
    back = CallResult.from_dict(d)
    assert back.score.breakdown == ng.breakdown and back.score.scorecard_version == "1.0.0"

    # rescore from the CLI with a heavier closing item: only calls failing closing change
    card = tmp_path / "card.yaml"
    card.write_text((root / "rules/scorecard_telecom_zh.yaml").read_text(encoding="utf-8")
                    .replace("cap: 15", "cap: 20"), encoding="utf-8")
    r = CliRunner().invoke(main, ["rescore", "--db", str(db), "--scorecard", str(card), "--scorecard",
                                  str(root / "rules/scorecard_telecom_en.yaml")])
    assert r.exit_code == 0, r.output
    assert "zh_no_greeting" in r.output and "->  20.0 D" in r.output
    with open_store(db) as store:
        # opening now loses all 20: only call handling keeps its 10 → 100 × 10 / 50
        assert store.get_result("zh_no_greeting").score.score == 20.0
        assert store.get_result("zh_polite_inquiry").score.score == 100.0
    r = CliRunner().invoke(main, ["scorecard", "show", "zh_no_greeting", "--db", str(db)])
    assert r.exit_code == 0 and "closing" in r.output and "-40.0" in r.output
    # the stored breakdown points at turns (no copy of the words); `show` prints the words
    fp_line = next(b for b in carded["zh_forbidden_phrase"].score.breakdown if b.section == "fatal")
    assert fp_line.turns and fp_line.evidence.startswith(f"turn {fp_line.turns[0]} agent")
    assert "不归我管" not in fp_line.evidence
    r = CliRunner().invoke(main, ["scorecard", "show", "zh_forbidden_phrase", "--db", str(db)])
    assert r.exit_code == 0 and "FATAL" in r.output and "agent: 宽带安装这个不归我管" in r.output


def test_run_with_a_bad_scorecard_fails_before_any_call(root, samples, tmp_path):
    card = tmp_path / "card.yaml"
    card.write_text(CARD.replace("pack: p", "pack: telecom_zh"), encoding="utf-8")
    r = CliRunner().invoke(main, ["run", str(samples / "transcripts.jsonl"), "--db", str(tmp_path / "q.db"),
                                  "--out", str(tmp_path / "rep"), "--scorecard", str(card)])
    assert r.exit_code == 2
    assert "unknown rule id 'x'" in r.output and f"{card}:10" in r.output
    assert not (tmp_path / "rep").exists()


def test_default_scoring_still_has_a_breakdown():
    from qa_inspect.scoring import score_call

    res = [rr("a", "pass"), RuleResult("b", "b", "cat", "major", False, "fail", 5.0)]
    s = score_call(res, [(g.min, g.grade) for g in (GradeBand(90, "A"), GradeBand(0, "D"))])
    assert (s.score, s.grade, s.scorecard_id) == (95.0, "A", "")
    assert [(b.rule_id, b.points, b.section) for b in s.breakdown] == [("b", -5.0, "cat")]
