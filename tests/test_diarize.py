"""Mono diarization: DER arithmetic, real two-voice audio, the similar-voice fallback, role assignment."""
import json
import logging
from pathlib import Path

import pytest

from qa_inspect.speech.asr import Segment, _split_by_speaker, assign_roles_by_speaker, mono_turns
from qa_inspect.speech.decode import decode
from qa_inspect.speech.speakers import (DiarizationError, SpeakerSegment, diarization_error, diarize, encoder,
                                speaker_at)
from qa_inspect.records import Word

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "asr-en-phone"


def _ref_turns(samples, call_id):
    for line in (samples / "transcripts.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        if d["call_id"] == call_id:
            return d["turns"]
    raise KeyError(call_id)


def test_der_arithmetic_on_known_segments():
    ref = [(0.0, 10.0, "A"), (10.0, 20.0, "B")]
    hyp = [(0.0, 12.0, 1), (12.0, 20.0, 0)]  # 2 s of B given to A's speaker; labels swapped is fine
    m = diarization_error(ref, hyp, 20.0, collar=0.0)
    assert m["conf"] == pytest.approx(0.1, abs=0.002) and m["miss"] == 0 and m["fa"] == 0
    # collar: 0.25 s each side of 0, 10 and 20 is not scored → 2 s error... minus the 0.25 s after 10
    m = diarization_error(ref, hyp, 20.0, collar=0.25)
    assert m["der"] == pytest.approx(1.75 / 19.0, abs=0.002)
    # missed speech and false alarm
    m = diarization_error(ref, [(0.0, 10.0, "x"), (10.0, 15.0, "y"), (20.0, 22.0, "y")], 22.0, collar=0.0)
    assert m["miss"] == pytest.approx(0.25, abs=0.002) and m["fa"] == pytest.approx(0.1, abs=0.002)


def test_speaker_at_picks_the_speaker_covering_most():
    segs = [SpeakerSegment(0, 2, 0), SpeakerSegment(2, 5, 1)]
    assert speaker_at(1.5, 3.0, segs) == 1 and speaker_at(0.2, 1.0, segs) == 0
    assert speaker_at(6.0, 7.0, segs) == 1  # no overlap: nearest


def _words(text, start, end):
    toks = text.split()
    step = (end - start) / len(toks)
    return [Word(t, start + i * step, start + (i + 1) * step) for i, t in enumerate(toks)]


def test_segment_split_at_speaker_change_and_flicker_ignored():
    spk = [SpeakerSegment(0, 3.0, 0), SpeakerSegment(3.0, 3.3, 1), SpeakerSegment(3.3, 6.0, 0),
           SpeakerSegment(6.0, 10.0, 1)]
    seg = Segment(0.0, 10.0, "a b c d e f g h i j", _words("a b c d e f g h i j", 0.0, 10.0))
    parts = _split_by_speaker(seg, spk, "en")
    assert [(lab, p.text, p.start, p.end) for lab, p in parts] == [
        (0, "a b c d e f", 0.0, 6.0), (1, "g h i j", 6.0, 10.0)]


def test_roles_go_to_the_speaker_who_says_the_service_phrases():
    spk = [SpeakerSegment(0, 3, 1), SpeakerSegment(3, 6, 0), SpeakerSegment(6, 9, 1)]
    segs = [Segment(0, 3, "我想查一下我的话费"), Segment(3, 6, "您好，请问有什么可以帮您"),
            Segment(6, 9, "好的")]
    turns = assign_roles_by_speaker(segs, spk, "zh")
    assert [t.role for t in turns] == ["customer", "agent", "customer"]


def test_encoder_loaded_once_per_process():
    assert encoder() is encoder()


@pytest.mark.skipif(not (REAL / "sample.rttm").exists(), reason="shared data not present")
def test_real_phone_call_der_below_20_percent():
    a = decode(REAL / "sample.wav")
    ref = []
    for line in (REAL / "sample.rttm").read_text().splitlines():
        f = line.split()
        ref.append((float(f[3]), float(f[3]) + float(f[4]), f[7]))
    segs = diarize(a.mono)
    m = diarization_error(ref, [(s.start, s.end, s.speaker) for s in segs], a.duration, collar=0.25)
    assert m["der"] < 0.2, m
    assert len({s.speaker for s in segs}) == 2


def test_mono_mix_of_two_voices_gets_roles_by_diarization(samples):
    a = decode(samples / "audio" / "en_billing_inquiry.flac")  # stereo: mixing makes a mono call
    ref = _ref_turns(samples, "en_billing_inquiry")
    # the reference text and times stand in for Whisper's segments; the service phrases decide
    # which voice is the agent. Shuffle nothing: the roles must come from the voices + content.
    segs = [Segment(t["start"], t["end"], t["text"]) for t in ref]
    turns, method = mono_turns(segs, a.mono, "en")
    assert method == "diarization"
    assert [t.role for t in turns] == [t["role"] for t in ref]


def test_same_voice_pitch_shifted_falls_back_to_content(samples, caplog):
    # the Mandarin samples use one TTS voice for both roles (customer pitch-shifted): too similar
    a = decode(samples / "audio" / "zh_billing_12315.flac")
    with pytest.raises(DiarizationError, match="too similar"):
        diarize(a.mono)
    ref = _ref_turns(samples, "zh_billing_12315")
    segs = [Segment(t["start"], t["end"], t["text"]) for t in ref]
    with caplog.at_level(logging.INFO, logger="qa_inspect.speech.asr"):
        turns, method = mono_turns(segs, a.mono, "zh")
    assert method == "content" and "too similar" in caplog.text and "roles by content" in caplog.text
    assert [t.role for t in turns] == [t["role"] for t in ref]
