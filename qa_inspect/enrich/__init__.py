"""Enrichment: per-utterance and per-call metrics computed once and stored with the transcript.

``enrich`` runs right after transcription (in the process or worker that holds the decoded
audio) and, for transcripts given as input, before the first scoring (``audio`` is None then:
only the text-based metrics apply). What it adds lives in ``Turn.metrics`` and
``Transcript.metrics``; re-scoring reads it from the store and never recomputes it.
"""
from __future__ import annotations

import logging
from typing import Any

from qa_inspect.records import Transcript


def enrich(tr: Transcript, audio: Any = None) -> Transcript:
    """The transcript with its enrichment metrics filled in (``audio``: ``DecodedAudio`` or None)."""
    tr = _acoustics(tr, audio)
    tr = _sentiment(tr)
    return tr


def _sentiment(tr: Transcript) -> Transcript:
    """Sentiment per utterance and customer/agent sentiment per call (qa_inspect.enrich.sentiment)."""
    from qa_inspect.errors import QAError
    from qa_inspect.enrich.sentiment import add_sentiment

    try:
        return add_sentiment(tr)
    except QAError:  # misconfiguration (e.g. no local model for the transformers backend): say so
        raise
    except Exception:  # a metrics failure must not cost the call its transcript and score
        logging.getLogger(__name__).warning("sentiment failed for %s", tr.call_id, exc_info=True)
        return tr


def _acoustics(tr: Transcript, audio: Any) -> Transcript:
    """Speech rate, silence, overlap, loudness, agitation (qa_inspect.enrich.acoustics)."""
    from qa_inspect.enrich.acoustics import enrich_acoustics

    try:
        return enrich_acoustics(tr, audio)
    except Exception:  # a metrics failure must not cost the call its transcript and score
        logging.getLogger(__name__).warning("acoustic metrics failed for %s", tr.call_id, exc_info=True)
        return tr
