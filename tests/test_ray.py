"""The Ray executor against a real local Ray cluster (one cluster start for this module).

Fast tests run the real actor path (decode, enrichment, driver-side scoring and storing) with
the reference fake transcriber inside the actors; the slow one runs the real Whisper model in
Ray actors through `qa-inspect run --executor ray --ray-address <this cluster>`, the command a
team points at a real cluster."""
import functools
import os
import subprocess
import sys

import pytest
from conftest import exported_records, sample_manifest

ray = pytest.importorskip("ray")

from qa_inspect.speech.asr import ASRConfig  # noqa: E402
from qa_inspect.batch.ray_actors import plan_placement, run_batch_ray  # noqa: E402
from qa_inspect.speech.fakes import ReferenceTranscriber  # noqa: E402
from qa_inspect.batch.inputs import read_input  # noqa: E402
from qa_inspect.batch.pipeline import PackSet, run_batch  # noqa: E402
from qa_inspect.rules import load_pack  # noqa: E402
from qa_inspect.store import open_store  # noqa: E402

KILLER_CALL = "zh_no_greeting"
# a mix: stereo and mono, Mandarin and English, one corrupt file (6 ok + 1 error)
SOME = {"zh_no_greeting", "zh_polite_inquiry", "zh_forbidden_phrase", "zh_mono_inquiry",
        "en_billing_inquiry", "zh_billing_12315", "corrupt_call"}


class DyingTranscriber(ReferenceTranscriber):
    """Kills its own process (as an OOM kill or a native crash would) on one call."""

    def transcribe(self, call_id, audio, layout, language=None):
        if call_id == KILLER_CALL:
            os._exit(3)
        return super().transcribe(call_id, audio, layout, language)


@pytest.fixture(scope="module")
def cluster(root):
    if (root / ".cache" / "models" / "whisper-base").exists():
        os.environ.setdefault("QA_INSPECT_CACHE", str(root / ".cache"))  # actors inherit it
    # the actors unpickle DyingTranscriber: ship this test module's code by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _packs(root):
    return PackSet([load_pack(root / "rules/telecom_zh.yaml"), load_pack(root / "rules/telecom_en.yaml")])


def _batch_inputs(root, samples, tmp_path):
    """(packs, work items of the SOME calls, reference transcripts, an ASR config) for a batch
    whose transcriber reads the reference text."""
    items = read_input(sample_manifest(tmp_path, samples, SOME))
    cfg = ASRConfig(model_path=str(tmp_path / "unused"), language="zh")
    return _packs(root), items, samples / "transcripts.jsonl", cfg


def _comparable(r):
    d = r.to_dict()
    d["metrics"] = {k: v for k, v in d["metrics"].items() if k != "asr_rtf"}  # timing
    return d


def test_placement_cpu_gpu_and_caps():
    cfg = ASRConfig()
    p = plan_placement({"CPU": 2.0}, cfg, 0, 10)
    assert (p.actors, p.num_cpus, p.num_gpus, p.cfg.cpu_threads) == (2, 1, 0, 1)
    assert p.cfg.key() == cfg.key()  # same transcript cache as the local executors
    p = plan_placement({"CPU": 16.0}, cfg, 2, 10)
    assert (p.actors, p.num_cpus, p.cfg.cpu_threads) == (2, 8, 8)
    assert plan_placement({"CPU": 2.0}, cfg, 8, 10).actors == 2  # never more than can be placed
    assert plan_placement({"CPU": 2.0}, cfg, 0, 1).actors == 1  # never more than the calls
    p = plan_placement({"CPU": 16.0, "GPU": 2.0}, cfg, 0, 10)
    assert (p.actors, p.num_gpus, p.num_cpus) == (2, 1, 1)
    assert plan_placement({"CPU": 16.0, "GPU": 2.0}, ASRConfig(device="cpu"), 0, 10).num_gpus == 0


def test_ray_actors_give_the_same_rows_as_in_process(cluster, root, samples, tmp_path):
    packs, items, ref, cfg = _batch_inputs(root, samples, tmp_path)
    with open_store(tmp_path / "local.db") as st:
        run_batch(items, packs, st, lambda: ReferenceTranscriber(ref), cfg.key())
        local = {r.call.call_id: r for r in st.results()}
    seen, stats = [], {}
    with open_store(tmp_path / "ray.db") as st:
        s = run_batch_ray(items, packs, st, cfg, 2, on_result=seen.append, worker_stats=stats,
                          transcriber_factory=functools.partial(ReferenceTranscriber, ref))
        assert (s.total, s.ok, s.errors, s.skipped) == (7, 6, 1, 0)
        assert len(seen) == 7 and s.asr_audio_s > 0 and s.audio_s > 0
        assert len(stats) == 2 and os.getpid() not in stats  # two actor processes transcribed
        remote = {r.call.call_id: r for r in st.results()}
        assert set(remote) == set(local)
        for cid, r in local.items():
            assert _comparable(remote[cid]) == _comparable(r), cid
        assert "cannot decode audio" in remote["corrupt_call"].error
        # a second run skips every ok call (same config hash); only the bad file is retried
        s2 = run_batch_ray(items, packs, st, cfg, 2,
                           transcriber_factory=functools.partial(ReferenceTranscriber, ref))
        assert (s2.skipped, s2.ok, s2.errors, s2.asr_audio_s) == (6, 0, 1, 0)
        assert st.count() == 7


def test_an_actor_that_dies_becomes_error_rows_and_the_batch_goes_on(cluster, root, samples, tmp_path):
    packs, items, ref, cfg = _batch_inputs(root, samples, tmp_path)
    with open_store(tmp_path / "q.db") as st:
        s = run_batch_ray(items, packs, st, cfg, 2, max_in_flight=2,
                          transcriber_factory=functools.partial(DyingTranscriber, ref))
        rows = {r.call.call_id: r for r in st.results()}
        assert len(rows) == 7 and s.ok + s.errors == 7
        died = {cid for cid, r in rows.items() if r.status == "error" and "Ray actor died" in r.error}
        # the killer call and at most the one other call queued on the same actor
        assert KILLER_CALL in died and len(died) <= 2, died
        lost = died - {"corrupt_call"}  # calls that would have been ok
        assert s.ok == 6 - len(lost) and s.ok >= 4  # the surviving actor finished the rest
        # a later run retries the error rows (here with a transcriber that does not die)
        s2 = run_batch_ray(items, packs, st, cfg, 2,
                           transcriber_factory=functools.partial(ReferenceTranscriber, ref))
        assert (s2.skipped, s2.ok) == (s.ok, len(lost))
        assert sum(r.status == "ok" for r in st.results()) == 6


@pytest.mark.slow
def test_cli_run_with_real_whisper_in_ray_actors(cluster, root, samples, tmp_path):
    """The documented cluster command, against this module's cluster: two short calls."""
    ids = {"zh_no_greeting", "zh_polite_inquiry"}
    db = tmp_path / "qa.db"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "qa_inspect.cli", "run", str(sample_manifest(tmp_path, samples, ids)),
         "--executor", "ray", "--ray-address", cluster, "--workers", "2",
         "--rules", str(root / "rules/telecom_zh.yaml"), "--db", str(db), "--out", str(tmp_path / "r")],
        capture_output=True, text=True, env=env, cwd=root, timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "done: 2 ok, 0 error(s)" in proc.stdout, proc.stdout
    recs = exported_records(db, env)
    assert set(recs) == ids
    for rec in recs.values():
        assert rec["status"] == "ok", rec
        assert rec["transcript"]["asr"]["model"].startswith("whisper-base")
        assert rec["metrics"]["asr_rtf"] > 0
    agent = " ".join(t["text"] for t in recs["zh_polite_inquiry"]["transcript"]["turns"] if t["role"] == "agent")
    assert "您好" in agent or "为您服务" in agent, agent
