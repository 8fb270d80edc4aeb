"""Typed records passed between stages.

Every stage is a function from these records to these records. This module depends on
nothing but the standard library; ``to_dict``/``from_dict`` give the JSON shape that the
store keeps and that ``qa-inspect export`` publishes (the public contract: fields may be
added, never renamed).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any, Literal

Role = Literal["agent", "customer", "unknown"]
ChannelLayout = Literal["stereo_agent_left", "stereo_agent_right", "mono"]
CHANNEL_LAYOUTS: tuple[str, ...] = ("stereo_agent_left", "stereo_agent_right", "mono")
Outcome = Literal["pass", "fail", "hit", "n/a"]


@dataclass(frozen=True)
class CallInput:
    """One call to inspect: an audio file (or given turns) plus the manifest metadata."""

    call_id: str
    path: str = ""
    agent_id: str = ""
    agent_name: str = ""
    team: str = ""
    started_at: str = ""
    channel_layout: str = "mono"
    language: str = ""
    source_line: str = ""  # "manifest.csv:7" — where this call came from, for error messages
    # service fields (issue 15), all optional: "" / None = not given, and the KPIs that need
    # them show "—". customer_id is the manifest's id, or "h:" + a keyed hash of a caller number
    # (the number itself is never kept).
    customer_id: str = ""
    queue: str = ""  # skill group (技能组)
    direction: str = ""  # inbound | outbound
    disposition: str = ""  # wrap-up code (处理结果)
    hold_s: float | None = None  # seconds on hold
    wrap_s: float | None = None  # after-call work seconds (话后处理)


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float
    probability: float = 1.0


@dataclass(frozen=True)
class Turn:
    role: str
    text: str
    start: float | None = None
    end: float | None = None
    words: tuple[Word, ...] = ()
    channel: int | None = None
    # per-utterance enrichment stored with the transcript: speech_rate, loudness, pitch,
    # agitation, sentiment, ... (see qa_inspect.enrich); omitted from the JSON when empty
    metrics: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        # what ``asdict`` gives (same keys, order and values), built directly: asdict's generic
        # recursion was ~5 % of a transcript import's CPU (53 turns a call, each with metrics)
        d: dict[str, Any] = {"role": self.role, "text": self.text, "start": self.start, "end": self.end,
                             "words": tuple({"text": w.text, "start": w.start, "end": w.end,
                                             "probability": w.probability} for w in self.words),
                             "channel": self.channel}
        if self.metrics:
            d["metrics"] = {k: (list(v) if isinstance(v, (list, tuple)) else dict(v) if isinstance(v, dict) else v)
                            for k, v in self.metrics.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Turn":
        words = tuple(Word(**w) for w in d.get("words") or ())
        return cls(role=d["role"], text=d["text"], start=d.get("start"), end=d.get("end"),
                   words=words, channel=d.get("channel"), metrics=dict(d.get("metrics") or {}))


@dataclass(frozen=True)
class Transcript:
    """What was said, by whom and when; carries the ASR settings that produced it."""

    call_id: str
    language: str
    turns: tuple[Turn, ...]
    duration: float | None = None
    role_method: str = "given"  # channel | content | given
    asr: dict[str, Any] = field(default_factory=dict)  # model, compute_type, device, options
    # call-level enrichment computed once from the audio/text and stored with the transcript
    # (acoustic and sentiment metrics; see qa_inspect.enrich)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "call_id": self.call_id, "language": self.language, "duration": self.duration,
            "role_method": self.role_method, "asr": dict(self.asr),
            "turns": [t.to_dict() for t in self.turns],
        }
        if self.metrics:
            d["metrics"] = dict(self.metrics)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Transcript":
        return cls(call_id=d["call_id"], language=d.get("language", ""),
                   turns=tuple(Turn.from_dict(t) for t in d.get("turns", [])),
                   duration=d.get("duration"), role_method=d.get("role_method", "given"),
                   asr=dict(d.get("asr") or {}), metrics=dict(d.get("metrics") or {}))


@dataclass(frozen=True)
class Evidence:
    """The words, speaker and seconds behind a rule hit."""

    role: str
    turn: int
    start: float | None
    end: float | None
    text: str
    matcher: str = "keyword"  # keyword | regex | pinyin | fuzzy | semantic | metric
    matched: str = ""  # the term that fired, as the rule wrote it ("投诉≈头诉": phrase ≈ heard)
    confidence: float = 1.0
    # the words heard in the turn that made the hit, as matched on the normalised text: the
    # phrase (one per phrase of an ``all``), the window a pinyin/fuzzy step heard, a regex's
    # match; empty for semantic and metric evidence and for records stored before this field
    heard: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.heard, tuple):  # from JSON: a list
            object.__setattr__(self, "heard", tuple(self.heard))


@cache
def _field_names(cls: type) -> frozenset[str]:
    """A dataclass's field names (``fields()`` walks the class each time: ~10 % of reading
    100,000 stored results back for the report)."""
    return frozenset(f.name for f in fields(cls))


@dataclass(frozen=True)
class RuleResult:
    rule_id: str
    title: str
    category: str
    severity: str
    matched: bool  # the rule's condition was found in the call
    outcome: str  # pass | fail | hit | n/a
    deduction: float
    fatal: bool = False
    kind: str = "required"  # required | forbidden | risk
    evidence: tuple[Evidence, ...] = ()
    reason: str = ""  # one line: why it passed / failed / was not applicable

    def to_dict(self) -> dict[str, Any]:
        # what asdict gives (evidence as a list), built directly: asdict's generic recursion
        # was ~6 % of a transcript import's CPU (13 rules a call); tests compare the two
        return {"rule_id": self.rule_id, "title": self.title, "category": self.category,
                "severity": self.severity, "matched": self.matched, "outcome": self.outcome,
                "deduction": self.deduction, "fatal": self.fatal, "kind": self.kind,
                "evidence": [{"role": e.role, "turn": e.turn, "start": e.start, "end": e.end, "text": e.text,
                              "matcher": e.matcher, "matched": e.matched, "confidence": e.confidence,
                              "heard": tuple(e.heard)} for e in self.evidence],
                "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RuleResult":
        names = _field_names(cls)
        kw = {k: v for k, v in d.items() if k in names and k != "evidence"}
        return cls(**kw, evidence=tuple(Evidence(**e) for e in d.get("evidence", [])))


@dataclass(frozen=True)
class ScoreItem:
    """One line of a call's score breakdown: what one scorecard item did to the score."""

    rule_id: str
    section: str  # scorecard section id; "bonus", "fatal", or the rule's category (no scorecard)
    outcome: str  # the rule's outcome: pass | fail | hit | n/a
    points: float  # effect on the score: negative = deduction, positive = bonus, 0 = none
    possible: float = 0.0  # the item's nominal points in the scorecard
    note: str = ""  # why: "n/a: excluded", "section cap 15 reached", "fatal: call scores 0"
    evidence: str = ""  # reference to the words behind it: "turn 4 agent 00:35: …" or the rule's reason
    turns: tuple[int, ...] = ()  # turn indexes of the evidence

    def to_dict(self) -> dict[str, Any]:
        # what asdict gives (turns as a list), built directly (see RuleResult.to_dict)
        return {"rule_id": self.rule_id, "section": self.section, "outcome": self.outcome,
                "points": self.points, "possible": self.possible, "note": self.note,
                "evidence": self.evidence, "turns": list(self.turns)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ScoreItem":
        names = _field_names(cls)
        kw = {k: v for k, v in d.items() if k in names and k != "turns"}
        return cls(**kw, turns=tuple(d.get("turns") or ()))


@dataclass(frozen=True)
class Score:
    score: float
    grade: str
    fatal: bool
    deductions: tuple[tuple[str, float], ...] = ()  # (rule_id, points)
    # added for scorecards (qa_inspect.scoring.scorecard): the per-item breakdown and what produced it
    breakdown: tuple[ScoreItem, ...] = ()
    scorecard_id: str = ""  # "" = the rule pack's own deductions (qa_inspect.scoring)
    scorecard_version: str = ""


@dataclass(frozen=True)
class CallResult:
    """Everything the batch knows about one call; one row of the export."""

    call: CallInput
    status: str  # ok | error
    error: str = ""
    transcript: Transcript | None = None
    rules: tuple[RuleResult, ...] = ()
    score: Score | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    audio_hash: str = ""
    config_hash: str = ""
    pack_id: str = ""
    pack_hash: str = ""

    @property
    def risk_hits(self) -> list[RuleResult]:
        return [r for r in self.rules if r.kind == "risk" and r.matched]

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.rules if r.outcome in ("fail", "hit") and r.kind != "risk"]

    def to_dict(self) -> dict[str, Any]:
        """The public export record."""
        sc = self.score
        return {
            "call_id": self.call.call_id, "agent_id": self.call.agent_id,
            "agent_name": self.call.agent_name, "team": self.call.team,
            "started_at": self.call.started_at, "path": self.call.path,
            "channel_layout": self.call.channel_layout, "language": self.call.language,
            "customer_id": self.call.customer_id, "queue": self.call.queue,
            "direction": self.call.direction, "disposition": self.call.disposition,
            "hold_s": self.call.hold_s, "wrap_s": self.call.wrap_s,
            "status": self.status, "error": self.error,
            "score": sc.score if sc else None, "grade": sc.grade if sc else None,
            "fatal": sc.fatal if sc else False,
            "score_breakdown": [i.to_dict() for i in sc.breakdown] if sc else [],
            "scorecard_id": sc.scorecard_id if sc else "",
            "scorecard_version": sc.scorecard_version if sc else "",
            "rules": [r.to_dict() for r in self.rules],
            "metrics": dict(self.metrics),
            "transcript": self.transcript.to_dict() if self.transcript else None,
            "audio_hash": self.audio_hash, "config_hash": self.config_hash,
            "pack_id": self.pack_id, "pack_hash": self.pack_hash,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CallResult":
        call = CallInput(call_id=d["call_id"], path=d.get("path", ""),
                         agent_id=d.get("agent_id", ""), agent_name=d.get("agent_name", ""),
                         team=d.get("team", ""), started_at=d.get("started_at", ""),
                         channel_layout=d.get("channel_layout", "mono"),
                         language=d.get("language", ""), customer_id=d.get("customer_id") or "",
                         queue=d.get("queue") or "", direction=d.get("direction") or "",
                         disposition=d.get("disposition") or "", hold_s=d.get("hold_s"),
                         wrap_s=d.get("wrap_s"))
        score = None
        if d.get("score") is not None:
            items = tuple(ScoreItem.from_dict(i) for i in d.get("score_breakdown") or ())
            score = Score(score=d["score"], grade=d["grade"], fatal=d.get("fatal", False),
                          deductions=tuple((i.rule_id, -i.points) for i in items if i.points < 0),
                          breakdown=items, scorecard_id=d.get("scorecard_id", ""),
                          scorecard_version=d.get("scorecard_version", ""))
        tr = Transcript.from_dict(d["transcript"]) if d.get("transcript") else None
        return cls(call=call, status=d["status"], error=d.get("error", ""), transcript=tr,
                   rules=tuple(RuleResult.from_dict(r) for r in d.get("rules", [])),
                   score=score, metrics=dict(d.get("metrics") or {}),
                   audio_hash=d.get("audio_hash", ""), config_hash=d.get("config_hash", ""),
                   pack_id=d.get("pack_id", ""), pack_hash=d.get("pack_hash", ""))
