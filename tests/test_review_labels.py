"""Reviewers' verdicts become labels (`review labels`) that `rules eval --db` measures a pack
against and `rules learn --db` trains a learned condition from: reviews make the machine better."""
import json

import pytest

from qa_inspect.rules.learned import load_model
from qa_inspect.store import open_store
from test_workflow import cli, fill

RULES = "rules/telecom_zh.yaml"


@pytest.fixture(scope="module")
def reviewed(root, tmp_path_factory):
    """The samples run, a drawn sample reviewed by alice (all items) and bob (two calls),
    who disagree on one item."""
    d = tmp_path_factory.mktemp("labels")
    db = d / "qa.db"
    assert cli("run", root / "samples/transcripts.jsonl", "--db", db, "--out", d / "rep").exit_code == 0
    r = cli("sample", "--db", db, "--plan", root / "rules/sampling_plan.yaml", "--seed", 7,
            "--out", d / "ws.xlsx", "--json")
    assert r.exit_code == 0, r.output
    alice = fill(d / "ws.xlsx", d / "alice.xlsx",
                 {("zh_forbidden_phrase", "forbidden_phrase"): "false_positive",
                  ("zh_network_fault", "closing"): "missed",
                  ("zh_no_greeting", "escalation_risk"): None},
                 {}, added=[("zh_no_greeting", "escalation_risk")])
    assert cli("review", "import", d / "alice.xlsx", "--db", db, "--reviewer", "alice").exit_code == 0
    bob = fill(d / "ws.xlsx", d / "bob.xlsx", {("zh_no_greeting", "escalation_risk"): None}, {},
               only={"zh_forbidden_phrase", "zh_no_greeting"})
    assert cli("review", "import", d / "bob.xlsx", "--db", db, "--reviewer", "bob").exit_code == 0
    with open_store(db) as s:
        stored = {r.call.call_id: {x.rule_id: x for x in r.rules} for r in s.results()}
    return d, db, alice, bob, stored


def read_jsonl(path):
    return {d["call_id"]: d for d in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def test_verdicts_become_labels_of_what_is_present(reviewed):
    d, db, alice, bob, stored = reviewed
    r = cli("review", "labels", "--db", db, "--out", d / "labels.jsonl")
    assert r.exit_code == 0, r.output
    labels = read_jsonl(d / "labels.jsonl")
    votes = {}
    for who in (alice, bob):
        for call, item, _outcome, verdict in who:
            votes.setdefault((call, item), []).append(verdict)
    checked = 0
    for (call, item), vs in votes.items():
        rr = stored[call][item]
        if set(vs) == {"confirmed"} and rr.outcome == "n/a":
            assert item not in labels.get(call, {})  # did not apply: no label
            continue
        if len(set(vs)) > 1:  # alice and bob disagree: a tie, no label
            assert (call, item) == ("zh_forbidden_phrase", "forbidden_phrase")
            assert item not in labels[call]
            continue
        # defined independently of the code: confirmed = the machine was right about whether
        # the condition is there; 误报 / 漏检 = it was wrong
        want = rr.matched if vs[0] == "confirmed" else not rr.matched
        assert labels[call][item] is want, (call, item, vs)
        ev = labels[call]["evidence"].get(item)
        if want and rr.matched:  # the turns the machine found it in (none for a call-level metric)
            assert ev == (sorted({e.turn for e in rr.evidence if e.turn is not None and e.turn >= 0}) or None)
        else:
            assert ev is None
        checked += 1
    assert checked > 100
    assert labels["zh_network_fault"]["closing"] is False  # 漏检 of a required item: the closing is absent
    assert labels["zh_no_greeting"]["escalation_risk"] is True  # an added 漏检 of a risk: it is there
    assert labels["zh_no_greeting"]["greeting"] is False
    assert "forbidden_phrase: 0 present" in r.output and "1 tie(s)" in r.output  # the summary (stderr)
    assert all(v["reviewed_at"].startswith("20") for v in labels.values())

    only = cli("review", "labels", "--db", db, "--rule", "closing")
    lines = [json.loads(x) for x in only.output.splitlines() if x.startswith("{")]
    assert lines and all(set(x) == {"call_id", "closing", "evidence", "reviewed_at"} for x in lines)
    later = cli("review", "labels", "--db", db, "--since", "2999-01-01")
    assert later.exit_code == 2 and "no reviewer verdict" in later.output and "Traceback" not in later.output
    bad = cli("review", "labels", "--db", db, "--since", "last week")
    assert bad.exit_code == 2 and "--since 'last week'" in bad.output


def test_rules_eval_on_the_reviewed_calls(reviewed, root):
    d, db, _alice, _bob, stored = reviewed
    cli("review", "labels", "--db", db, "--out", d / "labels.jsonl")
    labels = read_jsonl(d / "labels.jsonl")
    r = cli("rules", "eval", root / RULES, "--db", db, "--labels", d / "labels.jsonl", "--json")
    assert r.exit_code == 0, r.output
    got = {x["item"]: x for x in json.loads(r.output[r.output.index("{"):])["items"]}
    zh = [c for c in labels if c.startswith("zh_")]  # the English call is the English pack's
    for rule in ("closing", "greeting", "escalation_risk", "forbidden_phrase"):
        pairs = [(labels[c][rule], stored[c][rule].matched) for c in zh if rule in labels[c]]
        tp = sum(t and p for t, p in pairs)
        fp = sum(p and not t for t, p in pairs)
        fn = sum(t and not p for t, p in pairs)
        assert (got[rule]["tp"], got[rule]["fp"], got[rule]["fn"]) == (tp, fp, fn), rule
    assert got["closing"]["fp"] >= 1  # the closing alice marked 漏检 on zh_network_fault
    both = cli("rules", "eval", root / RULES, "--db", db, "--transcripts", root / "samples/transcripts.jsonl",
               "--labels", d / "labels.jsonl")
    assert both.exit_code == 2 and "exactly one of --transcripts" in both.output


def test_rules_learn_from_reviews(reviewed, tmp_path):
    d, db, *_ = reviewed
    cli("review", "labels", "--db", db, "--out", d / "labels.jsonl")
    labels = read_jsonl(d / "labels.jsonl")
    pos = [c for c, v in labels.items() if v.get("closing") is True]
    neg = [c for c, v in labels.items() if v.get("closing") is False]
    assert len(pos) >= 2 and len(neg) >= 2
    out = tmp_path / "closing.json"
    r = cli("rules", "learn", "--db", db, "--labels", d / "labels.jsonl", "--item", "closing",
            "--role", "agent", "--out", out)
    assert r.exit_code == 0, r.output
    m = load_model(out)
    assert m.training["calls"] == len(pos) + len(neg) and m.training["positives"] == len(pos)
    assert m.training["evidence_turns"] == sum(len(labels[c]["evidence"].get("closing", [])) for c in pos)
    missing = cli("rules", "learn", "--db", tmp_path / "nope.db", "--labels", d / "labels.jsonl",
                  "--item", "closing", "--out", tmp_path / "x.json")
    assert missing.exit_code == 2 and "not found" in missing.output
