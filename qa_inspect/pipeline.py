"""Compose the stages for one call and run a batch in process.

decode → transcribe (cached by audio hash + ASR config) → metrics → rules → score → store.
Every failure of one call becomes an error result; the batch goes on.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol, Sequence

from . import audio as audio_mod
from .errors import QAError
from .inputs import WorkItem
from .metrics import talk_metrics
from .records import CallResult, Transcript
from .rules import evaluate
from .rules.model import RulePack
from .scoring import score_call
from .store import SQLiteStore

log = logging.getLogger(__name__)


class Transcriber(Protocol):
    def describe(self) -> dict: ...
    def transcribe(self, call_id: str, audio: audio_mod.DecodedAudio, layout: str,
                   language: str | None = None) -> Transcript: ...


def config_hash(asr_key: str, pack: RulePack) -> str:
    return hashlib.sha256(f"{asr_key}|{pack.id}|{pack.version}|{pack.hash}".encode()).hexdigest()[:16]


def score_transcript(item: WorkItem, tr: Transcript, pack: RulePack, *, audio_hash: str = "",
                     cfg_hash: str = "", extra_metrics: dict | None = None) -> CallResult:
    """The cheap part: rules and score over a transcript (also what re-scoring runs)."""
    rules = evaluate(pack, tr)
    score = score_call(rules, [(g.min, g.grade) for g in pack.grades])
    metrics = talk_metrics(tr)
    metrics.update(extra_metrics or {})
    return CallResult(call=item.call, status="ok", transcript=tr, rules=rules, score=score,
                      metrics=metrics, audio_hash=audio_hash, config_hash=cfg_hash,
                      pack_id=pack.id, pack_hash=pack.hash)


def error_result(item: WorkItem, reason: str, cfg_hash: str = "") -> CallResult:
    return CallResult(call=item.call, status="error", error=reason, config_hash=cfg_hash)


@dataclass
class BatchSummary:
    total: int = 0
    ok: int = 0
    errors: int = 0
    skipped: int = 0
    audio_s: float = 0.0
    asr_s: float = 0.0
    wall_s: float = 0.0
    error_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def rtf(self) -> float | None:
        return round(self.asr_s / self.audio_s, 3) if self.audio_s else None


class PackSet:
    """Rule packs by language; a call uses the pack of its language, else the first pack."""

    def __init__(self, packs: Sequence[RulePack]) -> None:
        if not packs:
            raise ValueError("at least one rule pack is needed")
        self.packs = tuple(packs)
        self.by_language = {}
        for p in packs:
            self.by_language.setdefault(p.language, p)

    def for_language(self, language: str) -> RulePack:
        return self.by_language.get(language, self.packs[0])

    @property
    def language(self) -> str:
        return self.packs[0].language

    def describe(self) -> str:
        return ", ".join(f"{p.id} {p.version}" for p in self.packs)


def process_item(item: WorkItem, pack: RulePack, store: SQLiteStore,
                 get_transcriber: Callable[[], Transcriber], asr_key: str,
                 summary: BatchSummary) -> CallResult:
    cfg = config_hash(asr_key if item.transcript is None else "given", pack)
    if item.error:
        return error_result(item, item.error, cfg)
    if item.transcript is not None:
        return score_transcript(item, item.transcript, pack, cfg_hash=cfg)
    try:
        ahash = audio_mod.file_hash(item.call.path)
        tr = store.get_transcript(ahash, asr_key)
        extra: dict = {}
        if tr is None:
            decoded = audio_mod.decode(item.call.path)
            t0 = time.perf_counter()
            tr = get_transcriber().transcribe(item.call.call_id, decoded, item.call.channel_layout,
                                              item.call.language or None)
            asr_time = time.perf_counter() - t0
            summary.asr_s += asr_time
            extra["asr_rtf"] = round(asr_time / decoded.duration, 3)
            if not tr.turns:
                return error_result(item, f"{item.call.path}: no speech recognised", cfg)
            store.put_transcript(ahash, asr_key, tr)
        summary.audio_s += tr.duration or 0.0
        return score_transcript(item, tr, pack, audio_hash=ahash, cfg_hash=cfg, extra_metrics=extra)
    except QAError as e:
        return error_result(item, str(e), cfg)
    except Exception as e:  # one bad call must not stop the batch
        log.exception("unexpected failure on %s", item.call.call_id)
        return error_result(item, f"{item.call.path or item.call.call_id}: internal error "
                                  f"({type(e).__name__}: {e})", cfg)


def run_batch(items: Sequence[WorkItem], packs: PackSet, store: SQLiteStore,
              get_transcriber: Callable[[], Transcriber], asr_key: str, *,
              force: bool = False, on_result: Callable[[CallResult], None] | None = None) -> BatchSummary:
    """Run every item; each result is stored in its own transaction as soon as it is done."""
    summary = BatchSummary(total=len(items))
    t0 = time.perf_counter()
    for item in items:
        pack = packs.for_language(item.call.language)
        cfg = config_hash(asr_key if item.transcript is None else "given", pack)
        if not force and not item.error and store.done(item.call.call_id, cfg):
            summary.skipped += 1
            continue
        res = process_item(item, pack, store, get_transcriber, asr_key, summary)
        store.put_result(res)
        if res.status == "ok":
            summary.ok += 1
        else:
            summary.errors += 1
            key = res.error.split(": ", 1)[-1].split(" (")[0][:60]
            summary.error_reasons[key] = summary.error_reasons.get(key, 0) + 1
        if on_result:
            on_result(res)
    summary.wall_s = time.perf_counter() - t0
    return summary


def results_for(store: SQLiteStore, call_ids: Iterable[str]) -> list[CallResult]:
    ids = set(call_ids)
    return [r for r in store.results() if r.call.call_id in ids]
