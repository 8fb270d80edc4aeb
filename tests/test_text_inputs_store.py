import json

from qa_inspect.batch.inputs import read_input
from qa_inspect.enrich.talk import talk_metrics
from qa_inspect.records import CallInput, CallResult, Transcript, Turn
from qa_inspect.store import open_store
from qa_inspect.text import arabic_to_spoken, normalize, spoken_digits_to_arabic


def test_normalize():
    assert normalize("工號一二三四，請問ＡＢＣ有什麼可以幫您？") == "工号1234请问abc有什么可以帮您"
    assert spoken_digits_to_arabic("拨打幺零零幺零，三个月") == "拨打10010，三个月"
    assert arabic_to_spoken("12315") == "一二三一五"
    assert normalize("嗯那个您好", drop_fillers=True) == "您好"


def test_manifest_bad_rows_become_error_items(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x")
    m = tmp_path / "m.csv"
    m.write_text("call_id,path,agent_id,agent_name,team,started_at,channel_layout\n"
                 "c1,a.wav,A1,n,t,2026-11-24,mono\n"
                 "c2,missing.wav,A1,n,t,2026-11-24,mono\n"
                 "c1,a.wav,A1,n,t,2026-11-24,mono\n"
                 "c3,a.wav,A1,n,t,2026-11-24,quad\n", encoding="utf-8")
    items = read_input(m)
    assert [bool(i.error) for i in items] == [False, True, True, True]
    assert f"{m}:3: audio file not found: missing.wav" == items[1].error
    assert "duplicate call_id 'c1'" in items[2].error and f"{m}:2" in items[2].error
    assert "channel_layout 'quad'" in items[3].error


def test_transcripts_jsonl_with_bad_line(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps({"call_id": "x", "agent_id": "A", "language": "zh",
                             "turns": [{"role": "agent", "text": "您好", "start": 0, "end": 1}]},
                            ensure_ascii=False) + "\n{not json\n"
                 + json.dumps({"call_id": "y", "turns": [{"role": "boss", "text": "hi"}]}) + "\n",
                 encoding="utf-8")
    items = read_input(f)
    assert items[0].transcript is not None and not items[0].error
    assert items[1].error.startswith(f"{f}:2: not valid JSON")
    assert "turn 0 needs role" in items[2].error


def test_store_roundtrip_and_done(tmp_path):
    tr = Transcript(call_id="c", language="zh", turns=(Turn("agent", "您好", 0.0, 1.0),), duration=2.0)
    res = CallResult(call=CallInput(call_id="c", agent_id="A1"), status="ok", transcript=tr, config_hash="h1")
    with open_store(tmp_path / "q.db") as s:
        s.put_transcript("ah", "k", tr)
        assert s.get_transcript("ah", "k") == tr
        assert s.get_transcript("ah", "other") is None
        s.put_result(res)
        s.put_result(res)  # idempotent: one row per call
        assert s.count() == 1 and s.done("c", "h1") and not s.done("c", "h2")
        assert next(s.results()).to_dict() == res.to_dict()


def test_talk_metrics_silence_and_interruption():
    tr = Transcript(call_id="c", language="zh", duration=30.0, turns=(
        Turn("agent", "a", 0.0, 4.0), Turn("customer", "b", 4.5, 10.0),
        Turn("agent", "c", 9.0, 12.0), Turn("customer", "d", 20.0, 25.0)))
    m = talk_metrics(tr)
    assert m["max_silence_s"] == 8.0
    assert m["agent_interruptions"] == 1 and m["customer_interruptions"] == 0
    assert m["agent_talk_s"] == 7.0 and m["customer_talk_s"] == 10.5


def test_fillers_do_not_eat_words():
    assert normalize("嗯我想查一下话费余额", drop_fillers=True) == "我想查一下话费余额"
