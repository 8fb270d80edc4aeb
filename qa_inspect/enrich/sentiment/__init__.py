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
from typing import Iterable, Sequence

from qa_inspect.errors import QAError
from qa_inspect.records import Transcript
from qa_inspect.enrich.sentiment.backends import (CombinedScorer, EmbeddingScorer, FixedScorer, JiaguScorer, LexiconScorer, Scorer,
                       SnowNLPScorer, TransformersScorer, label_value)
from qa_inspect.enrich.sentiment.lexicon import Lexicon, analyse, is_filler

__all__ = ["SentimentConfig", "Scorer", "LexiconScorer", "CombinedScorer", "EmbeddingScorer", "SnowNLPScorer",
           "JiaguScorer", "TransformersScorer", "FixedScorer", "get_scorer", "add_sentiment", "call_metrics",
           "label_value", "Lexicon", "analyse", "is_filler", "BACKENDS", "describe", "SCOPES",
           "SCOPE_METRICS", "CALL_METRICS", "ALWAYS_READ", "scope_for", "scored_turns"]

BACKENDS = ("combined", "lexicon", "transformers")
# Call-level windows: the customer's first/last few scored (non-filler) utterances. The end
# window weighs the last utterance most: how the customer left the call is what counts.
START_WEIGHTS = (1.0, 1.0, 1.0)  # first, second, third customer utterance
# 5 utterances, not 1: on ASR text a customer's last words are often fragments (那, 我就说了);
# picked over 3 on the labelled dev calls (bench/sentiment_eval.py).
END_WEIGHTS = (5.0, 4.0, 3.0, 2.0, 1.0)  # last, second to last, …

# The call-level sentiment metrics and what each reads of the customer's scorable utterances.
CALL_METRICS = ("customer_sentiment_start", "customer_sentiment_end", "customer_sentiment_min",
                "customer_sentiment_delta", "agent_sentiment_mean")
# Read for every call whatever the packs say: the alerts (ending very negative), the KPI
# "customer sentiment at the end" and the trainers' example ranking.
ALWAYS_READ = ("customer_sentiment_end",)
# Which customer utterances get scored (issue 18): the scorer's models cost ~1 ms an utterance
# and a MUSIED call has ~25 scorable customer utterances, while what is read of them is mostly
# the end window. "end": the last len(END_WEIGHTS); "start+end": also the first
# len(START_WEIGHTS) (customer_sentiment_start, _delta); "all": every one (customer_sentiment_min,
# and what `rules eval` and the sentiment benchmark measure). Agent utterances are always scored
# (the combined scorer gives them the lexicon alone: µs). Every stored score is the scorer's
# full score; an utterance outside the scope has none (no ``sentiment`` in its metrics).
# narrowest first; each scope's customer metrics (agent_sentiment_mean: always)
SCOPE_METRICS = {
    "end": frozenset({"customer_sentiment_end"}),
    "start+end": frozenset({"customer_sentiment_start", "customer_sentiment_end", "customer_sentiment_delta"}),
    "all": frozenset(CALL_METRICS),
}
SCOPES = tuple(SCOPE_METRICS)


def scope_for(metrics: Iterable[str] | None) -> str:
    """The narrowest scope that computes ``metrics`` (metric names, e.g. every ``metric:``
    condition of the configured packs) plus ``ALWAYS_READ``; None: every utterance."""
    if metrics is None:
        return "all"
    read = (set(metrics) | set(ALWAYS_READ)) & set(CALL_METRICS)
    return next(sc for sc, has in SCOPE_METRICS.items() if read <= has | {"agent_sentiment_mean"})


def scored_turns(roles: Sequence[str], texts: Sequence[str], scope: str = "all") -> list[bool]:
    """Which turns ``scope`` scores: every agent (and unknown-role) turn, and the customer's
    scorable (non-filler) utterances in the scope's windows; customer fillers are not scored
    (their sentiment is 0 by definition)."""
    if scope not in SCOPES:
        raise SentimentConfigError(f"sentiment scope {scope!r}: expected one of {', '.join(SCOPES)}")
    out = [r != "customer" for r in roles]
    cust = [i for i, (r, t) in enumerate(zip(roles, texts)) if r == "customer" and not is_filler(t)]
    if scope == "all":
        keep = cust
    else:
        keep = cust[-len(END_WEIGHTS):] + (cust[:len(START_WEIGHTS)] if scope == "start+end" else [])
    for i in keep:
        out[i] = True
    return out


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


def call_metrics(roles: Sequence[str], texts: Sequence[str], scores: Sequence[float | None],
                 scope: str = "all") -> dict[str, float]:
    """Call-level sentiment from per-utterance scores (None: not scored); filler-only
    utterances do not count. ``scope``: which customer metrics to compute (``SCOPES``; the
    scores must cover its windows). Customer metrics are absent when the customer said nothing
    scorable (a rule then reports "metric not available" instead of guessing)."""
    cust = [s for r, t, s in zip(roles, texts, scores) if r == "customer" and s is not None and not is_filler(t)]
    agent = [s for r, t, s in zip(roles, texts, scores) if r == "agent" and s is not None and not is_filler(t)]
    want = SCOPE_METRICS[scope]
    out: dict[str, float] = {}
    if cust:
        start = _wmean(cust[:len(START_WEIGHTS)], START_WEIGHTS)
        end = _wmean(cust[::-1][:len(END_WEIGHTS)], END_WEIGHTS)
        got = dict(customer_sentiment_start=round(start, 4), customer_sentiment_end=round(end, 4),
                   customer_sentiment_min=round(min(cust), 4),
                   customer_sentiment_delta=round(end - start, 4))  # > 0: ended calmer than started
        out.update((k, v) for k, v in got.items() if k in want)
    if agent:
        out["agent_sentiment_mean"] = round(sum(agent) / len(agent), 4)
    return out


def add_sentiment(tr: Transcript, scorer: Scorer | None = None, scope: str = "all") -> Transcript:
    """``tr`` with ``Turn.metrics["sentiment"]`` on the turns ``scope`` scores (``scored_turns``;
    customer fillers get 0) and the call-level metrics in ``Transcript.metrics`` (other metrics
    already there are kept, sentiment ones replaced; ``sentiment_scope`` names the scope)."""
    scorer = scorer or get_scorer()
    texts = [t.text for t in tr.turns]
    roles = [t.role for t in tr.turns]
    todo = [i for i, yes in enumerate(scored_turns(roles, texts, scope)) if yes]
    # customer fillers: 0 by definition; customer utterances outside the scope: no score
    scores: list[float | None] = [0.0 if r == "customer" and is_filler(x) else None for r, x in zip(roles, texts)]
    if todo:  # one batch per call
        for i, s in zip(todo, scorer.score([texts[i] for i in todo], [roles[i] for i in todo])):
            scores[i] = round(s, 4)
    turns = tuple(t if s is None else dataclasses.replace(t, metrics={**t.metrics, "sentiment": s})
                  for t, s in zip(tr.turns, scores))
    kept = {k: v for k, v in tr.metrics.items() if k not in CALL_METRICS}  # none left from another scope
    metrics = {**kept, **call_metrics(roles, texts, scores, scope),
               "sentiment_scorer": scorer.name, "sentiment_scope": scope}
    return dataclasses.replace(tr, turns=turns, metrics=metrics)
