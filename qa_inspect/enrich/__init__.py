"""Enrichment: per-utterance and per-call metrics computed once and stored with the transcript.

``enrich`` runs right after transcription (in the process or worker that holds the decoded
audio) and, for transcripts given as input, before the first scoring (``audio`` is None then:
only the text-based metrics apply). What it adds lives in ``Turn.metrics`` and
``Transcript.metrics``; re-scoring reads it from the store and never recomputes it.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

from qa_inspect.records import Transcript


def enrich(tr: Transcript, audio: Any = None) -> Transcript:
    """The transcript with its enrichment metrics filled in (``audio``: ``DecodedAudio`` or None)."""
    tr = _acoustics(tr, audio)
    tr = _sentiment(tr)
    return tr


# The sentiment scorers' cost grows faster than linearly with text length (snownlp segments
# a 100,000-character turn for minutes): each turn is scored on at most this many characters,
# its first and last halves. Environment: QA_INSPECT_SENTIMENT_MAX_CHARS (0 = no cap).
SENTIMENT_MAX_CHARS = 1000


def sentiment_max_chars() -> int:
    raw = os.environ.get("QA_INSPECT_SENTIMENT_MAX_CHARS", "").strip()
    try:
        return max(int(raw), 0) if raw else SENTIMENT_MAX_CHARS
    except ValueError:
        from qa_inspect.errors import QAError

        raise QAError(f"QA_INSPECT_SENTIMENT_MAX_CHARS={raw!r}: expected a whole number") from None


def _capped(text: str, cap: int) -> str:
    return text if not cap or len(text) <= cap else text[:cap // 2] + text[len(text) - (cap - cap // 2):]


def _sentiment(tr: Transcript) -> Transcript:
    """Sentiment per utterance and customer/agent sentiment per call (qa_inspect.enrich.sentiment)."""
    from qa_inspect.errors import QAError
    from qa_inspect.enrich.sentiment import add_sentiment

    cap = sentiment_max_chars()
    try:
        if any(len(t.text) > cap for t in tr.turns) and cap:
            short = dataclasses.replace(tr, turns=tuple(dataclasses.replace(t, text=_capped(t.text, cap))
                                                        for t in tr.turns))
            scored = add_sentiment(short)  # the metrics go back onto the turns with their full text
            return dataclasses.replace(scored, turns=tuple(dataclasses.replace(t, metrics=s.metrics)
                                                           for t, s in zip(tr.turns, scored.turns)))
        return add_sentiment(tr)
    except QAError:  # misconfiguration (e.g. no local model for the transformers backend): say so
        raise
    except Exception:  # a metrics failure must not cost the call its transcript and score
        logging.getLogger(__name__).warning("sentiment failed for %s", tr.call_id, exc_info=True)
        return tr


def _acoustics(tr: Transcript, audio: Any) -> Transcript:
    """Speech rate, silence, overlap, loudness, agitation (qa_inspect.enrich.acoustics)."""
    from qa_inspect.enrich.acoustics import enrich_acoustics

    from qa_inspect.errors import BudgetExceeded

    try:
        return enrich_acoustics(tr, audio)
    except BudgetExceeded:  # the call's time budget: the call fails, naming this stage
        raise
    except Exception:  # a metrics failure must not cost the call its transcript and score
        logging.getLogger(__name__).warning("acoustic metrics failed for %s", tr.call_id, exc_info=True)
        return tr
