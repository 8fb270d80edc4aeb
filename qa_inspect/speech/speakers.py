"""Who spoke when on a mono recording: VAD → speaker embeddings → two clusters.

webrtcvad finds speech; resemblyzer's voice encoder (its shipped weights, ``pretrained.pt``, run
in numpy by ``voice.py``: no torch, no librosa) embeds windows of ≤ 1.2 s inside each speech
region, computed from one mel spectrogram of the whole call and run through the LSTM in
batches; Ward clustering of the L2-normalised embeddings, refined by a few spherical k-means
steps, gives two speakers. Each analysis frame takes the label of the
nearest window centre in its region. Which speaker is the agent is decided by the caller from
what each one says (``asr.assign_roles_by_speaker``): the embeddings know voices, not roles.

The encoder is loaded once per process (``encoder()``, cached; ~0.1 s); a process-pool worker
pays it once for all its calls.
"""
from __future__ import annotations

import logging
import sys
import types
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from qa_inspect.errors import QAError
from qa_inspect.speech.voice import VoiceEncoder, mel_spectrogram, normalize_volume

log = logging.getLogger(__name__)

SR = 16000
MEL_HOP_S = 0.01  # resemblyzer: 10 ms mel frames


class DiarizationError(QAError):
    """Diarization could not separate speakers (too little speech, one voice, missing model)."""


@dataclass(frozen=True)
class DiarizeConfig:
    vad_aggressiveness: int = 2   # webrtcvad 0..3
    vad_bridge_s: float = 0.25    # pauses shorter than this stay inside a speech region
    min_region_s: float = 0.4     # shorter speech regions are not embedded (they still get a label)
    window_s: float = 1.2         # embedding window (resemblyzer trains on 1.6 s partials)
    hop_s: float = 0.5  # LSTM time is the cost: ~240 mel frames per second of speech
    n_speakers: int = 2
    kmeans_iters: int = 5
    # BLAS threads for the LSTM (0: leave OpenBLAS's setting as it is). Its per-step products are
    # small (≤ 64 × 256 by 256 × 1024): on the shared 2-core box a 42 s call's diarization took
    # 0.35 s with one thread, 1.3–7.2 s with two; batch runs put one worker per core anyway.
    # Set for the call only (threadpoolctl), then restored.
    threads: int = 1
    # clusters this poorly separated (mean silhouette, cosine distance) are not two voices told
    # apart: on the samples the real call and the espeak voices score 0.22–0.28 (DER 0–4 %), one
    # TTS voice pitch-shifted for the customer mostly 0.08–0.19 (DER 6–47 %). Below it diarize()
    # raises and the caller assigns roles by content instead (asr.mono_turns also falls back
    # when the speakers' roles contradict what they say).
    min_silhouette: float = 0.2


@dataclass(frozen=True)
class SpeakerSegment:
    start: float
    end: float
    speaker: int


def _import_webrtcvad():
    """webrtcvad 2.0.10 imports ``pkg_resources`` only to read its own version; setuptools ≥ 81 no
    longer ships it (``webrtcvad-wheels`` doesn't need it). Give it a stub rather than fail."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        stub = types.ModuleType("pkg_resources")

        class _Dist:
            version = "0"

        stub.get_distribution = lambda name: _Dist()  # type: ignore[attr-defined]
        sys.modules.setdefault("pkg_resources", stub)
    import webrtcvad

    return webrtcvad


@lru_cache(maxsize=1)
def encoder() -> VoiceEncoder:
    """resemblyzer's voice encoder (numpy, ``voice.VoiceEncoder``), loaded once per process."""
    return VoiceEncoder.resemblyzer()


def speech_regions(x: np.ndarray, cfg: DiarizeConfig = DiarizeConfig()) -> list[tuple[float, float]]:
    """Speech regions (seconds) by webrtcvad on 30 ms frames, short pauses bridged."""
    vad = _import_webrtcvad().Vad(cfg.vad_aggressiveness)
    n = int(SR * 0.03)
    pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16)
    flags = [vad.is_speech(pcm[i:i + n].tobytes(), SR) for i in range(0, len(pcm) - n + 1, n)]
    regions: list[list[float]] = []
    for i, f in enumerate(flags):
        if not f:
            continue
        s, e = i * 0.03, (i + 1) * 0.03
        if regions and s - regions[-1][1] < cfg.vad_bridge_s:
            regions[-1][1] = e
        else:
            regions.append([s, e])
    return [(round(s, 2), round(e, 2)) for s, e in regions if e - s >= 0.1]


def _windows(regions, cfg: DiarizeConfig) -> list[tuple[int, float, float]]:
    """(region index, start, end) of the embedding windows inside each speech region."""
    out = []
    for k, (s, e) in enumerate(regions):
        length = e - s
        if length < cfg.min_region_s:
            continue
        if length <= cfg.window_s:
            out.append((k, s, e))
            continue
        starts = list(np.arange(s, e - cfg.window_s + 1e-6, cfg.hop_s))
        if e - cfg.window_s - starts[-1] > 0.05:
            starts.append(e - cfg.window_s)
        out.extend((k, float(a), float(a) + cfg.window_s) for a in starts)
    return out


def embed_windows(x: np.ndarray, windows, threads: int = 0) -> np.ndarray:
    """L2-normalised resemblyzer embeddings of the windows (seconds) of signal ``x``."""
    if threads <= 0:
        return _embed(x, windows)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads, user_api="blas"):
        return _embed(x, windows)


def _embed(x: np.ndarray, windows) -> np.ndarray:
    enc = encoder()
    mel = mel_spectrogram(normalize_volume(x.astype(np.float32), -30))  # (frames, 40), one pass over the call
    by_len: dict[int, list[int]] = {}
    spans = []
    for i, (_k, s, e) in enumerate(windows):
        a = int(round(s / MEL_HOP_S))
        b = min(int(round(e / MEL_HOP_S)), len(mel))
        spans.append((a, b))
        by_len.setdefault(b - a, []).append(i)
    out = np.zeros((len(windows), 256), dtype=np.float32)
    for length, idx in by_len.items():  # one batch per window length (full windows: one batch)
        if length <= 0:
            continue
        out[idx] = enc(np.stack([mel[spans[i][0]:spans[i][1]] for i in idx]))
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-9)


def cluster(emb: np.ndarray, n: int = 2, iters: int = 5) -> np.ndarray:
    """Labels 0..n-1: Ward linkage on the normalised embeddings, refined by spherical k-means."""
    from scipy.cluster.hierarchy import fcluster, linkage

    if len(emb) < n:
        return np.zeros(len(emb), dtype=int)
    labels = fcluster(linkage(emb, method="ward"), n, criterion="maxclust") - 1
    for _ in range(iters):
        cents = np.stack([emb[labels == c].mean(axis=0) if (labels == c).any() else emb[c] for c in range(n)])
        cents /= np.maximum(np.linalg.norm(cents, axis=1, keepdims=True), 1e-9)
        new = np.argmax(emb @ cents.T, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


def diarize(x: np.ndarray, cfg: DiarizeConfig = DiarizeConfig()) -> list[SpeakerSegment]:
    """Speaker turns of a 16 kHz mono signal; raises DiarizationError when it cannot tell voices apart."""
    segs, sil = diarize_detail(x, cfg)
    if sil < cfg.min_silhouette:
        raise DiarizationError(f"voices too similar to separate (silhouette {sil:.2f} < {cfg.min_silhouette})")
    return segs


def silhouette(emb: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of the clustering under cosine distance (1: tight and apart; 0: no structure)."""
    d = 1.0 - emb @ emb.T
    out = []
    for i in range(len(emb)):
        same = labels == labels[i]
        if same.sum() < 2 or (~same).sum() == 0:
            out.append(0.0)
            continue
        a = d[i, same].sum() / (same.sum() - 1)
        b = d[i, ~same].mean()
        out.append((b - a) / max(a, b, 1e-9))
    return float(np.mean(out)) if out else 0.0


def diarize_detail(x: np.ndarray, cfg: DiarizeConfig = DiarizeConfig()) -> tuple[list[SpeakerSegment], float]:
    """(speaker turns, silhouette of the speaker clusters), without the separation gate."""
    regions = speech_regions(x, cfg)
    windows = _windows(regions, cfg)
    if len(windows) < 2 * cfg.n_speakers:
        raise DiarizationError(f"too little speech to separate speakers ({len(windows)} windows)")
    emb = embed_windows(x, windows, cfg.threads)
    labels = cluster(emb, cfg.n_speakers, cfg.kmeans_iters)
    counts = np.bincount(labels, minlength=cfg.n_speakers)
    if (counts == 0).any():
        raise DiarizationError("only one voice found")
    sil = silhouette(emb, labels)
    centres = np.array([(s + e) / 2 for _k, s, e in windows])
    region_of = np.array([k for k, _s, _e in windows])
    segs: list[SpeakerSegment] = []
    step = MEL_HOP_S * 5  # label every 50 ms
    for k, (s, e) in enumerate(regions):
        mine = np.flatnonzero(region_of == k)
        if len(mine) == 0:
            # too short to embed alone: the label of the nearest embedded window in time
            j = int(np.argmin(np.abs(centres - (s + e) / 2)))
            segs.append(SpeakerSegment(s, e, int(labels[j])))
            continue
        t = np.arange(s, e, step)
        near = mine[np.argmin(np.abs(centres[mine][None, :] - (t + step / 2)[:, None]), axis=1)]
        lab = labels[near]
        cut = np.flatnonzero(np.diff(lab)) + 1
        bounds = [0, *cut.tolist(), len(t)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            segs.append(SpeakerSegment(round(float(t[a]), 2), round(min(float(t[b - 1]) + step, e), 2),
                                       int(lab[a])))
    return segs, sil


def speaker_at(start: float, end: float, segs: list[SpeakerSegment]) -> int | None:
    """The speaker who covers most of [start, end] (the nearest one if none overlaps)."""
    cover: dict[int, float] = {}
    for s in segs:
        ov = min(end, s.end) - max(start, s.start)
        if ov > 0:
            cover[s.speaker] = cover.get(s.speaker, 0.0) + ov
    if cover:
        return max(cover, key=cover.get)
    if not segs:
        return None
    mid = (start + end) / 2
    return min(segs, key=lambda s: min(abs(s.start - mid), abs(s.end - mid))).speaker


def diarization_error(ref: list[tuple[float, float, object]], hyp: list[tuple[float, float, object]],
                      duration: float, collar: float = 0.25, step: float = 0.01) -> dict[str, float]:
    """Diarization error rate, frame-based like NIST md-eval: (missed speech + false alarm +
    speaker confusion) / reference speech, with the best one-to-one speaker mapping and frames
    within ``collar`` s of a reference boundary not scored. ``ref``/``hyp``: (start, end, speaker)."""
    from scipy.optimize import linear_sum_assignment

    n = int(np.ceil(duration / step)) + 1
    rs = sorted({str(s) for _, _, s in ref})
    hs = sorted({str(s) for _, _, s in hyp})
    R = np.zeros((len(rs), n), bool)
    H = np.zeros((max(len(hs), 1), n), bool)
    for a, b, s in ref:
        R[rs.index(str(s)), int(round(a / step)):int(round(b / step))] = True
    for a, b, s in hyp:
        H[hs.index(str(s)), int(round(a / step)):int(round(b / step))] = True
    scored = np.ones(n, bool)
    c = int(round(collar / step))
    if c:
        for a, b, _ in ref:
            for t in (a, b):
                i = int(round(t / step))
                scored[max(0, i - c):i + c] = False
    R, H = R[:, scored], H[:, scored]
    both = R.astype(np.int64) @ H.T.astype(np.int64)  # frames where ref i and hyp j are both active
    ri, hj = linear_sum_assignment(-both)
    correct = int(both[ri, hj].sum())
    nr, nh = R.sum(axis=0), H.sum(axis=0)
    total = max(int(nr.sum()), 1)
    miss = int(np.maximum(nr - nh, 0).sum())
    fa = int(np.maximum(nh - nr, 0).sum())
    conf = int(np.minimum(nr, nh).sum()) - correct
    return {"ref_s": total * step, "miss": miss / total, "fa": fa / total, "conf": conf / total,
            "der": (miss + fa + conf) / total}
