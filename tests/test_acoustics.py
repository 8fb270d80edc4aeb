"""Acoustic metrics on generated audio with known truth (gaps, overlaps, tempo, loudness, pitch)."""
import numpy as np
import pytest

from qa_inspect.enrich.acoustics import AcousticConfig, acoustic_metrics, energy_vad, speech_units
from qa_inspect.speech.decode import DecodedAudio, decode
from qa_inspect.enrich import enrich
from qa_inspect.speech.fakes import ReferenceTranscriber
from qa_inspect.records import Transcript, Turn, Word

SR = 16000
rng = np.random.default_rng(7)


def voice(dur: float, f0: float = 150.0, dbfs: float = -26.0) -> np.ndarray:
    """A voice-like harmonic tone (pitch f0) at the given RMS level."""
    t = np.arange(int(dur * SR)) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
    x = x * (1 + 0.3 * np.sin(2 * np.pi * 4 * t))  # syllable-rate amplitude wobble
    return (x / np.sqrt(np.mean(x ** 2)) * 10 ** (dbfs / 20)).astype(np.float32)


def noise(dur: float, dbfs: float = -26.0) -> np.ndarray:
    x = rng.standard_normal(int(dur * SR))
    return (x / np.sqrt(np.mean(x ** 2)) * 10 ** (dbfs / 20)).astype(np.float32)


def render(total: float, parts: list[tuple[float, np.ndarray]]) -> np.ndarray:
    ch = (rng.standard_normal(int(total * SR)) * 10 ** (-70 / 20)).astype(np.float32)  # line hiss
    for start, sig in parts:
        i = int(start * SR)
        ch[i:i + len(sig)] += sig
    return ch


def stereo(total, agent_parts, customer_parts) -> DecodedAudio:
    return DecodedAudio(channels=(render(total, agent_parts), render(total, customer_parts)),
                        source_rate=SR, duration=total)


def turn(role, start, end, text="好的", ch=None):
    return Turn(role=role, text=text, start=start, end=end, channel=ch)


def test_energy_vad_finds_bursts_within_a_frame():
    x = render(10.0, [(1.0, voice(2.0)), (5.5, noise(1.5))])
    iv = energy_vad(x)
    assert len(iv) == 2
    assert iv[0] == pytest.approx((1.0, 3.0), abs=0.05) and iv[1] == pytest.approx((5.5, 7.0), abs=0.05)


def test_silence_holds_and_dead_air_with_known_gaps():
    # agent 0-3, customer 3.5-6, [12 s hold] agent 18-21, [4 s dead air] customer 25-27, agent 27.5-30
    audio = stereo(31.0, [(0.0, voice(3.0)), (18.0, voice(3.0)), (27.5, voice(2.5))],
                   [(3.5, noise(2.5)), (25.0, noise(2.0))])
    tr = Transcript("c", "zh", (turn("agent", 0, 3, ch=0), turn("customer", 3.5, 6, ch=1),
                                turn("agent", 18, 21, ch=0), turn("customer", 25, 27, ch=1),
                                turn("agent", 27.5, 30, ch=0)), duration=31.0)
    m, _ = acoustic_metrics(tr, audio)
    assert m["activity_source"] == "channel_vad"
    assert m["max_silence_s"] == pytest.approx(12.0, abs=0.1)
    assert m["hold_count"] == 1 and m["hold_s"] == pytest.approx(12.0, abs=0.1)
    assert m["dead_air_count"] == 1 and m["dead_air_s"] == pytest.approx(4.0, abs=0.1)
    # the hold ended when the agent came back; the dead air was waiting for the customer
    assert m["agent_hold_count"] == 1 and m["customer_hold_count"] == 0
    assert m["customer_dead_air_count"] == 1 and m["agent_dead_air_count"] == 0
    assert m["silence_share"] == pytest.approx(16.0 / 31.0, abs=0.01)  # the two 0.5 s pauses don't count
    assert m["duration_s"] == 31.0
    assert m["agent_talk_s"] == pytest.approx(8.5, abs=0.1) and m["customer_talk_s"] == pytest.approx(4.5, abs=0.1)
    assert m["talk_ratio"] == pytest.approx(8.5 / 4.5, abs=0.05)
    assert m["overlap_s"] == 0 and m["agent_interruptions"] == 0


def test_thresholds_are_configurable():
    # gaps of 6 s and 3.5 s: both dead air by default; with holds from 5 s, one hold + one dead air
    audio = stereo(20.0, [(0.0, voice(3.0)), (9.0, voice(3.0))], [(15.5, noise(2.0))])
    tr = Transcript("c", "zh", (turn("agent", 0, 3, ch=0), turn("agent", 9, 12, ch=0),
                                turn("customer", 15.5, 17.5, ch=1)), duration=20.0)
    m, _ = acoustic_metrics(tr, audio)
    assert (m["hold_count"], m["dead_air_count"]) == (0, 2)
    m, _ = acoustic_metrics(tr, audio, AcousticConfig(hold_s=5.0))
    assert (m["hold_count"], m["dead_air_count"]) == (1, 1)


def test_interruption_with_known_onset_and_backchannel_ignored():
    # customer 0-6; the agent cuts in at 4.5 (1.5 s before the customer stops) and talks to 9;
    # the customer says a 0.4 s 嗯 at 7.0 over the agent: a backchannel, not an interruption
    audio = stereo(10.0, [(4.5, voice(4.5))], [(0.0, noise(6.0)), (7.0, noise(0.4))])
    tr = Transcript("c", "zh", (turn("customer", 0, 6, ch=1), turn("agent", 4.5, 9, ch=0),
                                turn("customer", 7.0, 7.4, "嗯", ch=1)), duration=10.0)
    m, per_turn = acoustic_metrics(tr, audio)
    assert m["agent_interruptions"] == 1 and m["customer_interruptions"] == 0
    assert m["overlap_s"] == pytest.approx(1.9, abs=0.1)
    (it,) = per_turn[1]["interruptions"]
    assert it["over"] == "customer"
    assert it["at"] == pytest.approx(4.5, abs=0.05)
    assert it["overlap_s"] == pytest.approx(1.5, abs=0.05)
    assert it["into_s"] == pytest.approx(4.5, abs=0.05)
    assert per_turn[1]["onset_s"] == pytest.approx(-1.5, abs=0.01)  # started 1.5 s before the other ended
    assert "interruptions" not in per_turn[2]


def test_customer_interrupting_the_agent_is_counted_for_the_customer():
    audio = stereo(10.0, [(0.0, voice(6.0))], [(5.0, noise(3.0))])
    tr = Transcript("c", "zh", (turn("agent", 0, 6, ch=0), turn("customer", 5, 8, ch=1)), duration=10.0)
    m, _ = acoustic_metrics(tr, audio)
    assert (m["agent_interruptions"], m["customer_interruptions"]) == (0, 1)


def test_roles_found_by_channel_activity_when_turns_have_no_channel():
    # channel 0 is the CUSTOMER here (stereo_agent_right), and the turns don't say so
    audio = stereo(10.0, [(0.0, noise(4.0))], [(4.5, voice(3.0))])
    tr = Transcript("c", "zh", (turn("customer", 0, 4), turn("agent", 4.5, 7.5)), duration=10.0)
    m, _ = acoustic_metrics(tr, audio)
    assert m["agent_talk_s"] == pytest.approx(3.0, abs=0.1)
    assert m["customer_talk_s"] == pytest.approx(4.0, abs=0.1)


def _words(text: str, start: float, end: float) -> tuple[Word, ...]:
    chars = [c for c in text]
    step = (end - start) / len(chars)
    return tuple(Word(c, round(start + i * step, 3), round(start + (i + 1) * step, 3)) for i, c in enumerate(chars))


def test_speech_units_count_han_digits_not_punctuation_or_fillers():
    assert speech_units("嗯，您好！请问有什么可以帮您？", "zh") == 11
    assert speech_units("工号1234，VIP客户", "zh") == 2 + 4 + 1 + 2
    assert speech_units("Um, thank you for calling, uh, how can I help?", "en") == 8


def test_speech_rate_per_utterance_and_per_role():
    # agent: 10 chars in 2 s (300/min) and 10 chars in 4 s (150/min) → 20 chars / 6 s = 200/min
    a1, a2 = "您好请问有什么可以帮", "我马上帮您查询一下吧"
    c1 = "我想查话费"  # 5 chars in 1.5 s = 200/min; the 嗯 and punctuation don't count
    tr = Transcript("c", "zh", (
        Turn("agent", a1, 0.0, 2.0, words=_words(a1, 0.0, 2.0)),
        Turn("customer", "嗯，" + c1 + "。", 2.5, 4.0, words=_words(c1, 2.5, 4.0)),
        Turn("agent", a2, 4.5, 8.5, words=_words(a2, 4.5, 8.5))), duration=9.0)
    m, per_turn = acoustic_metrics(tr)
    assert [p["speech_rate"] for p in per_turn] == [300.0, 200.0, 150.0]
    assert m["speech_rate_agent"] == 200.0 and m["speech_rate_customer"] == 200.0
    assert m["speech_rate_cpm"] == 200.0 and m["speech_rate_unit"] == "chars/min"
    assert m["activity_source"] == "timestamps"


def test_speech_rate_on_stereo_skips_the_other_speakers_turn_inside_a_segment():
    # Whisper on one channel often returns one segment over two utterances of the same speaker
    # with the other's turn (silence on this channel) between them: 0–3 s and 7–10 s here
    a1, a2 = "您好请问有什么可以帮", "好的我帮您查一下话费"  # 10 + 10 chars in 6 s of speech
    audio = stereo(11.0, [(0.0, voice(3.0)), (7.0, voice(3.0))], [(3.5, noise(3.0))])
    words = _words(a1, 0.0, 3.0) + _words(a2, 7.0, 10.0)
    tr = Transcript("c", "zh", (Turn("agent", a1 + a2, 0.0, 10.0, words=words, channel=0),
                                Turn("customer", "我想查话费", 3.5, 6.5, channel=1)), duration=11.0)
    m, per_turn = acoustic_metrics(tr, audio)
    assert per_turn[0]["speech_rate"] == pytest.approx(200.0, rel=0.03)  # not 20 chars / 10 s = 120
    m, per_turn = acoustic_metrics(tr)  # no audio: the gap between the words says the same
    assert per_turn[0]["speech_rate"] == pytest.approx(200.0, rel=0.01)


def test_english_speech_rate_is_words_per_minute():
    tr = Transcript("c", "en", (Turn("agent", "thank you for calling how can I help", 0.0, 3.0),), duration=3.0)
    m, per_turn = acoustic_metrics(tr)
    assert per_turn[0]["speech_rate"] == 160.0 and m["speech_rate_unit"] == "words/min"
    assert "speech_rate_cpm" not in m


def test_loudness_step_gives_agitation_and_pitch_is_measured():
    # six agent utterances at -26 dBFS / 150 Hz, the fifth at -12 dBFS; the customer steady
    starts = [0.0, 3.0, 6.0, 9.0, 12.0, 15.0]
    a_parts = [(s, voice(2.0, 150.0, -12.0 if i == 4 else -26.0)) for i, s in enumerate(starts)]
    c_parts = [(s + 2.2, noise(0.6, -30.0)) for s in starts]
    audio = stereo(18.0, a_parts, c_parts)
    turns = []
    for s in starts:
        turns += [turn("agent", s, s + 2.0, ch=0), turn("customer", s + 2.2, s + 2.8, ch=1)]
    tr = Transcript("c", "zh", tuple(turns), duration=18.0)
    m, per_turn = acoustic_metrics(tr, audio)
    agent = [p for t, p in zip(tr.turns, per_turn) if t.role == "agent"]
    assert agent[4]["loudness_db"] == pytest.approx(-12.0, abs=1.0)
    assert agent[0]["loudness_db"] == pytest.approx(-26.0, abs=1.0)
    assert all(p["pitch_hz"] == pytest.approx(150.0, rel=0.03) for p in agent)
    assert agent[4]["agitation"] > 3
    assert all(abs(p["agitation"]) < 1 for i, p in enumerate(agent) if i != 4)
    assert m["agent_agitation_max"] == agent[4]["agitation"]
    assert m["customer_agitation_max"] < 1


def test_pitch_rise_alone_raises_agitation():
    starts = [0.0, 3.0, 6.0, 9.0, 12.0]
    parts = [(s, voice(2.0, 240.0 if i == 2 else 160.0)) for i, s in enumerate(starts)]
    audio = stereo(15.0, parts, [(14.0, noise(0.5))])
    tr = Transcript("c", "zh", tuple(turn("agent", s, s + 2.0, ch=0) for s in starts)
                    + (turn("customer", 14.0, 14.5, ch=1),), duration=15.0)
    _, per_turn = acoustic_metrics(tr, audio)
    assert per_turn[2]["pitch_hz"] == pytest.approx(240.0, rel=0.03)
    assert per_turn[2]["agitation"] > 2 and max(abs(per_turn[i]["agitation"]) for i in (0, 1, 3, 4)) < 1


def test_untimed_transcript_leaves_timing_metrics_unavailable():
    tr = Transcript("c", "zh", (Turn("agent", "您好"), Turn("customer", "你好")))
    m, _ = acoustic_metrics(tr)
    assert "max_silence_s" not in m and "agent_interruptions" not in m
    assert m["speech_rate_agent"] is None


def test_enrich_on_sample_calls_finds_the_scripted_hold_and_talk_over(samples):
    fake = ReferenceTranscriber(samples / "transcripts.jsonl")
    hold = decode(samples / "audio" / "zh_long_hold.flac")
    tr = enrich(fake.transcribe("zh_long_hold", hold, "stereo_agent_left", "zh"), hold)
    assert tr.metrics["hold_count"] == 1 and tr.metrics["max_silence_s"] == pytest.approx(12.0, abs=0.3)
    assert tr.metrics["agent_interruptions"] == 0
    over = decode(samples / "audio" / "zh_talk_over.flac")
    tr = enrich(fake.transcribe("zh_talk_over", over, "stereo_agent_left", "zh"), over)
    assert tr.metrics["agent_interruptions"] == 3 and tr.metrics["customer_interruptions"] == 0
    assert sum("interruptions" in t.metrics for t in tr.turns) == 3
    # stored with the transcript: survives the JSON round trip
    back = Transcript.from_dict(tr.to_dict())
    assert back.metrics == tr.metrics and back.turns[2].metrics == tr.turns[2].metrics


def test_audio_metrics_win_over_timestamp_talk_metrics_when_scoring(samples):
    from qa_inspect.batch.inputs import WorkItem
    from qa_inspect.batch.score import score_transcript
    from qa_inspect.records import CallInput
    from qa_inspect.rules import load_pack

    fake = ReferenceTranscriber(samples / "transcripts.jsonl")
    audio = decode(samples / "audio" / "zh_talk_over.flac")
    tr = enrich(fake.transcribe("zh_talk_over", audio, "stereo_agent_left", "zh"), audio)
    res = score_transcript(WorkItem(call=CallInput(call_id="zh_talk_over")), tr,
                           load_pack("rules/telecom_zh.yaml"))
    assert res.metrics["overlap_s"] == tr.metrics["overlap_s"] > 2
    assert res.metrics["max_silence_s"] == tr.metrics["max_silence_s"]
    assert res.metrics["turns"] == len(tr.turns)  # talk_metrics keys still there


METRIC_RULES = ("long_silence", "agent_interrupts", "speech_too_fast")


def test_metric_rules_on_sample_audio_meet_expected_outcomes(root, samples):
    """The metric rules of the shipped packs, on the real sample audio with reference words."""
    import csv
    import json

    from qa_inspect.rules import evaluate, load_pack

    expected = json.loads((samples / "expected.json").read_text(encoding="utf-8"))
    packs = {lang: load_pack(root / f"rules/telecom_{lang}.yaml") for lang in ("zh", "en")}
    fake = ReferenceTranscriber(samples / "transcripts.jsonl")
    checked = 0
    with open(samples / "manifest.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["call_id"] not in fake.by_id:
                continue
            audio = decode(samples / row["path"])
            tr = enrich(fake.transcribe(row["call_id"], audio, row["channel_layout"], row["language"]), audio)
            results = {r.rule_id: r for r in evaluate(packs[row["language"]], tr, tr.metrics)}
            for rid in METRIC_RULES:
                want = expected[row["call_id"]].get(rid)
                if want is not None:
                    assert results[rid].matched == want, (row["call_id"], rid, results[rid].reason)
                    checked += 1
    assert checked == 3 * len(fake.by_id)


def test_metrics_stored_exported_and_kept_by_rescore(root, samples, tmp_path):
    """Through the batch: metrics land in the store and the export record, per call and per
    utterance, and the long_silence rule fires on zh_long_hold from them."""
    from qa_inspect.batch.inputs import read_input
    from qa_inspect.batch.pipeline import PackSet, run_batch
    from qa_inspect.batch.rescore import rescore
    from qa_inspect.rules import load_pack
    from qa_inspect.store import open_store

    packs = PackSet([load_pack(root / "rules/telecom_zh.yaml"), load_pack(root / "rules/telecom_en.yaml")])
    items = [i for i in read_input(samples / "manifest.csv") if i.call.call_id in ("zh_long_hold", "zh_talk_over")]
    fake = ReferenceTranscriber(samples / "transcripts.jsonl")
    with open_store(tmp_path / "q.db") as store:
        run_batch(items, packs, store, lambda: fake, "fake-asr")
        before = {r.call.call_id: r.to_dict() for r in store.results()}
        rescore(store, packs, workers=1)  # from the stored transcript: no audio, same metrics
        recs = {r.call.call_id: r.to_dict() for r in store.results()}
    assert all(recs[c]["metrics"] == before[c]["metrics"] for c in recs)
    hold = recs["zh_long_hold"]
    assert hold["metrics"]["hold_count"] == 1 and hold["metrics"]["activity_source"] == "channel_vad"
    assert hold["transcript"]["metrics"]["hold_count"] == 1
    assert all("speech_rate" in t["metrics"] for t in hold["transcript"]["turns"])
    rule = next(r for r in hold["rules"] if r["rule_id"] == "long_silence")
    assert rule["outcome"] == "hit" and rule["evidence"][0]["matcher"] == "metric"
    over = recs["zh_talk_over"]
    assert next(r for r in over["rules"] if r["rule_id"] == "agent_interrupts")["outcome"] == "hit"
    assert sum(len(t.get("metrics", {}).get("interruptions", [])) for t in over["transcript"]["turns"]) == 3
