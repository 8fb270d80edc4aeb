"""Record a drawn sample (database + worksheet) and import a reviewer's filled worksheet."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from qa_inspect.errors import QAError
from qa_inspect.store import WorkflowStore
from qa_inspect.workflow.db import WorkflowError, now_iso
from qa_inspect.workflow.sampling import Draw, SamplingPlan, describe_draw, draw_sample, sample_id_for
from qa_inspect.workflow.worksheet import (CALL_ITEM, COLUMNS, MACHINE_COLS, SHEET, SHEET_NAMES, VERDICTS, SheetRow,
                                          checksum, header_key, norm_cell, outcome_key, rows_for_call, verdict_key,
                                          write_worksheet)

FLAGGED = ("fail", "hit")  # machine outcomes that mean "violation / risk found"


def _redactor(redact: bool) -> Callable[[str], str] | None:
    if not redact:
        return None
    try:  # written alongside this module by another change; imported only when needed
        from qa_inspect.redact import redact_text
    except ImportError as e:
        raise WorkflowError(f"--redact needs qa_inspect.redact ({e}); use --no-redact to write evidence as is")
    return redact_text


@dataclass
class SampleInfo:
    sample_id: str
    worksheet: Path
    draw: Draw
    rows: int
    new: bool  # False: the same sample (plan, seed, calls) was drawn before
    assigned: list[tuple[str, str]] = field(default_factory=list)  # (call, reviewer) from the plan's reviewers

    def summary(self) -> dict[str, Any]:
        per: dict[str, int] = {}
        for _cid, who in self.assigned:
            per[who] = per.get(who, 0) + 1
        return {"sample_id": self.sample_id, "worksheet": str(self.worksheet), "rows": self.rows,
                "new": self.new, **describe_draw(self.draw), **({"assigned": per} if per else {})}


def create_sample(store: WorkflowStore, plan: SamplingPlan, seed: int, out: str | Path, *,
                  redact: bool = True, alert_levels: Mapping[str, str] | None = None,
                  lang: str = "zh") -> SampleInfo:
    """Draw the sample, record it in the database (one transaction) and write the worksheet.
    ``alert_levels``: call id -> alert level, for plans that include alert levels."""
    red = _redactor(redact)
    results = {r.call.call_id: r for r in store.results()}
    draw = draw_sample(list(results.values()), plan, seed, alert_levels)
    sid = sample_id_for(plan, seed, draw.ids) + ("" if redact else "-raw")
    rows: list[SheetRow] = []
    for d in draw.calls:
        rows += rows_for_call(sid, results[d.call_id], red, lang)
    new = not store.sample_exists(sid)
    calls = []
    for d in draw.calls:
        r = results[d.call_id]
        sc = r.score
        calls.append((sid, r.call.call_id, r.call.agent_id, r.call.started_at, r.call.path, d.reason,
                      sc.score if sc else None, sc.grade if sc else None, int(bool(sc and sc.fatal)),
                      r.config_hash))
    store.record_sample(  # one transaction
        (sid, plan.id, plan.version, plan.hash, seed, now_iso(), str(out)), calls,
        [(sid, row.call_id, row.item, row.title, row.machine_verdict, row.machine_points, row.evidence, row.time)
         for row in rows])
    meta = {"sample_id": sid, "plan": f"{plan.id} {plan.version} ({plan.source})", "seed": seed,
            "calls": len(draw.calls), "redacted": "yes" if redact else "no", "created_at": now_iso()}
    path = write_worksheet(out, rows, meta, lang=lang)
    assigned: list[tuple[str, str]] = []
    if plan.reviewers and draw.calls:  # the plan's reviewers get the calls round-robin (workspace queue)
        from qa_inspect.workflow.workspace import assign

        assigned = assign(store, sid, list(plan.reviewers), check_users=False)
    return SampleInfo(sid, path, draw, len(rows), new, assigned)


# --- import -------------------------------------------------------------------------------

@dataclass
class ImportReport:
    source: str
    rows: int = 0  # data rows read (blank rows not counted)
    items: int = 0  # item verdicts recorded
    scores: int = 0  # manual call scores recorded
    not_reviewed: int = 0  # rows left blank by the reviewer
    errors: list[QAError] = field(default_factory=list)
    calls: set[str] = field(default_factory=set)


# What a worksheet may hold (README "Limits"): its parts unpacked together, and its rows.
# A review sheet of 1,000 calls × 20 items is ~20,000 rows and a few MiB.
MAX_SHEET_MB = 50  # QA_INSPECT_MAX_SHEET_MB
MAX_SHEET_ROWS = 100_000  # QA_INSPECT_MAX_SHEET_ROWS


def _limit(var: str, default: int) -> int:
    import os

    raw = os.environ.get(var, "").strip()
    try:
        return max(int(raw), 1) if raw else default
    except ValueError:
        raise WorkflowError(f"{var}={raw!r}: expected a whole number") from None


_DTD_MARKS = tuple(m.encode(enc) for m in ("<!DOCTYPE", "<!ENTITY") for enc in ("utf-8", "utf-16-le", "utf-16-be"))


def _check_workbook(path: Path) -> None:
    """Refuse, before any XML is parsed, a workbook that unpacks to more than the size limit
    (a zip bomb: 1 MB holding a 1 GB cell) or whose XML declares a DTD (entity expansion,
    external entities: an .xlsx never needs one). zipfile stops reading a part at the size
    its directory declares, so the declared sizes bound what is read."""
    import zipfile

    cap = _limit("QA_INSPECT_MAX_SHEET_MB", MAX_SHEET_MB) * 1024 * 1024
    try:
        with zipfile.ZipFile(path) as zf:
            parts = zf.infolist()
            total = sum(i.file_size for i in parts)
            if total > cap:
                raise WorkflowError(f"工作表过大 / worksheet unpacks to {total / 2**20:,.0f} MiB, the limit is "
                                    f"{cap / 2**20:,.0f} MiB (QA_INSPECT_MAX_SHEET_MB); nothing imported", str(path))
            for i in parts:  # every part: a sheet can live under any name the rels point to
                with zf.open(i) as fh:
                    tail = b""
                    while chunk := fh.read(1 << 20):
                        if any(m in tail + chunk for m in _DTD_MARKS):
                            raise WorkflowError(f"{i.filename} declares a DTD/entities (not written by Excel "
                                                "or `qa-inspect sample`); nothing imported", str(path))
                        tail = chunk[-32:]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as e:
        raise WorkflowError(f"cannot read worksheet ({type(e).__name__}: {e}); is it an .xlsx?", str(path)) from None


def _sheet_rows(path: Path):
    from openpyxl import load_workbook

    _check_workbook(path)
    try:
        wb = load_workbook(path, data_only=True, read_only=True)
    except Exception as e:  # not an xlsx, truncated file, …: one clear line
        raise WorkflowError(f"cannot read worksheet ({type(e).__name__}: {e})", str(path))
    name = next((n for n in SHEET_NAMES.values() if n in wb.sheetnames), None)
    if name is None:
        raise WorkflowError(f"no sheet named '{SHEET_NAMES['zh']}' or '{SHEET}' (sheets: {', '.join(wb.sheetnames)})",
                            f"{path}:row 1")
    return wb, wb[name].iter_rows(values_only=True)


def import_worksheet(store: WorkflowStore, path: str | Path, reviewer: str) -> ImportReport:
    """Record ``reviewer``'s verdicts and manual scores from a filled worksheet.

    Validated row by row: a bad row becomes an error ``file:row N: reason`` and every good row
    is still recorded (one transaction at the end). Verdicts are keyed by (sample, call,
    reviewer, item), so importing the same sheet again replaces, never double counts. A header
    without the expected columns is an error for the whole sheet (nothing can be matched)."""
    p = Path(path)
    if not reviewer.strip():
        raise WorkflowError("a reviewer name is needed (--reviewer)")
    if not p.is_file():
        raise WorkflowError("worksheet not found", str(p))
    rep = ImportReport(source=str(p))
    wb, it = _sheet_rows(p)
    try:
        header = next(it, None)
        names = [header_key(h) for h in (header or ())]  # Chinese or English headers
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise WorkflowError(f"missing column(s) {', '.join(missing)} (expected: {', '.join(COLUMNS)}); "
                                "is this a worksheet written by `qa-inspect sample`?", f"{p}:row 1")
        col = {n: names.index(n) for n in COLUMNS}
        items: dict[tuple, tuple] = {}  # (sample, call, rule) -> (verdict, note, machine_outcome, where)
        scores: dict[tuple, tuple] = {}  # (sample, call) -> (score, note, where)
        seen_rows: dict[tuple, int] = {}
        cells = []
        max_rows = _limit("QA_INSPECT_MAX_SHEET_ROWS", MAX_SHEET_ROWS)
        for n, values in enumerate(it, start=2):
            if n > max_rows + 1:
                raise WorkflowError(f"工作表行数过多 / more than {max_rows:,} rows (QA_INSPECT_MAX_SHEET_ROWS); "
                                    "nothing imported", f"{p}:row {n}")
            cell = {k: (values[i] if i < len(values) else None) for k, i in col.items()}
            if any(norm_cell(v) != "" for v in cell.values()):
                cells.append((n, cell))
    finally:
        wb.close()
    # the sheet's own sample of each call (an added row belongs to the sample on the sheet)
    sheet_sample: dict[str, str] = {}
    for _n, cell in cells:
        parts = norm_cell(cell["row_id"]).split("|")
        if len(parts) == 3:
            sheet_sample.setdefault(parts[1], parts[0])
    for n, cell in cells:
        rep.rows += 1
        where = f"{p}:row {n}"
        try:
            _check_row(store, cell, where, items, scores, seen_rows, n, rep, sheet_sample)
        except WorkflowError as e:
            rep.errors.append(e)
    keys = {(sid, cid) for sid, cid, _ in items} | set(scores)
    store.record_review(  # the good rows, all at once (one transaction)
        reviewer,
        [(sid, cid, rid, outcome, verdict, note, where)
         for (sid, cid, rid), (verdict, note, outcome, where) in items.items()],
        [(sid, cid, *scores.get((sid, cid), (None, None, None))) for sid, cid in sorted(keys)],
        now_iso())
    rep.calls.update(cid for _sid, cid in keys)
    rep.items, rep.scores = len(items), len(scores)
    return rep


def _check_row(store: WorkflowStore, cell: dict, where: str, items: dict, scores: dict, seen_rows: dict, n: int,
               rep: ImportReport, sheet_sample: dict[str, str]) -> None:
    cell = {**cell, "machine_verdict": outcome_key(cell["machine_verdict"])}  # 未通过 → fail
    verdict = verdict_key(cell["reviewer_verdict"])  # 确认/误报/漏检 or the English words
    note = norm_cell(cell["reviewer_note"])
    raw_score = cell["manual_score"]
    row_id = norm_cell(cell["row_id"])
    call_id, item = norm_cell(cell["call_id"]), norm_cell(cell["item"])
    if verdict and verdict not in VERDICTS:
        raise WorkflowError(f"reviewer_verdict {verdict!r} is not one of 确认, 误报, 漏检 "
                            f"({', '.join(VERDICTS)})", where)

    if not row_id:  # a row the reviewer added: a miss the machine did not list
        if not call_id or not item:
            raise WorkflowError("an added row needs call_id and item (the rule id)", where)
        sid = sheet_sample.get(call_id)
        if sid is None:
            raise WorkflowError(f"unknown call {call_id!r}: not in this worksheet's sample", where)
        if verdict != "missed":
            raise WorkflowError(f"an added row records a miss: reviewer_verdict must be 'missed', "
                                f"not {verdict or 'blank'!r}", where)
        if item == CALL_ITEM:
            raise WorkflowError(f"item {CALL_ITEM} cannot be added; put the manual score on the call's row", where)
        stored = store.sample_item(sid, call_id, item)
        other = (stored[1],) if stored is not None else None  # the machine outcome
        if other is not None and other[0] in FLAGGED:
            raise WorkflowError(f"item {item!r} of call {call_id!r} is already flagged by the machine "
                                f"({other[0]}): use 'confirmed' on its row", where)
        key = (sid, call_id, item)
        if key in items:
            raise WorkflowError(f"item {item!r} of call {call_id!r} already has a verdict "
                                f"({items[key][3].rsplit(':', 1)[-1]})", where)
        items[key] = ("missed", note, other[0] if other else "absent", where)
        return

    parts = row_id.split("|")
    if len(parts) != 3:
        raise WorkflowError(f"row_id {row_id!r} is not sample|call|item (hidden column edited?)", where)
    sid, rid_call, rid_item = parts
    if not store.sample_exists(sid):
        raise WorkflowError(f"unknown sample {sid!r} (was this sheet written for another database?)", where)
    call = store.sample_call(sid, rid_call)
    if call is None:
        raise WorkflowError(f"unknown call {rid_call!r}: not in sample {sid}", where)
    stored = store.sample_item(sid, rid_call, rid_item)
    if stored is None:
        raise WorkflowError(f"unknown item {rid_item!r} for call {rid_call!r} in sample {sid}", where)
    want = dict(zip(MACHINE_COLS, (rid_call, call[0], call[1], rid_item, stored[0], stored[1], stored[2],
                                   stored[3], stored[4], call[2])))
    edited = [c for c in MACHINE_COLS if norm_cell(cell[c]) != norm_cell(want[c])]
    if edited:
        shown = "; ".join(f"{c} {norm_cell(want[c])[:30]!r} → {norm_cell(cell[c])[:30]!r}" for c in edited[:3])
        raise WorkflowError(f"machine column(s) edited: {shown} — restore them (the reviewer columns of this "
                            "row were not recorded)", where)
    if norm_cell(cell["check"]) != checksum(row_id, [want[c] for c in MACHINE_COLS]):
        raise WorkflowError("checksum column edited or row copied: row not recorded", where)
    key = (sid, rid_call, rid_item)
    if key in seen_rows:
        raise WorkflowError(f"duplicate row (first on row {seen_rows[key]})", where)
    seen_rows[key] = n
    outcome = stored[1]

    if rid_item == CALL_ITEM:
        if verdict:
            raise WorkflowError("the (call) row takes a manual_score, not a reviewer_verdict", where)
        if norm_cell(raw_score) == "":
            if not note:
                rep.not_reviewed += 1
            return
        try:
            score = float(raw_score)
        except (TypeError, ValueError):
            raise WorkflowError(f"manual_score {raw_score!r} is not a number", where) from None
        if not 0 <= score <= 100:
            raise WorkflowError(f"manual_score {score:g} is outside 0–100", where)
        scores[(sid, rid_call)] = (score, note, where)
        return

    if norm_cell(raw_score) != "":
        raise WorkflowError("manual_score belongs on the call's (call) row, not on an item row", where)
    if not verdict:
        rep.not_reviewed += 1
        return
    flagged = outcome in FLAGGED
    if verdict == "false_positive" and not flagged:
        raise WorkflowError(f"false_positive on an item the machine did not flag ({outcome}); "
                            "use 'missed' if it is a violation, 'confirmed' if not", where)
    if verdict == "missed" and flagged:
        raise WorkflowError(f"missed on an item the machine flagged ({outcome}); use 'confirmed' or "
                            "'false_positive'", where)
    items[key] = (verdict, note, outcome, where)
