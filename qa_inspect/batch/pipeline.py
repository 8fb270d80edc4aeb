"""Compose the stages for one call and run a batch in process.

decode → transcribe (raw transcript cached by audio hash + ASR key) → enrich (cached under the
stage key) → metrics → rules → score → store. Every failure of one call becomes an error
result; the batch goes on. Re-scoring stored calls is ``batch.rescore``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Protocol, Sequence

from qa_inspect.batch.budget import add_audio, call_budget
from qa_inspect.batch.inputs import WorkItem
from qa_inspect.batch.score import PackSet, asr_part, config_hash, error_result, score_transcript, stage_key
from qa_inspect.enrich import EnrichConfig, enrich, warm_sentiment
from qa_inspect.errors import QAError
from qa_inspect.records import CallResult, Transcript
from qa_inspect.scoring import ScoredPack
from qa_inspect.speech import decode as audio_mod

log = logging.getLogger(__name__)

__all__ = ["BatchSummary", "PackSet", "Transcriber", "error_result", "plan_item", "process_item",
           "run_batch", "score_transcript", "undone"]


class Transcriber(Protocol):
    def describe(self) -> dict: ...
    def transcribe(self, call_id: str, audio: audio_mod.DecodedAudio, layout: str,
                   language: str | None = None) -> Transcript: ...


@dataclass
class BatchSummary:
    total: int = 0
    ok: int = 0
    errors: int = 0
    skipped: int = 0
    audio_s: float = 0.0  # audio of the calls processed (transcribed now or from the cache)
    asr_s: float = 0.0  # time spent in ASR
    asr_audio_s: float = 0.0  # audio transcribed now (the denominator of the ASR RTF)
    wall_s: float = 0.0
    error_reasons: dict[str, int] = field(default_factory=dict)

    def notify(self, on_progress, t0: float, item: WorkItem, res: CallResult | None) -> None:
        """Call ``on_progress`` (if any) with ``wall_s`` kept current; ``res`` None = skipped."""
        if on_progress:
            self.wall_s = time.perf_counter() - t0
            on_progress(self, item, res)

    def record(self, res: CallResult) -> None:
        """Count one finished call (ok, or an error grouped by its reason)."""
        if res.status == "ok":
            self.ok += 1
        else:
            self.errors += 1
            key = res.error.split(": ", 1)[-1].split(" (")[0][:60]
            self.error_reasons[key] = self.error_reasons.get(key, 0) + 1

    def plus(self, other: "BatchSummary") -> "BatchSummary":
        """This summary and a later segment's together (counts, times and error reasons added;
        ``total`` is the larger: the caller sets the whole input's)."""
        reasons = dict(self.error_reasons)
        for k, n in other.error_reasons.items():
            reasons[k] = reasons.get(k, 0) + n
        return BatchSummary(total=max(self.total, other.total), ok=self.ok + other.ok,
                            errors=self.errors + other.errors, skipped=self.skipped + other.skipped,
                            audio_s=self.audio_s + other.audio_s, asr_s=self.asr_s + other.asr_s,
                            asr_audio_s=self.asr_audio_s + other.asr_audio_s, wall_s=self.wall_s + other.wall_s,
                            error_reasons=reasons)

    @property
    def rtf(self) -> float | None:
        """ASR time / audio duration of the calls transcribed in this run."""
        return round(self.asr_s / self.asr_audio_s, 3) if self.asr_audio_s else None

    @property
    def wall_rtf(self) -> float | None:
        """Real-time factor of the whole run: wall time / audio processed (model load, decode,
        ASR, rules and store included); < 1 is faster than real time."""
        return round(self.wall_s / self.audio_s, 3) if self.audio_s else None

    @property
    def calls_per_s(self) -> float | None:
        n = self.ok + self.errors
        return round(n / self.wall_s, 2) if n and self.wall_s > 0 else None


def item_key(item: WorkItem, key: str) -> str:
    """The stage key of the item's transcript: ``key`` for audio, ``given`` + the same
    enrichment for transcripts given as input."""
    return key if item.transcript is None else key.replace(asr_part(key), "given", 1)


def plan_item(item: WorkItem, packs: PackSet, store, key: str,
              force: bool) -> tuple[ScoredPack, str, bool]:
    """The item's pack (with its scorecard) and config hash, and whether it is already done
    under that config. ``key``: the stage key (``batch.score.stage_key``)."""
    scored = packs.for_language(item.call.language)
    cfg = config_hash(item_key(item, key), scored)
    return scored, cfg, not force and not item.error and store.done(item.call.call_id, cfg)


def undone(items: Sequence[WorkItem], packs: PackSet, store, key: str, force: bool, summary: BatchSummary,
           on_progress, t0: float) -> Iterable[tuple[WorkItem, ScoredPack, str]]:
    """``(item, scored pack, config hash)`` of each item not done yet under its config; a done
    one is counted as skipped and reported to ``on_progress`` (with ``None``). The one place a
    batch decides what to skip, for every executor."""
    for item in items:
        scored, cfg, done = plan_item(item, packs, store, key, force)
        if done:
            summary.skipped += 1
            summary.notify(on_progress, t0, item, None)
            continue
        yield item, scored, cfg


WARM_GROUP = 16  # given transcripts whose sentiment is scored in one batch (enrich.warm_sentiment)


def warmed(pending: Iterable[tuple[WorkItem, ScoredPack, str]], enrich_cfg: EnrichConfig | None,
           group: int | None = None) -> Iterator[tuple[WorkItem, ScoredPack, str]]:
    """``pending`` (from ``undone``) as it was, with the sentiment of each ``group`` (default
    ``WARM_GROUP``) of given transcripts scored in one batch before they are yielded
    (``enrich.warm_sentiment``)."""
    group = group or WARM_GROUP
    buf: list[tuple[WorkItem, ScoredPack, str]] = []
    for entry in pending:
        buf.append(entry)
        if len(buf) == group:
            yield from _warm(buf, enrich_cfg)
            buf = []
    yield from _warm(buf, enrich_cfg)


def _warm(buf: list, enrich_cfg: EnrichConfig | None) -> list:
    given = [it.transcript for it, _, _ in buf if it.transcript is not None and not it.error]
    if len(given) > 1:
        warm_sentiment(given, enrich_cfg)
    return buf


def process_item(item: WorkItem, scored: ScoredPack, store,
                 get_transcriber: Callable[[], Transcriber], key: str,
                 summary: BatchSummary, enrich_cfg: EnrichConfig | None = None) -> CallResult:
    """One call, every stage, with the caches: the enriched transcript under the stage
    ``key`` (``stage_key(asr_key, enrich_cfg)``); else the raw transcript under its ASR key
    (then only enrichment runs again); else transcription. Never raises: a failure is the
    call's error row."""
    cfg = config_hash(item_key(item, key), scored)
    if item.error:
        return error_result(item, item.error, cfg)
    try:
        with call_budget(item.call.path or item.call.source_line or item.call.call_id):
            return _process(item, scored, store, get_transcriber, key, summary, enrich_cfg, cfg)
    except QAError as e:
        return error_result(item, str(e), cfg)
    except Exception as e:  # one bad call must not stop the batch
        log.error("unexpected failure on %s", item.call.call_id, exc_info=True)
        return error_result(item, f"{item.call.path or item.call.call_id}: internal error "
                                  f"({type(e).__name__}: {e})", cfg)


def _process(item: WorkItem, scored: ScoredPack, store, get_transcriber: Callable[[], Transcriber],
             key: str, summary: BatchSummary, enrich_cfg: EnrichConfig | None, cfg: str) -> CallResult:
    if item.transcript is not None:
        return score_transcript(item, enrich(item.transcript, cfg=enrich_cfg), scored, cfg_hash=cfg)
    ahash = audio_mod.file_hash(item.call.path)
    tr = store.get_transcript(ahash, key)
    extra: dict = {}
    if tr is None:
        decoded = audio_mod.decode(item.call.path)
        add_audio(decoded.duration)  # the call's time budget grows with its audio
        raw = store.get_transcript(ahash, asr_part(key))
        if raw is None:
            t0 = time.perf_counter()
            raw = get_transcriber().transcribe(item.call.call_id, decoded, item.call.channel_layout,
                                               item.call.language or None)
            asr_time = time.perf_counter() - t0
            summary.asr_s += asr_time
            summary.asr_audio_s += decoded.duration
            extra["asr_rtf"] = round(asr_time / decoded.duration, 3)
            if not raw.turns:
                return error_result(item, f"{item.call.path}: no speech recognised", cfg)
            store.put_transcript(ahash, asr_part(key), raw)
        tr = enrich(raw, decoded, enrich_cfg)
        store.put_transcript(ahash, key, tr)
    summary.audio_s += tr.duration or 0.0
    return score_transcript(item, tr, scored, audio_hash=ahash, cfg_hash=cfg, extra_metrics=extra)


def run_batch(items: Sequence[WorkItem], packs: PackSet, store,
              get_transcriber: Callable[[], Transcriber], asr_key: str, *,
              enrich_cfg: EnrichConfig | None = None, force: bool = False, on_result: Callable[[CallResult], None] | None = None,
              on_progress: Callable[[BatchSummary, WorkItem, CallResult | None], None] | None = None,
              ) -> BatchSummary:
    """Run every item; each result is stored in its own transaction as soon as it is done.

    ``on_result`` gets each new result; ``on_progress`` is called after every item, skipped
    ones included (then with ``None``), with the running summary (``wall_s`` kept current).
    ``asr_key``: the ASR configuration's key (``ASRConfig.key()``); ``enrich_cfg``: the
    enrichment configuration (default: what the packs need, ``PackSet.enrich_config``); together
    the stage key."""
    enrich_cfg = enrich_cfg or packs.enrich_config()
    key = stage_key(asr_key, enrich_cfg)
    summary = BatchSummary(total=len(items))
    t0 = time.perf_counter()
    for item, scored, _cfg in warmed(undone(items, packs, store, key, force, summary, on_progress, t0), enrich_cfg):
        res = process_item(item, scored, store, get_transcriber, key, summary, enrich_cfg)
        store.put_result(res)
        summary.record(res)
        if on_result:
            on_result(res)
        summary.notify(on_progress, t0, item, res)
    summary.wall_s = time.perf_counter() - t0
    return summary
