"""snownlp's sentiment, computed the same way, about 30x faster.

``SnowNLP(text).sentiments`` segments the text with snownlp's character-based generative
model (a trigram Viterbi over the tags b/m/e/s), drops stop words and runs its Naive Bayes.
The Viterbi there is written for clarity: every state copies its whole tag path at every
character (quadratic in the utterance length) and every transition probability is five
nested-tuple dictionary lookups, 64 times per character. That was ~3 ms per utterance, the
largest cost of importing transcripts (issue 18).

``SnowSentiment`` runs the same model with the same arithmetic, in the same order, on the same
tables snownlp loads: the lookups of a character are made once and reused, a transition whose
context bigram was never seen skips the trigram lookup (its term is 0 there too), and the paths
are back-pointers. The states are visited in snownlp's order and ties are broken the same way,
so the tags, the words and the score are snownlp's own, bit for bit;
``tests/test_sentiment.py`` checks that against ``snownlp.SnowNLP`` on varied text.
"""
from __future__ import annotations

import re
from math import log

from qa_inspect.errors import ModelMissingError

_ZH = re.compile("([\u4E00-\u9FA5]+)")  # snownlp.seg.re_zh
_TAGS = ("b", "m", "e", "s")
_BOS = ("", "BOS")
_NEG_INF = float("-inf")


class SnowSentiment:
    """``score(text)`` = ``SnowNLP(text).sentiments`` (P(positive) of snownlp's Bayes model)."""

    def __init__(self) -> None:
        try:  # importing these loads snownlp's packaged tables (~2 s, once per process)
            from snownlp import normal
            from snownlp.seg import segger
            from snownlp.sentiment import classifier
        except ImportError as e:
            raise ModelMissingError("the snownlp sentiment feature needs: pip install snownlp") from e
        m = segger.segger  # CharacterBasedGenerativeModel
        self._uni, self._bi, self._tri = m.uni.d, m.bi.d, m.tri.d
        self._uni_total = m.uni.total
        self._l1, self._l2, self._l3 = m.l1, m.l2, m.l3
        self._stop = normal.stop
        self._bayes = classifier.classifier  # classification.bayes.Bayes

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
        order its state list has (dict insertion order), which is: predecessors' previous tag
        in b, m, e, s order (just BOS for the first two characters). Here a state is a pair of
        tag indices, the order is explicit, and paths are back-pointers.

        Lookups are skipped where snownlp's tables make the answer 0: every bigram's and
        trigram's parts have counts ≥ 1 in its tables (checked in tests), so an n-gram whose
        part was never seen was never seen either."""
        uni, bi, tri = self._uni, self._bi, self._tri
        total, l1, l2, l3 = self._uni_total, self._l1, self._l2, self._l3
        # position -2 and -1: BOS only (index 0 of a one-tag level)
        prev2: tuple = (_BOS,)  # (char, tag) options at i-2, in snownlp's order
        prev1: tuple = (_BOS,)  # … at i-1
        n_prev1 = [uni.get(_BOS, 0)]  # unigram counts of prev1's options
        n12 = [[bi.get((_BOS, _BOS), 0)]]  # bigram counts [t1][t2] of (prev2, prev1)
        score = [[0.0]]  # [t1][t2]
        backs: list[list[list[int]]] = []  # per character: [t2][s] -> best t1
        for w in data:
            cur = tuple((w, t) for t in _TAGS)
            c3 = [uni.get(c, 0) for c in cur]
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
                n23 = [[bi.get((prev1[t2], cur[s]), 0) if c3[s] and n_prev1[t2] else 0 for s in range(4)]
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
                        best_p, best_t1 = _NEG_INF, -1
                        for t1 in r1:
                            n = n12[t1][t2]
                            tc = tri.get((prev2[t1], prev1[t2], cur[s]), 0) if n and b else 0
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

    # -- the Bayes model (snownlp.sentiment.Sentiment.classify) -----------------------------
    def score(self, text: str) -> float:
        words = [w for w in self.words(text) if w not in self._stop]
        ret, prob = self._bayes.classify(words)
        return prob if ret == "pos" else 1 - prob
