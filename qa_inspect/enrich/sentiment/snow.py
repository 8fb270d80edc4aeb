"""snownlp's sentiment, computed the same way, about 8x faster and in a sixth of the memory.

``SnowNLP(text).sentiments`` segments the text with snownlp's character-based generative
model (a trigram Viterbi over the tags b/m/e/s), drops stop words and runs its Naive Bayes.
Importing snownlp loads every model of the package as dictionaries keyed by nested tuples:
~5 s and ~410 MB per process, the largest part of a pipeline worker's memory (issue 18). Its
Viterbi is written for clarity: every state copies its whole tag path at every character
(quadratic in the utterance length) and every transition is five nested-tuple lookups, 64
times per character: ~3 ms per utterance, the largest cost of importing transcripts.

``SnowSentiment`` reads the same packaged tables (never importing snownlp), keeps them as
integer-keyed dictionaries and, for the 928k trigrams, a sorted array (written once to a cache
file beside the Whisper model, read in ~0.5 s afterwards; 64 MiB against ~410 MiB), and runs the same model with the same arithmetic in the same order: the
lookups of a character are made once and reused, a transition whose context bigram was never
seen skips the trigram lookup (its term is 0 there too: every n-gram's parts are in the tables,
checked by the tests), and the paths are back-pointers. States are visited in snownlp's order
and ties broken the same way, so the tags, the words and the score are snownlp's own, bit for
bit; ``tests/test_sentiment.py`` checks that against ``snownlp.SnowNLP``.
"""
from __future__ import annotations

import gzip
import importlib.util
import marshal
import os
import re
import threading
from array import array
from bisect import bisect_left
from math import exp, log
from pathlib import Path

import numpy as np

from qa_inspect.errors import ModelMissingError

_ZH = re.compile("([\u4E00-\u9FA5]+)")  # snownlp.seg.re_zh
_TAGS = ("b", "m", "e", "s")
_NEG_INF = float("-inf")
_FORMAT = 1  # of the cache file


def _package_dir() -> Path:
    spec = importlib.util.find_spec("snownlp")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissingError("the snownlp sentiment feature needs: pip install snownlp")
    return Path(list(spec.submodule_search_locations)[0])


def _cache_dir() -> Path:
    # the same folder as the assembled Whisper model (qa_inspect.speech.asr.cache_dir)
    return Path(os.environ.get("QA_INSPECT_CACHE", Path.home() / ".cache" / "qa_inspect"))


def _load_marshal(path: Path) -> dict:
    """snownlp's own loader: gzip'd marshal, else plain marshal."""
    try:
        with gzip.open(path, "rb") as f:
            return marshal.loads(f.read())
    except OSError:
        return marshal.loads(path.read_bytes())


def _compile_segmenter(src: Path, dst: Path) -> None:
    """snownlp's segmentation tables (seg.marshal.3) as integer arrays in ``dst`` (.npz)."""
    d = _load_marshal(src)
    vocab = list(d["uni"]["d"])  # (char, tag), ('', 'BOS') included
    index = {v: i for i, v in enumerate(vocab)}
    n = len(vocab)
    bi = d["bi"]["d"]
    tri = d["tri"]["d"]
    arrays = dict(
        fmt=np.array(_FORMAT), n=np.array(n),
        chars=np.array([c for c, _ in vocab]), tags=np.array([t for _, t in vocab]),
        uni=np.array([d["uni"]["d"][v] for v in vocab], dtype=np.int64),
        uni_total=np.array(float(d["uni"]["total"])),
        lambdas=np.array([float(d["l1"]), float(d["l2"]), float(d["l3"])]),
        bi_keys=np.array([index[a] * n + index[b] for a, b in bi], dtype=np.int64),
        bi_counts=np.array(list(bi.values()), dtype=np.int64),
        tri_keys=np.array([(index[a] * n + index[b]) * n + index[c] for a, b, c in tri], dtype=np.int64),
        tri_counts=np.array(list(tri.values()), dtype=np.int64))
    del d, bi, tri
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f"{dst.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, dst)  # whole or absent: workers may compile at the same time


class SnowSentiment:
    """``score(text)`` = ``SnowNLP(text).sentiments`` (P(positive) of snownlp's Bayes model)."""

    def __init__(self, cache: Path | None = None) -> None:
        pkg = _package_dir()
        src = pkg / "seg" / "seg.marshal.3"
        if not src.is_file():
            raise ModelMissingError(f"snownlp's segmentation model is missing ({src}): pip install snownlp")
        st = src.stat()
        path = (cache or _cache_dir() / "snownlp") / f"seg-{_FORMAT}-{st.st_size}-{int(st.st_mtime)}.npz"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            import fcntl  # one process compiles (~5 s, ~0.4 GB for a moment), the others wait for it

            with open(path.parent / ".compile.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    if not path.is_file():
                        _compile_segmenter(src, path)
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        with np.load(path, allow_pickle=False) as z:
            n = int(z["n"])
            uni = z["uni"].tolist()
            self._n = n
            self._uni = uni  # count by vocabulary id
            # char -> the vocabulary ids of (char, b/m/e/s), -1 where snownlp never saw it
            ids: dict[str, list[int]] = {}
            for i, (c, t) in enumerate(zip(z["chars"].tolist(), z["tags"].tolist())):
                if t in _TAGS:
                    ids.setdefault(c, [-1, -1, -1, -1])[_TAGS.index(t)] = i
                elif t == "BOS":
                    self._bos = i
            self._ids = {c: tuple(v) for c, v in ids.items()}
            self._bi = dict(zip(z["bi_keys"].tolist(), z["bi_counts"].tolist()))
            # the 928k trigrams as a sorted array searched with bisect: ~11 MiB instead of ~70 MiB
            # as a dict (a few lookups per character need it: the others are skipped)
            order = np.argsort(z["tri_keys"], kind="stable")
            self._tri_keys = array("q", z["tri_keys"][order].tobytes())
            self._tri_counts = array("q", z["tri_counts"][order].tobytes())
            self._uni_total = float(z["uni_total"])
            self._l1, self._l2, self._l3 = (float(x) for x in z["lambdas"])
        with open(pkg / "normal" / "stopwords.txt", encoding="utf-8") as f:  # snownlp.normal.stop
            self._stop = {w.strip() for w in f}
        b = _load_marshal(pkg / "sentiment" / "sentiment.marshal.3")  # classification.bayes.Bayes
        self._classes = [(k, float(v["total"]), v["d"], v["none"]) for k, v in b["d"].items()]
        self._total = b["total"]

    # -- segmentation (snownlp.seg.seg) ---------------------------------------------------
    def words(self, text: str) -> list[str]:
        out: list[str] = []
        for s in _ZH.split(text):
            s = s.strip()
            if not s:
                continue
            if _ZH.match(s):
                out += self._segment(s)
            else:
                out += [w for w in (x.strip() for x in s.split()) if w]
        return out

    def _segment(self, s: str) -> list[str]:
        """snownlp.seg.seg.Seg.seg: words from the Viterbi tags."""
        words, tmp = [], ""
        for ch, t in zip(s, self._tag(s)):
            if t == "e":
                words.append(tmp + ch)
                tmp = ""
            elif t == "b" or t == "s":
                if tmp:
                    words.append(tmp)
                tmp = ch
            else:
                tmp += ch
        if tmp:
            words.append(tmp)
        return words

    def _tag(self, data: str) -> list[str]:
        """CharacterBasedGenerativeModel.tag, with the same arithmetic in the same order.

        snownlp's states are (previous (char, tag), current (char, tag)); at each character it
        scores every state × tag and keeps, per new state, the first best predecessor in the
        order of its state list (dict insertion order), which is: the predecessor's previous
        tag in b, m, e, s order (just BOS for the first two characters). Here a state is a pair
        of tag indices, the order is explicit, and paths are back-pointers. An n-gram is looked
        up only where all its parts were seen (else its count is 0 in snownlp's tables too)."""
        ids, uni, bi, N = self._ids, self._uni, self._bi, self._n
        tri_keys, tri_counts, n_tri = self._tri_keys, self._tri_counts, len(self._tri_keys)

        def tri(k: int) -> int:
            i = bisect_left(tri_keys, k)
            return tri_counts[i] if i < n_tri and tri_keys[i] == k else 0

        total, l1, l2, l3 = self._uni_total, self._l1, self._l2, self._l3
        unseen = (-1, -1, -1, -1)
        bos = self._bos
        prev2: tuple = (bos,)  # vocabulary ids of the options at i-2, in snownlp's order
        prev1: tuple = (bos,)  # … at i-1
        n_prev1 = [uni[bos]]  # their unigram counts
        n12 = [[bi.get(bos * N + bos, 0)]]  # bigram counts [t1][t2] of (prev2, prev1)
        score = [[0.0]]  # [t1][t2]
        backs: list[list[list[int]]] = []  # per character: [t2][s] -> best t1
        for w in data:
            cur = ids.get(w, unseen)
            c3 = [uni[i] if i >= 0 else 0 for i in cur]
            r1, r2 = range(len(prev2)), range(len(prev1))
            new = [[0.0] * 4 for _ in r2]
            back = [[0] * 4 for _ in r2]
            if not (c3[0] or c3[1] or c3[2] or c3[3]):
                # an unseen character: snownlp carries the score of the LAST predecessor
                last = len(prev2) - 1
                for t2 in r2:
                    for s in range(4):
                        new[t2][s] = score[last][t2]
                        back[t2][s] = last
                n23 = [[0] * 4 for _ in r2]
            else:
                n23 = [[bi.get(prev1[t2] * N + cur[s], 0) if c3[s] and n_prev1[t2] else 0 for s in range(4)]
                       for t2 in r2]
                for s in range(4):
                    if not c3[s]:  # uni = bi = tri = 0: log_prob is -inf
                        for t2 in r2:
                            new[t2][s] = _NEG_INF
                            back[t2][s] = 0
                        continue
                    uni_term = l1 * (float(c3[s]) / total)
                    for t2 in r2:
                        n2, b = n_prev1[t2], n23[t2][s]
                        # uni + bi (+ tri, 0 without the trigram): snownlp's sum, same order
                        base = uni_term + (float(l2 * b) / n2 if n2 else 0)
                        lbase = log(base)  # > 0: c3[s] > 0
                        k23 = prev1[t2] * N + cur[s]
                        best_p, best_t1 = _NEG_INF, -1
                        for t1 in r1:
                            n = n12[t1][t2]
                            tc = tri(prev2[t1] * N * N + k23) if n and b else 0
                            p = score[t1][t2] + (log(base + float(l3 * tc) / n) if tc else lbase)
                            if best_t1 < 0 or p > best_p:
                                best_p, best_t1 = p, t1
                        new[t2][s] = best_p
                        back[t2][s] = best_t1
            backs.append(back)
            score, prev2, prev1, n_prev1, n12 = new, prev1, cur, c3, n23
        # the best final state: snownlp's max over its state list, ordered s-major, then t2
        best_v, bt2, bs = _NEG_INF, -1, -1
        for s in range(4):
            for t2 in range(len(score)):
                if bt2 < 0 or score[t2][s] > best_v:
                    best_v, bt2, bs = score[t2][s], t2, s
        tags = [bs]
        for back in reversed(backs[1:]):
            t1 = back[bt2][bs]
            tags.append(bt2)
            bt2, bs = t1, bt2
        tags.reverse()
        return [_TAGS[t] for t in tags]

    # -- the Bayes model (snownlp.classification.bayes.Bayes.classify) -----------------------
    def classify(self, words: list[str]) -> tuple[str, float]:
        tmp = {}
        for k, ktotal, d, none in self._classes:
            v = log(ktotal) - log(self._total)
            for word in words:
                v += log(float(d.get(word, none)) / ktotal)
            tmp[k] = v
        ret, prob = "", 0.0
        for k in tmp:
            try:
                now = 0.0
                for other in tmp:
                    now += exp(tmp[other] - tmp[k])
                now = 1 / now
            except OverflowError:
                now = 0
            if now > prob:
                ret, prob = k, now
        return ret, prob

    def score(self, text: str) -> float:
        """snownlp.sentiment.Sentiment.classify: P(positive)."""
        words = [w for w in self.words(text) if w not in self._stop]
        ret, prob = self.classify(words)
        return prob if ret == "pos" else 1 - prob


_shared: SnowSentiment | None = None
_lock = threading.Lock()


def shared() -> SnowSentiment:
    """One ``SnowSentiment`` per process."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = SnowSentiment()
        return _shared
