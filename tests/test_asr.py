"""The ASR adapter: turns cut at pauses, the config key, and the real model on one sample channel."""
import dataclasses

import pytest

from qa_inspect.records import Word
from qa_inspect.speech.asr import ASRConfig, Segment, split_at_pauses


def _seg(words):
    ws = [Word(text=t, start=s, end=e, probability=0.9) for t, s, e in words]
    return Segment(start=ws[0].start, end=ws[-1].end, text="".join(w.text for w in ws).strip(), words=ws)


def test_segment_cut_at_long_pause_only():
    seg = _seg([("你好,", 0.1, 0.6), ("请问", 0.9, 1.3), ("有什么", 1.35, 1.8), ("可以帮您。", 1.8, 2.4),
                ("宽带", 6.0, 6.5), ("不归我管。", 6.5, 7.3)])
    parts = split_at_pauses(seg, 0.8)
    assert [p.text for p in parts] == ["你好,请问有什么可以帮您。", "宽带不归我管。"]
    assert (parts[1].start, parts[1].end) == (6.0, 7.3) and [w.text for w in parts[1].words] == ["宽带", "不归我管。"]
    assert split_at_pauses(seg, 0) == [seg]  # 0: never cut
    assert split_at_pauses(seg, 5.0) == [seg]


def test_english_words_keep_their_spaces():
    seg = _seg([(" Thank", 0.0, 0.3), (" you.", 0.3, 0.6), (" I", 2.0, 2.1), (" see.", 2.1, 2.5)])
    assert [p.text for p in split_at_pauses(seg, 0.8)] == ["Thank you.", "I see."]


def test_segment_without_words_is_kept():
    seg = Segment(start=0.0, end=3.0, text="你好")
    assert split_at_pauses(seg, 0.8) == [seg]


def test_every_transcript_option_is_in_the_key():
    base = ASRConfig()
    for f in dataclasses.fields(ASRConfig):
        if f.name == "cpu_threads":
            assert dataclasses.replace(base, cpu_threads=3).key() == base.key()
            continue
        v = getattr(base, f.name)
        other = (not v) if isinstance(v, bool) else v + 1 if isinstance(v, (int, float)) else v + "x"
        assert dataclasses.replace(base, **{f.name: other}).key() != base.key(), f.name


@pytest.mark.slow
def test_real_channel_gives_one_segment_per_utterance(samples):
    """Unprompted, Whisper base returns the agent's opening and a later answer as one segment;
    the pause cut gives them back as separate turns, with word times inside each."""
    from qa_inspect.speech.asr import WhisperTranscriber
    from qa_inspect.speech.decode import decode

    tr = WhisperTranscriber(ASRConfig(language="zh"))
    segs = tr.transcribe_array(decode(samples / "audio" / "zh_forbidden_phrase.flac").channels[0], "zh")
    hit = next(s for s in segs if "不归我管" in s.text)
    assert 8 < hit.start < hit.end < 16  # the agent says it after the customer's first turn
    assert not any(s.start < 5 and "不归我管" in s.text for s in segs)
    for s in segs:
        assert all(b.start - a.end < tr.cfg.split_pause_s for a, b in zip(s.words, s.words[1:]))
        assert s.start <= s.words[0].start and s.words[-1].end <= s.end
