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
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from qa_inspect.enrich.talk import talk_metrics
from qa_inspect.records import Transcript

log = logging.getLogger(__name__)

# bump when what enrichment computes changes for the same configuration (new metrics, a fix):
# stored enrichment made by an older version is then recomputed
ENRICH_VERSION = "1"

# metrics measured while the call was processed, not derivable from the transcript: a
# re-score keeps them from the stored result
RUN_METRICS = ("asr_rtf",)


def _sentiment_default():
    from qa_inspect.enrich.sentiment import SentimentConfig

    return SentimentConfig.from_env()


def _acoustics_default():
    from qa_inspect.enrich.acoustics import AcousticConfig

    return AcousticConfig()


@dataclass(frozen=True)
class EnrichConfig:
    """What enrichment runs with: the sentiment configuration (``QA_INSPECT_SENTIMENT*``) and
    the acoustic thresholds."""

    sentiment: Any = field(default_factory=_sentiment_default)  # enrich.sentiment.SentimentConfig
    acoustics: Any = field(default_factory=_acoustics_default)  # enrich.acoustics.AcousticConfig

    @classmethod
    def from_env(cls) -> "EnrichConfig":
        return cls()

    def key(self) -> str:
        """Hash of everything that changes what ``enrich`` stores."""
        d = {"version": ENRICH_VERSION, "sentiment": asdict(self.sentiment), "acoustics": asdict(self.acoustics)}
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


def _sentiment(tr: Transcript, cfg: EnrichConfig) -> Transcript:
    """Sentiment per utterance and customer/agent sentiment per call (enrich.sentiment)."""
    from qa_inspect.enrich.sentiment import add_sentiment, get_scorer
    from qa_inspect.errors import QAError

    try:
        return add_sentiment(tr, get_scorer(cfg.sentiment))
    except QAError:  # misconfiguration (e.g. no local model for the transformers backend): say so
        raise
    except Exception:  # a metrics failure must not cost the call its transcript and score
        log.warning("sentiment failed for %s", tr.call_id, exc_info=True)
        return tr


def _acoustics(tr: Transcript, audio: Any, cfg: EnrichConfig) -> Transcript:
    """Speech rate, silence, overlap, loudness, agitation (enrich.acoustics)."""
    from qa_inspect.enrich.acoustics import enrich_acoustics

    try:
        return enrich_acoustics(tr, audio, cfg.acoustics)
    except Exception:  # a metrics failure must not cost the call its transcript and score
        log.warning("acoustic metrics failed for %s", tr.call_id, exc_info=True)
        return tr


__all__ = ["ENRICH_VERSION", "RUN_METRICS", "EnrichConfig", "call_metrics", "enrich", "talk_metrics"]
