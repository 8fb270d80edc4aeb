"""Sentiment per utterance (``Turn.metrics["sentiment"]``, in [-1, 1]) and per call
(``customer_sentiment_start/end/min/delta``, ``agent_sentiment_mean`` in ``Transcript.metrics``).

The scorer is chosen by configuration, read from the environment so that spawned workers see
the same choice: ``QA_INSPECT_SENTIMENT`` = ``combined`` (default) | ``lexicon`` | ``transformers``;
for ``transformers``, ``QA_INSPECT_SENTIMENT_MODEL`` = a local model directory and optionally
``QA_INSPECT_SENTIMENT_LABELS`` = ``LABEL=value,…`` (else labels are read by name). One scorer
(and its models) per process and configuration; ``describe()`` names what the configured
scorer computes (backend, version, weights), for the key of the cached transcripts that hold
its scores.
"""
from __future__ import annotations

import dataclasses
import os
import threading
from dataclasses import dataclass, field
from typing import Sequence

from qa_inspect.errors import QAError
from qa_inspect.records import Transcript
from qa_inspect.enrich.sentiment.backends import (CombinedScorer, EmbeddingScorer, FixedScorer, JiaguScorer, LexiconScorer, Scorer,
                       SnowNLPScorer, TransformersScorer, label_value)
from qa_inspect.enrich.sentiment.lexicon import Lexicon, analyse, is_filler

__all__ = ["SentimentConfig", "Scorer", "LexiconScorer", "CombinedScorer", "EmbeddingScorer", "SnowNLPScorer",
           "JiaguScorer", "TransformersScorer", "FixedScorer", "get_scorer", "add_sentiment", "call_metrics",
           "label_value", "Lexicon", "analyse", "is_filler", "BACKENDS", "describe"]

BACKENDS = ("combined", "lexicon", "transformers")
# Call-level windows: the customer's first/last few scored (non-filler) utterances. The end
# window weighs the last utterance most: how the customer left the call is what counts.
START_WEIGHTS = (1.0, 1.0, 1.0)  # first, second, third customer utterance
# 5 utterances, not 1: on ASR text a customer's last words are often fragments (那, 我就说了);
# picked over 3 on the labelled dev calls (bench/sentiment_eval.py).
END_WEIGHTS = (5.0, 4.0, 3.0, 2.0, 1.0)  # last, second to last, …


class SentimentConfigError(QAError):
    """The sentiment configuration is invalid."""


@dataclass(frozen=True)
class SentimentConfig:
    backend: str = "combined"
    model_path: str = ""  # transformers backend: a local model directory
    label_values: tuple[tuple[str, float], ...] = field(default=())  # transformers: label → value

    @classmethod
    def from_env(cls) -> "SentimentConfig":
        backend = os.environ.get("QA_INSPECT_SENTIMENT", "combined").strip() or "combined"
        if backend not in BACKENDS:
            raise SentimentConfigError(f"QA_INSPECT_SENTIMENT={backend!r}: expected one of {', '.join(BACKENDS)}")
        values = []
        for part in filter(None, (p.strip() for p in os.environ.get("QA_INSPECT_SENTIMENT_LABELS", "").split(","))):
            lab, sep, v = part.partition("=")
            try:
                values.append((lab.strip(), float(v)))
            except ValueError:
                sep = ""
            if not sep:
                raise SentimentConfigError(f"QA_INSPECT_SENTIMENT_LABELS: expected LABEL=number, got {part!r}")
        return cls(backend=backend, model_path=os.environ.get("QA_INSPECT_SENTIMENT_MODEL", "").strip(),
                   label_values=tuple(values))


_scorers: dict[SentimentConfig, Scorer] = {}
_lock = threading.Lock()


def get_scorer(cfg: SentimentConfig | None = None) -> Scorer:
    """The scorer for ``cfg`` (default: from the environment), built once per process."""
    cfg = cfg or SentimentConfig.from_env()
    with _lock:
        s = _scorers.get(cfg)
        if s is None:
            if cfg.backend == "lexicon":
                s = LexiconScorer()
            elif cfg.backend == "transformers":
                s = TransformersScorer(cfg.model_path, dict(cfg.label_values))
            else:
                s = CombinedScorer()
            _scorers[cfg] = s
    return s


def describe(cfg: SentimentConfig | None = None) -> str:
    """What the sentiment of ``cfg`` (default: from the environment) computes, as one string
    that changes whenever its scores can change (backend, version, weights, model path and
    label values); loads no model."""
    cfg = cfg or SentimentConfig.from_env()
    if cfg.backend == "lexicon":
        return "lexicon/1"
    if cfg.backend == "transformers":
        labels = ",".join(f"{k}={v:g}" for k, v in cfg.label_values)
        return f"transformers/1:{cfg.model_path}:{labels}"
    return get_scorer(cfg).describe()  # combined: building it loads nothing


def _wmean(values: Sequence[float], weights: Sequence[float]) -> float:
    w = weights[:len(values)]
    return sum(v * x for v, x in zip(values, w)) / sum(w)


def call_metrics(roles: Sequence[str], texts: Sequence[str], scores: Sequence[float]) -> dict[str, float]:
    """Call-level sentiment from per-utterance scores; filler-only utterances do not count.
    Customer metrics are absent when the customer said nothing scorable (a rule then reports
    "metric not available" instead of guessing)."""
    cust = [s for r, t, s in zip(roles, texts, scores) if r == "customer" and not is_filler(t)]
    agent = [s for r, t, s in zip(roles, texts, scores) if r == "agent" and not is_filler(t)]
    out: dict[str, float] = {}
    if cust:
        start = _wmean(cust[:len(START_WEIGHTS)], START_WEIGHTS)
        end = _wmean(cust[::-1][:len(END_WEIGHTS)], END_WEIGHTS)
        out.update(customer_sentiment_start=round(start, 4), customer_sentiment_end=round(end, 4),
                   customer_sentiment_min=round(min(cust), 4),
                   customer_sentiment_delta=round(end - start, 4))  # > 0: ended calmer than started
    if agent:
        out["agent_sentiment_mean"] = round(sum(agent) / len(agent), 4)
    return out


def add_sentiment(tr: Transcript, scorer: Scorer | None = None) -> Transcript:
    """``tr`` with ``Turn.metrics["sentiment"]`` on every turn and the call-level metrics in
    ``Transcript.metrics`` (other metrics already there are kept)."""
    scorer = scorer or get_scorer()
    texts = [t.text for t in tr.turns]
    scores = [round(s, 4) for s in scorer.score(texts, [t.role for t in tr.turns])] if texts else []  # one batch per call
    turns = tuple(dataclasses.replace(t, metrics={**t.metrics, "sentiment": s}) for t, s in zip(tr.turns, scores))
    metrics = {**tr.metrics, **call_metrics([t.role for t in tr.turns], texts, scores),
               "sentiment_scorer": scorer.name}
    return dataclasses.replace(tr, turns=turns, metrics=metrics)
