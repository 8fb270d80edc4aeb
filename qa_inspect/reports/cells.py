"""Spreadsheet cells the product writes (CSV and XLSX): one place that neutralises formula
injection (issue 17) and writes CSV the way Excel opens Chinese text (UTF-8 with a BOM).

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a
formula by Excel / LibreOffice (``=HYPERLINK(…)``, ``cmd|' /C calc'!A0``); such text gets a
leading apostrophe, which spreadsheets show as text. Numbers stay numbers (a score of −5 is a
number, not text). Every writer passes every text cell through ``safe_cell`` — identifiers too:
a call id comes from a file name or a manifest the product does not control.
"""
from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(v: Any) -> Any:
    """``v`` unchanged unless it is text a spreadsheet would run as a formula."""
    if isinstance(v, str) and v[:1] in FORMULA_STARTS:
        return "'" + v
    return v


def unsafe_cell(v: Any) -> Any:
    """The text ``safe_cell`` was given (for reading back a sheet the product wrote)."""
    if isinstance(v, str) and len(v) > 1 and v[0] == "'" and v[1] in FORMULA_STARTS:
        return v[1:]
    return v


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV text with every cell passed through ``safe_cell`` (CRLF line ends, as Excel writes)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([safe_cell(h) for h in header])
    for row in rows:
        w.writerow(["" if v is None else safe_cell(v) for v in row])
    return buf.getvalue()


def write_text(path: Path, data: str, *, bom: bool = False) -> Path:
    """Write ``data`` whole (temporary file beside it, then rename) with the permissions the
    umask gives a new file — not mkstemp's 0600, so a shared folder can read the reports."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """A CSV Excel opens correctly: UTF-8 with a BOM, formulas neutralised."""
    return write_text(path, csv_text(header, rows), bom=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def style_sheet(ws, *, percent_cols: Sequence[int] = (), date_cols: Sequence[int] = (),
                widths: dict[int, int] | None = None) -> None:
    """Bold frozen header, autofilter over the data, percent / date number formats on the
    given 1-based columns, column widths from the content (or ``widths``)."""
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    for c in ws[1]:
        c.font = Font(bold=True)
    ws.freeze_panes = "A2"
    if ws.max_column and ws.max_row:
        ws.auto_filter.ref = f"A1:{get_column_letter(ws.max_column)}{max(ws.max_row, 1)}"
    for col in percent_cols:
        for (cell,) in ws.iter_rows(min_row=2, min_col=col, max_col=col):
            cell.number_format = "0.0%"
    for col in date_cols:
        for (cell,) in ws.iter_rows(min_row=2, min_col=col, max_col=col):
            cell.number_format = "yyyy-mm-dd hh:mm"
    for i, col in enumerate(ws.iter_cols(max_row=min(ws.max_row, 200)), start=1):
        if widths and i in widths:
            w = widths[i]
        else:
            w = max(_width(c.value) for c in col)
        ws.column_dimensions[get_column_letter(i)].width = min(max(8, w + 2), 60)


def _width(v: Any) -> int:
    s = "" if v is None else str(v)
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)  # CJK characters are two columns wide
