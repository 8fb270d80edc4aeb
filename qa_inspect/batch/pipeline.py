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

from qa_inspect.speech import decode as audio_mod
from qa_inspect.enrich import enrich
from qa_inspect.errors import QAError
from qa_inspect.batch.budget import add_audio, call_budget
from qa_inspect.batch.inputs import WorkItem
from qa_inspect.enrich.talk import talk_metrics
from qa_inspect.records import CallResult, Transcript
from qa_inspect.rules import evaluate
from qa_inspect.rules.model import RulePack
from qa_inspect.scoring import score_call
from qa_inspect.store import SQLiteStore

log = logging.getLogger(__name__)


class Transcriber(Protocol):
    def describe(self) -> dict: ...
    def transcribe(self, call_id: str, audio: audio_mod.DecodedAudio, layout: str,
                   language: str | None = None) -> Transcript: ...


def config_hash(asr_key: str, pack: RulePack) -> str:
    key = f"{asr_key}|{pack.id}|{pack.version}|{pack.hash}"
    sc = getattr(pack, "scorecard", None)  # a pack bound to a scorecard (qa_inspect.scoring.scorecard)
    if sc is not None:  # only then: hashes of runs without a scorecard stay as they were
        key += f"|{sc.id}|{sc.version}|{sc.hash}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def score_transcript(item: WorkItem, tr: Transcript, pack: RulePack, *, audio_hash: str = "",
                     cfg_hash: str = "", extra_metrics: dict | None = None) -> CallResult:
    """The cheap part: rules and score over a transcript (also what re-scoring runs)."""
    metrics = talk_metrics(tr)
    metrics.update(tr.metrics)  # enrichment stored with the transcript (acoustics, sentiment)
    metrics.update(extra_metrics or {})
    rules = evaluate(pack, tr, metrics)  # metric: conditions read the call metrics
    if getattr(pack, "scorecard", None) is not None:
        from qa_inspect.scoring.scorecard import apply_scorecard

        score = apply_scorecard(pack.scorecard, rules)
    else:
        score = score_call(rules, [(g.min, g.grade) for g in pack.grades])
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


class PackSet:
    """Rule packs by language; a call uses the pack of its language, else the first pack."""

    def __init__(self, packs: Sequence[RulePack], scorecards: Sequence = ()) -> None:
        """``scorecards``: ``qa_inspect.scoring.scorecard.Scorecard``s, each bound to the pack it names
        (raises RuleError if it names a pack not given or a rule the pack lacks)."""
        if not packs:
            raise ValueError("at least one rule pack is needed")
        if scorecards:
            from qa_inspect.scoring.scorecard import attach_scorecards

            packs = attach_scorecards(packs, scorecards)
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
        return ", ".join(f"{p.id} {p.version}" + (f" (scorecard {p.scorecard.describe()})"
                                                 if getattr(p, "scorecard", None) else "")
                         for p in self.packs)


def plan_item(item: WorkItem, packs: "PackSet", store: SQLiteStore, asr_key: str,
              force: bool) -> tuple[RulePack, str, bool]:
    """The item's pack and config hash, and whether it is already done under that config."""
    pack = packs.for_language(item.call.language)
    cfg = config_hash(asr_key if item.transcript is None else "given", pack)
    return pack, cfg, not force and not item.error and store.done(item.call.call_id, cfg)


def process_item(item: WorkItem, pack: RulePack, store: SQLiteStore,
                 get_transcriber: Callable[[], Transcriber], asr_key: str,
                 summary: BatchSummary) -> CallResult:
    cfg = config_hash(asr_key if item.transcript is None else "given", pack)
    if item.error:
        return error_result(item, item.error, cfg)
    try:
        with call_budget(item.call.path or item.call.source_line or item.call.call_id):
            return _process(item, pack, store, get_transcriber, asr_key, summary, cfg)
    except QAError as e:
        return error_result(item, str(e), cfg)
    except Exception as e:  # one bad call must not stop the batch
        log.error("unexpected failure on %s", item.call.call_id, exc_info=True)
        return error_result(item, f"{item.call.path or item.call.call_id}: internal error "
                                  f"({type(e).__name__}: {e})", cfg)


def _process(item: WorkItem, pack: RulePack, store: SQLiteStore,
             get_transcriber: Callable[[], Transcriber], asr_key: str, summary: BatchSummary,
             cfg: str) -> CallResult:
    if item.transcript is not None:
        return score_transcript(item, enrich(item.transcript), pack, cfg_hash=cfg)
    ahash = audio_mod.file_hash(item.call.path)
    tr = store.get_transcript(ahash, asr_key)
    extra: dict = {}
    if tr is None:
        decoded = audio_mod.decode(item.call.path)
        add_audio(decoded.duration)
        t0 = time.perf_counter()
        tr = get_transcriber().transcribe(item.call.call_id, decoded, item.call.channel_layout,
                                          item.call.language or None)
        asr_time = time.perf_counter() - t0
        summary.asr_s += asr_time
        summary.asr_audio_s += decoded.duration
        extra["asr_rtf"] = round(asr_time / decoded.duration, 3)
        if not tr.turns:
            return error_result(item, f"{item.call.path}: no speech recognised", cfg)
        tr = enrich(tr, decoded)
        store.put_transcript(ahash, asr_key, tr)
    summary.audio_s += tr.duration or 0.0
    return score_transcript(item, tr, pack, audio_hash=ahash, cfg_hash=cfg, extra_metrics=extra)


def run_batch(items: Sequence[WorkItem], packs: PackSet, store: SQLiteStore,
              get_transcriber: Callable[[], Transcriber], asr_key: str, *,
              force: bool = False, on_result: Callable[[CallResult], None] | None = None,
              on_progress: Callable[[BatchSummary, WorkItem, CallResult | None], None] | None = None,
              ) -> BatchSummary:
    """Run every item; each result is stored in its own transaction as soon as it is done.

    ``on_result`` gets each new result; ``on_progress`` is called after every item, skipped
    ones included (then with ``None``), with the running summary (``wall_s`` kept current)."""
    summary = BatchSummary(total=len(items))
    t0 = time.perf_counter()
    for item in items:
        pack, _cfg, done = plan_item(item, packs, store, asr_key, force)
        if done:
            summary.skipped += 1
            summary.notify(on_progress, t0, item, None)
            continue
        res = process_item(item, pack, store, get_transcriber, asr_key, summary)
        store.put_result(res)
        summary.record(res)
        if on_result:
            on_result(res)
        summary.notify(on_progress, t0, item, res)
    summary.wall_s = time.perf_counter() - t0
    return summary


def results_for(store: SQLiteStore, call_ids: Iterable[str]) -> list[CallResult]:
    """The stored results of these calls (the batch report of one run)."""
    ids = set(call_ids)
    return [r for r in store.results() if r.call.call_id in ids]


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


def _asr_key_of(store: SQLiteStore, old: CallResult) -> str | None:
    """The ASR config key behind a stored result's transcript, so the new config hash matches
    what ``run`` computes (then a later ``run`` with the same packs skips the call)."""
    if not old.audio_hash:
        return "given"  # transcripts input: no audio stage
    cands = store.asr_keys(old.audio_hash)
    if len(cands) == 1:
        return cands[0][0]
    want = old.transcript.to_dict() if old.transcript else None
    return next((k for k, tr in cands if tr.to_dict() == want), None)


def rescore(store: SQLiteStore, packs: PackSet, *,
            on_result: Callable[[CallResult, CallResult], None] | None = None,
            workers: int | None = None) -> RescoreSummary:
    """Re-evaluate every stored ok call from its stored transcript with ``packs`` (the pack of
    the call's language, else the first) and write the results back, a chunk of calls per
    transaction (a killed re-score leaves each row old or new, never half).

    No audio is read and no ASR runs. Error rows are left alone (``run`` retries them). A call
    that cannot be re-scored keeps its stored result and is counted in ``failed``. ``workers``:
    processes that score chunks (None: one per core for large stores); see ``rescoring``."""
    from qa_inspect.batch.rescore import rescore_store

    summary = RescoreSummary()
    t0 = time.perf_counter()
    rescore_store(store, packs, summary, workers=workers, on_result=on_result)
    summary.wall_s = time.perf_counter() - t0
    return summary
