"""Run the expensive stage of a batch (decode + Whisper) in a local process pool.

Design (``run_batch_parallel``):

- The parent (driver) does everything cheap and everything stateful: it skips calls already
  done, hashes each audio file and looks its transcript up in the store (cache hits, given
  transcripts and bad input rows never reach the pool), scores every transcript with the rule
  pack, and is the only process that writes to the SQLite store, one transaction per call,
  as soon as that call's future completes.
- Workers only decode and transcribe. They are started with the ``spawn`` context; the
  pool ``initializer`` loads one ``WhisperTranscriber`` per worker into a module-level global
  (only the frozen, picklable ``ASRConfig`` crosses the process boundary, never a model), with
  ``cpu_threads = max(1, cores // workers)`` unless the config sets it.
- Work is submitted longest first (file size as a proxy for duration) so a long call does not
  start last and leave the other workers idle at the end.
- A failure on one file (``AudioError``, no speech, anything else) comes back from the worker
  as an error result (a plain string), never as an exception that stops the batch. A worker
  that dies (killed, out of memory, a crash in native code) breaks the pool: every call it
  had not finished becomes an error row saying so, and a later ``run`` retries them.
"""
from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import resource
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Sequence

from qa_inspect.batch.budget import add_audio, call_budget
from qa_inspect.batch.inputs import WorkItem
from qa_inspect.batch.orphans import worker_process_setup
from qa_inspect.batch.pipeline import BatchSummary, process_item, run_batch, undone, warmed
from qa_inspect.batch.score import PackSet, asr_part, error_result, score_transcript, stage_key
from qa_inspect.enrich import EnrichConfig, enrich, warm_sentiment
from qa_inspect.errors import QAError
from qa_inspect.records import CallResult, Transcript
from qa_inspect.speech import decode as audio_mod

log = logging.getLogger(__name__)

# --- worker side -------------------------------------------------------------------------

_TRANSCRIBER: Any = None  # the worker's WhisperTranscriber, loaded once, on its first audio call
_INIT_ERROR: str = ""  # why loading failed (then every call in this worker is an error row)
_ENRICH: EnrichConfig | None = None  # the driver's enrichment configuration
_LOAD: tuple = ()  # (cfg, factory) for the lazy load (_transcriber)


def peak_rss_mb() -> float:
    """Peak RSS of this process in MiB. Linux: VmHWM, the high-water mark of this process's own
    memory; ``ru_maxrss`` also counts the parent's RSS at fork (inherited across exec), so a
    process started by a large one would report the parent's size."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)  # kB
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def init_worker(cfg, log_setup: Callable[[], None] | None = None,
                factory: Callable[[], Any] | None = None, enrich_cfg: EnrichConfig | None = None) -> None:
    """Pool initializer (and Ray actor constructor): runs once per worker process.

    ``log_setup`` (picklable; the CLI passes its logging configuration) configures logging in
    the new process: the library itself never does. ``factory`` (picklable, e.g. a
    ``functools.partial``) replaces the Whisper model, for tests that run the real worker path
    with a fake transcriber. ``enrich_cfg``: the driver's enrichment configuration (its key is
    in the stage key the driver stores the transcript under).

    Loads nothing: the Whisper model is loaded by the worker's first audio call
    (``_transcriber``), so a pool that only enriches given transcripts never loads it (issue 18);
    the diarizer and the sentiment models load on the first call that needs them."""
    global _ENRICH, _LOAD
    if log_setup is not None:
        log_setup()
    _ENRICH = enrich_cfg
    _LOAD = (cfg, factory)


def _transcriber() -> Any:
    """The worker's transcriber, loaded on first use (once; a failure is kept and re-raised as
    the same ``QAError`` for every later call)."""
    global _TRANSCRIBER, _INIT_ERROR
    if _TRANSCRIBER is None and not _INIT_ERROR:
        cfg, factory = _LOAD or (None, None)
        try:
            from qa_inspect.speech.asr import WhisperTranscriber

            _TRANSCRIBER = factory() if factory is not None else WhisperTranscriber(cfg)
        except QAError as e:
            _INIT_ERROR = str(e)
        except Exception as e:  # report it per call rather than break the pool
            log.exception("loading the ASR model failed")
            _INIT_ERROR = f"ASR model could not be loaded ({type(e).__name__}: {e})"
    if _TRANSCRIBER is None:
        raise QAError(_INIT_ERROR or "ASR model not loaded in worker")
    return _TRANSCRIBER


def _init_pool_worker(*args) -> None:
    """Pool initializer: ``init_worker``, in a process that never outlives its driver and
    leaves Ctrl-C to it (``batch.orphans``)."""
    worker_process_setup()
    init_worker(*args)


def transcribe_in_worker(call_id: str, path: str, layout: str, language: str | None) -> dict:
    """Decode + transcribe + enrich one file: ``raw`` (the ASR transcript) and ``transcript``
    (enriched). Never raises: failures come back as ``{"error": reason}``."""
    out: dict[str, Any] = {"pid": os.getpid()}
    try:
        with call_budget(path or call_id):
            decoded = audio_mod.decode(path)  # first, as in process: a bad file says so
            add_audio(decoded.duration)  # the call's time budget grows with its audio
            transcriber = _transcriber()  # loaded by the worker's first audio call
            t0 = time.perf_counter()
            raw = transcriber.transcribe(call_id, decoded, layout, language)
            asr_s = time.perf_counter() - t0
            tr = enrich(raw, decoded, _ENRICH) if raw.turns else raw  # needs the audio: done here, next to it
            out.update(raw=raw, transcript=tr, asr_s=asr_s, audio_s=decoded.duration)
    except QAError as e:
        out["error"] = str(e)
    except Exception as e:  # one bad call must not stop the batch
        log.exception("unexpected failure on %s", call_id)
        out["error"] = f"{path or call_id}: internal error ({type(e).__name__}: {e})"
    out["rss_mb"] = peak_rss_mb()
    return out


def _enrich_in_worker(entries: list[tuple[str, Transcript]]) -> dict:
    """Enrich given transcripts (text metrics: sentiment) with the driver's configuration, each
    within its call's time budget (``label``: what the budget's error names, as in process).
    Never raises: each comes back as its enriched ``Transcript`` or the call's error string."""
    out: list[Transcript | str] = []
    warm_sentiment([tr for _, tr in entries], _ENRICH)  # the chunk's utterances in one batch
    for label, tr in entries:
        try:
            with call_budget(label):
                out.append(enrich(tr, cfg=_ENRICH))
        except QAError as e:  # the budget, or e.g. a sentiment backend without its local model
            out.append(str(e))
        except Exception as e:  # one bad call must not stop the batch
            log.error("enriching %s failed", tr.call_id, exc_info=True)
            out.append(f"{label}: internal error ({type(e).__name__}: {e})")
    return {"pid": os.getpid(), "transcripts": out, "rss_mb": peak_rss_mb()}


# --- driver side -------------------------------------------------------------------------

@dataclasses.dataclass
class Job:
    item: WorkItem
    scored: Any  # scoring.ScoredPack
    cfg_hash: str
    audio_hash: str
    size: int
    order: int = 0  # submission order (longest first)


@dataclasses.dataclass
class _Given:
    """A chunk of given transcripts enriched in a worker: (item, scored pack, config hash) each."""
    entries: list
    order: int = -1


# Given transcripts (the transcripts input) are enriched in the pool when a batch has at least
# this many: below it, starting workers and loading their sentiment models (3-10 s each)
# costs more than enriching in the driver. Chunks amortise the round trip.
GIVEN_POOL_MIN = 200
GIVEN_CHUNK = 16
GIVEN_IN_FLIGHT = 3  # chunks per worker submitted ahead


# What one pipeline worker may need: a mono-call worker (Whisper base, the voice encoder, the
# sentiment models) peaks at 750-780 MiB (bench/RESULTS.md, issue 18); 1 GiB leaves room.
WORKER_MEMORY_MB = 1024


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's share, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def available_memory_mb() -> float | None:
    """``MemAvailable`` from /proc/meminfo (None where there is none)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def auto_workers(cores: int | None = None, available_mb: float | None = None) -> int:
    """How many pipeline workers ``run`` starts by default: one per usable core, no more than
    the available memory holds at ``WORKER_MEMORY_MB`` each (at least 1). One worker with one
    thread per core keeps the cores busier than one worker with all of them: on 31.6 min of
    calls, 2 single-thread workers took 0.55x the wall time of 1 two-thread worker."""
    cores = cores or usable_cores()
    mem = available_mb if available_mb is not None else available_memory_mb()
    by_memory = int(mem // WORKER_MEMORY_MB) if mem is not None else cores
    return max(1, min(cores, by_memory))


def worker_threads(workers: int, cores: int | None = None) -> int:
    """CPU threads per worker so that the workers together use the cores this process may run on once."""
    return max(1, (cores or usable_cores()) // max(1, workers))


def run_batch_parallel(items: Sequence[WorkItem], packs: PackSet, store, asr_cfg,
                       workers: int, *, force: bool = False, log_setup: Callable[[], None] | None = None,
                       enrich_cfg: EnrichConfig | None = None,
                       on_result: Callable[[CallResult], None] | None = None,
                       on_progress: Callable[[BatchSummary, WorkItem, CallResult | None], None] | None = None,
                       worker_stats: dict[int, float] | None = None,
                       ) -> BatchSummary:
    """Like ``pipeline.run_batch`` (same summary, same callbacks, same stored rows) with decode
    and ASR in ``workers`` spawned processes. ``workers <= 1`` runs today's in-process path.

    ``worker_stats``, if given, is filled with ``{pid: peak RSS in MiB}`` of each process that
    transcribed (the parent's own pid for the in-process path). ``log_setup``: see ``init_worker``."""
    enrich_cfg = enrich_cfg or packs.enrich_config()
    key = stage_key(asr_cfg.key(), enrich_cfg)
    holder: dict = {}

    def get_transcriber():
        if "t" not in holder:
            from qa_inspect.speech.asr import WhisperTranscriber

            holder["t"] = WhisperTranscriber(asr_cfg)
        return holder["t"]

    if workers <= 1:
        s = run_batch(items, packs, store, get_transcriber, asr_cfg.key(), enrich_cfg=enrich_cfg, force=force,
                      on_result=on_result, on_progress=on_progress)
        if worker_stats is not None and holder:
            worker_stats[os.getpid()] = peak_rss_mb()
        return s

    summary = BatchSummary(total=len(items))
    t0 = time.perf_counter()
    finish = finisher(store, summary, t0, on_result, on_progress)
    # 1. the parent: skip done calls, handle bad rows and cache hits
    given: list = []
    jobs = plan_jobs(items, packs, store, key, force, summary, finish, t0, on_progress, enrich_cfg,
                     given=given)
    if len(given) < GIVEN_POOL_MIN:  # few given transcripts: enriched here (see GIVEN_POOL_MIN)
        for item, scored, _cfg in given:
            finish(item, process_item(item, scored, store, _no_transcriber, key, summary, enrich_cfg))
        given = []
    chunks = [_Given(given[i:i + GIVEN_CHUNK]) for i in range(0, len(given), GIVEN_CHUNK)]
    if len(jobs) == 1 and not chunks:  # one call to transcribe: a worker would only add its start
        j = jobs.pop()
        finish(j.item, process_item(j.item, j.scored, store, get_transcriber, key, summary, enrich_cfg))
        if worker_stats is not None:
            worker_stats[os.getpid()] = peak_rss_mb()
    # 2. the pool: decode + ASR, longest first, and the chunks of given transcripts to enrich;
    #    results stored as each one completes
    if jobs or chunks:
        n = min(workers, len(jobs) + len(chunks))
        cfg_w = asr_cfg if asr_cfg.cpu_threads else dataclasses.replace(
            asr_cfg, cpu_threads=worker_threads(n))
        if jobs and not asr_cfg.model_path:
            try:  # assemble the packaged model once here, not racing in every worker
                from qa_inspect.speech.asr import ensure_model

                ensure_model()
            except QAError:
                pass  # each worker reports it on every call
        log.info("process pool: %d workers × %d CPU threads for %d call(s) to transcribe, %d given "
                 "transcript(s)", n, cfg_w.cpu_threads, len(jobs), len(given))
        pool = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_pool_worker,
                                   initargs=(cfg_w, log_setup, None, enrich_cfg))
        futures: dict[Future, Job | _Given] = {}
        pending: set[Future] = set()
        more = iter(chunks)  # given transcripts: a bounded number of chunks in flight, so the
        # driver does not hold every enriched transcript of a large input at once

        def submit_chunk() -> None:
            g = next(more, None)
            if g is not None:
                fut = pool.submit(_enrich_in_worker, [(_label(item), item.transcript) for item, _, _ in g.entries])
                futures[fut] = g
                pending.add(fut)

        try:
            for j in jobs:
                c = j.item.call
                fut = pool.submit(transcribe_in_worker, c.call_id, c.path, c.channel_layout, c.language or None)
                futures[fut] = j
                pending.add(fut)
            for _ in range(GIVEN_IN_FLIGHT * n):
                submit_chunk()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                pending -= done
                for fut in sorted(done, key=lambda f: futures[f].order):
                    j = futures.pop(fut)
                    if isinstance(j, _Given):
                        for item, res in _given_results(fut, j, worker_stats):
                            finish(item, res)
                        submit_chunk()
                    else:
                        finish(j.item, _result_of(fut, j, store, key, summary, worker_stats))
        except BaseException:  # interrupted (Ctrl-C, SIGTERM): don't wait for the calls in flight
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    summary.wall_s = time.perf_counter() - t0
    return summary


def finisher(store, summary: BatchSummary, t0: float, on_result, on_progress
              ) -> Callable[[WorkItem, CallResult], None]:
    """What the driver does with each finished call: store it (its own transaction, right
    now), count it, tell the callbacks."""
    def finish(item: WorkItem, res: CallResult) -> None:
        store.put_result(res)
        summary.record(res)
        if on_result:
            on_result(res)
        summary.notify(on_progress, t0, item, res)
    return finish


def _no_transcriber():  # driver-handled items never need ASR
    raise RuntimeError("the driver does not transcribe in a parallel batch")


def _label(item: WorkItem) -> str:
    """What a call's error row names (as ``pipeline.process_item``)."""
    return item.call.path or item.call.source_line or item.call.call_id


def plan_jobs(items: Sequence[WorkItem], packs: PackSet, store, key: str, force: bool,
              summary: BatchSummary, finish: Callable[[WorkItem, CallResult], None], t0: float,
              on_progress, enrich_cfg: EnrichConfig | None = None, given: list | None = None) -> list[Job]:
    """The driver's cheap part of a parallel/distributed batch: skip done calls, finish bad
    rows, given transcripts and transcript-cache hits here (a raw transcript whose enrichment
    is out of date is enriched here: decode, no ASR); return the calls that need ASR, longest
    first (``order`` set). ``key``: the stage key. With ``given`` (a list), given transcripts
    not done yet are appended to it as ``(item, scored pack, config hash)`` instead, for the
    caller to enrich."""
    no_transcriber = _no_transcriber

    jobs: list[Job] = []
    pending = undone(items, packs, store, key, force, summary, on_progress, t0)
    for item, scored, cfg in (pending if given is not None else warmed(pending, enrich_cfg)):
        if given is not None and not item.error and item.transcript is not None:
            given.append((item, scored, cfg))
            continue
        if item.error or item.transcript is not None:
            finish(item, process_item(item, scored, store, no_transcriber, key, summary, enrich_cfg))
            continue
        try:
            ahash = audio_mod.file_hash(item.call.path)
            tr = store.get_transcript(ahash, key)
            raw_cached = tr is None and store.has_transcript(ahash, asr_part(key))
        except Exception:
            # unreadable file: the in-process path gives the exact same error row
            finish(item, process_item(item, scored, store, no_transcriber, key, summary, enrich_cfg))
            continue
        if tr is not None:
            summary.audio_s += tr.duration or 0.0
            finish(item, score_transcript(item, tr, scored, audio_hash=ahash, cfg_hash=cfg))
            continue
        if raw_cached:
            finish(item, process_item(item, scored, store, no_transcriber, key, summary, enrich_cfg))
            continue
        try:
            size = os.path.getsize(item.call.path)
        except OSError:
            size = 0
        jobs.append(Job(item, scored, cfg, ahash, size))
    jobs.sort(key=lambda j: -j.size)
    for i, j in enumerate(jobs):
        j.order = i
    return jobs


def _result_of(fut: Future, j: Job, store, key: str, summary: BatchSummary,
               worker_stats: dict[int, float] | None) -> CallResult:
    item, path = j.item, j.item.call.path
    try:
        out = fut.result()
    except BrokenProcessPool as e:
        return error_result(item, f"{path}: worker process died before this call finished "
                                  f"(BrokenProcessPool: {e}); not transcribed, re-run to retry",
                            j.cfg_hash)
    except Exception as e:  # e.g. a result that could not be sent back
        return error_result(item, f"{path}: internal error in worker ({type(e).__name__}: {e})",
                            j.cfg_hash)
    return result_from_worker(out, j, store, key, summary, worker_stats)


def _given_results(fut: Future, g: _Given,
                   worker_stats: dict[int, float] | None) -> list[tuple[WorkItem, CallResult]]:
    """The results of a chunk of given transcripts enriched in a worker (driver side): each
    scored here (as ``process_item`` scores a given transcript), or an error row (the worker's
    reason, or the pool's failure for every call of the chunk)."""
    try:
        out = fut.result()
    except Exception as e:  # BrokenProcessPool, a result that could not be sent back, …
        why = ("worker process died before this call finished; re-run to retry"
               if isinstance(e, BrokenProcessPool) else "internal error in worker")
        return [(item, error_result(item, f"{_label(item)}: {why} ({type(e).__name__}: {e})", cfg))
                for item, _, cfg in g.entries]
    if worker_stats is not None:
        worker_stats[out["pid"]] = max(worker_stats.get(out["pid"], 0.0), out.get("rss_mb", 0.0))
    res = []
    for (item, scored, cfg), tr in zip(g.entries, out["transcripts"]):
        if isinstance(tr, str):
            res.append((item, error_result(item, tr, cfg)))
            continue
        try:
            res.append((item, score_transcript(item, tr, scored, cfg_hash=cfg)))
        except QAError as e:
            res.append((item, error_result(item, str(e), cfg)))
    return res


def result_from_worker(out: dict, j: Job, store, key: str, summary: BatchSummary,
                       worker_stats: dict[int, float] | None) -> CallResult:
    """Turn what ``transcribe_in_worker`` returned into the call's result (driver side):
    store the raw and the enriched transcript, score it; an error comes back as an error row."""
    item, path = j.item, j.item.call.path
    if worker_stats is not None:
        worker_stats[out["pid"]] = max(worker_stats.get(out["pid"], 0.0), out.get("rss_mb", 0.0))
    if "error" in out:
        return error_result(item, out["error"], j.cfg_hash)
    try:
        tr: Transcript = out["transcript"]
        summary.asr_s += out["asr_s"]
        summary.asr_audio_s += out["audio_s"]
        extra = {"asr_rtf": round(out["asr_s"] / out["audio_s"], 3)}
        if not tr.turns:
            return error_result(item, f"{path}: no speech recognised", j.cfg_hash)
        store.put_transcript(j.audio_hash, asr_part(key), out["raw"])
        store.put_transcript(j.audio_hash, key, tr)
        summary.audio_s += tr.duration or 0.0
        return score_transcript(item, tr, j.scored, audio_hash=j.audio_hash, cfg_hash=j.cfg_hash,
                                extra_metrics=extra)
    except QAError as e:
        return error_result(item, str(e), j.cfg_hash)
    except Exception as e:  # one bad call must not stop the batch
        log.exception("scoring %s failed", item.call.call_id)
        return error_result(item, f"{path or item.call.call_id}: internal error "
                                  f"({type(e).__name__}: {e})", j.cfg_hash)
