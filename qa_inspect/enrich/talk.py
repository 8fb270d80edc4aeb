"""Call-level talk metrics computed from turn timestamps (cheap; no audio needed).

The baseline for every call. ``qa_inspect.enrich.acoustics`` (run by ``enrich``) computes the same keys
from the audio (or from word timestamps) plus many more, stored in ``Transcript.metrics``;
``pipeline.score_transcript`` merges those over these, so the enrichment values win when present.
"""
from __future__ import annotations

from typing import Any

from qa_inspect.records import Transcript


def talk_metrics(tr: Transcript, duration: float | None = None) -> dict[str, Any]:
    timed = sorted((t for t in tr.turns if t.start is not None and t.end is not None),
                   key=lambda t: t.start)
    dur = duration if duration is not None else tr.duration
    m: dict[str, Any] = {"turns": len(tr.turns), "duration_s": round(dur, 2) if dur else None}
    if not timed:
        return m
    talk = {"agent": 0.0, "customer": 0.0}
    for t in timed:
        if t.role in talk:
            talk[t.role] += t.end - t.start
    # silence: gaps where nobody speaks (union of speech intervals), including lead-in
    gaps, covered_to, interruptions = [], 0.0, {"agent": 0, "customer": 0}
    prev = None
    for t in timed:
        if t.start > covered_to:
            gaps.append(t.start - covered_to)
        elif prev is not None and t.role != prev.role and t.start < prev.end - 0.3:
            interruptions[t.role] = interruptions.get(t.role, 0) + 1  # starts >0.3 s before the other ends
        covered_to = max(covered_to, t.end)
        prev = t
    m.update({
        "agent_talk_s": round(talk["agent"], 2), "customer_talk_s": round(talk["customer"], 2),
        "talk_ratio": round(talk["agent"] / talk["customer"], 2) if talk["customer"] else None,
        "max_silence_s": round(max(gaps), 2) if gaps else 0.0,
        "silence_share": round(sum(gaps) / dur, 3) if dur else None,
        "agent_interruptions": interruptions["agent"],
        "customer_interruptions": interruptions["customer"],
    })
    return m
