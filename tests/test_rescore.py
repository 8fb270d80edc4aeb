"""Re-scoring stored transcripts with changed rule packs: no audio, no ASR, results rewritten."""
import io
import json
import sqlite3

import yaml
from click.testing import CliRunner

from qa_inspect.cli import main
from qa_inspect.speech.fakes import ReferenceTranscriber
from qa_inspect.batch.inputs import read_input
from qa_inspect.batch.pipeline import BatchSummary, PackSet, run_batch
from qa_inspect.batch.rescore import rescore
from qa_inspect.batch.score import config_hash, stage_key
from qa_inspect.cli.progress import BatchProgress
from qa_inspect.rules import load_pack
from qa_inspect.store import open_store

EXTRA_DEDUCTION = 20  # added to the greeting rule
NEW_PHRASE, NEW_DEDUCTION = "稍等", 15  # a new forbidden phrase, said by an agent in a sample


def _modified_zh_pack(root, tmp_path):
    """The shipped Mandarin pack with a heavier greeting deduction and one more forbidden rule."""
    d = yaml.safe_load((root / "rules/telecom_zh.yaml").read_text(encoding="utf-8"))
    greeting = next(r for r in d["rules"] if r["id"] == "greeting")
    greeting["deduction"] += EXTRA_DEDUCTION
    d["rules"].append({"id": "balance_talk", "title": "test phrase", "category": "test", "kind": "forbidden",
                       "severity": "minor", "deduction": NEW_DEDUCTION,
                       "match": {"role": "agent", "any": [NEW_PHRASE]}})
    p = tmp_path / "zh_modified.yaml"
    p.write_text(yaml.safe_dump(d, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return p


def _agent_says(samples, phrase):
    out = set()
    for line in (samples / "transcripts.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        if any(phrase in t["text"] for t in d["turns"] if t["role"] == "agent"):
            out.add(d["call_id"])
    return out


def test_rescore_changes_scores_without_transcribing(root, samples, tmp_path):
    en = load_pack(root / "rules/telecom_en.yaml")
    packs = PackSet([load_pack(root / "rules/telecom_zh.yaml"), en])
    new_zh = load_pack(_modified_zh_pack(root, tmp_path))
    items = read_input(samples / "manifest.csv")
    fake = ReferenceTranscriber(samples / "transcripts.jsonl")
    with open_store(tmp_path / "q.db") as store:
        run_batch(items, packs, store, lambda: fake, "fake-asr")
        before = {r.call.call_id: r for r in store.results()}
        assert fake.calls == 13

        summary = rescore(store, PackSet([new_zh, en]))
        after = {r.call.call_id: r for r in store.results()}
        assert fake.calls == 13  # nothing transcribed again
        assert (summary.total, summary.rescored, summary.failed, summary.skipped) == (13, 13, 0, 0)
        assert store.count() == 14 and after["corrupt_call"].status == "error"  # error rows left alone

        hit = {cid for cid, r in after.items() if any(x.rule_id == "balance_talk" and x.outcome == "hit"
                                                      for x in r.rules)}
        assert hit and hit == _agent_says(samples, NEW_PHRASE) - {"en_billing_inquiry", "en_complaint_escalation"}
        changed = set()
        for cid, old in before.items():
            if old.status != "ok":
                continue
            new = after[cid]
            assert new.transcript == old.transcript and new.audio_hash == old.audio_hash
            assert new.metrics.get("asr_rtf") == old.metrics.get("asr_rtf")  # kept from the run
            if cid.startswith("en_"):
                assert new.pack_id == "telecom_en" and new.score == old.score  # the call's language pack
                continue
            assert new.pack_id == "telecom_zh" and new.pack_hash == new_zh.hash
            greeting_failed = next(x for x in new.rules if x.rule_id == "greeting").outcome == "fail"
            extra = EXTRA_DEDUCTION * greeting_failed + NEW_DEDUCTION * (cid in hit)
            expected = 0.0 if new.score.fatal else max(0.0, old.score.score - extra)
            assert new.score.score == expected, cid
            if new.score.score != old.score.score or new.score.grade != old.score.grade:
                changed.add(cid)
        assert after["zh_no_greeting"].score.score == before["zh_no_greeting"].score.score - EXTRA_DEDUCTION
        assert {c.call_id for c in summary.changes} == changed and summary.changed == len(changed) >= 2
        assert summary.calls_per_s and summary.calls_per_s > 0

        # the stored config hash is what `run` computes with the new packs: a re-run skips all
        assert after["zh_polite_inquiry"].config_hash == config_hash(stage_key("fake-asr", packs.enrich_config()), new_zh)
        s = run_batch(items, PackSet([new_zh, en]), store, lambda: fake, "fake-asr")
        assert (s.skipped, s.ok, fake.calls) == (13, 0, 13)
        # ... and a run with the old packs re-scores the Mandarin calls instead of trusting the
        # new scores (the English pack didn't change: those stay done)
        s = run_batch(items, packs, store, lambda: fake, "fake-asr")
        assert (s.ok, s.skipped, fake.calls) == (11, 2, 13)
        assert {r.call.call_id: r.score for r in store.results()} == {k: r.score for k, r in before.items()}


def test_a_row_that_cannot_be_rescored_keeps_its_result(root, samples, tmp_path):
    packs = PackSet([load_pack(root / "rules/telecom_zh.yaml"), load_pack(root / "rules/telecom_en.yaml")])
    with open_store(tmp_path / "q.db") as store:
        run_batch(read_input(samples / "transcripts.jsonl"), packs, store, lambda: None, "x")
        rec = json.loads(store.db.execute("SELECT record FROM results WHERE call_id='zh_long_hold'").fetchone()[0])
        rec["transcript"]["turns"][0].pop("text")  # a damaged record
        with store.db:
            store.db.execute("UPDATE results SET record=? WHERE call_id='zh_long_hold'",
                             (json.dumps(rec, ensure_ascii=False),))
        summary = rescore(store, packs)
        assert (summary.rescored, summary.failed) == (12, 1) and "zh_long_hold" in summary.failures
        raw = store.db.execute("SELECT record FROM results WHERE call_id='zh_long_hold'").fetchone()[0]
        assert json.loads(raw) == rec


def test_rescore_command(root, samples, tmp_path):
    db, runner = tmp_path / "q.db", CliRunner()
    zh, en = str(root / "rules/telecom_zh.yaml"), str(root / "rules/telecom_en.yaml")
    res = runner.invoke(main, ["run", str(samples / "transcripts.jsonl"), "--rules", zh, "--rules", en,
                               "--db", str(db), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    new_zh = str(_modified_zh_pack(root, tmp_path))

    res = runner.invoke(main, ["rescore", "--db", str(db), "--rules", new_zh, "--rules", en,
                               "--out", str(tmp_path / "r2")])
    assert res.exit_code == 0, res.output
    assert "rescored: 13 call(s)" in res.output and "calls/s" in res.output
    n_changed = int(res.output.split("call(s), ")[1].split(" changed score")[0])
    assert n_changed >= 2
    assert "zh_no_greeting" in res.output and "->" in res.output  # the changed calls are listed
    html = (tmp_path / "r2" / "report.html").read_text(encoding="utf-8")
    assert "zh_no_greeting" in html and (tmp_path / "r2" / "report.csv").exists()
    exp = runner.invoke(main, ["export", "--db", str(db)])
    hashes = {json.loads(l)["call_id"]: json.loads(l)["pack_hash"] for l in exp.output.splitlines()}
    assert hashes["zh_no_greeting"] == load_pack(new_zh).hash

    # the next nightly run with the same packs finds every call done
    res = runner.invoke(main, ["run", str(samples / "transcripts.jsonl"), "--rules", new_zh, "--rules", en,
                               "--db", str(db), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0 and "13 already done" in res.output, res.output

    # a bad pack fails before the database is touched
    bad = tmp_path / "bad.yaml"
    bad.write_text("pack: {id: b}\nrules:\n  - id: a\n    kindd: required\n    match: {any: [x]}\n",
                   encoding="utf-8")
    before = sqlite3.connect(db).execute("SELECT record FROM results ORDER BY call_id").fetchall()
    res = runner.invoke(main, ["rescore", "--db", str(db), "--rules", str(bad)])
    assert res.exit_code == 2 and f"{bad}:4" in res.output
    assert sqlite3.connect(db).execute("SELECT record FROM results ORDER BY call_id").fetchall() == before
    res = runner.invoke(main, ["rescore", "--db", str(tmp_path / "missing.db")])
    assert res.exit_code == 2


def test_run_without_tty_prints_plain_lines_and_summary(samples, tmp_path):
    res = CliRunner().invoke(main, ["run", str(samples / "transcripts.jsonl"), "--db", str(tmp_path / "q.db"),
                                    "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "\x1b[" not in res.output  # no live bar
    assert sum(1 for l in res.output.splitlines() if l.startswith("  zh_") or l.startswith("  en_")) == 13
    done = next(l for l in res.output.splitlines() if l.startswith("done:"))
    assert "s wall" in done and "real-time factor" in done and "calls/s" in done


def test_progress_fields_and_live_bar():
    s = BatchSummary(total=10, ok=3, errors=1, skipped=2, audio_s=150.0, wall_s=8.0)
    f = BatchProgress.fields(s, 10)
    # 4 calls processed in 8 s: 0.5 calls/s; 4 left → 8 s; skipped calls don't count as speed
    assert f == {"rate": "0.50 calls/s", "audio": "2.5 min", "eta": "0:00:08"}
    assert BatchProgress.fields(BatchSummary(total=3, skipped=1), 3)["eta"] == "–"

    from rich.console import Console

    buf = io.StringIO()
    with BatchProgress(10, Console(file=buf, force_terminal=True, width=140), live=True) as p:
        p.update(s)
        p.print("  some_call   90.0 A")
    out = buf.getvalue()
    assert "6/10" in out and "0.50 calls/s" in out and "audio 2.5 min" in out and "ETA 0:00:08" in out
    assert "some_call" in out
    quiet = BatchProgress(10, live=False)
    with quiet:
        quiet.update(s)  # no-op


def test_a_pack_that_newly_reads_sentiment_gets_it_computed_by_the_rescore(root, samples, tmp_path, monkeypatch):
    """issue 18: `run` scores the sentiment its packs read (the end window for the shipped
    packs); a re-score whose pack newly reads customer_sentiment_min computes it for every
    call then (text only, nothing transcribed), equal to a full enrichment, and stores the
    widened transcript under the key a later `run` with that pack computes (which skips)."""
    from qa_inspect.enrich import enrich

    monkeypatch.setenv("QA_INSPECT_SENTIMENT", "lexicon")  # the scope logic, without model loads
    monkeypatch.delenv("QA_INSPECT_SENTIMENT_SCOPE", raising=False)
    en = load_pack(root / "rules/telecom_en.yaml")
    packs = PackSet([load_pack(root / "rules/telecom_zh.yaml"), en])
    d = yaml.safe_load((root / "rules/telecom_zh.yaml").read_text(encoding="utf-8"))
    d["rules"].append({"id": "low_point", "title": "customer at a low point", "category": "test", "kind": "risk",
                       "severity": "minor", "deduction": 0,
                       "match": {"metric": {"name": "customer_sentiment_min", "op": "lt", "value": -0.3}}})
    p = tmp_path / "zh_min.yaml"
    p.write_text(yaml.safe_dump(d, allow_unicode=True, sort_keys=False), encoding="utf-8")
    new = PackSet([load_pack(p), en])
    items = [i for i in read_input(samples / "transcripts.jsonl") if i.call.language == "zh"]
    with open_store(tmp_path / "q.db") as store:
        run_batch(items, packs, store, lambda: None, "x")
        before = {r.call.call_id: r for r in store.results()}
        assert {r.transcript.metrics["sentiment_scope"] for r in before.values()} == {"end"}
        assert not any("customer_sentiment_min" in r.metrics for r in before.values())

        s = rescore(store, new)
        assert (s.rescored, s.failed) == (len(items), 0)
        after = {r.call.call_id: r for r in store.results()}
        lows = 0
        for it in items:
            cid, r = it.call.call_id, after[it.call.call_id]
            full = enrich(it.transcript)  # every utterance, as `rules eval` enriches
            assert r.transcript.metrics["sentiment_scope"] == "all"
            assert r.metrics.get("customer_sentiment_min") == full.metrics.get("customer_sentiment_min"), cid
            assert r.metrics.get("customer_sentiment_end") == before[cid].metrics.get("customer_sentiment_end")
            low = next(x for x in r.rules if x.rule_id == "low_point")
            assert low.outcome in ("hit", "pass"), (cid, low.outcome, low.reason)
            lows += low.outcome == "hit"
        assert 0 < lows < len(items)
        # what a `run` with the new packs computes: everything is done already
        again = run_batch(items, new, store, lambda: None, "x")
        assert (again.skipped, again.ok) == (len(items), 0)
        # the shipped packs again: nothing newly read, nothing recomputed by a re-score
        s = rescore(store, packs)
        assert {r.transcript.metrics["sentiment_scope"] for r in store.results() if r.status == "ok"} == {"all"}
