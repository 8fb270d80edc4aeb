"""Re-scoring stored calls in bulk after a rule or scorecard change: thousands of calls per second.

Where the time went before: each call's stored record (transcript included) was read and
parsed, its ASR key found by parsing every stored transcript of its audio, the whole record
serialised again and written in a transaction of its own. Now:

- records are read ``chunk`` at a time (paged by call_id) and parsed with orjson;
- the ASR key of every audio hash comes from one query over the transcripts table (no
  transcript parsed); only audio with several stored ASR keys needs the transcript compared;
- the stored transcript dict is written back as it was read (it does not change), so only the
  rules, score and metrics are serialised anew;
- each chunk is written in ONE transaction: a re-score killed at any point leaves every row
  either its old or its new version, never half of one;
- with ``workers > 1`` the driver only pages through the call ids; each worker process reads
  its chunk through its own connection, scores it and writes it back (one transaction per
  chunk), so no record travels between processes.
"""
from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import time
from collections import deque
from dataclasses import dataclass, field
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable

from qa_inspect.batch.inputs import WorkItem
from qa_inspect.batch.score import asr_key_of, asr_part, config_hash, is_stage_key, score_transcript, stage_key
from qa_inspect.enrich import RUN_METRICS, widen_sentiment
from qa_inspect.errors import QAError
from qa_inspect.records import CallResult
from qa_inspect.store import dumps, loads, open_store, result_row

try:
    import orjson  # noqa: F401  (the store serialises with it: dataclasses natively)

    _ORJSON = True
except ImportError:  # pragma: no cover
    _ORJSON = False

log = logging.getLogger(__name__)

CHUNK = 400  # calls per read / transaction / pool task

# per-process state of a pool worker (set by _init, or directly for the in-process path)
_PACKS: Any = None
_KEYS: dict[str, list[str]] = {}
_STORE: Any = None  # a pool worker's own connection


@dataclasses.dataclass
class ChunkOut:
    rows: list  # result rows ready to store
    changes: list  # (call_id, old score, old grade, new score, new grade, fatal)
    failures: dict[str, str]
    skipped: int = 0  # ok rows without a transcript
    gone: int = 0  # no longer ok when read (rewritten meanwhile)
    deferred: list = dataclasses.field(default_factory=list)  # (call_id, record) needing the store
    read: int = 0  # rows read (pool workers, which store their rows themselves)
    written: int = 0  # rows stored by the worker


def _init(packs, keys: dict[str, list[str]], url: str | None = None) -> None:
    global _PACKS, _KEYS, _STORE
    _PACKS, _KEYS = packs, keys
    if url is not None:
        from qa_inspect.batch.orphans import worker_process_setup

        worker_process_setup()  # a pool worker: never outlive a killed driver
        _STORE = open_store(url)  # never the parent's connection (forked copies must not be used)


def rescore_range(first: str, last: str) -> ChunkOut:
    """Pool worker: read the ok calls with ``first <= call_id <= last``, score them and store
    them in one transaction; only counts and changes go back to the driver."""
    rows = _STORE.raw_range(first, last, "ok")
    out = rescore_chunk(rows)
    _STORE.put_rows(out.rows)  # the chunk's one transaction
    out.read, out.written, out.rows = len(rows), len(out.rows), []
    return out


def rescore_chunk(rows: list[tuple[str, str]], on_result: Callable | None = None) -> ChunkOut:
    """Score one chunk of ``(call_id, record JSON)`` with the worker's packs. Never raises:
    a row that cannot be re-scored is reported in ``failures`` and keeps its stored result."""
    out = ChunkOut([], [], {})
    for cid, text in rows:
        try:
            d = loads(text)
            if d.get("status") != "ok":  # changed under us
                out.gone += 1
                continue
            # the stored rules and score breakdown are not needed (only the old score is):
            # skip parsing them unless a callback wants the whole old record
            old = CallResult.from_dict(d if on_result else {**d, "rules": (), "score_breakdown": ()})
            tr = old.transcript
            if tr is None or not tr.turns:
                out.skipped += 1
                continue
            if not old.audio_hash:
                key = asr_key_of(None, old)  # transcripts input: no audio stage
            else:
                cands = _KEYS.get(old.audio_hash, [])
                if len(cands) != 1:  # several ASR configs for this audio: compare transcripts
                    out.deferred.append((cid, text))
                    continue
                key = cands[0]
            new = _score(old, tr, key)
            stored = d["transcript"] if new.transcript is tr else new.transcript.to_dict()  # widened: the new one
            out.rows.append(result_row(new, _record(new, stored)))
        except Exception as e:  # one bad row must not stop the re-score; its stored result stays
            log.exception("re-scoring %s failed", cid)
            out.failures[cid] = f"{type(e).__name__}: {e}"
            continue
        os_, ns = old.score, new.score
        if os_ is None or (os_.score, os_.grade, os_.fatal) != (ns.score, ns.grade, ns.fatal):
            out.changes.append((cid, os_.score if os_ else None, os_.grade if os_ else None,
                                ns.score, ns.grade, ns.fatal))
        if on_result:
            on_result(old, new)
    return out


_FAST_RECORD: bool | None = None  # None: not checked yet in this process


def _record(new: CallResult, transcript: dict) -> dict:
    """``new.to_dict()`` with the stored transcript dict (unchanged: written back as read).

    ``to_dict`` of the rule results goes through ``dataclasses.asdict`` (deep copies: half the
    re-score time). orjson serialises dataclasses natively to the same JSON, so the rules and
    breakdown are handed to it as objects. The first record in each process is built both
    ways and compared: if ``records`` ever exports a rule result differently from its fields,
    the slow, exact path is used from then on."""
    global _FAST_RECORD
    if _FAST_RECORD is False or not _ORJSON:
        rec = dataclasses.replace(new, transcript=None).to_dict()
        rec["transcript"] = transcript
        return rec
    sc = new.score
    bare = dataclasses.replace(new, transcript=None, rules=(),
                               score=dataclasses.replace(sc, breakdown=()) if sc else None)
    rec = bare.to_dict()
    rec["rules"] = new.rules
    if sc:
        rec["score_breakdown"] = sc.breakdown
    rec["transcript"] = transcript
    if _FAST_RECORD is None:
        slow = dataclasses.replace(new, transcript=None).to_dict()
        slow["transcript"] = transcript
        _FAST_RECORD = loads(dumps(rec)) == loads(dumps(slow))
        if not _FAST_RECORD:
            log.warning("re-score: fast record export differs from CallResult.to_dict; using the slow path")
            return slow
    return rec


def _score(old: CallResult, tr, key: str | None) -> CallResult:
    """The call scored anew with its pack. A pack that reads sentiment the stored enrichment
    did not compute (its scope, ``enrich.sentiment.SCOPES``, was narrower) gets it computed
    now, and the result carries the widened transcript under its new stage key."""
    # CallResult.from_dict doesn't keep the call's language; the transcript has it
    call = dataclasses.replace(old.call, language=tr.language or old.call.language)
    scored = _PACKS.for_language(call.language)
    wide = widen_sentiment(tr, scored.pack.metric_names)
    if wide is not None:
        tr, ecfg = wide
        key = stage_key(asr_part(key) if key else "given", ecfg)
    cfg = config_hash(key if key is not None else "rescore:unknown-asr", scored)
    extra = {k: old.metrics[k] for k in RUN_METRICS if k in old.metrics}  # measured at run time
    return score_transcript(WorkItem(call=call), tr, scored, audio_hash=old.audio_hash,
                            cfg_hash=cfg, extra_metrics=extra)


def _deferred(store, rows: list[tuple[str, str]], summary, on_result) -> None:
    """Rows whose audio has several stored ASR keys: find the key by comparing transcripts
    (the slow, rare path), one transaction per call."""
    for cid, text in rows:
        try:
            old = CallResult.from_dict(loads(text))
            new = _score(old, old.transcript, asr_key_of(store, old))
            store.put_result(new)
        except Exception as e:
            log.exception("re-scoring %s failed", cid)
            summary.failed += 1
            summary.failures[cid] = f"{type(e).__name__}: {e}"
            continue
        summary.rescored += 1
        _count_change(summary, cid, old, new)
        if on_result:
            on_result(old, new)


def _count_change(summary, cid, old, new) -> None:
    os_, ns = old.score, new.score
    if os_ is None or (os_.score, os_.grade, os_.fatal) != (ns.score, ns.grade, ns.fatal):
        summary.changed += 1
        summary.changes.append(ScoreChange(cid, os_.score if os_ else None, os_.grade if os_ else None,
                                           ns.score, ns.grade, ns.fatal))


def _stage_keys(keys: dict[str, list[str]]) -> dict[str, list[str]]:
    """Per audio hash, the stage keys (enriched transcripts) among its stored keys; all of
    them for audio stored before stage keys existed."""
    return {h: [k for k in ks if is_stage_key(k)] or ks for h, ks in keys.items()}


def rescore_store(store, packs, summary, *, workers: int | None = None,
                  on_result: Callable | None = None, chunk: int = CHUNK) -> None:
    """Fill ``summary`` (a ``RescoreSummary``) re-scoring every stored ok call.

    ``workers`` None: one process per CPU core (at most 4) when there are more than a few
    chunks, else in process. ``on_result`` needs the records in this process: it forces
    ``workers=1``."""
    keys = _stage_keys(store.transcript_keys())
    if on_result is not None:
        workers = 1
    if workers is None:
        workers = min(os.cpu_count() or 1, 4) if store.count("ok") >= 4 * chunk else 1
    def absorb(n_read: int, res: ChunkOut) -> None:
        if res.rows:
            store.put_rows(res.rows)  # the chunk's one transaction
        summary.total += n_read - res.gone
        summary.rescored += len(res.rows) + res.written
        summary.skipped += res.skipped
        summary.failed += len(res.failures)
        summary.failures.update(res.failures)
        summary.changed += len(res.changes)
        summary.changes.extend(ScoreChange(*c) for c in res.changes)
        if res.deferred:
            _deferred(store, res.deferred, summary, on_result)

    if workers <= 1:
        _init(packs, keys)
        for rows in store.raw_results("ok", chunk):
            absorb(len(rows), rescore_chunk(rows, on_result))
        return
    # fork: the workers inherit the loaded packs (no pickling, no re-import) and open their own
    # connection. Elsewhere (no fork) spawn and send the packs once per worker.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    log.info("re-scoring with %d worker processes, %d calls per chunk", workers, chunk)
    pending: deque = deque()
    try:
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init,
                                 initargs=(packs, keys, store.url)) as pool:
            for first, last in store.id_pages("ok", chunk):
                pending.append(pool.submit(rescore_range, first, last))
                while len(pending) > 2 * workers:  # bounded look-ahead
                    res = pending.popleft().result()
                    absorb(res.read, res)
            while pending:
                res = pending.popleft().result()
                absorb(res.read, res)
    except BrokenProcessPool as e:  # a worker killed (out of memory ...): chunks written stay
        raise QAError(f"re-scoring worker process died ({e}); {summary.rescored} call(s) were "
                      "re-scored, every other call keeps its stored result: run rescore again") from e


@dataclass
class ScoreChange:
    call_id: str
    old_score: float | None
    old_grade: str | None
    new_score: float
    new_grade: str
    fatal: bool


@dataclass
class RescoreSummary:
    total: int = 0  # stored ok calls
    rescored: int = 0
    changed: int = 0  # score, grade or fatal differ from the stored result
    skipped: int = 0  # ok rows without a stored transcript (left as they are)
    failed: int = 0  # could not be re-scored (left as they are)
    wall_s: float = 0.0
    changes: list[ScoreChange] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # call_id -> reason

    @property
    def calls_per_s(self) -> float | None:
        return round(self.rescored / self.wall_s, 1) if self.wall_s > 0 else None


def rescore(store, packs, *,
            on_result: Callable[[CallResult, CallResult], None] | None = None,
            workers: int | None = None) -> RescoreSummary:
    """Re-evaluate every stored ok call from its stored transcript with ``packs`` (the pack of
    the call's language, else the first) and write the results back, a chunk of calls per
    transaction (a killed re-score leaves each row old or new, never half).

    No audio is read and no ASR runs. Error rows are left alone (``run`` retries them). A call
    that cannot be re-scored keeps its stored result and is counted in ``failed``. ``workers``:
    processes that score chunks (None: one per core for large stores); see the module doc."""
    summary = RescoreSummary()
    t0 = time.perf_counter()
    rescore_store(store, packs, summary, workers=workers, on_result=on_result)
    summary.wall_s = time.perf_counter() - t0
    return summary
