"""Bulk re-scoring: chunked transactions, the worker pool, and a kill -9 in the middle."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from qa_inspect.batch.inputs import read_input
from qa_inspect.batch.pipeline import PackSet, run_batch
from qa_inspect.batch.rescore import RescoreSummary, rescore
from qa_inspect.records import CallResult
from qa_inspect.batch.rescore import rescore_store
from qa_inspect.rules import load_pack
from qa_inspect.store import open_store, result_row


def _fill(db, root, samples, copies: int) -> None:
    """``copies`` × the 13 reference calls (distinct call ids), as `run` stores them."""
    packs = PackSet([load_pack(root / "rules/telecom_zh.yaml"), load_pack(root / "rules/telecom_en.yaml")])
    with open_store(db) as st:
        run_batch(read_input(samples / "transcripts.jsonl"), packs, st, lambda: None, "x")
        base = [r.to_dict() for r in st.results()]
        rows = []
        for k in range(1, copies):
            for d in base:
                r = CallResult.from_dict({**d, "call_id": f"{d['call_id']}_{k:04d}"})
                rows.append(result_row(r))
        st.put_rows(rows)


def _en_only(root):
    return PackSet([load_pack(root / "rules/telecom_en.yaml")])  # every Mandarin call changes pack


def test_pool_and_chunks_give_the_same_rows_as_one_process(root, samples, tmp_path):
    _fill(tmp_path / "a.db", root, samples, 40)  # 520 calls
    (tmp_path / "b.db").write_bytes((tmp_path / "a.db").read_bytes())
    packs = _en_only(root)
    with open_store(tmp_path / "a.db") as st:
        one = rescore(st, packs, workers=1)
        want = {r.call.call_id: r.to_dict() for r in st.results()}
    with open_store(tmp_path / "b.db") as st:
        two = RescoreSummary()
        rescore_store(st, packs, two, workers=2, chunk=37)  # 15 chunks over 2 processes
        got = {r.call.call_id: r.to_dict() for r in st.results()}
    assert (one.total, one.rescored, one.failed) == (two.total, two.rescored, two.failed) == (520, 520, 0)
    assert one.changed == two.changed > 0
    assert sorted(c.call_id for c in one.changes) == sorted(c.call_id for c in two.changes)
    assert got == want
    assert all(d["pack_id"] == "telecom_en" for d in got.values())


KILL_SCRIPT = """
import sys, time
from qa_inspect.batch.pipeline import PackSet
from qa_inspect.batch.rescore import rescore_store
from qa_inspect.batch.rescore import RescoreSummary
from qa_inspect.rules import load_pack
from qa_inspect.store import open_store
st = open_store(sys.argv[1])
packs = PackSet([load_pack(sys.argv[2])])
# a slow callback (forces the in-process path) so the kill lands inside a chunk
rescore_store(st, packs, RescoreSummary(), chunk=50, on_result=lambda old, new: time.sleep(0.004))
"""


def test_kill_9_during_rescore_leaves_every_row_old_or_new(root, samples, tmp_path):
    db = tmp_path / "q.db"
    _fill(db, root, samples, 30)  # 390 calls, 8 chunks of 50
    con = sqlite3.connect(db)
    en = load_pack(root / "rules/telecom_en.yaml")
    t_start = time.time()
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(db), str(root / "rules/telecom_en.yaml")],
                            cwd=root)
    deadline = time.time() + 120
    try:
        while time.time() < deadline:  # wait until at least one chunk is committed
            if con.execute("SELECT COUNT(*) FROM results WHERE updated_at > ?", (t_start,)).fetchone()[0]:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    recs = [(cid, cfg, t > t_start, json.loads(rec)) for cid, cfg, t, rec in
            con.execute("SELECT call_id, config_hash, updated_at, record FROM results ORDER BY call_id")]
    con.close()
    assert len(recs) == 390
    new = [cid for cid, _c, is_new, _d in recs if is_new]
    assert 0 < len(new) < 390, "the kill did not land mid-way"
    for cid, cfg, is_new, d in recs:
        assert d["call_id"] == cid and d["config_hash"] == cfg  # each row is one whole version
        assert d["pack_id"] == "telecom_en" or (not is_new and cid.startswith("zh_"))
    # whole chunks only: the rows re-scored are exactly the first 50·k call ids
    ids = [cid for cid, _c, _n, _d in recs]
    assert len(new) % 50 == 0 and new == ids[:len(new)]
    # run again: it finishes the rest
    with open_store(db) as st:
        s = rescore(st, PackSet([en]))
        assert s.rescored == 390 and s.failed == 0
        assert all(r.pack_hash == en.hash for r in st.results())


def test_audio_with_two_asr_configs_keeps_the_right_key(root, samples, tmp_path):
    """The same audio transcribed under two ASR configs: the re-scored config hash must be
    the one of the transcript the call was scored from (what a later `run` computes)."""
    from qa_inspect.speech.fakes import ReferenceTranscriber
    from qa_inspect.batch.score import config_hash, stage_key

    packs = PackSet([load_pack(root / "rules/telecom_zh.yaml"), load_pack(root / "rules/telecom_en.yaml")])
    ids = {"zh_polite_inquiry", "zh_no_greeting"}
    items = [i for i in read_input(samples / "manifest.csv") if i.call.call_id in ids]
    fake = ReferenceTranscriber(samples / "transcripts.jsonl")
    with open_store(tmp_path / "q.db") as st:
        run_batch(items, packs, st, lambda: fake, "asr-A")
        for r in st.results():  # a second config's transcript of the same audio, stored later
            st.put_transcript(r.audio_hash, "asr-B", r.transcript.__class__(
                call_id=r.call.call_id, language="zh", turns=r.transcript.turns[:1], duration=1.0))
        new = PackSet([load_pack(root / "rules/telecom_en.yaml"), load_pack(root / "rules/telecom_zh.yaml")])
        s = rescore(st, new)
        assert (s.rescored, s.failed) == (2, 0)
        zh = load_pack(root / "rules/telecom_zh.yaml")
        for r in st.results():
            assert r.config_hash == config_hash(stage_key("asr-A", packs.enrich_config()), zh), r.call.call_id
        s = run_batch(items, new, st, lambda: fake, "asr-A")
        assert s.skipped == 2
