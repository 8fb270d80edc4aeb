"""Decode any common audio format to 16 kHz float32, one array per channel.

soundfile handles wav/flac/ogg fast; PyAV (FFmpeg) handles the rest (mp3, m4a, ...) and
resamples every channel separately to 16 kHz.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa_inspect.errors import AudioError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
SUPPORTED_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".wma", ".amr")


@dataclass(frozen=True)
class DecodedAudio:
    channels: tuple[np.ndarray, ...]  # float32, SAMPLE_RATE, one per channel
    source_rate: int
    duration: float

    @property
    def mono(self) -> np.ndarray:
        if len(self.channels) == 1:
            return self.channels[0]
        return np.mean(np.stack(self.channels), axis=0).astype(np.float32)


def file_hash(path: str | Path, chunk: int = 1 << 20) -> str:
    """Content hash of the audio file: the cache key of everything derived from it."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _resample(x: np.ndarray, sr: int) -> np.ndarray:
    """One channel to SAMPLE_RATE with FFmpeg's swresample (PyAV), as faster-whisper's own
    ``decode_audio`` does. scipy's ``resample_poly`` was used before: on 8 kHz telephony audio
    Whisper then decoded spurious segments with temperature fallbacks (about 2x slower on the
    sample clip, bench/RESULTS.md), and importing scipy.signal cost ~1.1 s per process."""
    if sr == SAMPLE_RATE:
        return x.astype(np.float32, copy=False)
    import av

    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x, dtype=np.float32)[None, :],
                                       format="fltp", layout="mono")
    frame.sample_rate = sr
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=SAMPLE_RATE)
    out = [o.to_ndarray() for o in resampler.resample(frame)]
    out += [o.to_ndarray() for o in resampler.resample(None)]  # flush the filter's delay
    return np.concatenate(out, axis=1)[0].astype(np.float32, copy=False)


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return data.T, sr  # (channels, samples)


def _read_av(path: Path) -> tuple[np.ndarray, int]:
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise AudioError("no audio stream in file", str(path))
        stream = container.streams.audio[0]
        sr = stream.codec_context.sample_rate or stream.rate
        n_ch = stream.codec_context.channels or 1
        # Resample to planar float at the native rate/channels, keep channels separate.
        resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=sr)
        chunks = []
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray())
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
    if not chunks:
        raise AudioError("file contains no audio frames", str(path))
    data = np.concatenate(chunks, axis=1).astype(np.float32)
    return data[:n_ch] if data.shape[0] >= n_ch else data, sr


def decode(path: str | Path, *, max_duration: float = 4 * 3600, min_duration: float = 0.3,
           silence_dbfs: float = -60.0) -> DecodedAudio:
    """Decode ``path``; raise AudioError with a one-line reason for unusable input."""
    p = Path(path)
    if not p.exists():
        raise AudioError("file not found", str(p))
    if p.stat().st_size == 0:
        raise AudioError("file is empty (0 bytes)", str(p))
    if p.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise AudioError(f"unsupported file type {p.suffix or '(none)'}; "
                         f"supported: {', '.join(SUPPORTED_SUFFIXES)}", str(p))
    try:
        try:
            data, sr = _read_soundfile(p)
        except Exception:  # soundfile lacks mp3/m4a in some builds: fall back to FFmpeg
            data, sr = _read_av(p)
    except AudioError:
        raise
    except Exception as e:  # decoder errors are many types; all mean "cannot decode"
        raise AudioError(f"cannot decode audio ({type(e).__name__}: {str(e)[:120]})", str(p)) from e
    if data.size == 0 or sr <= 0:
        raise AudioError("file contains no audio samples", str(p))
    duration = data.shape[1] / sr
    if duration < min_duration:
        raise AudioError(f"audio too short ({duration:.2f} s)", str(p))
    if duration > max_duration:
        raise AudioError(f"audio too long ({duration / 3600:.1f} h > {max_duration / 3600:.1f} h)", str(p))
    peak = float(np.max(np.abs(data)))
    if peak == 0.0 or 20 * np.log10(peak) < silence_dbfs:
        raise AudioError("audio is silent", str(p))
    try:
        channels = tuple(_resample(ch, sr) for ch in data)
    except Exception as e:  # FFmpeg refuses an odd rate: still one line, not a traceback
        raise AudioError(f"cannot resample {sr} Hz audio ({type(e).__name__}: {str(e)[:120]})", str(p)) from e
    return DecodedAudio(channels=channels, source_rate=sr, duration=duration)
