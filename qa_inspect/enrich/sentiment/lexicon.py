"""A customer-service sentiment lexicon (Chinese and English) with negation and intensifiers.

Written by hand from customer-service practice (complaint handling, QC standards), not mined
from evaluation data. Weights are on a rough -1..1 scale per term: strong abuse or complaint
words near -1, unresolved-problem cues (还是没解决, 又, 到底, 什么时候能…) around -0.5, the
thanks/acceptance words that close a call positive. Bare acknowledgements (好, 行, 嗯好) are
only mildly positive: "好" at the end of a call often sits over an unresolved problem.

Matching works on units: one CJK character or one Latin word (lower-cased), so English terms
match whole words only ("no" does not match inside "know"). At each position the longest
lexicon entry wins, so 不满意 is one negative term, not 不 + 满意.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

# -- negative terms ------------------------------------------------------------------------
_NEG_ZH = {
    # abuse, strong anger
    -1.0: "垃圾 骗子 欺骗 骗人 坑人 坑爹 恶心 气死 气死我了 太过分 过分 离谱 无语 忽悠 混蛋 有病 神经病 "
          "他妈 妈的 我靠 卧槽 操 滚 废物 岂有此理 欺负人 欺人太甚 不要脸 流氓 霸王条款 什么玩意 什么东西 "
          "什么态度 这什么态度 态度太差 态度差 服务太差 差劲 太差了 受不了 烦死了 火大 愤怒 气愤 "
          "这态度 你这态度 你们这态度 不讲理 不讲道理 不负责任 不负责 踢皮球 扯皮 推卸 推脱 推来推去 敷衍 糊弄 耍我 搞什么鬼 搞什么",
    # complaint, dissatisfaction, refusal to accept
    -0.8: "投诉 差评 举报 曝光 12315 消协 工商局 报警 起诉 律师 不满意 不满 失望 太失望 生气 很生气 "
          "不能接受 接受不了 不接受 不认可 不同意 没同意 没有同意 不会用 不会再用 再也不 认亏 吃亏 为难 为难人 别说了  不合理 不公平 凭什么 凭啥 没道理 说不过去 "
          "不靠谱 没用 没有用 白等 浪费时间 耽误 耽误时间 不想用 再也不用 卸载 "
          "糟糕 太慢 很慢 这么慢 太久 这么久 半天 没人管 没人理 没人处理 没人回 不管 不理 不处理 "
          "不给处理 不给退 不退 拒绝 拒绝退款 不赔 不给赔 不给我",
    # unresolved problem, repetition, urgency (the calm words of an unhappy customer)
    -0.5: "还是没 还没 还是不 没解决 没有解决 解决不了 处理不了 搞不定 没办法 没法 没用的 打不通 "
          "联系不上 联系不到 找不到 不接电话 不接 没回复 没有回复 没回电 没有回电 没收到 没有收到 "
          "没送到 没有送到 送错 漏送 少送 洒了 凉了 变质 坏了 过期 吃坏 拉肚子 有问题 出问题 "
          "到底 究竟 又是 又要 又让 又来 又得 老是 总是 一直 每次 多久 要等多久 什么时候能 什么时候才 "
          "等了 等半天 等这么久 怎么回事 怎么搞的 怎么办 怎么弄 怎么处理 为什么 为啥 说好的 不是说 "
          "你们说 算了 随便吧 随便你 无所谓 不想 不要了 不行 不对 不可以 不能 不够 麻烦 "
          "着急 急着 急死 赶紧 立刻 差 慢 贵",
    -0.3: "退款 退钱 赔偿 补偿 马上 尽快 给我解决 态度",
    # listed so that the longest match absorbs them: polite or neutral despite 不/差/麻烦/问题
    0.0: "不是 操作 不好意思 差不多 麻烦您 麻烦你 问题 好像 好几 不用 只好 好不好 是不是 对不对 行不行 可不可以",
}
_POS_ZH = {
    0.9: "谢谢 谢谢你 谢谢您 感谢 多谢 非常感谢 太感谢了 满意 很满意 非常满意 解决了 已经解决 搞定了 "
         "太好了 好极了 辛苦了 辛苦你了 辛苦您了 给你点赞 五星 好评",
    0.6: "没问题 没有问题 不客气 没事 没关系 不错 挺好 很好 可以的 好的 好嘞 好滴 行的 明白了 清楚了 知道了 理解 "
         "放心 收到了 麻烦你了 麻烦您了 麻烦了 再见 拜拜 客气 耐心 专业 及时 方便 棒 开心 高兴",
    0.3: "好 行 可以 嗯好 对 是的 嗯嗯 那好 也行 同意 明白 满足 ok okay",
}
_NEG_EN = {
    -1.0: "ridiculous unacceptable terrible awful horrible worst disgusting useless scam liar lied "
          "rude stupid idiot angry furious outrageous pathetic",
    -0.8: "complaint complain complaining disappointed frustrated frustrating upset annoyed unhappy "
          "dissatisfied lawyer sue cancel refund waste wasted bad poor wrong broken unfair",
    -0.5: "still again problem issue late delay delayed waiting waited why never nobody hold "
          "unresolved confusing confused",
}
_POS_EN = {
    0.9: "thanks thank appreciate appreciated great excellent perfect wonderful fantastic awesome "
         "resolved solved helpful happy satisfied pleasure",
    0.6: "good nice fine glad understand sure lovely",
    0.3: "ok okay alright yes yeah right",
}
# -- modifiers -----------------------------------------------------------------------------
# a negator flips the next sentiment term within a short gap: negated positive → negative
# (不满意 is listed whole, but 不太好, 没有帮到 go through here); negated negative → weakly
# positive (不生气 is not praise).
NEGATORS_ZH = "不 没 没有 别 未 无 非 并不 并没有 从不 从没 不太 不怎么 不大 毫不 绝不"
NEGATORS_EN = "not no never don't dont didn't didnt isn't isnt wasn't wasnt can't cant won't wont " \
              "haven't havent hasn't hasnt doesn't doesnt nothing neither"
INTENSIFIERS = {
    1.6: "太 非常 特别 极其 极 超级 超 简直 根本 完全 实在 太过 一点都 一点也 真是 extremely totally "
         "absolutely completely so too",
    1.3: "很 真 真的 挺 十分 相当 越来越 好几次 好多次 这么 那么 really very quite",
    0.7: "有点 有些 稍微 稍稍 比较 略 一点 bit slightly somewhat",
}
NEGATED_POS = -0.8  # factor for a negated positive term
NEGATED_NEG = -0.4  # factor for a negated negative term
MOD_GAP = 2  # a modifier reaches a term at most this many units later
SQUASH = 1.2  # utterance score = tanh(sum / SQUASH)

FILLERS = set("嗯啊哎唉诶呃哦噢喂呀吧呢嘛哈额啦")

# a Latin word, a digit run, or one other word character (a CJK character): punctuation,
# spaces and "_" never form a unit (one regex pass; it used to match them and drop them after)
_UNIT = re.compile(r"[a-z][a-z']*|\d+|[^\W\da-z_]")


def units(text: str) -> list[str]:
    """One CJK character or one Latin word (lower-cased) or one digit run per unit; punctuation dropped."""
    return _UNIT.findall(text.lower())


def _entries(groups: dict[float, str]) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for w, words in groups.items():
        for t in words.split():
            out[tuple(units(t))] = w
    return out


@dataclass(frozen=True)
class Lexicon:
    terms: dict[tuple[str, ...], float]
    negators: frozenset[tuple[str, ...]]
    intensifiers: dict[tuple[str, ...], float]

    @classmethod
    def default(cls) -> "Lexicon":
        return cls.build(terms={**_entries(_NEG_ZH), **_entries(_NEG_EN), **_entries(_POS_ZH), **_entries(_POS_EN)},
                         negators=frozenset(tuple(units(t)) for t in (NEGATORS_ZH + " " + NEGATORS_EN).split()),
                         intensifiers=_entries(INTENSIFIERS))

    @classmethod
    def build(cls, terms, negators, intensifiers) -> "Lexicon":
        return cls(terms=dict(terms), negators=frozenset(negators), intensifiers=dict(intensifiers))

    @cached_property
    def lengths(self) -> dict[str, tuple[int, ...]]:
        """First unit → the lengths of the entries that start with it, longest first: most
        units start none, and ``analyse`` then tries no slice at all."""
        by: dict[str, set[int]] = {}
        for k in (*self.terms, *self.negators, *self.intensifiers):
            by.setdefault(k[0], set()).add(len(k))
        return {u: tuple(sorted(ls, reverse=True)) for u, ls in by.items()}


@dataclass(frozen=True)
class Hit:
    term: str
    weight: float  # after negation and intensifiers


def analyse(text: str, lex: Lexicon) -> list[Hit]:
    """The sentiment terms of ``text`` with their effective weights (longest match first)."""
    u = units(text)
    hits: list[Hit] = []
    negate_until = boost_until = -1
    boost = 1.0
    i, n, lengths = 0, len(u), lex.lengths
    while i < n:
        found = None
        for L in lengths.get(u[i], ()):  # the entries' lengths from this unit, longest first
            if L <= n - i:
                key = tuple(u[i:i + L])
                if key in lex.terms or key in lex.negators or key in lex.intensifiers:
                    found = key
                    break
        if found is None:
            i += 1
            continue
        end = i + len(found)
        # a modifier reaches terms that start within MOD_GAP units after it ends
        if found in lex.terms:
            w = lex.terms[found]
            if i <= negate_until:
                w *= NEGATED_POS if w > 0 else NEGATED_NEG
                negate_until = -1
            if i <= boost_until:
                w *= boost
                boost_until = -1
            hits.append(Hit("".join(found) if all(len(x) == 1 for x in found) else " ".join(found), w))
        elif found in lex.negators:
            negate_until = end + MOD_GAP - 1
        else:
            boost, boost_until = lex.intensifiers[found], end + MOD_GAP - 1
        i = end
    return hits


def is_filler(text: str) -> bool:
    """True for empty turns and turns of fillers only (嗯, 啊, 喂…): they carry no sentiment."""
    # asked several times per turn (scope, scorers, call metrics), ~14 µs each: short texts
    # (nearly every utterance) are remembered; a long one is worked out (and not kept)
    return _is_filler_short(text) if len(text) <= 64 else _is_filler(text)


def _is_filler(text: str) -> bool:
    return all(u in FILLERS for u in units(text))


_is_filler_short = lru_cache(maxsize=16384)(_is_filler)  # ≤ 16,384 × 64 characters


def lexicon_score(text: str, lex: Lexicon) -> float:
    s = sum(h.weight for h in analyse(text, lex))
    return math.tanh(s / SQUASH)
