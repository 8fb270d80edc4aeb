"""snownlp's sentiment, computed the same way, ~30x faster and in a sixth of the memory.

``SnowNLP(text).sentiments`` segments the text with snownlp's character-based generative
model (a trigram Viterbi over the tags b/m/e/s), drops stop words and runs its Naive Bayes.
Importing snownlp loads every model of the package as dictionaries keyed by nested tuples:
~5 s and ~410 MB per process, the largest part of a pipeline worker's memory (issue 18). Its
Viterbi is written for clarity: every state copies its whole tag path at every character
(quadratic in the utterance length) and every transition is five nested-tuple lookups, 64
times per character: ~3 ms per utterance, the largest cost of importing transcripts.

``SnowSentiment`` reads the same packaged tables (never importing snownlp; compiled once into
a cache file beside the Whisper model) and runs the same model with the same arithmetic in the
same order, so the tags, the words and the score are snownlp's own, bit for bit
(``tests/test_sentiment.py`` checks that against ``snownlp.SnowNLP``):

- what a character adds to a path depends only on it and the two characters before it: its
  16 terms are worked out once per pair of characters and, where a trigram of the three may
  have been seen, once per triple (bounded memos), then each character costs 4 maxima and 16
  additions (see ``_tag`` for why that is snownlp's max) and the predecessors are chosen, by
  snownlp's rule, along the best path only;
- the bigrams are grouped by pair of characters (one search gives all 16 of a pair) and the
  trigrams are searched within the range of their first bigram, by third id; a Bloom filter
  over triples of characters skips most of those searches (a trigram of a text was usually
  never seen);
- a word's Bayes terms are memoised.

Its data is ~24 MiB of Python objects (~43 MiB before this layout; ~60 MiB of RSS either way,
the heap keeping what loading used), plus the memos (at most ~14 MiB at their caps); loading
it takes ~0.3 s (0.2 s before).
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
from typing import NamedTuple

import numpy as np

from qa_inspect.errors import ModelMissingError

_ZH = re.compile("([\u4E00-\u9FA5]+)")  # snownlp.seg.re_zh
_TAGS = ("b", "m", "e", "s")
_NEG_INF = float("-inf")
_FORMAT = 1  # of the cache file
_CARRY = object()  # the plan of an unseen character
_BLOOM_MOD = 16777213  # the largest prime below 2 ** 24, the Bloom filter's size in bits
_START = [0.0] + [_NEG_INF] * 15  # the state (BOS, BOS); read only
# memo caps (entries); see SnowSentiment.__init__ for what they hold
TRIGRAM_CAP = 16384
BIGRAM_CAP = 16384
WORD_CAP = 16384


# A plan: what a character adds to the paths, given the two characters before it, as a plain
# tuple (L, fix) (built thousands of times per call: a tuple is the cheapest record). New
# states are numbered s * 4 + t2 (the character's tag s, the tag t2 of the one before).
# L: per state, snownlp's term without a trigram; -inf where the character lacks the tag s.
# fix: None, or ((state, 4 * t2, the term per predecessor t1 (4)), …) where a trigram was seen.


class _Char(NamedTuple):
    ids: tuple  # vocabulary ids of (char, b/m/e/s), -1 where unseen; (bos,) for BOS
    cid: int  # index of the character in the bigram tables; -1 if unseen
    cid_c: int  # cid * the number of characters, and cid_c2 that squared: for the Bloom filter
    cid_c2: int
    succ: tuple  # [lo, hi) of its bigram pairs, by second character
    c3: tuple  # unigram counts per tag
    uterm: tuple  # l1 * count / total: snownlp's unigram term
    plan: tuple  # the plan where no bigram was seen
    carry: bool  # no tag seen: snownlp carries the scores over this character


def _compact(a: np.ndarray) -> array:
    """An integer array in the smallest typecode that holds it (denser: fewer cache misses)."""
    for code, dtype in (("b", np.int8), ("h", np.int16), ("i", np.int32), ("q", np.int64)):
        info = np.iinfo(dtype)
        if array(code).itemsize == info.bits // 8 and (not len(a) or info.min <= a.min() and a.max() <= info.max):
            return array(code, np.asarray(a, dtype=dtype).tobytes())
    raise ValueError("integers out of the int64 range")


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

    def __init__(self, cache: Path | None = None, *, trigram_cap: int = TRIGRAM_CAP,
                 bigram_cap: int = BIGRAM_CAP, word_cap: int = WORD_CAP) -> None:
        if min(trigram_cap, bigram_cap, word_cap) < 1:
            raise ValueError("the cache caps must be at least 1")
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
            self._index(n, z)
            self._uni_total = float(z["uni_total"])
            self._l1, self._l2, self._l3 = (float(x) for x in z["lambdas"])
        with open(pkg / "normal" / "stopwords.txt", encoding="utf-8") as f:  # snownlp.normal.stop
            self._stop = {w.strip() for w in f}
        b = _load_marshal(pkg / "sentiment" / "sentiment.marshal.3")  # classification.bayes.Bayes
        self._classes = [(k, float(v["total"]), v["d"], v["none"]) for k, v in b["d"].items()]
        self._total = b["total"]
        self._priors = [(k, log(ktotal) - log(self._total)) for k, ktotal, _, _ in self._classes]  # as snownlp
        # what each character contributes on its own, worked out once (~4,700 characters, ~5 MiB)
        self._chars = {c: self._char(v, self._cid[c]) for c, v in self._ids.items()}
        self._unseen = self._char((-1, -1, -1, -1), -1)
        self._bos_char = self._char((self._bos,), self._cid[""])
        # bounded memos, each a dict emptied when it reaches its cap (a whole MUSIED dev set,
        # 106k characters, makes 20k bigrams and 9k trigram plans): the plans of a pair of
        # characters (~0.3 KiB each, measured), those of a triple with a trigram seen (~0.4
        # KiB) and a word's Bayes terms (~0.2 KiB): ~4.4 + 6.3 + 3.3 MiB at the default caps
        self._trigram_cap, self._bigram_cap, self._word_cap = trigram_cap, bigram_cap, word_cap
        self._trigrams: dict[int, tuple] = {}
        self._bigrams: dict[int, tuple] = {}
        self._words: dict[str, tuple[float, ...]] = {}

    def clear_caches(self) -> None:
        """Empty the memos (they are rebuilt on use; results do not depend on them)."""
        self._trigrams.clear()
        self._bigrams.clear()
        self._words.clear()

    def _index(self, n: int, z) -> None:
        """The n-gram tables as compact arrays (~9 MiB, where a dictionary keyed by bigram took
        ~21 MiB and the trigram keys 7 MiB), built with few large temporaries at a time (each
        trigram-sized int64 array is 7 MiB; the process keeps the heap they grew):

        - the 346k bigrams grouped by their pair of characters (280k pairs), the second
          characters of each first one sorted (``_succ``), so that one search gives every
          bigram of two characters (``_pair_start``), each with its tags (``_bi_state``: t2 * 4
          + s), its count and the range of the trigrams it starts (``_tri_lo``, ``_tri_hi``);
        - the 928k trigrams sorted, as their third vocabulary id (2 bytes: all a search within
          the range of its first bigram needs) and count;
        - which triples of characters have a trigram, as a Bloom filter (one hash, 2 MiB, ~5 %
          false positives): most triples of a text were never seen, and the filter says so
          without a search (it never answers "no" for a triple that has a trigram)."""
        char_list, cid = np.unique(z["chars"], return_inverse=True)  # BOS's character is ''
        C = len(char_list)
        self._cid = {c: i for i, c in enumerate(char_list.tolist())}
        self._n_chars = C
        tag = np.array([_TAGS.index(t) if t in _TAGS else 0 if t == "BOS" else -1 for t in z["tags"].tolist()])
        cid = cid.astype(np.int64)
        # trigrams
        tri_keys = z["tri_keys"]
        order = np.argsort(tri_keys, kind="stable")
        self._tri_counts = _compact(z["tri_counts"][order])
        tri_keys = tri_keys[order]
        del order
        mid = tri_keys // n  # the first bigram's key
        third = tri_keys - mid * n
        self._tri_third = _compact(third)
        h = cid[mid // n]
        h *= C
        mid %= n
        h += cid[mid]
        del mid
        h *= C
        h += cid[third]
        del third
        h %= _BLOOM_MOD
        bits = np.zeros(1 << 24, dtype=bool)
        bits[h] = True
        del h
        self._tri_bloom = np.packbits(bits, bitorder="little").tobytes()
        del bits
        # bigrams
        keys, counts = z["bi_keys"], z["bi_counts"]
        a, b = keys // n, keys % n
        ok = (tag[a] >= 0) & (tag[b] >= 0)  # (snownlp's tables hold no other tags)
        a, b, keys, counts = a[ok], b[ok], keys[ok], counts[ok]
        pair = cid[a] * C + cid[b]
        order = np.argsort(pair * 16 + tag[a] * 4 + tag[b], kind="stable")  # by pair, then t2, s
        pair, keys = pair[order], keys[order]
        self._bi_state = _compact((tag[a] * 4 + tag[b])[order])  # t2 * 4 + s
        self._bi_count = _compact(counts[order])
        del a, b, counts, order
        pairs, starts = np.unique(pair, return_index=True)
        first, second = np.divmod(pairs, C)
        bounds = np.searchsorted(first, np.arange(C + 1))  # the pairs of each first character
        self._succ_range = list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))
        self._succ = _compact(second)
        self._pair_start = _compact(np.append(starts, len(pair)))
        # the trigrams (x, a, c) of a bigram (x, a) are [lo, hi) of the sorted keys
        by_key = np.argsort(keys, kind="stable")  # (sorted queries search faster)
        lo, hi = np.empty_like(keys), np.empty_like(keys)
        lo[by_key] = np.searchsorted(tri_keys, keys[by_key] * n)
        hi[by_key] = np.searchsorted(tri_keys, keys[by_key] * n + n)
        self._tri_lo, self._tri_hi = _compact(lo), _compact(hi)

    def _char(self, ids: tuple, cid: int) -> _Char:
        uni, total, l1 = self._uni, self._uni_total, self._l1
        c3 = tuple(uni[i] if i >= 0 else 0 for i in ids)
        uterm = tuple(l1 * (float(c) / total) if c else 0.0 for c in c3)
        luni = [log(u) if c else _NEG_INF for u, c in zip(uterm, c3)]
        plan = (tuple(v for v in luni for _ in range(4)), None)
        C = self._n_chars
        return _Char(ids, cid, cid * C, cid * C * C, self._succ_range[cid] if cid >= 0 else (0, 0), c3, uterm, plan,
                     not any(c3))

    # -- segmentation (snownlp.seg.seg) ---------------------------------------------------
    def words(self, text: str) -> list[str]:
        """snownlp.seg.seg.Seg.seg: the runs of Chinese characters segmented, the rest split at
        spaces. (snownlp strips each piece and tests it with the regex again: the pieces at odd
        positions of the split are the runs, and no other piece holds a Chinese character.)"""
        out: list[str] = []
        for i, s in enumerate(_ZH.split(text)):
            if i & 1:
                out += self._segment(s)
            elif s:
                out += s.split()
        return out

    def _segment(self, s: str) -> list[str]:
        """snownlp.seg.seg.Seg.seg: words from the Viterbi tags (b m e s = 0 1 2 3)."""
        words, tmp = [], ""
        for ch, t in zip(s, self._tag(s)):
            if t == 2:  # e
                words.append(tmp + ch)
                tmp = ""
            elif t != 1:  # b, s
                if tmp:
                    words.append(tmp)
                tmp = ch
            else:
                tmp += ch
        if tmp:
            words.append(tmp)
        return words

    def _tag(self, data: str) -> list[int]:
        """CharacterBasedGenerativeModel.tag, with the same arithmetic in the same order; the
        tags as indices into ``_TAGS``.

        snownlp's states are (previous (char, tag), current (char, tag)); at each character it
        scores every state × tag and keeps, per new state, the first best predecessor in the
        order of its state list (dict insertion order), which is: the predecessor's previous
        tag in b, m, e, s order (just BOS for the first two characters). Here the state (t1, t2)
        is the index t2 * 4 + t1 of a list of 16 scores (BOS is tag 0, its 3 missing tags
        padded with -inf: never a first best).

        What a character adds to a path depends only on the characters at i-2, i-1 and i, never
        on the path: its plan (16 terms, and those that a seen trigram changes per predecessor)
        is worked out once per pair of characters (``_bigram``) or, where a trigram of the three
        may have been seen, per triple (``_trigram_plan``), both memoised. Where a new state's
        term L is the same for every predecessor, snownlp's best score, the max over t1 of
        fl(score(t1, t2) + L), is fl(max over t1 of score(t1, t2) + L), rounding being monotone:
        one max per column and 16 additions per character; the states with trigram terms take
        the max of their own sums. Which predecessor was first best is needed only along the
        best path: it is found at the end, by snownlp's rule (the first of the largest sums),
        from the stored scores, for that one state per character."""
        chars, unseen, bloom = self._chars, self._unseen, self._tri_bloom
        bigrams, trigrams = self._bigrams, self._trigrams
        x = a = self._bos_char  # the characters at i-2 and i-1
        sc = _START
        scores: list[list] = []  # per character: the scores before it
        plans: list = []  # and its plan
        for i, cur in enumerate([chars.get(ch, unseen) for ch in data]):
            # the plan: by the bigram (a, cur), or by the trigram (x, a, cur) where one may have
            # been seen; keyed by the characters' indices (all unseen characters act alike)
            if cur.carry:
                plan = _CARRY
            elif a.cid < 0:
                plan = cur.plan  # after an unseen character: no bigram, no trigram
            else:
                kb = a.cid_c + cur.cid
                plan, right = bigrams.get(kb) or self._bigram(kb, a, cur)
                if right and x.cid >= 0:
                    kt = x.cid_c2 + kb
                    h = kt % _BLOOM_MOD
                    if bloom[h >> 3] >> (h & 7) & 1:  # (else no trigram of these characters)
                        plan = trigrams.get(kt) or self._trigram_plan(kt, x, a, cur, plan, right)
            x, a = a, cur
            scores.append(sc)
            plans.append(plan)
            if plan is _CARRY:
                # an unseen character: snownlp carries the score of the LAST predecessor
                last = 3 if i > 1 else 0
                sc = [sc[last], sc[4 + last], sc[8 + last], sc[12 + last]] * 4  # (t2, s) = old (last, t2)
                continue
            # unrolled: one list per character (this loop is most of the cost)
            s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15 = sc
            m0, m1, m2, m3 = max(s0, s1, s2, s3), max(s4, s5, s6, s7), max(s8, s9, s10, s11), max(s12, s13, s14, s15)
            l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11, l12, l13, l14, l15 = plan[0]
            new = [m0 + l0, m1 + l1, m2 + l2, m3 + l3, m0 + l4, m1 + l5, m2 + l6, m3 + l7,  # -inf + L, x + -inf: -inf
                   m0 + l8, m1 + l9, m2 + l10, m3 + l11, m0 + l12, m1 + l13, m2 + l14, m3 + l15]
            if plan[1]:  # the same sums as snownlp's loop over t1: its best is their max
                for state, o, a0, a1, a2, a3 in plan[1]:
                    new[state] = max(sc[o] + a0, sc[o + 1] + a1, sc[o + 2] + a2, sc[o + 3] + a3)
            sc = new
        # the best final state: snownlp's first best over its state list, ordered s-major, then
        # t2, as here (the BOS padding is -inf: never first)
        bs, bt2 = divmod(sc.index(max(sc)), 4)
        tags = [bs]
        for i in range(len(data) - 1, 0, -1):
            plan = plans[i]
            if plan is _CARRY:
                t1 = 3 if i > 1 else 0
            else:  # snownlp's first best predecessor of the state (bt2, bs): the first largest sum
                # (for a tag the character lacks, all -inf: 0, as snownlp sets it)
                L, fix = plan
                state, o, sc = bs * 4 + bt2, bt2 * 4, scores[i]
                a0 = a1 = a2 = a3 = L[state]
                if fix:
                    for f in fix:
                        if f[0] == state:
                            _, _, a0, a1, a2, a3 = f
                p0, p1, p2, p3 = sc[o] + a0, sc[o + 1] + a1, sc[o + 2] + a2, sc[o + 3] + a3
                m = max(p0, p1, p2, p3)
                t1 = 0 if p0 == m else 1 if p1 == m else 2 if p2 == m else 3
            tags.append(bt2)
            bt2, bs = t1, bt2
        tags.reverse()
        return tags

    def _trigram_plan(self, kt: int, x: _Char, a: _Char, cur: _Char, plan: tuple, right: tuple) -> tuple:
        """The plan of ``cur`` after (x, a) with the trigram terms (``plan`` if none); memoised."""
        kl = x.cid_c + a.cid
        left = (self._bigrams.get(kl) or self._bigram(kl, x, a))[1]
        if left:
            fix = self._trigram_terms(a, cur, plan[0], right, left)
            if fix:
                plan = (plan[0], fix)
        trigrams = self._trigrams
        if len(trigrams) >= self._trigram_cap:
            trigrams.clear()
        trigrams[kt] = plan
        return plan

    def _trigram_terms(self, a: _Char, cur: _Char, L: tuple, right: tuple, left: tuple) -> tuple:
        """The states whose term has a trigram part, as (state, 4 * t2, term per t1 …):
        snownlp's log(base + l3 * tc / n), base that of the bigram (a t2, cur s) (in ``right``,
        as in ``_bigram``), n the count of the bigram (x t1, a t2) (in ``left``) and tc the
        count of the trigram, looked up where both of its bigrams were seen."""
        state, count, third = self._bi_state, self._bi_count, self._tri_third
        tri_lo, tri_hi = self._tri_lo, self._tri_hi
        tri_counts, l2, l3 = self._tri_counts, self._l2, self._l3
        fix = []
        for j2 in right:
            t2, s = divmod(state[j2], 4)
            c, adds = cur.ids[s], None
            for j1 in left:
                st = state[j1]
                if st & 3 == t2:  # the trigrams after (x t1, a t2): [lo, hi), by third id
                    lo, hi = tri_lo[j1], tri_hi[j1]
                    j = bisect_left(third, c, lo, hi)
                    if j < hi and third[j] == c:
                        if adds is None:
                            adds = [L[s * 4 + t2]] * 4
                            base = cur.uterm[s] + float(l2 * count[j2]) / a.c3[t2]  # as in _bigram
                        adds[st >> 2] = log(base + float(l3 * tri_counts[j]) / count[j1])
            if adds is not None:
                fix.append((s * 4 + t2, t2 * 4, adds[0], adds[1], adds[2], adds[3]))
        return tuple(fix)

    def _bigram(self, key: int, a: _Char, cur: _Char) -> tuple:
        """(the plan without trigrams, the indices of the bigrams seen) of the characters
        (a, cur), memoised. snownlp's term is log(base), base = l1 * uni / total + l2 * bi /
        uni(a); without the bigram it is log(l1 * uni / total + 0), the character's own term
        (adding 0 changes no bit)."""
        plan, found = cur.plan, ()
        lo, hi = a.succ
        c = cur.cid
        if lo < hi and c >= 0:
            succ = self._succ
            p = bisect_left(succ, c, lo, hi)
            if p < hi and succ[p] == c:
                state, count, c2, c3, uterm, l2 = self._bi_state, self._bi_count, a.c3, cur.c3, cur.uterm, self._l2
                L, found = list(plan[0]), []
                for j in range(self._pair_start[p], self._pair_start[p + 1]):
                    t2, s = divmod(state[j], 4)
                    n2 = c2[t2]
                    if n2 and c3[s]:  # snownlp's guard (always true: the parts of a bigram were seen)
                        L[s * 4 + t2] = log(uterm[s] + float(l2 * count[j]) / n2)  # snownlp's sum, same order
                        found.append(j)
                if found:
                    plan, found = (tuple(L), None), tuple(found)
        got = plan, found
        if len(self._bigrams) >= self._bigram_cap:
            self._bigrams.clear()
        self._bigrams[key] = got
        return got

    # -- the Bayes model (snownlp.classification.bayes.Bayes.classify) -----------------------
    def _terms(self, word: str) -> tuple[float, ...]:
        # a word's term per class, log(count / class total), as snownlp; memoised
        t = tuple(log(float(d.get(word, none)) / ktotal) for _, ktotal, d, none in self._classes)
        if len(self._words) >= self._word_cap:
            self._words.clear()
        self._words[word] = t
        return t

    def classify(self, words: list[str]) -> tuple[str, float]:
        memo = self._words
        return self._classify([memo.get(w) or self._terms(w) for w in words])

    def _classify(self, terms: list[tuple[float, ...]]) -> tuple[str, float]:
        tmp = {}
        for c, (k, prior) in enumerate(self._priors):
            v = prior
            for t in terms:  # snownlp's sum, same order
                v += t[c]
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
        memo, stop = self._words, self._stop
        ret, prob = self._classify([memo.get(w) or self._terms(w) for w in self.words(text) if w not in stop])
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
