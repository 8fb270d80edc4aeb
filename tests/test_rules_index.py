"""The per-pack phrase index (Aho-Corasick) changes speed, never results."""
import pickle
import random
import sys
import unicodedata

import pytest

from qa_inspect.batch.inputs import read_input
from qa_inspect.records import Transcript, Turn
from qa_inspect.rules import evaluate, load_pack
from qa_inspect.rules import evaluate_rule, prepare
from qa_inspect.rules.fuzzy import fuzzy_pieces
from qa_inspect.text import _nfkc, normalize, normalize_many


def _unindexed(pack, tr):
    """Every condition tested on every turn in scope (the engine without its index)."""
    turns = prepare(tr)
    return tuple(evaluate_rule(r, turns, tr.duration, None) for r in pack.rules)


def _bench_transcripts(root, n):
    sys.path.insert(0, str(root / "bench"))
    try:
        from rules_speed import make_transcripts
    finally:
        sys.path.pop(0)
    return make_transcripts(n, 20, seed=7)


@pytest.mark.parametrize("pack_file", ["telecom_zh.yaml", "customer_service_zh.yaml", "telecom_en.yaml"])
def test_indexed_results_equal_unindexed(root, pack_file):
    pack = load_pack(root / "rules" / pack_file)
    trs = [w.transcript for w in read_input(root / "samples/transcripts.jsonl") if w.transcript]
    trs += _bench_transcripts(root, 150)
    assert len(trs) > 150
    hits = 0
    for tr in trs:
        got = evaluate(pack, tr)
        assert got == _unindexed(pack, tr), tr.call_id
        hits += sum(r.matched for r in got)
    assert hits > 0  # the comparison covered rules that fire, not only misses


def test_index_finds_homophones_and_fuzzy_windows():
    from qa_inspect.rules import parse_pack

    text = ("pack: {id: t}\nrules:\n"
            "  - id: complaint\n    kind: risk\n    match: {role: customer, any: [投诉, 工信部], pinyin: true}\n"
            "  - id: closing\n    kind: required\n    match: {role: agent, any: [感谢您的来电], fuzzy: 1}\n")
    pack, problems = parse_pack(text, "t.yaml")
    assert not problems
    tr = Transcript("c", "zh", (Turn("agent", "您好"), Turn("customer", "我要头诉你们，去公信不"),
                                Turn("agent", "感谢您来电")))
    res = {r.rule_id: r for r in evaluate(pack, tr)}
    assert res["complaint"].matched and {e.matcher for e in res["complaint"].evidence} == {"pinyin"}
    assert res["closing"].outcome == "pass" and res["closing"].evidence[0].matcher == "fuzzy"
    assert evaluate(pack, tr) == _unindexed(pack, tr)


def test_fuzzy_pieces_pigeonhole():
    """Any string within k edits of a phrase keeps one of its k+1 pieces intact."""
    from rapidfuzz.distance import Levenshtein

    rng = random.Random(3)
    alphabet = "感谢您的来电再见好"
    for _ in range(3000):
        n = "".join(rng.choice(alphabet) for _ in range(rng.randint(3, 9)))
        k = rng.randint(1, 3)
        pieces = fuzzy_pieces(n, k)
        kk = min(k, (len(n) - 1) // 2)
        if kk < 1:
            assert pieces == []
            continue
        assert "".join(pieces) == n and len(pieces) == kk + 1
        w = list(n)
        for _ in range(kk):  # up to kk random edits
            op, i = rng.choice("sid"), rng.randrange(len(w) + 1)
            if op == "i":
                w.insert(i, rng.choice(alphabet))
            elif w and i < len(w):
                if op == "s":
                    w[i] = rng.choice(alphabet)
                else:
                    del w[i]
        w = "".join(w)
        assert Levenshtein.distance(n, w) <= kk
        assert any(p in w for p in pieces), (n, w, pieces)


def test_normalize_many_and_fast_nfkc_agree_with_the_slow_path():
    rng = random.Random(5)
    blocks = [(0x20, 0x7E), (0x3000, 0x303F), (0xFF00, 0xFFEF), (0x4E00, 0x4FFF), (0x2460, 0x24FF)]
    for _ in range(1500):
        s = "".join(chr(rng.randint(*rng.choice(blocks))) for _ in range(rng.randint(0, 25)))
        assert _nfkc(s) == unicodedata.normalize("NFKC", s)
    texts = ["工號一二", "三四嗯", "那", "个好的！", "", "ＡＢＣ１２３", "幺零零幺零", "a\x00b"]
    for drop in (False, True):
        assert normalize_many(texts, drop_fillers=drop) == [normalize(t.replace("\x00", ""), drop_fillers=drop)
                                                           for t in texts]


def test_engine_records_are_built_whole(root):
    """The engine builds Evidence, RuleResult and PreparedTurn without the dataclass __init__
    (matching.built_record): every field must be set, and the objects equal and hash as normal ones."""
    from dataclasses import fields

    from qa_inspect.records import Evidence, RuleResult
    from qa_inspect.rules import PreparedTurn

    pack = load_pack(root / "rules" / "telecom_zh.yaml")
    seen = set()
    for tr in _bench_transcripts(root, 20):
        for t in prepare(tr):
            assert t == PreparedTurn(**{f.name: getattr(t, f.name) for f in fields(PreparedTurn)})
        for r in evaluate(pack, tr):
            objs = [(RuleResult, r)] + [(Evidence, e) for e in r.evidence]
            for cls, o in objs:
                names = {f.name for f in fields(cls)}
                assert names <= set(vars(o)), (cls.__name__, names - set(vars(o)))
                normal = cls(**{n: getattr(o, n) for n in names})
                assert normal == o and hash(normal) == hash(o)
                assert pickle.loads(pickle.dumps(o)) == normal  # results cross process boundaries
                seen.add(cls)
    assert seen == {RuleResult, Evidence}


def test_sounds_align_with_text_and_equal_only_for_equal_syllables():
    from pypinyin import Style, lazy_pinyin

    from qa_inspect.rules.phonetics import sounds

    text = "我要头诉投诉ab12啊a〇\x00感谢您来电"
    s = sounds(text)
    assert len(s) == len(text) and s[text.index("\x00")] == "\x00"
    assert s[2:4] == s[4:6]  # 头诉 ≈ 投诉
    assert s[6:10] == "ab12"  # characters without a reading stand for themselves
    assert s[text.index("啊")] == "a"  # a one-letter reading is that letter, as pypinyin reads it
    syl = [lazy_pinyin(c, style=Style.NORMAL)[0] for c in "我要头诉感谢您来电"]
    codes = [sounds(c) for c in "我要头诉感谢您来电"]
    for i in range(len(syl)):
        for j in range(len(syl)):
            assert (codes[i] == codes[j]) == (syl[i] == syl[j])


def test_sound_index_candidates_do_not_make_exact_conditions_match():
    """With a pinyin condition in the pack the index scans sounds; a condition without pinyin
    still matches its phrases exactly (a homophone is only a candidate, rejected by the matcher)."""
    from qa_inspect.rules import parse_pack
    from qa_inspect.rules import pack_index

    text = ("pack: {id: t}\nrules:\n"
            "  - id: loose\n    kind: risk\n    match: {role: customer, any: [投诉], pinyin: true}\n"
            "  - id: strict\n    kind: risk\n    match: {role: customer, any: [投诉]}\n")
    pack, problems = parse_pack(text, "t.yaml")
    assert not problems and pack_index(pack).by_sound
    tr = Transcript("c", "zh", (Turn("agent", "您好"), Turn("customer", "我要头诉")))
    res = {r.rule_id: r for r in evaluate(pack, tr)}
    assert res["loose"].matched and res["loose"].evidence[0].matcher == "pinyin"
    assert not res["strict"].matched and res["strict"].outcome == "pass"
    assert evaluate(pack, tr) == _unindexed(pack, tr)


def test_sounds_of_a_long_text_equal_the_per_character_table():
    """Long texts (a whole call) are read through a numpy lookup table; short ones through
    str.translate. Both must give the same sounds, also beyond the BMP and for surrogates."""
    from qa_inspect.rules.phonetics import SOUNDS, sounds

    rng = random.Random(11)
    pool = "我要头诉投诉感谢您的来电工号1234abcXYZ啊哦额〇，。\x00 \U00020000\U000F0005\ue000"
    for _ in range(300):
        s = "".join(rng.choice(pool) for _ in range(rng.randint(0, 900)))
        assert sounds(s) == s.translate(SOUNDS), s
    assert sounds("投" * 420 + "\ud800") == ("投" * 420 + "\ud800").translate(SOUNDS)
