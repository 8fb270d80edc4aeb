"""Sentiment scorers: text → score in [-1, 1] (negative … positive), one batch per call.

- ``LexiconScorer``: the hand-written customer-service lexicon (``lexicon.py``); no model, µs/turn.
- ``CombinedScorer`` (default): a fixed weighted sum of the lexicon, few-shot similarity to
  short anchor sentences over the packaged multilingual sentence encoder
  (``qa_inspect.enrich.embeddings``), and ``snownlp``/``jiagu`` sentiment as features.
- ``TransformersScorer``: a ``transformers`` text-classification pipeline over a model directory
  the user supplies (never a hub download), labels mapped to [-1, 1].
- ``FixedScorer``: a fake for fast tests (scores looked up by substring).

No Chinese sentiment model for ``transformers`` ships on PyPI, so the default is the
combination of what does ship; ``bench/sentiment_eval.py`` measures each part.
"""
from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from functools import cached_property
from pathlib import Path
from typing import Mapping, Protocol, Sequence

import numpy as np

from qa_inspect.errors import ModelMissingError
from qa_inspect.enrich.sentiment.lexicon import Lexicon, is_filler, lexicon_score

log = logging.getLogger(__name__)


class Scorer(Protocol):
    name: str

    def score(self, texts: Sequence[str], roles: Sequence[str] | None = None) -> list[float]:
        """One score in [-1, 1] per text (0 for empty / filler-only texts); ``roles`` (one per
        text, agent/customer) lets a scorer spend its expensive parts where they matter."""
        ...


def _clip(x: float) -> float:
    return max(-1.0, min(1.0, float(x)))


class LexiconScorer:
    name = "lexicon"

    def __init__(self, lexicon: Lexicon | None = None) -> None:
        self.lexicon = lexicon or Lexicon.default()

    def score(self, texts: Sequence[str], roles: Sequence[str] | None = None) -> list[float]:
        return [0.0 if is_filler(t) else lexicon_score(t, self.lexicon) for t in texts]


# Few-shot anchors: short, generic customer-service sentences (written for this purpose).
NEGATIVE_ANCHORS = (
    "你们这是什么服务态度", "我非常不满意", "问题到现在还是没有解决", "我要投诉你们",
    "太过分了你们怎么能这样", "等了这么久还没有人处理", "我不接受这个处理结果", "你们就是在推卸责任",
    "这根本不是我的问题", "我已经说了很多遍了", "我很生气", "这样处理不合理",
    "This is ridiculous, I want to complain", "My problem is still not solved",
)
POSITIVE_ANCHORS = (
    "好的谢谢你", "非常感谢你的帮助", "问题已经解决了", "可以就这样处理吧", "没问题谢谢",
    "辛苦你了再见", "我很满意", "好的我明白了", "太好了谢谢",
    "Thank you so much, that solves it", "Great, that's fine",
)
NEUTRAL_ANCHORS = (
    "我想查一下我的订单", "我的手机号是多少", "请问是什么时候下的单", "我在家里",
    "就是那个外卖", "你稍等一下", "What is my order number",
)


class EmbeddingScorer:
    """Few-shot: (similarity to the nearest negative anchors) vs (positive anchors) vs neutral."""

    name = "embedding"
    TOP = 2  # mean of the top-2 similarities per class
    TEMPERATURE = 0.08  # softmax temperature over the three class similarities

    @cached_property
    def _anchors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from qa_inspect.enrich import embeddings
        return tuple(embeddings.embed(a, persist=False) for a in (NEGATIVE_ANCHORS, POSITIVE_ANCHORS,
                                                                   NEUTRAL_ANCHORS))

    def score(self, texts: Sequence[str], roles: Sequence[str] | None = None) -> list[float]:
        from qa_inspect.enrich import embeddings
        keep = [i for i, t in enumerate(texts) if not is_filler(t)]
        out = [0.0] * len(texts)
        if not keep:
            return out
        v = embeddings.embed([texts[i] for i in keep], persist=False)  # one batch per call; not kept
        sims = []
        for a in self._anchors:
            s = np.sort(v @ a.T, axis=1)[:, -self.TOP:].mean(axis=1)
            sims.append(s)
        z = np.stack(sims, axis=1) / self.TEMPERATURE
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        for j, i in enumerate(keep):
            out[i] = _clip(p[j, 1] - p[j, 0])
        return out


class SnowNLPScorer:
    """snownlp's Naive Bayes (trained on product reviews): 2·P(positive) − 1.

    Computed by ``snow.SnowSentiment`` (snownlp's own model and arithmetic, ~30x faster than
    ``SnowNLP(text).sentiments``, same result bit for bit); ``reference=True`` calls snownlp."""

    name = "snownlp"

    def __init__(self, reference: bool = False) -> None:
        self.reference = reference

    @cached_property
    def _fn(self):
        if not self.reference:
            from qa_inspect.enrich.sentiment import snow

            return snow.shared().score
        try:
            from snownlp import SnowNLP
        except ImportError as e:
            raise ModelMissingError("the snownlp sentiment feature needs: pip install snownlp") from e
        return lambda t: SnowNLP(t).sentiments

    def score(self, texts: Sequence[str], roles: Sequence[str] | None = None) -> list[float]:
        fn = self._fn
        return [0.0 if is_filler(t) else _clip(2 * fn(t) - 1) for t in texts]


class JiaguScorer:
    """jiagu's sentiment classifier: ±(2·p − 1) by its label."""

    name = "jiagu"

    def score(self, texts: Sequence[str], roles: Sequence[str] | None = None) -> list[float]:
        try:
            import jiagu
        except ImportError as e:
            raise ModelMissingError("the jiagu sentiment feature needs: pip install jiagu") from e
        out = []
        for t in texts:
            if is_filler(t):
                out.append(0.0)
                continue
            label, p = jiagu.sentiment(t)
            out.append(_clip((2 * p - 1) * (1 if label == "positive" else -1)))
        return out


# Weights of the combined scorer, picked from a coarse grid on the labelled MUSIED dev calls
# (bench/sentiment_eval.py prints each part alone): the lexicon knows customer-service
# language (unresolved problems, polite acceptance); the embedding anchors catch paraphrases
# it lacks; snownlp (trained on reviews) is a strong complement on ASR text. jiagu was weaker
# than each of them there (AUC 0.77 vs 0.91-0.93 for the end of call), so it is off by default.
COMBINED_WEIGHTS = {"lexicon": 0.4, "embedding": 0.3, "snownlp": 0.3, "jiagu": 0.0}
# Roles whose utterances get the model parts (embedding, snownlp, jiagu); the others get the
# lexicon alone. Customer only by default (issue 18): every figure the combined scorer is
# measured and tuned on reads customer utterances (customer_sentiment_*, the complaint
# evidence), and the models cost ~1 ms per utterance where the lexicon costs ~30 µs; agents
# speak about half the utterances and two thirds of the characters. None: every role.
# A text scored without a role gets every part.
MODEL_ROLES: tuple[str, ...] | None = ("customer",)
MODEL_PARTS = ("embedding", "snownlp", "jiagu")
# Bump when what the default combined scorer computes changes (it is part of describe(),
# which keys the transcript cache): 2 = model parts on customer utterances only.
COMBINED_VERSION = 2
CACHE_SIZE = 65536  # utterance scores kept per scorer (fillers and stock phrases repeat)


class CombinedScorer:
    name = "combined"
    caches = True  # scores kept per text: enrich.warm_sentiment can score a chunk's texts at once

    def __init__(self, weights: Mapping[str, float] | None = None,
                 model_roles: Sequence[str] | None = MODEL_ROLES, *, reference_snownlp: bool = False,
                 cache_size: int = CACHE_SIZE) -> None:
        self.weights = {k: w for k, w in (weights or COMBINED_WEIGHTS).items() if w}
        self.model_roles = None if model_roles is None else tuple(model_roles)
        self.parts: dict[str, Scorer] = {"lexicon": LexiconScorer(), "embedding": EmbeddingScorer(),
                                         "jiagu": JiaguScorer(),
                                         "snownlp": SnowNLPScorer(reference=reference_snownlp)}
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, bool], float] = OrderedDict()
        self._lock = threading.Lock()

    def describe(self) -> str:
        """What this scorer computes, for cache keys: parts, weights, roles the models see."""
        parts = "+".join(f"{k}{w:g}" for k, w in sorted(self.weights.items()))
        roles = "all" if self.model_roles is None else ",".join(self.model_roles)
        return f"combined/{COMBINED_VERSION}:{parts}:models={roles}"

    def _models_for(self, role: str | None) -> bool:
        """Whether an utterance of ``role`` gets the model parts (else the lexicon alone)."""
        return self.model_roles is None or role is None or role in self.model_roles

    def features(self, texts: Sequence[str], roles: Sequence[str] | None = None) -> dict[str, list[float | None]]:
        """Each weighted part's scores (None where a part was not run for that text's role)."""
        rl = list(roles) if roles is not None else [None] * len(texts)
        return self._features(texts, [self._models_for(r) for r in rl])

    def _features(self, texts: Sequence[str], models: Sequence[bool]) -> dict[str, list[float | None]]:
        out: dict[str, list[float | None]] = {}
        for k in self.weights:
            idx = [i for i, m in enumerate(models) if m or k not in MODEL_PARTS]
            col: list[float | None] = [None] * len(texts)
            for i, v in zip(idx, self.parts[k].score([texts[i] for i in idx]) if idx else []):
                col[i] = v
            out[k] = col
        return out

    def combine(self, feats: Mapping[str, Sequence[float | None]], n: int) -> list[float]:
        out = []
        for i in range(n):
            used = [(w, feats[k][i]) for k, w in self.weights.items() if feats[k][i] is not None]
            total = sum(w for w, _ in used)
            out.append(_clip(sum(w * v for w, v in used) / total) if total else 0.0)
        return out

    def score(self, texts: Sequence[str], roles: Sequence[str] | None = None) -> list[float]:
        """Scores of ``texts``; a text already scored (with the same parts) comes from the cache,
        the others go through each part in one batch."""
        rl = list(roles) if roles is not None else [None] * len(texts)
        keys = [(t, self._models_for(r)) for t, r in zip(texts, rl)]
        out: list[float | None] = [None] * len(texts)
        with self._lock:
            for i, k in enumerate(keys):
                v = self._cache.get(k)
                if v is not None:
                    self._cache.move_to_end(k)
                    out[i] = v
        todo = list(dict.fromkeys(k for k, v in zip(keys, out) if v is None))
        if todo:
            new = self.combine(self._features([t for t, _ in todo], [m for _, m in todo]), len(todo))
            got = dict(zip(todo, new))
            with self._lock:
                for k, v in got.items():
                    self._cache[k] = v
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            out = [got[k] if v is None else v for k, v in zip(keys, out)]
        return out  # type: ignore[return-value]


_STARS = re.compile(r"^\s*(\d)\s*stars?\s*$", re.I)


def label_value(label: str, n_labels: int, index: int) -> float:
    """Where a classifier label sits on [-1, 1]: negative/neutral/positive by name, "N stars"
    linearly, else LABEL_k spread evenly (2 labels: -1, 1; 3: -1, 0, 1)."""
    low = label.lower()
    if "neg" in low:
        return -1.0
    if "pos" in low:
        return 1.0
    if "neu" in low:
        return 0.0
    m = _STARS.match(low)
    if m:
        return (int(m.group(1)) - 3) / 2.0
    if n_labels < 2:
        return 0.0
    return -1.0 + 2.0 * index / (n_labels - 1)


class TransformersScorer:
    """A local text-classification model: score = Σ P(label) · value(label)."""

    name = "transformers"

    def __init__(self, model_path: str | Path | None, label_values: Mapping[str, float] | None = None,
                 batch_size: int = 32) -> None:
        if not model_path:
            raise ModelMissingError("sentiment backend 'transformers' needs a local model directory: "
                                    "set QA_INSPECT_SENTIMENT_MODEL=/path/to/model "
                                    "(a text-classification model saved with save_pretrained)")
        p = Path(model_path).expanduser()
        if not (p / "config.json").is_file():
            raise ModelMissingError(f"sentiment model directory {p} has no config.json: set "
                                    "QA_INSPECT_SENTIMENT_MODEL to a local text-classification model "
                                    "saved with save_pretrained (no hub downloads)")
        self.path = p
        self.label_values = dict(label_values or {})
        self.batch_size = batch_size

    @cached_property
    def _pipe(self):
        try:
            from transformers import pipeline
        except ImportError as e:
            raise ModelMissingError("sentiment backend 'transformers' needs: pip install transformers torch") from e
        # local_files_only: a path that is not a local model must fail, never fetch from the hub
        pipe = pipeline("text-classification", model=str(self.path), tokenizer=str(self.path),
                        top_k=None, device=-1, local_files_only=True)
        id2label = pipe.model.config.id2label
        n = len(id2label)
        self._values = {str(lab): self.label_values.get(str(lab), label_value(str(lab), n, int(i)))
                        for i, lab in id2label.items()}
        return pipe

    def score(self, texts: Sequence[str], roles: Sequence[str] | None = None) -> list[float]:
        keep = [i for i, t in enumerate(texts) if not is_filler(t)]
        out = [0.0] * len(texts)
        if not keep:
            return out
        pipe = self._pipe
        res = pipe([texts[i] for i in keep], batch_size=self.batch_size, truncation=True)
        for i, labels in zip(keep, res):
            out[i] = _clip(sum(d["score"] * self._values[str(d["label"])] for d in labels))
        return out


class FixedScorer:
    """A fake for fast tests: the first ``mapping`` key found in a text gives its score, else ``default``."""

    name = "fixed"

    def __init__(self, mapping: Mapping[str, float], default: float = 0.0) -> None:
        self.mapping = dict(mapping)
        self.default = default

    def score(self, texts: Sequence[str], roles: Sequence[str] | None = None) -> list[float]:
        return [next((_clip(v) for k, v in self.mapping.items() if k in t), self.default) for t in texts]
