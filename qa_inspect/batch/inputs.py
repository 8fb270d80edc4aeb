"""Turn a batch input (audio folder, manifest CSV/JSONL, transcripts JSONL) into work items.

A bad row never stops the batch: it becomes a work item carrying its error.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa_inspect.speech.decode import SUPPORTED_SUFFIXES
from qa_inspect.errors import InputError
from qa_inspect.records import CHANNEL_LAYOUTS, CallInput, Transcript, Turn


@dataclass(frozen=True)
class WorkItem:
    call: CallInput
    transcript: Transcript | None = None  # given turns (transcripts input): no audio stages
    error: str = ""  # a bad input row: recorded as an error result


MANIFEST_FIELDS = ("call_id", "path", "agent_id", "agent_name", "team", "started_at",
                   "channel_layout", "language")


def _from_manifest_row(row: dict[str, Any], base: Path, src: str, default_layout: str,
                       language: str) -> WorkItem:
    unknown = set(row) - set(MANIFEST_FIELDS) - {None}
    cid = str(row.get("call_id") or "").strip()
    path = str(row.get("path") or "").strip()
    # stored absolute, so reports, the gallery and the workspace find the audio from any folder
    call = CallInput(call_id=cid or f"<{src}>", path=str((base / path).absolute()) if path else "",
                     agent_id=str(row.get("agent_id") or ""), agent_name=str(row.get("agent_name") or ""),
                     team=str(row.get("team") or ""), started_at=str(row.get("started_at") or ""),
                     channel_layout=str(row.get("channel_layout") or default_layout),
                     language=str(row.get("language") or language), source_line=src)
    problems = []
    if not cid:
        problems.append("missing call_id")
    if not path:
        problems.append("missing path")
    elif not (base / path).exists():
        problems.append(f"audio file not found: {path}")
    if call.channel_layout not in CHANNEL_LAYOUTS:
        problems.append(f"channel_layout {call.channel_layout!r} is not one of {', '.join(CHANNEL_LAYOUTS)}")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(sorted(map(str, unknown)))}")
    return WorkItem(call=call, error=f"{src}: " + "; ".join(problems) if problems else "")


def _transcript_line(d: Any, src: str, language: str) -> WorkItem:
    if not isinstance(d, dict):
        raise InputError("line is not a JSON object", src)
    cid = str(d.get("call_id") or "").strip()
    if not cid:
        raise InputError("missing call_id", src)
    lang = str(d.get("language") or language)
    call = CallInput(call_id=cid, agent_id=str(d.get("agent_id") or ""),
                     agent_name=str(d.get("agent_name") or ""), team=str(d.get("team") or ""),
                     started_at=str(d.get("started_at") or ""), channel_layout="mono",
                     language=lang, source_line=src)
    turns = d.get("turns")
    if not isinstance(turns, list) or not turns:
        return WorkItem(call=call, error=f"{src}: 'turns' must be a non-empty list")
    out = []
    for i, t in enumerate(turns):
        if not isinstance(t, dict) or t.get("role") not in ("agent", "customer") or not isinstance(t.get("text"), str):
            return WorkItem(call=call, error=f"{src}: turn {i} needs role agent|customer and text")
        out.append(Turn(role=t["role"], text=t["text"], start=t.get("start"), end=t.get("end")))
    ends = [t.end for t in out if t.end is not None]
    tr = Transcript(call_id=cid, language=lang, turns=tuple(out),
                    duration=max(ends) if ends else None, role_method="given",
                    asr={"model": "given", "source": src})
    return WorkItem(call=call, transcript=tr)


def read_input(path: str | Path, *, default_layout: str = "stereo_agent_left",
               language: str = "zh") -> list[WorkItem]:
    """Work items in input order; duplicate call_ids after the first become error items."""
    p = Path(path)
    if not p.exists():
        raise InputError("input not found", str(p))
    items: list[WorkItem] = []
    if p.is_dir():
        for f in sorted(p.rglob("*")):
            if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES:
                items.append(WorkItem(CallInput(call_id=f.stem, path=str(f.absolute()), channel_layout=default_layout,
                                                language=language, source_line=str(f))))
    elif p.suffix.lower() == ".csv":
        with open(p, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "path" not in reader.fieldnames or "call_id" not in reader.fieldnames:
                raise InputError(f"manifest needs columns {', '.join(MANIFEST_FIELDS)}", f"{p}:1")
            for n, row in enumerate(reader, start=2):
                items.append(_from_manifest_row(row, p.parent, f"{p}:{n}", default_layout, language))
    elif p.suffix.lower() in (".jsonl", ".ndjson"):
        with open(p, encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                src = f"{p}:{n}"
                try:
                    d = json.loads(line)
                except json.JSONDecodeError as e:
                    items.append(WorkItem(CallInput(call_id=f"<{p.name}:{n}>", source_line=src),
                                          error=f"{src}: not valid JSON ({e.msg} at column {e.colno})"))
                    continue
                try:
                    if isinstance(d, dict) and "turns" in d:
                        items.append(_transcript_line(d, src, language))
                    elif isinstance(d, dict):
                        items.append(_from_manifest_row(d, p.parent, src, default_layout, language))
                    else:
                        raise InputError("line is not a JSON object", src)
                except InputError as e:
                    items.append(WorkItem(CallInput(call_id=f"<{p.name}:{n}>", source_line=src), error=str(e)))
    elif p.suffix.lower() in SUPPORTED_SUFFIXES:
        items.append(WorkItem(CallInput(call_id=p.stem, path=str(p.absolute()), channel_layout=default_layout,
                                        language=language, source_line=str(p))))
    else:
        raise InputError("input must be a folder of audio, a manifest (.csv/.jsonl), "
                         "a transcripts .jsonl or an audio file", str(p))
    seen: dict[str, str] = {}
    out = []
    for it in items:
        cid = it.call.call_id
        if cid in seen and not it.error:
            it = WorkItem(call=CallInput(**{**it.call.__dict__, "call_id": f"{cid}#dup@{it.call.source_line}"}),
                          error=f"{it.call.source_line}: duplicate call_id {cid!r} (first at {seen[cid]})")
        seen.setdefault(cid, it.call.source_line)
        out.append(it)
    return out
