import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from qa_inspect.speech.decode import SAMPLE_RATE, decode
from qa_inspect.errors import AudioError


def test_stereo_8k_is_resampled_and_split(tmp_path):
    t = np.arange(8000 * 2) / 8000
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), 0.1 * np.sin(2 * np.pi * 220 * t)
    f = tmp_path / "s.wav"
    sf.write(f, np.stack([left, right], axis=1), 8000)
    a = decode(f)
    assert len(a.channels) == 2 and a.source_rate == 8000 and a.duration == pytest.approx(2.0)
    assert all(len(ch) == 2 * SAMPLE_RATE for ch in a.channels)
    assert np.abs(a.channels[0]).max() > 3 * np.abs(a.channels[1]).max()  # channels not mixed


def test_mp3_sample_decodes_via_ffmpeg(samples):
    a = decode(samples / "audio" / "zh_media_threat.mp3")
    assert len(a.channels) == 2 and a.duration > 30


@pytest.mark.parametrize("name,content,reason", [
    ("empty.wav", b"", "empty"),
    ("garbage.wav", b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 4, "cannot decode"),
    ("notes.txt", b"hello", "unsupported file type"),
])
def test_bad_files_give_one_line_reasons(tmp_path, name, content, reason):
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(AudioError) as e:
        decode(f)
    msg = str(e.value)
    assert reason in msg and str(f) in msg and "\n" not in msg


def test_silent_and_too_long(tmp_path):
    f = tmp_path / "silent.wav"
    sf.write(f, np.zeros(16000 * 3), 16000)
    with pytest.raises(AudioError, match="silent"):
        decode(f)
    g = tmp_path / "long.wav"
    sf.write(g, 0.1 * np.ones(16000 * 5), 16000)
    with pytest.raises(AudioError, match="too long"):
        decode(g, max_duration=4)
    with pytest.raises(AudioError, match="not found"):
        decode(tmp_path / "nope.wav")


@pytest.mark.parametrize("sr,n", [(8000, 8001), (22050, 22050 * 3 + 7), (44100, 44100)])
def test_resampling_keeps_duration_and_float32(tmp_path, sr, n):
    x = 0.3 * np.sin(2 * np.pi * 300 * np.arange(n) / sr)
    f = tmp_path / "x.wav"
    sf.write(f, np.stack([x, -x], axis=1), sr)
    a = decode(f)
    assert a.source_rate == sr and a.duration == pytest.approx(n / sr)
    assert all(ch.dtype == np.float32 and abs(len(ch) - n * SAMPLE_RATE / sr) <= 1 for ch in a.channels)
    assert np.corrcoef(a.channels[0], a.channels[1])[0, 1] < -0.99  # left and right stay apart


def test_8k_telephony_resampled_like_faster_whisper(samples):
    """Same FFmpeg resampler as faster-whisper's decode_audio (which Whisper was tuned on in
    practice): scipy's polyphase filter gave Whisper spurious segments on 8 kHz calls."""
    from faster_whisper import decode_audio

    path = samples / "audio" / "zh_no_greeting.flac"
    a = decode(path)
    ref = decode_audio(str(path), split_stereo=True)
    assert a.source_rate == 8000 and len(a.channels) == 2
    for ch, r in zip(a.channels, ref):
        assert len(ch) == len(r) and np.abs(ch - r).max() < 1e-4  # r is 16-bit: within one step


def test_decode_does_not_import_scipy(root, samples):
    code = ("import sys; from qa_inspect.speech.decode import decode; "
            f"decode({str(samples / 'audio' / 'zh_no_greeting.flac')!r}); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    assert out.stdout.strip() == "[]"  # importing scipy.signal alone cost ~1.1 s per process
