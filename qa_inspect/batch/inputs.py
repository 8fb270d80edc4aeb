"""Turn a batch input (audio folder, manifest CSV/JSONL, transcripts JSONL) into work items.

A bad row never stops the batch: it becomes a work item carrying its error. What a user can
feed in is bounded (``InputLimits``): line size, JSON nesting depth, turns per call and
characters per turn; a row over a limit is an error row saying which limit and how to raise
it. Files saved as UTF-8 (with or without BOM) or GBK/GB18030 (Excel's default on Chinese
Windows) are read; the encoding used is logged.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from qa_inspect.speech.decode import SUPPORTED_SUFFIXES
from qa_inspect.errors import InputError
from qa_inspect.records import CHANNEL_LAYOUTS, CallInput, Transcript, Turn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkItem:
    call: CallInput
    transcript: Transcript | None = None  # given turns (transcripts input): no audio stages
    error: str = ""  # a bad input row: recorded as an error result


MANIFEST_FIELDS = ("call_id", "path", "agent_id", "agent_name", "team", "started_at",
                   "channel_layout", "language")
# optional service fields (issue 15); ``caller`` (a phone number) is kept only as a keyed hash
SERVICE_FIELDS = ("customer_id", "caller", "queue", "direction", "disposition", "hold_s", "wrap_s")
DIRECTIONS = {"inbound": "inbound", "in": "inbound", "呼入": "inbound",
              "outbound": "outbound", "out": "outbound", "呼出": "outbound"}
CUSTOMER_KEY_ENV = "QA_INSPECT_CUSTOMER_KEY"
_MAX_SERVICE_S = 86_400.0  # a day: hold/wrap beyond it is a typo


def customer_key(db: str | Path | None = None) -> bytes | None:
    """The key that hashes caller numbers: ``$QA_INSPECT_CUSTOMER_KEY``, else a key file beside
    a SQLite database (``qa.db.customer-key``, created once, mode 0600), else None. The same key
    must be used every night, or the same caller gets a different id and repeat contacts vanish."""
    env = os.environ.get(CUSTOMER_KEY_ENV, "")
    if env:
        return env.encode()
    if db is None or str(db).startswith(("postgresql://", "postgres://")):
        return None
    s = str(db)[len("sqlite:///"):] if str(db).startswith("sqlite:///") else str(db)
    kf = Path(s + ".customer-key")
    if not kf.exists():
        kf.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(kf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(32).hex())
    return kf.read_text().strip().encode()


def hash_caller(number: str, key: bytes) -> str:
    """``h:`` + HMAC-SHA256 of the caller number's digits (so 138-0013-8000 and 13800138000 match)."""
    digits = "".join(ch for ch in number if ch.isdigit()) or number.strip()
    return "h:" + hmac.new(key, digits.encode(), hashlib.sha256).hexdigest()[:32]


def _service_seconds(v: Any, name: str, problems: list[str]) -> float | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    try:
        if isinstance(v, bool):
            raise ValueError
        x = float(v)
    except (TypeError, ValueError):
        problems.append(f"{name} {v!r} 不是秒数 / is not a number of seconds")
        return None
    if not math.isfinite(x) or x < 0 or x > _MAX_SERVICE_S:
        problems.append(f"{name} {v!r} 必须在 0 到 86400 秒之间 / must be 0..86400 seconds")
        return None
    return x


def service_fields(row: dict[str, Any], key: Any) -> tuple[dict[str, Any], list[str]]:
    """The optional service fields of a manifest row / transcript line, and what is wrong with them."""
    problems: list[str] = []
    cust = str(row.get("customer_id") or "").strip()
    caller = str(row.get("caller") or "").strip()
    if caller and not cust:
        key = key() if callable(key) else key  # the key file is made only when a caller needs it
        if key is None:
            problems.append(f"caller given but no key to hash it: set {CUSTOMER_KEY_ENV}")
        else:
            cust = hash_caller(caller, key)
    direction = str(row.get("direction") or "").strip()
    if direction:
        if direction.lower() not in DIRECTIONS:
            problems.append(f"direction {direction!r} is not one of inbound, outbound (呼入, 呼出)")
            direction = ""
        else:
            direction = DIRECTIONS[direction.lower()]
    out = {"customer_id": cust, "queue": str(row.get("queue") or "").strip(), "direction": direction,
           "disposition": str(row.get("disposition") or "").strip(),
           "hold_s": _service_seconds(row.get("hold_s"), "hold_s", problems),
           "wrap_s": _service_seconds(row.get("wrap_s"), "wrap_s", problems)}
    return out, problems


@dataclass(frozen=True)
class InputLimits:
    """What one input line / call may hold. Defaults from the environment (README "Limits")."""

    # QA_INSPECT_MAX_LINE_BYTES: one CSV/JSONL line (a 1-hour call is ~0.3 MB; parsing a
    # line of tiny JSON objects takes ~70 bytes of memory per input byte)
    max_line_bytes: int = 4 * 1024 * 1024
    max_depth: int = 20  # QA_INSPECT_MAX_JSON_DEPTH: nesting of one JSONL line (a transcript needs 5)
    max_turns: int = 10_000  # QA_INSPECT_MAX_TURNS: turns of one call
    max_turn_chars: int = 20_000  # QA_INSPECT_MAX_TURN_CHARS: characters of one turn
    max_cell_chars: int = 4_096  # QA_INSPECT_MAX_CELL_CHARS: one manifest cell (ids, paths)

    ENV = {"max_line_bytes": "QA_INSPECT_MAX_LINE_BYTES", "max_depth": "QA_INSPECT_MAX_JSON_DEPTH",
           "max_turns": "QA_INSPECT_MAX_TURNS", "max_turn_chars": "QA_INSPECT_MAX_TURN_CHARS",
           "max_cell_chars": "QA_INSPECT_MAX_CELL_CHARS"}

    @classmethod
    def from_env(cls) -> "InputLimits":
        kw = {}
        for name, var in cls.ENV.items():
            raw = os.environ.get(var, "").strip()
            if raw:
                try:
                    kw[name] = int(raw)
                    if kw[name] < 1:
                        raise ValueError
                except ValueError:
                    raise InputError(f"{var}={raw!r}: expected a whole number ≥ 1") from None
        return cls(**kw)

    def env(self, name: str) -> str:
        return self.ENV[name]


# --- encodings ---------------------------------------------------------------------------

_SAMPLE = 1 << 20  # bytes looked at to choose a file's encoding


def detect_encoding(p: Path) -> str:
    """``utf-8-sig`` / ``utf-8`` / ``gb18030`` by a strict try-order over the file's first MiB:
    a UTF-8 BOM wins; else UTF-8 if any non-ASCII line is valid UTF-8 (then a line that is not
    becomes an error row); else GB18030 (a superset of GBK and GB2312) if every line decodes."""
    with open(p, "rb") as fh:
        head = fh.read(_SAMPLE)
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError("文件是 UTF-16 编码 / saved as UTF-16: save it as UTF-8 (Excel: "
                         "\"CSV UTF-8\") or GBK", str(p))
    lines = head.split(b"\n")
    if len(head) == _SAMPLE and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut in the middle of a character
    non_ascii = [ln for ln in lines if not ln.isascii()]
    if not non_ascii:
        return "utf-8"
    for ln in non_ascii:
        try:
            ln.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError:
            pass
    try:
        for ln in non_ascii:
            ln.decode("gb18030")
        return "gb18030"
    except UnicodeDecodeError:
        return "utf-8"  # neither: each bad line becomes an error row


def _bounded_lines(fh: IO[bytes], max_bytes: int) -> Iterator[tuple[int, bytes | None, int]]:
    """``(line number, raw line or None if longer than max_bytes, size)``; never holds more
    than ``max_bytes`` of one line in memory."""
    n = 0
    while True:
        line = fh.readline(max_bytes + 1)
        if not line:
            return
        n += 1
        if len(line) > max_bytes and not line.endswith(b"\n"):
            size = len(line)
            while True:  # skip the rest of this line
                chunk = fh.readline(1 << 20)
                size += len(chunk)
                if not chunk or chunk.endswith(b"\n"):
                    break
            yield n, None, size
        else:
            yield n, line, len(line)


def _too_long(size: int, limits: InputLimits) -> str:
    return (f"行过长 / line too long: {size:,} bytes, the limit is {limits.max_line_bytes:,} "
            f"({limits.env('max_line_bytes')})")


def _has_surrogates(s: str) -> bool:
    try:
        s.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


# --- manifest rows ------------------------------------------------------------------------

def _from_manifest_row(row: dict[str, Any], base: Path, src: str, default_layout: str,
                       language: str, key: Any = None) -> WorkItem:
    unknown = set(row) - set(MANIFEST_FIELDS) - set(SERVICE_FIELDS) - {None}
    service, problems = service_fields(row, key)
    cid = str(row.get("call_id") or "").strip()
    path = str(row.get("path") or "").strip()
    # stored absolute, so reports, the gallery and the workspace find the audio from any folder
    call = CallInput(call_id=cid or f"<{src}>", path=str((base / path).absolute()) if path else "",
                     agent_id=str(row.get("agent_id") or ""), agent_name=str(row.get("agent_name") or ""),
                     team=str(row.get("team") or ""), started_at=str(row.get("started_at") or ""),
                     channel_layout=str(row.get("channel_layout") or default_layout),
                     language=str(row.get("language") or language), source_line=src, **service)
    if not cid:
        problems.append("missing call_id")
    if not path:
        problems.append("missing path")
    elif (base / path).is_dir():
        problems.append(f"audio path is a folder, not a file: {path}")
    elif not (base / path).exists():
        problems.append(f"audio file not found: {path}")
    elif not (base / path).is_file():  # a device or a pipe (/dev/zero would be read forever)
        problems.append(f"audio path is not a regular file: {path}")
    if call.channel_layout not in CHANNEL_LAYOUTS:
        problems.append(f"channel_layout {call.channel_layout!r} is not one of {', '.join(CHANNEL_LAYOUTS)}")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(sorted(map(str, unknown)))}")
    return WorkItem(call=call, error=f"{src}: " + "; ".join(problems) if problems else "")


def _bad(p: Path, n: int, reason: str) -> WorkItem:
    src = f"{p}:{n}"
    return WorkItem(CallInput(call_id=f"<{p.name}:{n}>", source_line=src), error=f"{src}: {reason}")


def _read_csv(p: Path, enc: str, limits: InputLimits, default_layout: str,
              language: str, key: Any = None) -> list[WorkItem]:
    items: list[WorkItem] = []
    too_long: dict[int, int] = {}
    with open(p, "rb") as fh:
        def text_lines() -> Iterator[str]:
            for n, raw, size in _bounded_lines(fh, limits.max_line_bytes):
                if raw is None:
                    too_long[n] = size
                    yield "\n"  # an empty row in its place: reported below
                else:
                    yield raw.decode(enc, errors="surrogateescape")

        reader = csv.reader(text_lines())
        try:
            header = next(reader, None)
        except csv.Error as e:
            raise InputError(f"cannot read the header ({e})", f"{p}:1") from None
        if 1 in too_long:
            raise InputError(_too_long(too_long[1], limits), f"{p}:1")
        header = [h.strip() for h in header or ()]
        if "path" not in header or "call_id" not in header:
            raise InputError(f"manifest needs columns {', '.join(MANIFEST_FIELDS)}", f"{p}:1")
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:  # e.g. a cell over the csv module's field limit
                items.append(_bad(p, reader.line_num, f"not a valid CSV row ({e}); a manifest cell "
                                                      f"may hold {limits.max_cell_chars:,} characters"))
                continue
            n = reader.line_num
            if n in too_long:
                items.append(_bad(p, n, _too_long(too_long[n], limits)))
                continue
            if not row or not any(c.strip() for c in row):
                continue
            big = max(len(c) for c in row)
            if big > limits.max_cell_chars:
                items.append(_bad(p, n, f"单元格过长 / cell too long: {big:,} characters, the limit is "
                                        f"{limits.max_cell_chars:,} ({limits.env('max_cell_chars')})"))
                continue
            if any(_has_surrogates(c) for c in row):
                items.append(_bad(p, n, f"编码错误 / bytes that are not valid {enc} text: re-save the "
                                        "file as UTF-8 or GBK"))
                continue
            items.append(_from_manifest_row(dict(zip(header, row)), p.parent, f"{p}:{n}",
                                            default_layout, language, key))
    return items


# --- transcripts ------------------------------------------------------------------------

# a \uD800-\uDFFF escape: the only way a lone surrogate gets into text decoded from valid
# UTF-8/GB18030 (a pair of them is a proper character: the per-string check below decides)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _depth_and_surrogates(d: Any, max_depth: int, strings: bool = True) -> str:
    """Why a parsed JSON value is refused ('' if fine): nesting deeper than ``max_depth`` or
    a string with a lone surrogate (cannot be stored as UTF-8). ``strings=False``: the line
    had no surrogate escape, so only the nesting is checked."""
    lone = "a string holds a lone surrogate (\\ud800-\\udfff): not valid Unicode text"
    if isinstance(d, str):
        return lone if strings and _has_surrogates(d) else ""
    stack = [(d, 1)] if isinstance(d, (dict, list)) else []
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            if strings and any(_has_surrogates(k) for k in v):
                return "a key holds a lone surrogate (\\ud800-\\udfff): not valid Unicode text"
            v = v.values()
        if depth > max_depth:
            return f"nested deeper than {max_depth} levels"
        for x in v:
            if isinstance(x, (dict, list)):
                stack.append((x, depth + 1))
            elif strings and isinstance(x, str) and _has_surrogates(x):
                return lone
    return ""


def _too_many_turns(n: int, limits: InputLimits) -> str:
    return f"轮次过多 / too many turns: {n:,}, the limit is {limits.max_turns:,} ({limits.env('max_turns')})"


def _seconds(v: Any, what: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(f"{what} {v!r} is not a number of seconds")
    if not math.isfinite(v) or v < 0:
        raise InputError(f"{what} {v!r} must be a finite number of seconds ≥ 0")
    return float(v)


def _transcript_line(d: Any, src: str, language: str, limits: InputLimits,
                     key: bytes | None = None) -> WorkItem:
    if not isinstance(d, dict):
        raise InputError("line is not a JSON object", src)
    cid = str(d.get("call_id") or "").strip()
    if not cid:
        raise InputError("missing call_id", src)
    lang = str(d.get("language") or language)
    service, problems = service_fields(d, key)
    call = CallInput(call_id=cid, agent_id=str(d.get("agent_id") or ""),
                     agent_name=str(d.get("agent_name") or ""), team=str(d.get("team") or ""),
                     started_at=str(d.get("started_at") or ""), channel_layout="mono",
                     language=lang, source_line=src, **service)
    if problems:
        return WorkItem(call=call, error=f"{src}: " + "; ".join(problems))
    turns = d.get("turns")
    if not isinstance(turns, list) or not turns:
        return WorkItem(call=call, error=f"{src}: 'turns' must be a non-empty list")
    if len(turns) > limits.max_turns:
        return WorkItem(call=call, error=f"{src}: {_too_many_turns(len(turns), limits)}")
    out = []
    for i, t in enumerate(turns):
        if not isinstance(t, dict) or t.get("role") not in ("agent", "customer") or not isinstance(t.get("text"), str):
            return WorkItem(call=call, error=f"{src}: turn {i} needs role agent|customer and text")
        if len(t["text"]) > limits.max_turn_chars:
            return WorkItem(call=call, error=f"{src}: turn {i}: 文本过长 / text too long: "
                                             f"{len(t['text']):,} characters, the limit is "
                                             f"{limits.max_turn_chars:,} ({limits.env('max_turn_chars')})")
        try:
            start, end = _seconds(t.get("start"), "start"), _seconds(t.get("end"), "end")
            if start is not None and end is not None and end < start:
                raise InputError(f"end {end:g} is before start {start:g}")
        except InputError as e:
            return WorkItem(call=call, error=f"{src}: turn {i}: 时间无效 / bad time: {e}")
        out.append(Turn(role=t["role"], text=t["text"], start=start, end=end))
    ends = [t.end for t in out if t.end is not None]
    tr = Transcript(call_id=cid, language=lang, turns=tuple(out),
                    duration=max(ends) if ends else None, role_method="given",
                    asr={"model": "given", "source": src})
    return WorkItem(call=call, transcript=tr)


def _iter_jsonl(p: Path, enc: str, limits: InputLimits, default_layout: str,
                language: str, key: Any = None) -> Iterator[WorkItem]:
    """The work items of a JSONL file, one line at a time (never the whole file in memory)."""
    with open(p, "rb") as fh:
        for n, raw, size in _bounded_lines(fh, limits.max_line_bytes):
            if raw is None:
                yield _bad(p, n, _too_long(size, limits))
                continue
            if not raw.strip():
                continue
            src = f"{p}:{n}"
            try:
                line = raw.decode(enc)
            except UnicodeDecodeError as e:
                yield _bad(p, n, f"编码错误 / not valid {enc} text (byte 0x{raw[e.start]:02x} at "
                                 f"byte {e.start + 1} of the line)")
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                yield _bad(p, n, f"not valid JSON ({e.msg} at column {e.colno})")
                continue
            except RecursionError:
                yield _bad(p, n, f"嵌套过深 / JSON nested deeper than {limits.max_depth} levels "
                                 f"({limits.env('max_depth')})")
                continue
            turns = d.get("turns") if isinstance(d, dict) else None
            if isinstance(turns, list) and len(turns) > limits.max_turns:  # before walking them all
                cid = d.get("call_id")
                bad = _bad(p, n, _too_many_turns(len(turns), limits))
                if isinstance(cid, str) and cid.strip() and len(cid) <= limits.max_cell_chars \
                        and not _has_surrogates(cid):
                    bad = WorkItem(CallInput(call_id=cid.strip(), source_line=src), error=bad.error)
                yield bad
                continue
            why = _depth_and_surrogates(d, limits.max_depth, bool(_SURROGATE_ESCAPE.search(line)))
            if why:
                env = f" ({limits.env('max_depth')})" if why.startswith("nested") else ""
                yield _bad(p, n, f"{why}{env}")
                continue
            try:
                if isinstance(d, dict) and "turns" in d:
                    item = _transcript_line(d, src, language, limits, key)
                elif isinstance(d, dict):
                    big = max((len(str(v)) for v in d.values()), default=0)
                    if big > limits.max_cell_chars:
                        raise InputError(f"单元格过长 / field too long: {big:,} characters, the limit is "
                                         f"{limits.max_cell_chars:,} ({limits.env('max_cell_chars')})", src)
                    item = _from_manifest_row(d, p.parent, src, default_layout, language, key)
                else:
                    raise InputError("line is not a JSON object", src)
            except InputError as e:
                item = WorkItem(CallInput(call_id=f"<{p.name}:{n}>", source_line=src), error=str(e))
            yield item


def read_input(path: str | Path, *, default_layout: str = "stereo_agent_left",
               language: str = "zh", limits: InputLimits | None = None,
               customer_key: Any = None) -> list[WorkItem]:
    """Work items in input order; duplicate call_ids after the first become error items.
    ``customer_key`` (bytes, or a callable giving them when first needed) hashes a ``caller``
    column (default: ``$QA_INSPECT_CUSTOMER_KEY``)."""
    _, segments = read_input_segments(path, default_layout=default_layout, language=language, limits=limits,
                                      customer_key=customer_key, size=0)
    return [it for seg in segments for it in seg]


# A transcripts JSONL is read this many calls at a time by `run` (each segment parsed, run and
# stored before the next is read): the driver holds one segment, ~30 KB a MUSIED-sized call
# (~0.6 GB), not the night's file (5 GB at 190,000 calls). QA_INSPECT_SEGMENT_CALLS changes it.
SEGMENT_CALLS = 20_000


def segment_calls() -> int:
    raw = os.environ.get("QA_INSPECT_SEGMENT_CALLS", "").strip()
    try:
        n = int(raw) if raw else SEGMENT_CALLS
    except ValueError:
        n = 0
    if n < 1:
        raise InputError(f"QA_INSPECT_SEGMENT_CALLS={raw!r}: expected a whole number ≥ 1", "environment")
    return n


def read_input_segments(path: str | Path, *, default_layout: str = "stereo_agent_left",
                        language: str = "zh", limits: InputLimits | None = None,
                        customer_key: Any = None, size: int | None = None) -> tuple[int, Iterator[list[WorkItem]]]:
    """``(number of calls, segments)``: the input's work items (as ``read_input``: input order,
    a duplicate call_id after the first an error item, across segments too) in lists of at
    most ``size`` (default ``segment_calls()``; 0: one list). A JSONL file is parsed one
    segment at a time, as the segments are taken (the count comes from a pass over its lines
    that parses nothing); other inputs (folders, CSV manifests: no text) are read at once.
    Raises ``InputError`` now for a missing or unsupported input."""
    p = Path(path)
    if not p.exists():
        raise InputError("input not found", str(p))
    size = segment_calls() if size is None else size
    limits = limits or InputLimits.from_env()
    jsonl = p.is_file() and p.suffix.lower() in (".jsonl", ".ndjson")
    if p.is_dir():
        items: Iterable[WorkItem] = [
            WorkItem(CallInput(call_id=f.stem, path=str(f.absolute()), channel_layout=default_layout,
                               language=language, source_line=str(f)))
            for f in sorted(p.rglob("*")) if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES]
    elif p.suffix.lower() in (".csv", ".jsonl", ".ndjson"):
        enc = detect_encoding(p)
        log.info("%s: read as %s", p, {"utf-8-sig": "UTF-8 (with BOM)", "utf-8": "UTF-8",
                                       "gb18030": "GB18030 (GBK)"}[enc])
        key = customer_key if customer_key is not None else (
            os.environ[CUSTOMER_KEY_ENV].encode() if os.environ.get(CUSTOMER_KEY_ENV) else None)
        items = _iter_jsonl(p, enc, limits, default_layout, language, key) if jsonl \
            else _read_csv(p, enc, limits, default_layout, language, key)
    elif p.suffix.lower() in SUPPORTED_SUFFIXES:
        items = [WorkItem(CallInput(call_id=p.stem, path=str(p.absolute()), channel_layout=default_layout,
                                    language=language, source_line=str(p)))]
    else:
        raise InputError("input must be a folder of audio, a manifest (.csv/.jsonl), "
                         "a transcripts .jsonl or an audio file", str(p))
    if jsonl:
        with open(p, "rb") as fh:  # one item per non-blank line (an over-long one is an error item)
            total = sum(1 for _, raw, _ in _bounded_lines(fh, limits.max_line_bytes) if raw is None or raw.strip())
    else:
        items = list(items)
        total = len(items)
    return total, _segments(_unique(items), size)


def _unique(items: Iterable[WorkItem]) -> Iterator[WorkItem]:
    """``items`` with each duplicate call_id after the first turned into an error item."""
    seen: dict[str, str] = {}
    for it in items:
        cid = it.call.call_id
        if cid in seen and not it.error:
            it = WorkItem(call=CallInput(**{**it.call.__dict__, "call_id": f"{cid}#dup@{it.call.source_line}"}),
                          error=f"{it.call.source_line}: duplicate call_id {cid!r} (first at {seen[cid]})")
        seen.setdefault(cid, it.call.source_line)
        yield it


def _segments(items: Iterator[WorkItem], size: int) -> Iterator[list[WorkItem]]:
    seg: list[WorkItem] = []
    for it in items:
        seg.append(it)
        if size and len(seg) >= size:
            yield seg
            seg = []
    if seg:
        yield seg
