"""Acoustic metrics: how it was said (speech rate, silence, overlap, loudness, agitation).

Inputs are the transcript (turns with word timestamps) and, when there is one, the decoded
audio. Who was speaking when ("activity") comes from an energy VAD on each role's own channel
for stereo calls (sharper than ASR timestamps, which stretch over pauses and never overlap
within one channel's segments) and from the word/turn timestamps otherwise (mono, or a
transcript given without audio). Everything is cheap numpy (a small numpy YIN) on an 8 kHz copy:
a few percent of the time Whisper takes on the same call (bench/enrich_cost.py).

Definitions (all times in seconds; thresholds in ``AcousticConfig``):
- speech rate: characters per minute for Chinese (Han characters, digits and Latin words count
  one each; punctuation and fillers 嗯/啊/呃… do not), words per minute for English, over the
  utterance's speaking time: its span less pauses ≥ ``rate_pause_s`` (from the channel VAD on
  stereo, from the word gaps otherwise). Per role: total units / total minutes.
- silence: gaps where nobody speaks between the first and the last speech of the call (ringing
  before and hang-up after are not dead air). A gap ≥ ``silence_min_s`` counts towards
  ``silence_share``; ≥ ``dead_air_s`` is dead air; ≥ ``hold_s`` is a hold (not dead air). A gap is
  charged to the role that ends it (the line was waiting for that role).
- interruption (抢话): role X starts while role Y is talking, Y keeps talking at least
  ``interrupt_min_overlap_s`` after X's onset, and X then talks at least ``interrupt_min_speech_s``
  (a short 嗯/对 backchannel is not an interruption). Each one is listed on X's utterance.
- agitation: per utterance, the loudness (RMS dBFS of its voiced frames) and median pitch as
  robust z-scores against the same speaker's median over the call; their mean.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from qa_inspect.records import Transcript, Turn
from qa_inspect.text import FILLERS_ZH

log = logging.getLogger(__name__)

SR = 16000
ROLES = ("agent", "customer")
Interval = tuple[float, float]


@dataclass(frozen=True)
class AcousticConfig:
    frame_s: float = 0.02            # analysis hop (VAD, loudness, pitch)
    vad_margin_db: float = 12.0      # speech = frames this far above the channel's noise floor
    vad_min_dbfs: float = -55.0      # ... and never below this level
    vad_bridge_s: float = 0.3        # pauses shorter than this inside speech stay speech
    vad_min_speech_s: float = 0.15   # shorter bursts are clicks, not speech
    rate_pause_s: float = 1.0        # speech rate: pauses this long inside an utterance don't count
    silence_min_s: float = 1.0       # a shorter gap is a normal turn-taking pause
    dead_air_s: float = 3.0          # gap ≥ this (and < hold_s) is dead air
    hold_s: float = 10.0             # gap ≥ this is a hold
    interrupt_min_overlap_s: float = 0.3
    interrupt_min_speech_s: float = 1.0
    pitch_sr: int = 8000             # yin runs on a decimated copy: pitch needs < 400 Hz
    fmin: float = 65.0
    fmax: float = 400.0
    loud_scale_min_db: float = 2.0   # floor of the robust spread, so a very even speaker
    pitch_scale_min_st: float = 1.0  # doesn't turn small wobbles into large z-scores


DEFAULT = AcousticConfig()

# --- text side: speech rate -------------------------------------------------------------------

_HAN_OR_DIGIT = re.compile(r"[\u3400-\u9fff\uf900-\ufaff0-9０-９]")
_LATIN_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_EN_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
FILLERS_EN = frozenset({"uh", "um", "er", "erm", "hmm", "mm", "ah", "uhm"})


def speech_units(text: str, language: str) -> int:
    """Characters (zh: Han + digits + Latin words, no punctuation or fillers) or words (en)."""
    if language == "en":
        return sum(1 for w in _EN_WORD.findall(text) if w.lower() not in FILLERS_EN)
    t = text
    for f in FILLERS_ZH:
        t = t.replace(f, "")
    latin = _LATIN_WORD.findall(t)
    return len(_HAN_OR_DIGIT.findall(t)) + len(latin)


def rate_unit(language: str) -> str:
    return "words/min" if language == "en" else "chars/min"


def _speech_time(t: Turn, activity: Sequence[Interval] | None, pause_s: float) -> float | None:
    """Speaking time of an utterance: its span without pauses ≥ ``pause_s``.

    With channel activity (stereo) the pauses come from the VAD inside the turn's span; else from
    the gaps between its words. Whisper transcribes each stereo channel on its own and often
    puts two utterances of one speaker (with the other's turn between them) in one segment: the
    bare first-to-last-word span then halves the rate.
    """
    if t.start is None or t.end is None:
        return None
    if activity is not None:
        inside = [(max(a, t.start), min(b, t.end)) for a, b in activity if b > t.start and a < t.end]
        if inside:
            return _total(merge(inside, pause_s))
    if t.words:
        return _total(merge([(w.start, w.end) for w in t.words], pause_s))
    return max(0.0, t.end - t.start)


# --- activity: who speaks when ------------------------------------------------------------------

def frame_db(x: np.ndarray, hop: int) -> np.ndarray:
    """RMS level of each hop-long frame in dBFS (-120 for digital silence)."""
    n = len(x) // hop
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    fr = x[: n * hop].reshape(n, hop).astype(np.float64)
    rms = np.sqrt(np.mean(fr * fr, axis=1))
    return (20 * np.log10(np.maximum(rms, 1e-6))).astype(np.float32)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs of ``mask``."""
    if not mask.any():
        return []
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def vad_threshold(db: np.ndarray, cfg: AcousticConfig = DEFAULT) -> float:
    floor = float(np.percentile(db, 10)) if len(db) else -120.0
    loud = float(np.percentile(db, 95)) if len(db) else -120.0
    # floor + margin, but at least 25 dB under the loud frames (a channel that is mostly speech
    # has a high 10th percentile) and never under the absolute minimum
    return max(min(floor + cfg.vad_margin_db, loud - 25.0), cfg.vad_min_dbfs)


def speech_mask(db: np.ndarray, cfg: AcousticConfig = DEFAULT) -> np.ndarray:
    """Frame mask of speech: above threshold, short pauses bridged, short bursts dropped."""
    mask = db > vad_threshold(db, cfg)
    bridge = int(round(cfg.vad_bridge_s / cfg.frame_s))
    for s, e in _runs(~mask):
        if s > 0 and e < len(mask) and e - s < bridge:
            mask[s:e] = True
    shortest = int(round(cfg.vad_min_speech_s / cfg.frame_s))
    for s, e in _runs(mask):
        if e - s < shortest:
            mask[s:e] = False
    return mask


def energy_vad(x: np.ndarray, cfg: AcousticConfig = DEFAULT) -> list[Interval]:
    """Speech intervals of one channel (16 kHz) by energy."""
    hop = int(SR * cfg.frame_s)
    mask = speech_mask(frame_db(x, hop), cfg)
    return [(round(s * cfg.frame_s, 3), round(e * cfg.frame_s, 3)) for s, e in _runs(mask)]


def merge(iv: Sequence[Interval], bridge: float = 0.0) -> list[Interval]:
    out: list[list[float]] = []
    for s, e in sorted(iv):
        if out and s <= out[-1][1] + bridge:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(a, b) for a, b in out]


def turn_activity(turns: Sequence[Turn], role: str, bridge: float = DEFAULT.vad_bridge_s) -> list[Interval]:
    """Speech intervals of ``role`` from word timestamps (turn spans where there are no words)."""
    iv: list[Interval] = []
    for t in turns:
        if t.role != role:
            continue
        if t.words:
            iv.extend((w.start, w.end) for w in t.words if w.end > w.start)
        elif t.start is not None and t.end is not None and t.end > t.start:
            iv.append((t.start, t.end))
    return merge(iv, bridge)


def _total(iv: Sequence[Interval]) -> float:
    return float(sum(e - s for s, e in iv))


def _intersection(a: Sequence[Interval], b: Sequence[Interval]) -> float:
    i = j = 0
    tot = 0.0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo:
            tot += hi - lo
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tot


# --- call-level timing metrics from activity ---------------------------------------------------

@dataclass(frozen=True)
class Interruption:
    at: float          # onset of the interrupting speech
    by: str            # role that starts talking
    over: str          # role that was talking
    overlap_s: float   # both talking, from the onset
    into_s: float      # how long the other had been talking when interrupted

    def as_dict(self) -> dict[str, Any]:
        return {"at": round(self.at, 2), "over": self.over, "overlap_s": round(self.overlap_s, 2),
                "into_s": round(self.into_s, 2)}


def find_interruptions(act: dict[str, list[Interval]], cfg: AcousticConfig = DEFAULT) -> list[Interruption]:
    out = []
    for x, y in (("agent", "customer"), ("customer", "agent")):
        for s, e in act.get(x, []):
            for ys, ye in act.get(y, []):
                if ys < s < ye:
                    overlap = min(e, ye) - s
                    if overlap >= cfg.interrupt_min_overlap_s and e - s >= cfg.interrupt_min_speech_s:
                        out.append(Interruption(at=s, by=x, over=y, overlap_s=overlap, into_s=s - ys))
                    break
    return sorted(out, key=lambda i: i.at)


def timing_metrics(act: dict[str, list[Interval]], duration: float | None,
                   cfg: AcousticConfig = DEFAULT) -> tuple[dict[str, Any], list[Interruption]]:
    """Silence, holds, overlap, interruptions and talk time from per-role activity."""
    m: dict[str, Any] = {}
    talk = {r: _total(act.get(r, [])) for r in ROLES}
    m["agent_talk_s"], m["customer_talk_s"] = round(talk["agent"], 2), round(talk["customer"], 2)
    m["talk_ratio"] = round(talk["agent"] / talk["customer"], 2) if talk["customer"] else None
    m["overlap_s"] = round(_intersection(act.get("agent", []), act.get("customer", [])), 2)
    tagged = sorted((s, e, r) for r in ROLES for s, e in act.get(r, []))
    gaps: list[tuple[float, str]] = []  # (length, role that ends the gap)
    covered = None
    for s, e, r in tagged:
        if covered is not None and s > covered:
            gaps.append((s - covered, r))
        covered = e if covered is None else max(covered, e)
    dur = duration or (covered or 0.0)
    counted = [g for g in gaps if g[0] >= cfg.silence_min_s]
    m["max_silence_s"] = round(max((g for g, _ in gaps), default=0.0), 2)
    m["silence_s"] = round(sum(g for g, _ in counted), 2)
    m["silence_share"] = round(m["silence_s"] / dur, 3) if dur else None
    holds = [g for g in gaps if g[0] >= cfg.hold_s]
    dead = [g for g in gaps if cfg.dead_air_s <= g[0] < cfg.hold_s]
    m["hold_count"], m["hold_s"] = len(holds), round(sum(g for g, _ in holds), 2)
    m["dead_air_count"], m["dead_air_s"] = len(dead), round(sum(g for g, _ in dead), 2)
    for r in ROLES:
        mine = [g for g, who in gaps if who == r]
        m[f"{r}_max_silence_s"] = round(max(mine, default=0.0), 2)
        m[f"{r}_hold_count"] = sum(1 for g, who in holds if who == r)
        m[f"{r}_dead_air_count"] = sum(1 for g, who in dead if who == r)
    ints = find_interruptions(act, cfg)
    m["agent_interruptions"] = sum(1 for i in ints if i.by == "agent")
    m["customer_interruptions"] = sum(1 for i in ints if i.by == "customer")
    return m, ints


# --- voice: loudness, pitch, agitation ---------------------------------------------------------

def pitch_track(x: np.ndarray, frames: np.ndarray, cfg: AcousticConfig = DEFAULT,
                threshold: float = 0.15) -> np.ndarray:
    """f0 (Hz, NaN where unvoiced) at the given analysis-frame indices: YIN on an 8 kHz copy.

    A small numpy YIN instead of ``librosa.yin``: librosa's numba kernel crashed this numpy/numba
    build (segfault in ``_parabolic_interpolation``), and numba's JIT start-up alone costs seconds
    per worker. Only the frames asked for (the voiced ones) are analysed, which keeps it cheap.
    """
    from scipy.signal import resample_poly

    y = resample_poly(x, cfg.pitch_sr, SR).astype(np.float32) if cfg.pitch_sr != SR else x
    hop = int(cfg.pitch_sr * cfg.frame_s)
    tmin, tmax = int(cfg.pitch_sr / cfg.fmax), int(np.ceil(cfg.pitch_sr / cfg.fmin))
    win = 2 * hop + 1 + tmin  # ~40 ms integration window at 8 kHz
    out = np.full(len(frames), np.nan, dtype=np.float32)
    if len(frames) == 0:
        return out
    pad = np.concatenate([y, np.zeros(win + tmax + 1, dtype=np.float32)])
    starts = np.asarray(frames) * hop
    ok = starts + win + tmax < len(pad)
    idx = starts[ok][:, None] + np.arange(win + tmax + 1)[None, :]
    fr = pad[idx].astype(np.float64)
    base = fr[:, :win]
    d = np.empty((len(fr), tmax + 1))
    d[:, 0] = 0.0
    for tau in range(1, tmax + 1):
        diff = base - fr[:, tau:tau + win]
        d[:, tau] = np.einsum("ij,ij->i", diff, diff)
    cum = np.cumsum(d[:, 1:], axis=1)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] * np.arange(1, tmax + 1) / np.maximum(cum, 1e-12)
    # first lag under the threshold, then down to the bottom of that dip (vectorised YIN step 4)
    below = cmnd[:, tmin:tmax] < threshold
    first = np.argmax(below, axis=1)
    rising = cmnd[:, tmin + 1:tmax + 1] >= cmnd[:, tmin:tmax]
    cols = np.arange(tmax - tmin)[None, :]
    t = tmin + np.argmax(rising & (cols >= first[:, None]), axis=1)
    rows = np.arange(len(fr))
    # a dip on the search limit is no pitch: low hum or noise, not a voice (gave 400 Hz octave errors)
    good = below.any(axis=1) & (t > tmin) & (t < tmax - 1)
    tt = np.clip(t, 1, tmax - 1)
    a, b, e = cmnd[rows, tt - 1], cmnd[rows, tt], cmnd[rows, tt + 1]
    den = a - 2 * b + e
    shift = np.where(den > 0, 0.5 * (a - e) / np.where(den > 0, den, 1.0), 0.0)
    f0 = np.where(good, cfg.pitch_sr / (tt + shift), np.nan)
    out[np.flatnonzero(ok)] = f0
    return out


def voice_features(x: np.ndarray, spans: Sequence[tuple[float, float] | None],
                   cfg: AcousticConfig = DEFAULT) -> list[tuple[float | None, float | None]]:
    """(loudness dBFS, median pitch Hz) of each span's voiced frames on signal ``x``."""
    hop = int(SR * cfg.frame_s)
    db = frame_db(x, hop)
    voiced = speech_mask(db.copy(), cfg)
    want = np.zeros(len(db), dtype=bool)
    for span in spans:
        if span is not None:
            want[int(span[0] / cfg.frame_s):int(np.ceil(span[1] / cfg.frame_s))] = True
    frames = np.flatnonzero(voiced & want)[::2]  # every other voiced frame is plenty for a median
    f0 = np.full(len(db), np.nan, dtype=np.float32)
    f0[frames] = pitch_track(x, frames, cfg)
    out: list[tuple[float | None, float | None]] = []
    for span in spans:
        if span is None:
            out.append((None, None))
            continue
        a, b = int(span[0] / cfg.frame_s), min(int(np.ceil(span[1] / cfg.frame_s)), len(db))
        if b <= a:
            out.append((None, None))
            continue
        sel = voiced[a:b]
        lev = db[a:b][sel] if sel.any() else db[a:b]
        # loudness of the voiced frames as one RMS (energy mean), not a mean of dB values
        loud = float(10 * np.log10(np.mean(10 ** (lev.astype(np.float64) / 10))))
        p = f0[a:b]
        p = p[~np.isnan(p)]
        pitch = float(np.median(p)) if len(p) >= 3 else None
        out.append((round(loud, 2), round(pitch, 1) if pitch else None))
    return out


def _robust_z(values: list[float | None], scale_min: float) -> list[float | None]:
    vals = np.array([v for v in values if v is not None], dtype=np.float64)
    if len(vals) == 0:
        return [None] * len(values)
    med = float(np.median(vals))
    scale = max(1.4826 * float(np.median(np.abs(vals - med))), scale_min)
    return [None if v is None else (v - med) / scale for v in values]


def agitation_scores(loud: list[float | None], pitch: list[float | None],
                     cfg: AcousticConfig = DEFAULT) -> list[float | None]:
    """Mean of loudness and pitch z-scores against the speaker's own median (one speaker's list)."""
    zl = _robust_z(loud, cfg.loud_scale_min_db)
    st = [None if p is None else 12 * float(np.log2(p)) for p in pitch]  # semitones
    zp = _robust_z(st, cfg.pitch_scale_min_st)
    out = []
    for a, b in zip(zl, zp):
        zs = [z for z in (a, b) if z is not None]
        out.append(round(float(np.mean(zs)), 2) if zs else None)
    return out


# --- putting it together -----------------------------------------------------------------------

def _role_channels(tr: Transcript, audio: Any, act_by_channel: list[list[Interval]]) -> dict[str, int]:
    """Which channel carries which role: from the turns' ``channel`` when set, else by which
    channel is active during each role's turns (a transcript given for stereo audio)."""
    votes: dict[str, dict[int, int]] = {}
    for t in tr.turns:
        if t.channel is not None and t.role in ROLES:
            votes.setdefault(t.role, {}).setdefault(t.channel, 0)
            votes[t.role][t.channel] += 1
    if set(votes) == set(ROLES):
        chosen = {r: max(v, key=v.get) for r, v in votes.items()}
        if chosen["agent"] != chosen["customer"]:
            return chosen
    spans = {r: merge([(t.start, t.end) for t in tr.turns if t.role == r
                       and t.start is not None and t.end is not None]) for r in ROLES}
    score = [_intersection(ch, spans["agent"]) - _intersection(ch, spans["customer"])
             for ch in act_by_channel[:2]]
    a = int(np.argmax(score))
    return {"agent": a, "customer": 1 - a}


def acoustic_metrics(tr: Transcript, audio: Any = None,
                     cfg: AcousticConfig = DEFAULT) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(call metrics, per-turn metrics aligned with ``tr.turns``)."""
    lang = "en" if tr.language == "en" else "zh"
    per_turn: list[dict[str, Any]] = [{} for _ in tr.turns]
    call: dict[str, Any] = {"speech_rate_unit": rate_unit(lang)}

    # who speaks when
    channels = tuple(audio.channels) if audio is not None else ()
    signal_of: dict[str, np.ndarray] = {}
    if len(channels) >= 2:
        by_ch = [energy_vad(ch, cfg) for ch in channels[:2]]
        rc = _role_channels(tr, audio, by_ch)
        act = {r: by_ch[rc[r]] for r in ROLES}
        for r in ROLES:  # a channel the VAD finds empty (e.g. very quiet line): use the words
            if not act[r]:
                act[r] = turn_activity(tr.turns, r, cfg.vad_bridge_s)
        signal_of = {r: channels[rc[r]] for r in ROLES}
        call["activity_source"] = "channel_vad"
    else:
        act = {r: turn_activity(tr.turns, r, cfg.vad_bridge_s) for r in ROLES}
        if channels:
            signal_of = {r: channels[0] for r in ROLES}
        call["activity_source"] = "timestamps"
    duration = audio.duration if audio is not None else tr.duration
    if duration:
        call["duration_s"] = round(float(duration), 2)
    # speech rate
    units = {r: 0 for r in ROLES}
    secs = {r: 0.0 for r in ROLES}
    vad_act = act if call["activity_source"] == "channel_vad" else None
    for i, t in enumerate(tr.turns):
        n = speech_units(t.text, lang)
        span = _speech_time(t, vad_act.get(t.role) if vad_act else None, cfg.rate_pause_s)
        if span and span > 0 and n:
            per_turn[i]["speech_rate"] = round(n / span * 60, 1)
            if t.role in units:
                units[t.role] += n
                secs[t.role] += span
    for r in ROLES:
        call[f"speech_rate_{r}"] = round(units[r] / secs[r] * 60, 1) if secs[r] else None
    if lang == "zh":
        call["speech_rate_cpm"] = call["speech_rate_agent"]  # the name the rule language declared

    ints: list[Interruption] = []
    if any(act.values()):  # no timed speech at all: leave the timing metrics "not available"
        timing, ints = timing_metrics(act, duration, cfg)
        call.update(timing)

    # onset of each turn relative to the other role's previous speech (negative: talked over)
    last_end: dict[str, float] = {}
    for i, t in enumerate(tr.turns):
        if t.start is None or t.role not in ROLES:
            continue
        other = "customer" if t.role == "agent" else "agent"
        if other in last_end:
            per_turn[i]["onset_s"] = round(t.start - last_end[other], 2)
        if t.end is not None:
            last_end[t.role] = max(last_end.get(t.role, t.end), t.end)
    for it in ints:
        best, dist = None, None
        for i, t in enumerate(tr.turns):
            if t.role != it.by or t.start is None or t.end is None:
                continue
            if t.start - 1.0 <= it.at <= t.end:
                d = abs(t.start - it.at)
                if dist is None or d < dist:
                    best, dist = i, d
        if best is not None:
            per_turn[best].setdefault("interruptions", []).append(it.as_dict())

    # loudness, pitch, agitation (needs audio)
    if signal_of:
        feats: dict[int, tuple[float | None, float | None]] = {}
        for r in ROLES:
            idx = [i for i, t in enumerate(tr.turns) if t.role == r]
            if not idx:
                continue
            spans = [(t.start, t.end) if t.start is not None and t.end is not None and t.end > t.start
                     else None for t in (tr.turns[i] for i in idx)]
            for i, f in zip(idx, voice_features(signal_of[r], spans, cfg)):
                feats[i] = f
            ag = agitation_scores([feats[i][0] for i in idx], [feats[i][1] for i in idx], cfg)
            for i, a in zip(idx, ag):
                loud, pitch = feats[i]
                if loud is not None:
                    per_turn[i]["loudness_db"] = loud
                if pitch is not None:
                    per_turn[i]["pitch_hz"] = pitch
                if a is not None:
                    per_turn[i]["agitation"] = a
            vals = [a for a in ag if a is not None]
            call[f"{r}_agitation_max"] = max(vals) if vals else None
            louds = [feats[i][0] for i in idx if feats[i][0] is not None]
            call[f"{r}_loudness_db"] = round(float(np.median(louds)), 2) if louds else None
    return call, per_turn


def enrich_acoustics(tr: Transcript, audio: Any = None, cfg: AcousticConfig = DEFAULT) -> Transcript:
    """``tr`` with acoustic metrics merged into ``Transcript.metrics`` and each ``Turn.metrics``."""
    call, per_turn = acoustic_metrics(tr, audio, cfg)
    turns = tuple(dataclasses.replace(t, metrics={**t.metrics, **m}) if m else t
                  for t, m in zip(tr.turns, per_turn))
    return dataclasses.replace(tr, turns=turns, metrics={**tr.metrics, **call})
