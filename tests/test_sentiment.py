"""Sentiment: lexicon behaviour, call-level metrics, backends, the customer_negative_end rule,
and the enrichment wiring (pipeline and `rules eval`)."""
import json
import math

import pytest

from qa_inspect.errors import ModelMissingError
from qa_inspect.records import Transcript, Turn
from qa_inspect.enrich.sentiment import (END_WEIGHTS, FixedScorer, LexiconScorer, SentimentConfig, add_sentiment,
                                  call_metrics, get_scorer, label_value)
from qa_inspect.enrich.sentiment import SentimentConfigError

LEX = LexiconScorer()


def lex(text: str) -> float:
    return LEX.score([text])[0]


def test_lexicon_negation_flips_and_weakens():
    assert lex("满意") > 0 > lex("不满意")
    assert lex("好") > 0 > lex("不好")
    assert lex("一点也不好") < 0
    # a negated negative word is only weakly positive, not praise
    assert lex("生气") < 0 < lex("不生气") < lex("满意")
    assert lex("I am happy") > 0 > lex("I am not happy")
    # whole words only: "know" does not contain the negator "no"
    assert lex("I know") == 0.0


def test_lexicon_intensifiers_strengthen_and_soften():
    assert lex("非常失望") < lex("失望") < 0
    assert lex("有点失望") > lex("失望")
    assert lex("非常满意") >= lex("满意") > 0
    assert lex("really terrible") < lex("terrible") < 0


def test_lexicon_complaint_cues_and_polite_acceptance():
    for t in ["问题还是没解决", "你们到底什么时候能退款", "又让我等", "打了三次电话都打不通", "My problem is still not solved"]:
        assert lex(t) < 0, t
    for t in ["好的谢谢", "没问题，辛苦你了", "thank you, that's great"]:
        assert lex(t) > 0, t
    # polite words that contain 不/麻烦 are not complaints
    assert lex("不好意思") == 0.0 and lex("麻烦您帮我查一下") == 0.0


def test_scores_stay_in_range_and_fillers_are_neutral():
    texts = ["", "嗯", "啊啊", "喂？", "太太太太非常特别极其生气生气生气垃圾垃圾垃圾",
             "谢谢谢谢谢谢非常感谢太好了满意满意", "不不不没没没", "hello 123 ***"]
    scores = LEX.score(texts)
    assert all(-1.0 <= s <= 1.0 for s in scores)
    assert scores[:4] == [0.0, 0.0, 0.0, 0.0]
    assert scores[4] < -0.9 and scores[5] > 0.9


def _call(*turns):
    return Transcript(call_id="c1", language="zh", turns=tuple(Turn(role=r, text=t) for r, t in turns))


def test_call_metrics_windows_from_a_hand_built_call():
    scores = {"A1": 0.4, "C1": -0.6, "C2": -0.2, "C3": 0.0, "C4": 0.8, "C5": -1.0, "C6": 0.2, "A2": 0.0}
    tr = _call(("agent", "A1"), ("customer", "C1"), ("customer", "嗯"), ("customer", "C2"), ("customer", "C3"),
               ("agent", "A2"), ("customer", "C4"), ("customer", "C5"), ("customer", "C6"))
    out = add_sentiment(tr, FixedScorer(scores))
    m = out.metrics
    assert m["customer_sentiment_start"] == pytest.approx((-0.6 - 0.2 + 0.0) / 3, abs=1e-4)
    last = [0.2, -1.0, 0.8, 0.0, -0.2]  # last first; the filler 嗯 does not count
    exp_end = sum(w * v for w, v in zip(END_WEIGHTS, last)) / sum(END_WEIGHTS)
    assert m["customer_sentiment_end"] == pytest.approx(exp_end, abs=1e-4)
    assert m["customer_sentiment_min"] == -1.0
    assert m["customer_sentiment_delta"] == pytest.approx(exp_end - (-0.8 / 3), abs=1e-3)
    assert m["agent_sentiment_mean"] == pytest.approx(0.2)
    assert m["sentiment_scorer"] == "fixed"
    assert [t.metrics["sentiment"] for t in out.turns][:3] == [0.4, -0.6, 0.0]


def test_add_sentiment_keeps_other_metrics_and_omits_absent_roles():
    tr = Transcript(call_id="c", language="zh", metrics={"max_silence_s": 3.0},
                    turns=(Turn(role="agent", text="您好", metrics={"speech_rate": 200.0}),))
    out = add_sentiment(tr, LEX)
    assert out.metrics["max_silence_s"] == 3.0 and out.turns[0].metrics["speech_rate"] == 200.0
    assert "sentiment" in out.turns[0].metrics
    assert "customer_sentiment_end" not in out.metrics and "agent_sentiment_mean" in out.metrics
    assert call_metrics(["customer"], ["嗯"], [0.0]) == {}


def test_customer_negative_end_rule_fires_on_an_unhappy_ending(root):
    from qa_inspect.enrich.talk import talk_metrics
    from qa_inspect.rules import evaluate, load_pack

    pack = load_pack(root / "rules/customer_service_zh.yaml")

    def fired(tr):
        tr = add_sentiment(tr, LEX)
        res = {r.rule_id: r for r in evaluate(pack, tr, {**talk_metrics(tr), **tr.metrics})}
        return res["customer_negative_end"].matched

    angry_then_calm = _call(("agent", "您好，请问有什么可以帮您"), ("customer", "你们太过分了，我非常生气"),
                            ("agent", "非常抱歉，我马上给您处理"), ("customer", "好的，谢谢"),
                            ("customer", "没问题，辛苦你了"), ("agent", "感谢来电，再见"))
    unresolved = _call(("agent", "您好，请问有什么可以帮您"), ("customer", "我的外卖两个小时还没送到"),
                       ("agent", "这个需要等商家回复"), ("customer", "到底什么时候能解决"),
                       ("customer", "问题还是没解决，我不接受"), ("customer", "你们就是在推卸责任"),
                       ("agent", "感谢来电，再见"))
    assert fired(unresolved) is True
    assert fired(angry_then_calm) is False
    # without sentiment metrics the rule does not guess: the last words decide (an accepting
    # last word rules it out, negative last words rule it in), else n/a
    (res,) = [r for r in evaluate(pack, angry_then_calm, {}) if r.rule_id == "customer_negative_end"]
    assert res.matched is False
    undecided = _call(("agent", "您好"), ("customer", "那什么时候能送到"))
    (res,) = [r for r in evaluate(pack, undecided, {}) if r.rule_id == "customer_negative_end"]
    assert res.matched is False and res.outcome == "n/a"
    (res,) = [r for r in evaluate(pack, unresolved, {}) if r.rule_id == "customer_negative_end"]
    assert res.matched is True and res.evidence[0].text == "问题还是没解决，我不接受"


def test_config_from_env(monkeypatch):
    monkeypatch.setenv("QA_INSPECT_SENTIMENT", "lexicon")
    assert SentimentConfig.from_env().backend == "lexicon"
    assert get_scorer().name == "lexicon" and get_scorer() is get_scorer()  # one per process
    monkeypatch.setenv("QA_INSPECT_SENTIMENT", "bert-please")
    with pytest.raises(SentimentConfigError, match="QA_INSPECT_SENTIMENT"):
        SentimentConfig.from_env()
    monkeypatch.setenv("QA_INSPECT_SENTIMENT", "transformers")
    monkeypatch.setenv("QA_INSPECT_SENTIMENT_LABELS", "positive=one")
    with pytest.raises(SentimentConfigError, match="LABEL=number"):
        SentimentConfig.from_env()


def test_transformers_backend_without_a_local_model_is_one_clear_error(tmp_path):
    with pytest.raises(ModelMissingError, match="QA_INSPECT_SENTIMENT_MODEL"):
        get_scorer(SentimentConfig(backend="transformers"))
    with pytest.raises(ModelMissingError, match="no config.json"):
        get_scorer(SentimentConfig(backend="transformers", model_path=str(tmp_path)))


def test_label_values():
    assert [label_value(x, 3, i) for i, x in enumerate(["Negative", "neutral", "POSITIVE"])] == [-1, 0, 1]
    assert [label_value(f"{k} stars", 5, k - 1) for k in range(1, 6)] == [-1, -0.5, 0, 0.5, 1]
    assert [label_value(f"LABEL_{i}", 3, i) for i in range(3)] == [-1, 0, 1]
    assert [label_value(f"LABEL_{i}", 2, i) for i in range(2)] == [-1, 1]


def _tiny_model(path, labels, bias):
    """A tiny BERT classifier built here (no download): its output depends only on the bias."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"好的谢你们太差了我要投诉", "ok", "bad"]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64,
                     id2label=dict(enumerate(labels)), label2id={x: i for i, x in enumerate(labels)})
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor(bias))
    model.save_pretrained(path)
    BertTokenizer(vocab_file=str(path / "vocab.txt")).save_pretrained(path)


def test_transformers_backend_over_a_self_built_tiny_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _tiny_model(tmp_path, ["negative", "positive"], [0.0, math.log(3.0)])  # P(positive) = 0.75
    scorer = get_scorer(SentimentConfig(backend="transformers", model_path=str(tmp_path)))
    scores = scorer.score(["好的谢谢", "你们太差了我要投诉", "嗯", "ok bad"])
    assert scores[0] == pytest.approx(0.5, abs=1e-4) and scores[1] == pytest.approx(0.5, abs=1e-4)
    assert scores[2] == 0.0  # fillers are not sent to the model
    # labels can be placed by configuration: "positive" counted as neutral → 0.75·0 + 0.25·(−1)
    other = get_scorer(SentimentConfig(backend="transformers", model_path=str(tmp_path),
                                       label_values=(("positive", 0.0),)))
    assert other.score(["好的"])[0] == pytest.approx(-0.25, abs=1e-4)
    tr = add_sentiment(_call(("agent", "您好"), ("customer", "太差了")), scorer)
    assert tr.metrics["customer_sentiment_end"] == pytest.approx(0.5, abs=1e-4)
    assert tr.metrics["sentiment_scorer"] == "transformers"


def test_combined_scorer_orders_polite_above_angry():
    scorer = get_scorer(SentimentConfig(backend="combined"))
    polite, neutral, angry = scorer.score(["好的，非常感谢你的帮助", "我想查一下订单", "你们这是什么态度，太过分了，我要投诉"])
    assert -1 <= angry < neutral < polite <= 1
    assert angry < -0.3 and polite > 0.3


def test_enrich_puts_sentiment_into_the_exported_result(root, tmp_path, monkeypatch):
    """A given transcript through the pipeline: enrich → metrics → rules → CallResult.to_dict()."""
    from qa_inspect.batch.inputs import read_input
    from qa_inspect.batch.pipeline import process_item, BatchSummary
    from qa_inspect.rules import load_pack
    from qa_inspect.store import open_store

    monkeypatch.setenv("QA_INSPECT_SENTIMENT", "lexicon")
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps({"call_id": "x1", "language": "zh", "turns": [
        {"role": "agent", "text": "您好，请问有什么可以帮您"},
        {"role": "customer", "text": "我的问题到底什么时候能解决"},
        {"role": "customer", "text": "还是没解决，太失望了，我不接受"}]}, ensure_ascii=False) + "\n",
        encoding="utf-8")
    (item,) = read_input(p, language="zh")
    pack = load_pack(root / "rules/customer_service_zh.yaml")
    with open_store(tmp_path / "q.db") as store:
        res = process_item(item, pack, store, lambda: None, "none", BatchSummary())
    d = res.to_dict()
    assert d["status"] == "ok"
    for k in ("customer_sentiment_start", "customer_sentiment_end", "customer_sentiment_min",
              "customer_sentiment_delta", "agent_sentiment_mean"):
        assert isinstance(d["metrics"][k], float), k
    assert d["metrics"]["customer_sentiment_end"] < -0.18
    assert all("sentiment" in t["metrics"] for t in d["transcript"]["turns"])
    assert {r["rule_id"]: r["matched"] for r in d["rules"]}["customer_negative_end"] is True


def test_rules_eval_computes_the_metrics(root, monkeypatch):
    from qa_inspect.rules import load_pack
    from qa_inspect.rules.evaluation import evaluate_pack_against_labels

    monkeypatch.setenv("QA_INSPECT_SENTIMENT", "lexicon")
    pack = load_pack(root / "rules/customer_service_zh.yaml")
    bad = Transcript(call_id="bad", language="zh", turns=(
        Turn(role="customer", text="还是没解决，太失望了"), Turn(role="customer", text="我不接受，你们推卸责任")))
    good = Transcript(call_id="good", language="zh", turns=(
        Turn(role="customer", text="好的，谢谢"), Turn(role="customer", text="没问题，辛苦了")))
    labels = {"bad": {"customer_negative_end": True}, "good": {"customer_negative_end": False}}
    from qa_inspect.enrich import call_metrics, enrich

    calls = [enrich(bad), enrich(good)]  # the caller enriches: the rule engine sees metrics only
    (score,) = evaluate_pack_against_labels(pack, calls, labels, {tr.call_id: call_metrics(tr) for tr in calls})
    assert (score.tp, score.fp, score.fn, score.tn) == (1, 0, 0, 1)


SNOW_TEXTS = [
    "", "嗯", "好的谢谢", "你们这是什么服务态度，我要投诉", "我的问题到底什么时候能解决？？",
    "没问题辛苦你了再见", "那个退款怎么失败呢", "我已经打了三次电话了还是没有人处理这个事情真的是太过分了",
    "喂你好请问是张先生吗我这边是客服中心的工号一二三四五", "OK 好的 thank you", "订单号 12345678 已经取消",
    "啊啊啊", "嗯嗯嗯好好好对对对", "这个这个那个就是说呃我想问一下",
    "饕餮魑魅魍魉", "㐀㐁", "abc def", "***", "你好，，，，再见。", "不好意思麻烦您帮我查一下话费",
    "我不满意我非常不满意我特别特别不满意" * 3,
    # long texts: a whole call's customer side in one turn, and one run of ~900 characters
    "喂您好我想问一下我那个订单怎么还没有到啊已经五天了你们到底怎么回事" * 12,
    "".join(["我上个月交了三百块钱的话费", "结果这个月又扣了我两百", "你们客服一直说在处理",
             "但是到现在都没有给我一个说法", "我真的很生气"] * 40),
    # characters snownlp never saw (丂丄…), alone, first, second, in runs, between seen ones
    "丂", "丂好", "好丂", "丂丄", "丂丄丅丆丌", "我丂你", "我们丂丄丅好的", "好的谢丂", "丂我丄们丅好",
    # mixed Chinese, Latin, digits, punctuation and spaces (full-width, tabs, newlines)
    "我的iPhone13坏了", "客服007号你好", "订单A12B34C5还没发货吗", "4G网络不好5G也不好",
    "我 要 投 诉", "好的\t谢谢\n再见", "你好\u3000请问", "  前后有空格  ", "VIP会员,不满意!!!",
    "100%不满意", "退款¥299.00什么时候到账", "https://example.com 打不开",
    # repeated characters
    "哈哈哈哈哈哈哈哈哈哈", "对对对对对对对", "好" * 30, "谢谢谢谢谢谢", "不不不不不", "啊" * 50,
    "呃呃呃那个那个那个", "的的的的的的",
]


def _adversarial_texts(fast) -> list[str]:
    """Texts around the odd paths of snownlp's Viterbi: characters seen with a single tag
    (every other state is -inf), characters that lack the tag s (whose row an unseen
    character carries), unseen characters at every position and in runs."""
    import random

    ids = fast._ids
    by_tags = {}
    for c, v in sorted(ids.items()):
        if "\u4e00" <= c <= "\u9fa5":
            by_tags.setdefault(tuple(x >= 0 for x in v), []).append(c)
    one = [by_tags[tuple(i == t for i in range(4))][:3] for t in range(4)]  # b-only, m-only, e-only, s-only
    no_s = [c for k, cs in by_tags.items() if not k[3] and sum(k) > 1 for c in cs[:2]]
    unseen = [chr(c) for c in range(0x4E00, 0x9FA6) if chr(c) not in ids][:6]
    pool = [c for cs in one for c in cs] + no_s + ["我", "们", "好", "的", "是", "不"]
    out = []
    for c1 in pool:
        for u in unseen[:2]:
            out += [c1 + u, u + c1, c1 + c1 + u, c1 + u + c1, c1 + "好" + u + "的", c1 + u + u + c1]
    for bm in one[0]:
        for e in one[2]:
            out += [bm + e, bm + one[1][0] + e, e + bm, one[3][0] + bm + e + unseen[0]]
    rng = random.Random(18)
    letters = pool + unseen + list("我们你好的是不了在有这个那么问题订单退款投诉谢谢满意")
    out += ["".join(rng.choice(letters) for _ in range(rng.randint(1, 40))) for _ in range(300)]
    return out


@pytest.fixture(scope="module")
def snow_tables(tmp_path_factory):
    """A SnowSentiment compiled from snownlp's package files into a fresh cache, and that file."""
    pytest.importorskip("snownlp")
    from qa_inspect.enrich.sentiment.snow import SnowSentiment

    cache = tmp_path_factory.mktemp("snow")
    fast = SnowSentiment(cache=cache)  # compiles its tables from snownlp's package files
    (path,) = cache.glob("seg-*.npz")
    return fast, path


def test_fast_snownlp_gives_snownlps_own_scores_and_words(snow_tables):
    """snow.SnowSentiment reimplements SnowNLP(text).sentiments (segmentation Viterbi, stop
    words, Bayes): every score and every word list equals snownlp's, bit for bit, with its
    memos empty, warm, or capped so small that they are emptied all the time."""
    import snownlp
    from qa_inspect.enrich.sentiment.snow import SnowSentiment

    fast, path = snow_tables
    again = SnowSentiment(cache=path.parent)  # reads the tables back
    tiny = SnowSentiment(cache=path.parent, trigram_cap=3, bigram_cap=3, word_cap=3)
    texts = [t for t in SNOW_TEXTS + _adversarial_texts(fast) if t]
    for t in texts:
        ref = snownlp.SnowNLP(t)
        assert fast.words(t) == ref.words, t
        assert fast.score(t) == ref.sentiments == again.score(t) == tiny.score(t), t
    fast.clear_caches()
    assert [fast.score(t) for t in reversed(texts)] == [snownlp.SnowNLP(t).sentiments for t in reversed(texts)]


def test_fast_snownlp_memos_stay_within_their_caps(snow_tables):
    """The memos are bounded: fed far more distinct bigrams, trigrams and words than their caps,
    none ever holds more than its cap, and the scores are those of an unbounded instance."""
    from qa_inspect.enrich.sentiment.snow import SnowSentiment

    _, path = snow_tables
    fast = SnowSentiment(cache=path.parent)
    capped = SnowSentiment(cache=path.parent, trigram_cap=50, bigram_cap=40, word_cap=30)
    texts = [t for t in SNOW_TEXTS + _adversarial_texts(fast) if t]
    seen = {"_trigrams": 0, "_bigrams": 0, "_words": 0}
    for t in texts:
        assert capped.score(t) == fast.score(t), t
        for name, cap in (("_trigrams", 50), ("_bigrams", 40), ("_words", 30)):
            n = len(getattr(capped, name))
            assert n <= cap, (name, n)
            seen[name] = max(seen[name], n)
    assert seen == {"_trigrams": 50, "_bigrams": 40, "_words": 30}  # each was filled up to its cap
    # the unbounded one shows how many distinct entries they were fed
    assert len(fast._bigrams) > 40 * 10 and len(fast._trigrams) > 50 * 3 and len(fast._words) > 30 * 10
    with pytest.raises(ValueError, match="at least 1"):
        SnowSentiment(cache=path.parent, bigram_cap=0)


def test_fast_snownlp_indexes_hold_every_bigram_and_trigram(snow_tables):
    """SnowSentiment's own indexes against the raw tables: every bigram is found through its pair
    of characters with its count, the trigram range of each bigram holds exactly the trigrams
    that start with it, and the Bloom filter over triples of characters has every trigram's
    triple (it may only answer "maybe" wrongly, never "no")."""
    import numpy as np

    from qa_inspect.enrich.sentiment.snow import _BLOOM_MOD

    fast, path = snow_tables
    with np.load(path) as z:
        n, chars, tags = int(z["n"]), z["chars"].tolist(), z["tags"].tolist()
        bi_keys, bi_counts, tri_keys = z["bi_keys"], z["bi_counts"], np.sort(z["tri_keys"])
    tag = [("b", "m", "e", "s").index(t) if t != "BOS" else 0 for t in tags]
    assert all(t in ("b", "m", "e", "s", "BOS") for t in tags)
    got = {}
    for c, rec in [*fast._chars.items(), ("", fast._bos_char)]:
        lo, hi = rec.succ
        for p in range(lo, hi):
            second = fast._succ[p]
            for j in range(fast._pair_start[p], fast._pair_start[p + 1]):
                got[(rec.cid, second, fast._bi_state[j])] = (fast._bi_count[j], fast._tri_lo[j], fast._tri_hi[j])
    assert len(got) == len(bi_keys)
    cid = fast._cid
    prefix = tri_keys // n
    for k, count in zip(bi_keys.tolist(), bi_counts.tolist()):
        a, b = divmod(k, n)
        c, lo, hi = got[(cid[chars[a]], cid[chars[b]], tag[a] * 4 + tag[b])]
        assert c == count
        assert (prefix[lo:hi] == k).all() and (lo == 0 or prefix[lo - 1] < k) and (hi == len(prefix) or prefix[hi] > k)
        assert list(fast._tri_third[lo:hi]) == (tri_keys[lo:hi] % n).tolist()
    # and snownlp's tables are consistent: every n-gram's parts were seen
    assert all(fast._uni[k // n] > 0 and fast._uni[k % n] > 0 for k in bi_keys.tolist())
    bigrams = set(bi_keys.tolist())
    assert all(k // n in bigrams and k % (n * n) in bigrams for k in tri_keys.tolist())
    C = len(cid)
    ci = np.array([cid[c] for c in chars], dtype=np.int64)
    h = ((ci[tri_keys // (n * n)] * C + ci[tri_keys // n % n]) * C + ci[tri_keys % n]) % _BLOOM_MOD
    bloom = np.frombuffer(fast._tri_bloom, dtype=np.uint8)
    assert ((bloom[h >> 3] >> (h & 7)) & 1).all()


def test_model_parts_run_on_customer_utterances_and_describe_names_it():
    from qa_inspect.enrich.sentiment import CombinedScorer, describe

    full = CombinedScorer(model_roles=None)
    cust = CombinedScorer()
    texts = ["你们这是什么态度，太过分了", "好的，非常感谢你的帮助", "我想查一下订单"]
    roles = ["customer", "agent", "customer"]
    a, b = full.score(texts, roles), cust.score(texts, roles)
    assert a[0] == b[0] and a[2] == b[2]  # customers: every part, as before
    assert b[1] == LEX.score([texts[1]])[0] != a[1]  # the agent: the lexicon alone
    assert cust.score(texts, roles) == b  # from the cache now: the same scores
    assert cust.score(texts) == full.score(texts)  # no roles: every part for every text
    assert describe(SentimentConfig(backend="combined")) != describe(SentimentConfig(backend="lexicon"))
    assert "models=customer" in cust.describe() and "models=all" in full.describe()


class _Counting:
    """A scorer that records which texts it was asked to score (FixedScorer underneath)."""

    name = "counting"

    def __init__(self, mapping):
        self.inner, self.seen = FixedScorer(mapping), []

    def score(self, texts, roles=None):
        self.seen += list(texts)
        return self.inner.score(texts, roles)


def test_scope_scores_only_the_windows_it_reads_and_their_values_match_all():
    """issue 18: "end" scores the customer's last 5 scorable utterances (what alerts, KPIs and
    the shipped packs read), "start+end" also the first 3; the metrics they give equal the
    ones scored over every utterance; a metric outside the scope is absent, never guessed."""
    from qa_inspect.enrich.sentiment import scope_for, scored_turns

    cust = [f"C{i}" for i in range(1, 11)]
    scores = {t: (i % 5 - 2) / 3 for i, t in enumerate(cust)} | {"A1": 0.3, "A2": -0.3}
    turns = [("agent", "A1")] + [("customer", t) for t in cust[:5]] + [("customer", "嗯"), ("agent", "A2")] \
        + [("customer", t) for t in cust[5:]]
    tr = _call(*turns)
    full = add_sentiment(tr, FixedScorer(scores))
    assert full.metrics["sentiment_scope"] == "all"
    for scope, seen, have in [("end", cust[5:], {"customer_sentiment_end"}),
                              ("start+end", cust[:3] + cust[5:], {"customer_sentiment_start", "customer_sentiment_end",
                                                                 "customer_sentiment_delta"})]:
        sc = _Counting(scores)
        out = add_sentiment(tr, sc, scope)
        assert sorted(sc.seen) == sorted(seen + ["A1", "A2"]), scope  # agents: always (lexicon alone, µs)
        got = {k for k in out.metrics if k.startswith("customer_sentiment")}
        assert got == have, scope
        for k in have | {"agent_sentiment_mean"}:
            assert out.metrics[k] == full.metrics[k], (scope, k)
        assert out.metrics["sentiment_scope"] == scope
        by_text = {t.text: t.metrics.get("sentiment") for t in out.turns}
        assert by_text["嗯"] == 0.0  # a filler: 0 by definition, not scored
        assert all(by_text[t] is None for t in cust if t not in seen)  # outside the scope: no score
        assert all(by_text[t] == full_t.metrics["sentiment"] for t, full_t in zip(
            [t.text for t in full.turns], full.turns) if t in seen)
    assert scored_turns(["customer", "customer"], ["嗯", "好"], "end") == [False, True]
    assert (scope_for([]), scope_for(["max_silence_s"]), scope_for(["customer_sentiment_end"])) == ("end",) * 3
    assert scope_for(["customer_sentiment_delta"]) == scope_for(["customer_sentiment_start"]) == "start+end"
    assert scope_for(["customer_sentiment_min", "customer_sentiment_start"]) == scope_for(None) == "all"
    with pytest.raises(SentimentConfigError):
        add_sentiment(tr, FixedScorer(scores), "middle")


def test_a_narrower_scope_replaces_sentiment_metrics_left_from_a_wider_one():
    tr = _call(*[("customer", f"C{i}") for i in range(8)])
    wide = add_sentiment(tr, FixedScorer({"C0": -1.0}, 0.5))
    assert wide.metrics["customer_sentiment_min"] == -1.0
    narrow = add_sentiment(wide, FixedScorer({"C0": -1.0}, 0.5), "end")
    assert "customer_sentiment_min" not in narrow.metrics and "customer_sentiment_start" not in narrow.metrics


def test_enrich_config_for_packs_and_its_key(root, monkeypatch):
    from qa_inspect.batch.score import PackSet
    from qa_inspect.enrich import EnrichConfig
    from qa_inspect.errors import QAError
    from qa_inspect.rules import load_pack

    monkeypatch.delenv("QA_INSPECT_SENTIMENT_SCOPE", raising=False)
    tele = PackSet([load_pack(root / "rules/telecom_zh.yaml")])
    cs = load_pack(root / "rules/customer_service_zh.yaml")
    assert "customer_sentiment_end" in cs.metric_names and "max_silence_s" in tele.metric_names
    assert tele.enrich_config().sentiment_scope == PackSet([cs]).enrich_config().sentiment_scope == "end"
    every = EnrichConfig.for_metrics(["customer_sentiment_min"])
    assert every.sentiment_scope == "all" and every.key() == EnrichConfig.from_env().key()  # keys made before scopes hold
    keys = {EnrichConfig.for_metrics(m).key() for m in ([], ["customer_sentiment_delta"], ["customer_sentiment_min"])}
    assert len(keys) == 3
    monkeypatch.setenv("QA_INSPECT_SENTIMENT_SCOPE", "all")
    assert tele.enrich_config().sentiment_scope == "all"
    monkeypatch.setenv("QA_INSPECT_SENTIMENT_SCOPE", "most")
    with pytest.raises(QAError, match="QA_INSPECT_SENTIMENT_SCOPE"):
        tele.enrich_config()


def test_lexicon_fast_paths_match_the_plain_definitions(samples):
    """issue 18: ``units`` in one regex pass equals "match every character, drop punctuation",
    on every character; ``analyse`` trying only the entry lengths that start at a unit equals
    trying every length at every unit (longest first)."""
    import re
    from qa_inspect.enrich.sentiment import lexicon as L

    unit, punct = re.compile(r"[a-z][a-z']*|\d+|[^\sa-z\d]"), re.compile(r"[\s\W_]+")
    for i in [*range(0xD800), *range(0xE000, 0x110000, 13)]:
        t = f"x{chr(i)}1{chr(i)}中 It's"
        assert L.units(t) == [u for u in unit.findall(t.lower()) if not punct.fullmatch(u)], hex(i)

    class EveryLength(dict):
        def get(self, key, default=None):
            return range(max(max(ls) for ls in lex.lengths.values()), 0, -1)

    lex = L.Lexicon.default()
    plain = L.Lexicon.build(lex.terms, lex.negators, lex.intensifiers)
    plain.__dict__["lengths"] = EveryLength()  # the cached_property, replaced by "try them all"
    texts = [t["text"] for line in (samples / "transcripts.jsonl").read_text(encoding="utf-8").splitlines()
             for t in json.loads(line)["turns"]]
    texts += ["我真的非常不满意，不太好，没有帮到我", "I am not happy at all, this is totally ridiculous", "不不不 很很 好"]
    assert sum(len(L.analyse(t, lex)) for t in texts) > 20
    for t in texts:
        assert L.analyse(t, lex) == L.analyse(t, plain), t


def test_given_transcripts_are_scored_a_chunk_at_a_time_with_the_same_results(root, samples, tmp_path, monkeypatch):
    """issue 18: `run` on given transcripts scores a group's utterances in one batch (the
    encoder's matrix products are cheaper per call that way), then each call's enrichment reads
    them from the scorer's cache: the sentence encoder runs once for the 13 sample calls instead
    of once per call, and every stored score and metric is what call-by-call scoring gives."""
    from qa_inspect.batch import pipeline
    from qa_inspect.batch.inputs import read_input
    from qa_inspect.batch.score import PackSet
    from qa_inspect.rules import load_pack
    from qa_inspect.store import open_store

    monkeypatch.setenv("QA_INSPECT_SENTIMENT", "combined")
    monkeypatch.delenv("QA_INSPECT_SENTIMENT_SCOPE", raising=False)
    packs = PackSet([load_pack(root / "rules/telecom_zh.yaml"), load_pack(root / "rules/telecom_en.yaml")])
    items = read_input(samples / "transcripts.jsonl")
    scorer = get_scorer()
    part = scorer.parts["embedding"]
    batches = []
    real = part.score
    monkeypatch.setattr(part, "score", lambda texts, roles=None: batches.append(len(texts)) or real(texts, roles))

    def run(name):
        scorer._cache.clear()
        batches.clear()
        with open_store(tmp_path / f"{name}.db") as st:
            pipeline.run_batch(items, packs, st, lambda: None, "x")
            got = {r.call.call_id: ([t.metrics.get("sentiment") for t in r.transcript.turns],
                                    {k: v for k, v in r.metrics.items() if "sentiment" in k})
                   for r in st.results()}
        return got, list(batches)

    grouped, b1 = run("grouped")
    monkeypatch.setattr(pipeline, "WARM_GROUP", 1)
    single, b2 = run("single")
    assert len(b1) == 1 and len(b2) == len(items) > 10 and sum(b1) == sum(b2)
    assert grouped == single
    assert all(m["sentiment_scope"] == "end" for _, m in grouped.values())
