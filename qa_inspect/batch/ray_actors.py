"""Run the expensive stage of a batch (decode + Whisper) on a Ray cluster.

The same split as the local process pool (``pool.run_batch_parallel``), with Ray actors
instead of pool processes:

- The driver (this process) plans the batch with ``pool.plan_jobs`` (skips done calls,
  finishes bad rows, given transcripts and transcript-cache hits itself), scores every
  transcript and is the only writer of the store, one transaction per call, as each call
  comes back. Workers never touch the database, so the store can be the local SQLite file
  even when the actors run on other machines.
- Each actor is one process that loads the Whisper model once (``pool.init_worker``)
  and then runs ``pool.transcribe_in_worker`` call after call: the exact worker code of
  the process pool, so both executors give the same rows.
- GPU actors (``num_gpus=1``; device ``auto`` resolves to ``cuda`` there) when the cluster
  has GPUs and the ASR device is ``auto`` or ``cuda``; otherwise CPU actors that reserve
  ``cpu_threads`` CPUs each.
- Work goes out longest first, at most ``max_in_flight`` calls queued per actor, so a slow
  actor does not hoard the tail of the batch.
- An actor that dies (killed, out of memory, its node lost) turns the calls it had taken but
  not finished into error rows ("re-run to retry"); the remaining calls go to the actors still
  alive. If none is left, every call not started becomes an error row.

Audio paths are read by the actors: on a multi-machine cluster they must name the same files
on every node (a shared mount), and qa-inspect with its model packages must be installed on
every node.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import os
from typing import Any, Callable, Sequence

from qa_inspect.batch import pool as executors
from qa_inspect.batch.inputs import WorkItem
from qa_inspect.batch.pipeline import BatchSummary
from qa_inspect.batch.score import PackSet, error_result, stage_key
from qa_inspect.enrich import EnrichConfig
from qa_inspect.errors import QAError
from qa_inspect.records import CallResult

log = logging.getLogger(__name__)


class TranscribeActor:
    """One Ray actor = one worker process with its own model (loaded in ``__init__``)."""

    def __init__(self, cfg, log_setup: Callable[[], None] | None = None,
                 factory: Callable[[], Any] | None = None, enrich_cfg: EnrichConfig | None = None) -> None:
        executors.init_worker(cfg, log_setup, factory, enrich_cfg)

    def transcribe(self, call_id: str, path: str, layout: str, language: str | None) -> dict:
        return executors.transcribe_in_worker(call_id, path, layout, language)


@dataclasses.dataclass(frozen=True)
class Placement:
    """How many actors, and what each one reserves."""
    actors: int
    num_cpus: float
    num_gpus: float
    cfg: Any  # the ASRConfig the actors run (cpu_threads filled in)


def plan_placement(resources: dict, asr_cfg, workers: int, jobs: int, *,
                   fake: bool = False) -> Placement:
    """Actors for ``jobs`` calls given the cluster's ``resources`` (``ray.cluster_resources()``).

    ``workers`` 0 means one actor per GPU, or else one per CPU core. GPU actors are used when
    the cluster has GPUs and the device is ``auto``/``cuda``: Ray gives each one its GPU
    (``CUDA_VISIBLE_DEVICES``), where ``auto`` resolves to ``cuda`` (float16). The device
    option itself is left as given, so the ASR config key, and with it the transcript cache
    and the skip of done calls, is the same as with the local executors; each transcript
    records the device and compute type it was made with. CPU actors are capped at the
    cluster's CPUs: an actor that cannot be placed would wait forever."""
    gpus = int(resources.get("GPU", 0))
    cpus = max(1, int(resources.get("CPU", 1)))
    cfg = asr_cfg
    if gpus > 0 and cfg.device in ("auto", "cuda") and not fake:
        n = max(1, min(workers or gpus, gpus, jobs))
        threads = cfg.cpu_threads or max(1, min(4, cpus // n))  # decode + VAD run on the CPU
        return Placement(n, 1, 1, dataclasses.replace(cfg, cpu_threads=threads))
    n = max(1, min(workers or cpus, cpus, jobs))
    threads = cfg.cpu_threads or executors.worker_threads(n, cpus)
    return Placement(n, min(threads, cpus), 0, dataclasses.replace(cfg, cpu_threads=threads))


def connect(address: str | None) -> bool:
    """Join the cluster at ``address`` (``auto``, ``host:6379``, ``ray://host:10001``), or start a
    local one when None. Returns True when this call started Ray (then the caller shuts it down)."""
    import ray

    if ray.is_initialized():
        return False
    _probe(address)
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
    except Exception as e:  # ConnectionError, a version mismatch, a bad address
        where = address or "a new local cluster"
        raise QAError(f"Ray: cannot connect to {where} ({type(e).__name__}: {e}); start one with "
                      "`ray start --head` or drop --ray-address") from e
    return True


def _probe(address: str | None) -> None:
    """Fail fast on a HOST:PORT nobody listens on: ``ray.init`` would retry it for minutes."""
    if not address or address == "auto":
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return  # let Ray judge other forms
    import socket

    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as e:
        raise QAError(f"Ray: cannot connect to {address} ({e}); start the cluster with "
                      "`ray start --head` or check --ray-address") from e


def run_batch_ray(items: Sequence[WorkItem], packs: PackSet, store, asr_cfg, workers: int = 0, *,
                  address: str | None = None, force: bool = False,
                  on_result: Callable[[CallResult], None] | None = None,
                  on_progress: Callable[[BatchSummary, WorkItem, CallResult | None], None] | None = None,
                  worker_stats: dict[int, float] | None = None,
                  transcriber_factory: Callable[[], Any] | None = None,
                  max_in_flight: int = 2, log_setup: Callable[[], None] | None = None,
                  enrich_cfg: EnrichConfig | None = None) -> BatchSummary:
    """Like ``pool.run_batch_parallel`` (same summary, callbacks, skip/caching and stored
    rows) with decode and ASR in Ray actors. When some call needs ASR, uses the Ray session
    already initialised in this process if there is one, else joins ``address`` / starts a
    local cluster (and shuts it down at the end).

    ``transcriber_factory`` (picklable; tests) replaces the Whisper model in every actor; the
    ASR config key of ``asr_cfg`` is still what the transcripts are cached under."""
    import time

    enrich_cfg = enrich_cfg or packs.enrich_config()
    key = stage_key(asr_cfg.key(), enrich_cfg)  # cpu_threads is not part of it: same key as the local executors
    summary = BatchSummary(total=len(items))
    t0 = time.perf_counter()
    finish = executors.finisher(store, summary, t0, on_result, on_progress)
    # the cheap part first: a batch with nothing to transcribe never touches Ray
    jobs = executors.plan_jobs(items, packs, store, key, force, summary, finish, t0, on_progress, enrich_cfg)
    if jobs:
        import ray

        started = connect(address)
        try:
            _run_jobs(ray, jobs, store, asr_cfg, key, workers, summary, finish, worker_stats,
                      transcriber_factory, max(1, max_in_flight), local=address is None, log_setup=log_setup, enrich_cfg=enrich_cfg)
        finally:
            if started:
                ray.shutdown()
    summary.wall_s = time.perf_counter() - t0
    return summary


def _run_jobs(ray, jobs, store, asr_cfg, key, workers, summary, finish, worker_stats,
              factory, max_in_flight, *, local: bool, log_setup=None, enrich_cfg=None) -> None:
    pl = plan_placement(ray.cluster_resources(), asr_cfg, workers, len(jobs), fake=factory is not None)
    if local and factory is None and not asr_cfg.model_path:
        try:  # same machine: assemble the packaged model once here, not racing in every actor
            from qa_inspect.speech.asr import ensure_model

            ensure_model()
        except QAError:
            pass  # each actor reports it on every call
    env = {"HF_HUB_OFFLINE": "1"}  # never download a model, on any node
    if local and os.environ.get("QA_INSPECT_CACHE"):
        env["QA_INSPECT_CACHE"] = os.environ["QA_INSPECT_CACHE"]
    log.info("Ray: %d actor(s) × (%s CPU, %s GPU, %d threads, device %s) for %d call(s)",
             pl.actors, pl.num_cpus, pl.num_gpus, pl.cfg.cpu_threads, pl.cfg.device, len(jobs))
    remote_cls = ray.remote(TranscribeActor).options(
        num_cpus=pl.num_cpus, num_gpus=pl.num_gpus, max_restarts=0, max_task_retries=0,
        runtime_env={"env_vars": env})
    actors = [remote_cls.remote(pl.cfg, log_setup, factory, enrich_cfg) for _ in range(pl.actors)]
    try:
        _dispatch(ray, actors, jobs, store, key, summary, finish, worker_stats, max_in_flight)
    finally:
        for a in actors:
            try:
                ray.kill(a)
            except Exception:  # already dead
                pass


def _dispatch(ray, actors, jobs, store, key, summary, finish, worker_stats, max_in_flight) -> None:
    from ray.exceptions import RayActorError

    queue = collections.deque(jobs)  # longest first
    alive = set(range(len(actors)))
    inflight: dict[Any, tuple[int, executors.Job]] = {}

    def submit(a: int) -> None:
        j = queue.popleft()
        c = j.item.call
        ref = actors[a].transcribe.remote(c.call_id, c.path, c.channel_layout, c.language or None)
        inflight[ref] = (a, j)

    for _ in range(max_in_flight):  # round robin: the longest calls go to different actors
        for a in sorted(alive):
            if queue:
                submit(a)
    while inflight:
        ready, _ = ray.wait(list(inflight), num_returns=1)
        for ref in ready:
            a, j = inflight.pop(ref)
            path = j.item.call.path
            try:
                out = ray.get(ref)
            except RayActorError as e:  # the actor process (or its node) is gone
                alive.discard(a)
                res = error_result(j.item, f"{path}: Ray actor died before this call finished "
                                           f"({type(e).__name__}); not transcribed, re-run to retry",
                                   j.cfg_hash)
            except Exception as e:  # a result that could not be sent back, an object lost
                res = error_result(j.item, f"{path}: internal error in Ray actor "
                                           f"({type(e).__name__}: {str(e)[:200]})", j.cfg_hash)
            else:
                res = executors.result_from_worker(out, j, store, key, summary, worker_stats)
            finish(j.item, res)
            if a in alive and queue:
                submit(a)
        if not alive and queue:
            log.error("Ray: every actor died; %d call(s) not started", len(queue))
            while queue:
                j = queue.popleft()
                finish(j.item, error_result(j.item, f"{j.item.call.path}: no Ray actor left "
                                                    "(all died); not transcribed, re-run to retry",
                                            j.cfg_hash))
        elif queue and not inflight:  # alive actors but none busy (cannot happen; be safe)
            for a in sorted(alive):
                if queue:
                    submit(a)
