"""Enrichment: per-utterance and per-call metrics computed once and stored with the transcript.

``enrich`` runs right after transcription (in the process or worker that holds the decoded
audio) and, for transcripts given as input, before the first scoring (``audio`` is None then:
only the text-based metrics apply). What it adds lives in ``Turn.metrics`` and
``Transcript.metrics``; re-scoring reads it from the store and never recomputes it.

What enrichment produces depends on its configuration (``EnrichConfig``: the sentiment backend
and the acoustic thresholds), so ``EnrichConfig.key()`` is part of the key a transcript is
cached under and of every result's config hash: a changed sentiment backend re-enriches and
re-scores the stored transcripts, without transcribing them again.

``call_metrics`` is the one place the metrics a rule sees are assembled. Heavy parts
(librosa, sentiment models) are imported inside the functions that need them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

from qa_inspect.enrich.talk import talk_metrics
from qa_inspect.records import Transcript

log = logging.getLogger(__name__)

# bump when what enrichment computes changes for the same configuration (new metrics, a fix):
# stored enrichment made by an older version is then recomputed
ENRICH_VERSION = "1"

# metrics measured while the call was processed, not derivable from the transcript: a
# re-score keeps them from the stored result
RUN_METRICS = ("asr_rtf",)


# The sentiment scorers' cost grows faster than linearly with text length (snownlp segments
# a 100,000-character turn for minutes): each turn is scored on at most this many characters,
# its first and last halves. Environment: QA_INSPECT_SENTIMENT_MAX_CHARS (0 = no cap).
SENTIMENT_MAX_CHARS = 1000


def sentiment_max_chars() -> int:
    raw = os.environ.get("QA_INSPECT_SENTIMENT_MAX_CHARS", "").strip()
    try:
        return max(int(raw), 0) if raw else SENTIMENT_MAX_CHARS
    except ValueError:
        from qa_inspect.errors import QAError

        raise QAError(f"QA_INSPECT_SENTIMENT_MAX_CHARS={raw!r}: expected a whole number") from None


def _capped(text: str, cap: int) -> str:
    return text if not cap or len(text) <= cap else text[:cap // 2] + text[len(text) - (cap - cap // 2):]


def _sentiment_default():
    from qa_inspect.enrich.sentiment import SentimentConfig

    return SentimentConfig.from_env()


def _acoustics_default():
    from qa_inspect.enrich.acoustics import AcousticConfig

    return AcousticConfig()


@dataclass(frozen=True)
class EnrichConfig:
    """What enrichment runs with: the sentiment configuration (``QA_INSPECT_SENTIMENT*``), which
    utterances it scores, and the acoustic thresholds."""

    sentiment: Any = field(default_factory=_sentiment_default)  # enrich.sentiment.SentimentConfig
    acoustics: Any = field(default_factory=_acoustics_default)  # enrich.acoustics.AcousticConfig
    sentiment_max_chars: int = field(default_factory=sentiment_max_chars)  # per turn, 0 = no cap
    # which customer utterances get sentiment (enrich.sentiment.SCOPES): "all" unless the
    # caller knows what is read (``for_metrics``)
    sentiment_scope: str = "all"

    @classmethod
    def from_env(cls) -> "EnrichConfig":
        return cls()

    @classmethod
    def for_metrics(cls, metrics: Iterable[str]) -> "EnrichConfig":
        """The configuration for a batch whose packs read ``metrics`` (``RulePack.metric_names``):
        sentiment only where those metrics and the reports look (``enrich.sentiment.scope_for``),
        unless ``QA_INSPECT_SENTIMENT_SCOPE`` names a scope (``all``: every utterance, e.g. to
        keep per-utterance scores for analysis)."""
        from qa_inspect.enrich.sentiment import SCOPES, scope_for

        forced = os.environ.get("QA_INSPECT_SENTIMENT_SCOPE", "").strip()
        if forced and forced not in SCOPES:
            from qa_inspect.errors import QAError

            raise QAError(f"QA_INSPECT_SENTIMENT_SCOPE={forced!r}: expected one of {', '.join(SCOPES)}")
        return cls(sentiment_scope=forced or scope_for(metrics))

    def key(self) -> str:
        """Hash of everything that changes what ``enrich`` stores (worked out once per instance:
        every enriched call carries it)."""
        k = self.__dict__.get("_key")
        if k is None:
            k = self.__dict__["_key"] = self._key()
        return k

    def _key(self) -> str:
        from qa_inspect.enrich.sentiment import describe

        # describe(): what the configured scorer computes (its version, weights, the roles its
        # models see), which changes when the code does even if the configuration does not
        d = {"version": ENRICH_VERSION, "sentiment": asdict(self.sentiment), "scorer": describe(self.sentiment),
             "acoustics": asdict(self.acoustics), "sentiment_max_chars": self.sentiment_max_chars}
        if self.sentiment_scope != "all":  # "all" is what every key before scopes computed
            d["sentiment_scope"] = self.sentiment_scope
        return hashlib.sha256(repr(sorted(d.items())).encode()).hexdigest()[:12]


def enrich(tr: Transcript, audio: Any = None, cfg: EnrichConfig | None = None) -> Transcript:
    """The transcript with its enrichment metrics filled in (``audio``: ``DecodedAudio`` or None).
    ``Transcript.metrics["enrichment"]`` records the key of the configuration used."""
    cfg = cfg or EnrichConfig.from_env()
    tr = _acoustics(tr, audio, cfg)
    tr = _sentiment(tr, cfg)
    return dataclasses.replace(tr, metrics={**tr.metrics, "enrichment": cfg.key()})


def call_metrics(tr: Transcript, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The metrics a call's rules see: talk metrics from the turn times, overlaid by the
    enrichment stored with the transcript (acoustics, sentiment), overlaid by ``extra``
    (``RUN_METRICS`` measured while the call was processed)."""
    metrics = talk_metrics(tr)
    metrics.update(tr.metrics)
    if extra:
        metrics.update(extra)
    return metrics


# A chunk's utterances are scored in one batch only up to this many characters (the work is
# done outside any call's time budget, so it is bounded here; a larger chunk is scored call
# by call, each within its budget).
WARM_MAX_CHARS = 50_000


def warm_sentiment(transcripts: Iterable[Transcript], cfg: EnrichConfig | None = None) -> int:
    """Score the utterances that enriching ``transcripts`` will score, in one batch, into the
    scorer's cache (a scorer with ``caches``: the combined one), so that each call's
    ``enrich`` then reads them: the sentence encoder's matrix products cost ~1.7x less per call
    over 16 calls than one call at a time (issue 18). Returns how many texts it scored (0: not
    worth it, not possible, or over ``WARM_MAX_CHARS``); never raises (the calls' own
    enrichment reports any problem, within their budgets)."""
    cfg = cfg or EnrichConfig.from_env()
    try:
        from qa_inspect.enrich.sentiment import get_scorer, scored_turns

        scorer = get_scorer(cfg.sentiment)
        if not getattr(scorer, "caches", False):
            return 0
        texts: list[str] = []
        roles: list[str] = []
        for tr in transcripts:
            rl, tx = [t.role for t in tr.turns], [t.text for t in tr.turns]
            for yes, r, t in zip(scored_turns(rl, tx, cfg.sentiment_scope), rl, tx):
                if yes:
                    texts.append(_capped(t, cfg.sentiment_max_chars))
                    roles.append(r)
        if len(texts) < 2 or sum(map(len, texts)) > WARM_MAX_CHARS:
            return 0
        scorer.score(texts, roles)
        return len(texts)
    except Exception:  # noqa: BLE001 - an optimisation only: each call is enriched on its own anyway
        log.debug("warming the sentiment cache failed", exc_info=True)
        return 0


def widen_sentiment(tr: Transcript, metrics: Iterable[str]) -> tuple[Transcript, EnrichConfig] | None:
    """``tr`` with its sentiment computed again (text only; acoustics kept) over the scope that
    ``metrics`` need, and the configuration that did it, when the scope it was enriched with is
    narrower (a re-score whose packs newly read e.g. ``customer_sentiment_min``); None when it
    already covers them. The new enrichment key is in ``metrics["enrichment"]`` as usual."""
    from qa_inspect.enrich.sentiment import SCOPES, scope_for

    have = tr.metrics.get("sentiment_scope", "all")  # enriched before scopes: every utterance
    need = scope_for(metrics)
    if have not in SCOPES or SCOPES.index(need) <= SCOPES.index(have):
        return None
    cfg = dataclasses.replace(EnrichConfig.from_env(), sentiment_scope=need)
    out = _sentiment(tr, cfg)
    return dataclasses.replace(out, metrics={**out.metrics, "enrichment": cfg.key()}), cfg


def _sentiment(tr: Transcript, cfg: EnrichConfig) -> Transcript:
    """Sentiment per utterance and customer/agent sentiment per call (enrich.sentiment)."""
    from qa_inspect.enrich.sentiment import add_sentiment, get_scorer
    from qa_inspect.errors import QAError

    cap = cfg.sentiment_max_chars
    try:
        scorer = get_scorer(cfg.sentiment)
        if any(len(t.text) > cap for t in tr.turns) and cap:
            short = dataclasses.replace(tr, turns=tuple(dataclasses.replace(t, text=_capped(t.text, cap))
                                                        for t in tr.turns))
            scored = add_sentiment(short, scorer, cfg.sentiment_scope)  # the metrics go back onto the turns with their full text
            return dataclasses.replace(scored, turns=tuple(dataclasses.replace(t, metrics=s.metrics)
                                                           for t, s in zip(tr.turns, scored.turns)))
        return add_sentiment(tr, scorer, cfg.sentiment_scope)
    except QAError:  # misconfiguration (e.g. no local model for the transformers backend): say so
        raise
    except Exception:  # a metrics failure must not cost the call its transcript and score
        log.warning("sentiment failed for %s", tr.call_id, exc_info=True)
        return tr


def _acoustics(tr: Transcript, audio: Any, cfg: EnrichConfig) -> Transcript:
    """Speech rate, silence, overlap, loudness, agitation (enrich.acoustics)."""
    from qa_inspect.enrich.acoustics import enrich_acoustics
    from qa_inspect.errors import BudgetExceeded

    try:
        return enrich_acoustics(tr, audio, cfg.acoustics)
    except BudgetExceeded:  # the call's time budget: the call fails, naming this stage
        raise
    except Exception:  # a metrics failure must not cost the call its transcript and score
        log.warning("acoustic metrics failed for %s", tr.call_id, exc_info=True)
        return tr


__all__ = ["ENRICH_VERSION", "RUN_METRICS", "EnrichConfig", "call_metrics", "enrich", "talk_metrics",
           "warm_sentiment", "widen_sentiment"]
