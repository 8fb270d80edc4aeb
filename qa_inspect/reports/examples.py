"""Example library for trainers: the strongest calls for one rule, as audio clips plus
transcript excerpts on one gallery page.

``pick_examples`` chooses; ``write_gallery`` cuts the clips and writes the page::

    out_dir/examples.html     one card per example: audio player, excerpt with the hit
                              highlighted, call/agent/time, the rule's title and description
    out_dir/clips/NN_<call>.wav   16 kHz mono PCM clips (the evidence ± ``context`` seconds)

Violations (``kind="violation"``): calls where the rule failed (required item not said) or hit
(forbidden phrase / risk said). Strong = evidence with high confidence from an exact matcher
(keyword/regex before pinyin/fuzzy/semantic), short clear sentences; a failed required item
has no words to point at, so its clip is the agent turn where it should have been said (the
last agent turn for rules scoped to the end of the call, else the first).

Best practice (``kind="best"``): calls where the item passed cleanly — no fatal item, no risk
hit, with the evidence of it being done — ranked by the customer's sentiment at the end
(``customer_sentiment_end`` when the enrichment stage wrote it), then the call score.

Either way agents are spread: the best example of each agent first, then second-best, …

With ``redact`` (the default) personal data is replaced in the excerpt and beeped in the
clip, using word timestamps when the transcript has them (else the turn's time spread over
its characters).
"""
from __future__ import annotations

import logging
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from qa_inspect.errors import QAError
from qa_inspect.records import CallResult, Evidence, RuleResult, Turn
from qa_inspect.redact import redact_spans, redact_text
from qa_inspect.rules.explain import evidence_terms
from qa_inspect.text import highlight, mmss

log = logging.getLogger(__name__)

HTML_NAME = "examples.html"
CLIP_RATE = 16000
BEEP_HZ = 1000.0
_MATCHER_RANK = {"keyword": 1.0, "regex": 1.0, "metric": 0.9, "pinyin": 0.8, "fuzzy": 0.7, "semantic": 0.6}
BEST_SENTIMENT_MIN = 0.0  # best-practice calls must not end with a negative customer


@dataclass
class Example:
    result: CallResult
    rule: RuleResult
    evidence: Evidence | None  # None: a required item that was never said
    anchor_turn: int  # the turn the clip is centred on
    strength: float
    why: str  # one line for the trainer: why this call was chosen
    clip_start: float = 0.0
    clip_end: float = 0.0
    clip_file: str = ""
    clip_error: str = ""
    beeped: list[tuple[float, float]] = field(default_factory=list)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _agent_turn(r: CallResult, last: bool) -> int | None:
    if r.transcript is None:
        return None
    idx = [i for i, t in enumerate(r.transcript.turns) if t.role == "agent"] or list(range(len(r.transcript.turns)))
    return (idx[-1] if last else idx[0]) if idx else None


def _evidence_strength(e: Evidence) -> float:
    clarity = 1.0 / (1.0 + max(len(e.text) - 40, 0) / 80.0)  # a long rambling turn is a weaker example
    return (_num(e.confidence) or 0.0) * _MATCHER_RANK.get(e.matcher, 0.5) * clarity


def _candidates(results: Sequence[CallResult], rule_id: str, kind: str,
                scoped_to_end: bool) -> list[Example]:
    out = []
    for r in results:
        if r.status != "ok" or r.transcript is None or not r.transcript.turns:
            continue
        x = next((x for x in r.rules if x.rule_id == rule_id), None)
        if x is None:
            continue
        if kind == "violation":
            if x.outcome not in ("fail", "hit"):
                continue
            if x.evidence:
                e = max(x.evidence, key=_evidence_strength)
                out.append(Example(r, x, e, e.turn, _evidence_strength(e),
                                   f"{e.matcher} “{e.matched}”, confidence {_num(e.confidence) or 0:.2f}"))
            else:
                t = _agent_turn(r, last=scoped_to_end)
                if t is not None:
                    # nothing to point at: weaker than any example with words
                    out.append(Example(r, x, None, t, 0.3, x.reason or "not said"))
        else:
            # a model call: the item passed, nothing fatal, no risk, no forbidden phrase anywhere
            if (x.outcome != "pass" or (r.score is not None and r.score.fatal) or r.risk_hits
                    or any(y.kind == "forbidden" and y.outcome in ("fail", "hit") for y in r.rules)):
                continue
            sent = _num(r.metrics.get("customer_sentiment_end"))
            if sent is not None and sent < BEST_SENTIMENT_MIN:
                continue
            score = (_num(r.score.score) if r.score else None) or 0.0
            base = (sent if sent is not None else 0.0) + score / 100.0
            why = f"score {score:g}" + (f", customer sentiment at end {sent:+.2f}" if sent is not None else "")
            if x.evidence:
                e = max(x.evidence, key=_evidence_strength)
                out.append(Example(r, x, e, e.turn, base + _evidence_strength(e), why))
            else:  # a forbidden item passes by not being said: show how the agent opened instead
                t = _agent_turn(r, last=False)
                if t is not None:
                    out.append(Example(r, x, None, t, base, why))
    return out


def pick_examples(results: Sequence[CallResult], rule_id: str, *, kind: str = "violation", n: int = 10,
                  scoped_to_end: bool = False) -> list[Example]:
    """The ``n`` strongest examples of ``rule_id``, spread over agents (see the module doc)."""
    if kind not in ("violation", "best"):
        raise QAError(f"kind must be violation or best, not {kind!r}")
    cands = sorted(_candidates(results, rule_id, kind, scoped_to_end),
                   key=lambda e: (-e.strength, e.result.call.call_id))
    by_agent: dict[str, list[Example]] = defaultdict(list)
    order: list[str] = []
    for c in cands:
        a = c.result.call.agent_id or c.result.call.agent_name or c.result.call.call_id
        if a not in by_agent:
            order.append(a)
        by_agent[a].append(c)
    picked: list[Example] = []
    depth = 0
    while len(picked) < n and any(len(v) > depth for v in by_agent.values()):
        for a in order:  # agents in order of their best example: strongest first in each round
            if len(by_agent[a]) > depth and len(picked) < n:
                picked.append(by_agent[a][depth])
        depth += 1
    return picked


# --------------------------------------------------------------------------- clips

def clip_window(ex: Example, context: float) -> tuple[float, float]:
    """Seconds of the clip: the evidence (or the anchor turn) with ``context`` either side."""
    turns = ex.result.transcript.turns if ex.result.transcript else ()
    t = turns[ex.anchor_turn] if 0 <= ex.anchor_turn < len(turns) else None
    start = ex.evidence.start if ex.evidence and ex.evidence.start is not None else (t.start if t else None)
    end = ex.evidence.end if ex.evidence and ex.evidence.end is not None else (t.end if t else None)
    if start is None:
        return 0.0, 0.0
    end = end if end is not None else start + 5.0
    dur = ex.result.transcript.duration if ex.result.transcript else None
    hi = end + context
    if dur:
        hi = min(hi, float(dur))
    return max(0.0, start - context), max(hi, start)


def beep(samples: np.ndarray, spans: Sequence[tuple[float, float]], offset: float,
         rate: int = CLIP_RATE) -> np.ndarray:
    """``samples`` with each (start, end) second span, relative to ``offset``, replaced by a tone."""
    out = samples.copy()
    for s, e in spans:
        a, b = max(0, int((s - offset) * rate)), min(len(out), int(math.ceil((e - offset) * rate)))
        if b > a:
            t = np.arange(b - a) / rate
            out[a:b] = (0.3 * np.sin(2 * math.pi * BEEP_HZ * t)).astype(out.dtype)
    return out


def redaction_spans(turns: Sequence[Turn], start: float, end: float) -> list[tuple[float, float]]:
    """Seconds to beep within [start, end]: personal data in any turn that overlaps it."""
    spans = []
    for t in turns:
        if t.start is not None and t.end is not None and (t.end < start or t.start > end):
            continue
        for sp in redact_spans(t):
            if sp.end > start and sp.start < end:
                spans.append((max(sp.start, start), min(sp.end, end)))
    return spans


def cut_clips(examples: Sequence[Example], clips_dir: Path, *, context: float = 3.0,
              redact: bool = True, base_dir: Path | None = None) -> None:
    """Decode each call once and write its clips; a call whose audio is missing or broken gets
    ``clip_error`` set instead (the card still shows the transcript)."""
    import soundfile as sf

    from qa_inspect.speech.decode import decode

    clips_dir.mkdir(parents=True, exist_ok=True)
    cache: dict[str, Any] = {}
    for i, ex in enumerate(examples, 1):
        ex.clip_start, ex.clip_end = clip_window(ex, context)
        path = ex.result.call.path
        if not path:
            ex.clip_error = "no audio path recorded for this call"
            continue
        p = Path(path)
        if not p.is_absolute() and base_dir is not None and not p.exists():
            p = base_dir / p
        if str(p) not in cache:
            try:
                cache[str(p)] = decode(p)
            except QAError as e:
                cache[str(p)] = e
        audio = cache[str(p)]
        if isinstance(audio, QAError):
            ex.clip_error = str(audio)
            continue
        if ex.clip_end <= ex.clip_start:
            ex.clip_error = "no timestamps for this evidence"
            continue
        mono = audio.mono
        a, b = int(ex.clip_start * CLIP_RATE), min(len(mono), int(ex.clip_end * CLIP_RATE))
        if b - a < CLIP_RATE // 10:
            ex.clip_error = "evidence lies outside the audio"
            continue
        seg = np.asarray(mono[a:b], dtype=np.float32)
        if redact:
            ex.beeped = redaction_spans(ex.result.transcript.turns, ex.clip_start, ex.clip_end)
            seg = beep(seg, ex.beeped, ex.clip_start)
        name = f"{i:02d}_{re.sub(r'[^A-Za-z0-9_-]+', '_', ex.result.call.call_id)[:60]}.wav"
        sf.write(str(clips_dir / name), np.clip(seg, -1.0, 1.0), CLIP_RATE, subtype="PCM_16")
        ex.clip_file = f"{clips_dir.name}/{name}"


# --------------------------------------------------------------------------- page

def _card(ex: Example, redact: bool, best: bool) -> dict[str, Any]:
    from qa_inspect.reports.batch import ROLE_LABELS

    text = redact_text if redact else (lambda s: s)
    c, turns = ex.result.call, ex.result.transcript.turns if ex.result.transcript else ()
    rows = []
    for i, t in enumerate(turns):
        inside = (t.start is not None and t.end is not None and t.end > ex.clip_start and t.start < ex.clip_end)
        if not (inside or i == ex.anchor_turn):
            continue
        shown = text(t.text)
        hit = i == ex.anchor_turn
        if hit and ex.evidence is not None:
            segments = highlight(shown, [text(w) for w in evidence_terms(ex.evidence)])
        else:
            segments = [(shown, hit and best)] if shown else []
        rows.append({"role": ROLE_LABELS.get(t.role, t.role), "role_key": t.role,
                     "time": f"{mmss(t.start)}–{mmss(t.end)}", "segments": segments, "hit": hit})
    return {"call_id": c.call_id, "agent": " ".join(p for p in (c.agent_name, f"({c.agent_id})" if c.agent_id else "") if p),
            "team": c.team, "started_at": c.started_at,
            "score": f"{ex.result.score.score:g}" if ex.result.score else "—",
            "grade": ex.result.score.grade if ex.result.score else "",
            "outcome": ex.rule.outcome, "why": ex.why, "reason": ex.rule.reason,
            "span": f"{mmss(ex.clip_start)}–{mmss(ex.clip_end)}", "clip": ex.clip_file,
            "clip_error": ex.clip_error, "beeped": len(ex.beeped), "turns": rows}


def write_gallery(results: Sequence[CallResult], rule_id: str, out_dir: Path, *, kind: str = "violation",
                  n: int = 10, redact: bool = True, context: float = 3.0, rule_title: str = "",
                  rule_description: str = "", scoped_to_end: bool = False,
                  base_dir: Path | None = None, generated_at: datetime | None = None,
                  lang: str = "zh") -> tuple[Path, list[Example]]:
    """Pick, cut and write the gallery (in ``lang``: zh | en); return the page path and the examples."""
    from qa_inspect.reports.i18n import template_env

    if not any(x.rule_id == rule_id for r in results for x in r.rules):
        raise QAError(f"rule {rule_id!r} is not in any stored result (check the id with `qa-inspect rules validate`)")
    examples = pick_examples(results, rule_id, kind=kind, n=n, scoped_to_end=scoped_to_end)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cut_clips(examples, out_dir / "clips", context=context, redact=redact, base_dir=base_dir)
    title = rule_title or next((x.title for r in results for x in r.rules if x.rule_id == rule_id and x.title), rule_id)
    env = template_env(Path(__file__).parent / "templates", lang)
    now = (generated_at or datetime.now().astimezone()).replace(microsecond=0).isoformat(sep=" ")
    html = env.get_template("examples.html.j2").render(
        rule_id=rule_id, rule_title=title, rule_description=rule_description, kind=kind,
        cards=[_card(ex, redact, kind == "best") for ex in examples], generated_at=now, redacted=redact, n=n)
    page = out_dir / HTML_NAME
    page.write_text(html, encoding="utf-8")
    log.info("examples: %d for %s (%s) -> %s", len(examples), rule_id, kind, page)
    return page, examples
