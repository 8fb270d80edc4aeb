"""The process-pool executor: `run --workers N` (real Whisper, slow) and the driver logic (fast)."""
import os
import subprocess
import sys
import time

import pytest
from conftest import exported_records, sample_manifest

from qa_inspect.speech.asr import ASRConfig
from qa_inspect.batch.pool import auto_workers, run_batch_parallel, worker_threads
from qa_inspect.speech.fakes import ReferenceTranscriber
from qa_inspect.batch.inputs import read_input
from qa_inspect.batch.pipeline import PackSet, run_batch
from qa_inspect.rules import load_pack
from qa_inspect.store import open_store


def test_worker_threads_split_the_cores():
    assert worker_threads(2, 2) == 1
    assert worker_threads(2, 16) == 8
    assert worker_threads(8, 2) == 1


def test_auto_workers_one_per_core_as_memory_allows():
    assert auto_workers(cores=2, available_mb=20_000) == 2
    assert auto_workers(cores=16, available_mb=3_500) == 3  # 1 GiB a worker
    assert auto_workers(cores=8, available_mb=500) == 1  # never fewer than one
    assert auto_workers(cores=1, available_mb=64_000) == 1
    assert 1 <= auto_workers() <= (os.cpu_count() or 1)


def test_run_defaults_to_auto_workers(root, samples, tmp_path, monkeypatch):
    """Without --workers, `run` starts one worker per core (as memory allows); --workers 1 keeps
    everything in the process."""
    from click.testing import CliRunner

    import qa_inspect.batch.pool as pool
    from qa_inspect.cli import main

    seen = []

    def recorder(items, packs, store, cfg, workers, **kw):
        seen.append(workers)
        return run_batch(items, packs, store, ReferenceTranscriber, cfg.key(), force=kw.get("force", False),
                         on_result=kw.get("on_result"), on_progress=kw.get("on_progress"))

    monkeypatch.setattr(pool, "run_batch_parallel", recorder)
    monkeypatch.setattr(pool, "usable_cores", lambda: 3)
    monkeypatch.setattr(pool, "available_memory_mb", lambda: 100_000.0)
    args = ["run", str(samples / "transcripts.jsonl"), "--db", str(tmp_path / "q.db"), "--out", str(tmp_path / "r")]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert seen == [3]
    r = CliRunner().invoke(main, [*args[:3], str(tmp_path / "q1.db"), *args[4:], "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert seen == [3]  # in process: the pool was not asked


def test_parallel_driver_cache_hits_and_worker_errors_without_model(root, samples, tmp_path):
    """Cached transcripts are scored in the parent (no pool); calls that need ASR go to the
    pool, where a worker that cannot load its model turns each call into an error row."""
    packs = PackSet([load_pack(root / "rules/telecom_zh.yaml"), load_pack(root / "rules/telecom_en.yaml")])
    ids = {"zh_polite_inquiry", "zh_no_greeting", "corrupt_call"}
    items = read_input(sample_manifest(tmp_path, samples, ids))
    cfg = ASRConfig(model_path=str(tmp_path / "no-such-model"), language="zh")
    fake = ReferenceTranscriber(samples / "transcripts.jsonl")
    with open_store(tmp_path / "q.db") as store:
        # fill the transcript cache for every call under this ASR key, in process
        s0 = run_batch(items, packs, store, lambda: fake, cfg.key())
        assert (s0.ok, s0.errors) == (2, 1)
        seen = []
        # --force: nothing skipped, but transcripts are cached: no worker is needed
        s1 = run_batch_parallel(items, packs, store, cfg, 2, force=True, on_result=seen.append)
        assert (s1.ok, s1.errors, s1.skipped, s1.total) == (2, 1, 0, 3)
        assert s1.asr_audio_s == 0 and s1.audio_s > 0 and len(seen) == 3
        # without --force the ok calls are done; the corrupt one is retried in a worker,
        # which decodes before it needs the model: the same reason as in process
        s2 = run_batch_parallel(items, packs, store, cfg, 2)
        assert (s2.skipped, s2.ok, s2.errors) == (2, 0, 1)
        assert "cannot decode audio" in next(iter(s2.error_reasons))
        # a new ASR key: nothing cached, every call goes to the pool and comes back an error row
        cfg2 = ASRConfig(model_path=str(tmp_path / "no-such-model"), language="zh", beam_size=1)
        prog = []
        s3 = run_batch_parallel(items, packs, store, cfg2, 2, on_progress=lambda s, i, r: prog.append(r))
        assert (s3.ok, s3.errors, len(prog)) == (0, 3, 3)
        rows = {r.call.call_id: r for r in store.results()}
    assert store_count(tmp_path / "q.db") == 3
    assert all(r.status == "error" for r in rows.values())
    assert "model.bin missing" in rows["zh_polite_inquiry"].error


def store_count(db):
    with open_store(db) as s:
        return s.count()


@pytest.mark.slow
def test_run_with_two_workers_real_whisper(root, samples, tmp_path):
    ids = {"zh_polite_inquiry", "zh_forbidden_phrase", "corrupt_call"}
    manifest = sample_manifest(tmp_path, samples, ids)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if not env.get("QA_INSPECT_CACHE") and (root / ".cache" / "models" / "whisper-base").exists():
        env["QA_INSPECT_CACHE"] = str(root / ".cache")
    db = tmp_path / "qa.db"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "qa_inspect.cli", "run", str(manifest), "--workers", "2",
         "--rules", str(root / "rules/telecom_zh.yaml"), "--db", str(db), "--out", str(tmp_path / "r")],
        capture_output=True, text=True, env=env, cwd=root, timeout=300)
    wall = time.perf_counter() - t0
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "done: 2 ok, 1 error(s)" in proc.stdout, proc.stdout
    recs = exported_records(db, env)
    assert set(recs) == ids
    assert recs["corrupt_call"]["status"] == "error"
    assert "cannot decode audio" in recs["corrupt_call"]["error"]
    for cid in ("zh_polite_inquiry", "zh_forbidden_phrase"):
        rec = recs[cid]
        assert rec["status"] == "ok", rec
        first_agent = next(t["text"] for t in rec["transcript"]["turns"] if t["role"] == "agent")
        assert "您好" in first_agent or "为您服务" in first_agent, first_agent
        assert rec["metrics"]["asr_rtf"] > 0
    print(f"--workers 2 on 2 calls + corrupt: {wall:.1f} s wall")


def test_given_transcripts_are_enriched_in_the_pool_like_in_process(root, samples, tmp_path, monkeypatch):
    """A large transcripts input with --workers 2: sentiment runs in the workers (no Whisper is
    loaded there), rules and score in the driver; the stored results equal the in-process run's."""
    import json

    from qa_inspect.batch import pool

    monkeypatch.setenv("QA_INSPECT_SENTIMENT", "lexicon")  # spawned workers inherit it
    monkeypatch.setattr(pool, "GIVEN_POOL_MIN", 4)  # the driver decides: 13 calls use the pool,
    monkeypatch.setattr(pool, "GIVEN_CHUNK", 3)  # in 5 chunks, over both workers,
    monkeypatch.setattr(pool, "GIVEN_IN_FLIGHT", 1)  # 2 at a time: the others sent as these finish
    packs = PackSet([load_pack(root / "rules/telecom_zh.yaml"), load_pack(root / "rules/telecom_en.yaml")])
    items = read_input(samples / "transcripts.jsonl")
    assert len(items) > 2 * pool.GIVEN_CHUNK and all(i.transcript is not None for i in items)
    cfg = ASRConfig(model_path=str(tmp_path / "no-such-model"), language="zh")  # never loaded
    got = {}
    for name, workers in (("serial", 1), ("pool", 2)):
        stats: dict = {}
        with open_store(tmp_path / f"{name}.db") as store:
            s = run_batch_parallel(items, packs, store, cfg, workers, worker_stats=stats)
            assert (s.ok, s.errors, s.total) == (len(items), 0, len(items))
            got[name] = {r.call.call_id: json.dumps(r.to_dict(), sort_keys=True, ensure_ascii=False)
                         for r in store.results()}
        if workers > 1:
            assert stats and os.getpid() not in stats  # enriched in worker processes
    assert got["pool"] == got["serial"]
    assert '"sentiment"' in next(iter(got["pool"].values()))


def test_worker_loads_whisper_on_its_first_audio_call_only(tmp_path):
    from qa_inspect.batch import pool
    from qa_inspect.errors import QAError

    cfg = ASRConfig(model_path=str(tmp_path / "no-such-model"), language="zh")
    pool.init_worker(cfg)
    try:
        assert pool._TRANSCRIBER is None and pool._INIT_ERROR == ""  # nothing loaded yet
        for _ in range(2):  # the failure is kept: same error, one load attempt
            with pytest.raises(QAError, match="model.bin missing"):
                pool._transcriber()
    finally:
        pool._TRANSCRIBER, pool._INIT_ERROR, pool._LOAD = None, "", ()


def test_one_call_to_transcribe_runs_in_the_driver_not_a_worker(root, samples, tmp_path):
    """A pool for one call would only add a process start and a model load: the driver does it."""
    manifest = sample_manifest(tmp_path, samples, {"zh_polite_inquiry"})
    packs = PackSet([load_pack(root / "rules/telecom_zh.yaml")])
    stats: dict = {}
    with open_store(tmp_path / "q.db") as st:
        s = run_batch_parallel(read_input(manifest), packs, st, ASRConfig(language="zh"), 2, worker_stats=stats)
        assert s.ok == 1 and s.errors == 0
        rec = st.get_result("zh_polite_inquiry")
    assert list(stats) == [os.getpid()]  # transcribed here
    assert rec.status == "ok" and any(t.role == "agent" for t in rec.transcript.turns)
