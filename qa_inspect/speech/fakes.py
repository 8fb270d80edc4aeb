"""Fakes shipped with the package, for fast tests of the stages after ASR."""
from __future__ import annotations

import json
from pathlib import Path

from qa_inspect.speech.decode import DecodedAudio
from qa_inspect.records import Transcript


class ReferenceTranscriber:
    """A transcriber that returns reference transcripts (JSONL, one call per line) by call_id."""

    def __init__(self, transcripts_jsonl: str | Path) -> None:
        self.by_id: dict[str, Transcript] = {}
        with open(transcripts_jsonl, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    tr = Transcript.from_dict({**json.loads(line), "role_method": "given"})
                    self.by_id[tr.call_id] = tr
        self.calls = 0

    def describe(self) -> dict:
        return {"model": "reference-fake", "device": "none", "compute_type": "none"}

    def transcribe(self, call_id: str, audio: DecodedAudio, layout: str,
                   language: str | None = None) -> Transcript:
        self.calls += 1
        tr = self.by_id[call_id]
        return Transcript(call_id=call_id, language=tr.language, turns=tr.turns,
                          duration=round(audio.duration, 2), role_method="given", asr=self.describe())
