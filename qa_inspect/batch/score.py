"""The cheap part of a call, shared by the batch and re-scoring: rules and score over a
transcript, and the keys that say which configuration produced a stored result.

Keys:
- the ASR key (``ASRConfig.key()``, or ``"given"`` for transcripts given as input) names a
  raw transcript;
- the stage key (``stage_key``) adds the enrichment configuration (``EnrichConfig.key()``):
  the enriched transcript is cached under it;
- the config hash of a result adds the rule pack and its scorecard (``ScoredPack.key()``).
Change any stage's configuration and exactly what it produces (and what comes after) is
recomputed.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

from qa_inspect.batch.inputs import WorkItem
from qa_inspect.enrich import EnrichConfig, call_metrics
from qa_inspect.errors import RuleError
from qa_inspect.records import CallResult, Transcript
from qa_inspect.rules import RulePack, evaluate
from qa_inspect.scoring import ScoredPack, attach_scorecards

ENRICH_SEP = "+enrich:"


def stage_key(asr_key: str, enrich_cfg: EnrichConfig | None = None) -> str:
    """The key of an enriched transcript: its ASR key and the enrichment configuration."""
    return f"{asr_key}{ENRICH_SEP}{(enrich_cfg or EnrichConfig.from_env()).key()}"


def asr_part(key: str) -> str:
    """The ASR key inside a stage key (a bare ASR key is returned as it is)."""
    return key.split(ENRICH_SEP, 1)[0]


def is_stage_key(key: str) -> bool:
    return ENRICH_SEP in key


def as_scored(pack: RulePack | ScoredPack) -> ScoredPack:
    """A pack with its scorecard; a bare pack is scored by the default scoring."""
    return pack if isinstance(pack, ScoredPack) else ScoredPack(pack)


def config_hash(key: str, scored: RulePack | ScoredPack) -> str:
    """The config hash of a result: the stage key of its transcript, the pack and scorecard."""
    return hashlib.sha256(f"{key}|{as_scored(scored).key()}".encode()).hexdigest()[:16]


def score_transcript(item: WorkItem, tr: Transcript, scored: RulePack | ScoredPack, *, audio_hash: str = "",
                     cfg_hash: str = "", extra_metrics: dict | None = None) -> CallResult:
    """The cheap part: rules and score over an (enriched) transcript; what re-scoring runs."""
    scored = as_scored(scored)
    metrics = call_metrics(tr, extra_metrics)
    rules = evaluate(scored.pack, tr, metrics)  # metric: conditions read the call metrics
    return CallResult(call=item.call, status="ok", transcript=tr, rules=rules, score=scored.score(rules),
                      metrics=metrics, audio_hash=audio_hash, config_hash=cfg_hash,
                      pack_id=scored.pack.id, pack_hash=scored.pack.hash)


def error_result(item: WorkItem, reason: str, cfg_hash: str = "") -> CallResult:
    return CallResult(call=item.call, status="error", error=reason, config_hash=cfg_hash)


class PackSet:
    """Rule packs (each with its scorecard, if any) by language; a call uses the pack of its
    language, else the first."""

    def __init__(self, packs: Sequence[RulePack], scorecards: Sequence = ()) -> None:
        """``scorecards``: ``scoring.scorecard.Scorecard``s, each bound to the pack it names
        (raises RuleError if it names a pack not given or a rule the pack lacks)."""
        if not packs:
            raise RuleError("at least one rule pack is needed")
        self.scored: tuple[ScoredPack, ...] = tuple(attach_scorecards(packs, scorecards))
        self.by_language: dict[str, ScoredPack] = {}
        for s in self.scored:
            self.by_language.setdefault(s.pack.language, s)

    @property
    def packs(self) -> tuple[RulePack, ...]:
        return tuple(s.pack for s in self.scored)

    def for_language(self, language: str) -> ScoredPack:
        return self.by_language.get(language, self.scored[0])

    @property
    def language(self) -> str:
        return self.scored[0].pack.language

    def describe(self) -> str:
        return ", ".join(s.describe() for s in self.scored)

    @property
    def metric_names(self) -> frozenset[str]:
        """Every call-level metric the packs' ``metric:`` conditions read."""
        return frozenset().union(*(p.metric_names for p in self.packs))

    def enrich_config(self) -> EnrichConfig:
        """The enrichment these packs need: sentiment where they and the reports read it."""
        return EnrichConfig.for_metrics(self.metric_names)


def asr_key_of(store, old: CallResult) -> str | None:
    """The stage key behind a stored result's transcript, so the config hash a re-score
    computes matches what ``run`` computes (then a later ``run`` with the same packs skips the
    call). Transcripts given as input have no ASR stage: ``given`` plus their enrichment."""
    tr = old.transcript
    if not old.audio_hash:
        ekey = tr.metrics.get("enrichment") if tr is not None else None
        return f"given{ENRICH_SEP}{ekey}" if ekey else "given"
    cands = [(k, t) for k, t in store.asr_keys(old.audio_hash) if is_stage_key(k)] \
        or store.asr_keys(old.audio_hash)  # a store written before stage keys
    if len(cands) == 1:
        return cands[0][0]
    want = tr.to_dict() if tr else None
    return next((k for k, t in cands if t.to_dict() == want), None)
