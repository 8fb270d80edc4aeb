"""Issue 17, worksheets: `review import` of a zip bomb (one 1 GB cell), a 1,000,000-row sheet,
XXE and entity bombs, or something that is not a workbook at all: one line naming the file,
exit code 2, nothing imported, in bounded time and memory."""
from __future__ import annotations

import sqlite3
import zipfile
from pathlib import Path

import pytest

from hostile import assert_user_facing, cli
from qa_inspect.store import open_store
from qa_inspect.workflow.worksheet import COLUMNS, SHEET

SHEET_PART = "xl/worksheets/sheet1.xml"
HEAD = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
TAIL = "</sheetData></worksheet>"


def _header_row() -> str:
    cells = "".join(f'<c r="{chr(65 + i)}1" t="inlineStr"><is><t>{c}</t></is></c>' for i, c in enumerate(COLUMNS))
    return f'<row r="1">{cells}</row>'


def _workbook(tmp_path: Path, name: str, write_sheet, prolog: str = "") -> Path:
    """A real workbook (openpyxl) whose sheet part is replaced by what ``write_sheet`` streams."""
    from openpyxl import Workbook

    base = tmp_path / "base.xlsx"
    wb = Workbook()
    wb.active.title = SHEET
    wb.active.append(list(COLUMNS))
    wb.save(base)
    out = tmp_path / name
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
        for info in src.infolist():
            if info.filename == SHEET_PART:
                with dst.open(SHEET_PART, "w", force_zip64=True) as fh:
                    fh.write((prolog or '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n').encode())
                    fh.write(HEAD.split("\n", 1)[1].encode())
                    fh.write(_header_row().encode())
                    write_sheet(fh)
                    fh.write(TAIL.encode())
            else:
                dst.writestr(info, src.read(info))
    return out


@pytest.fixture()
def db(tmp_path) -> Path:
    p = tmp_path / "qa.db"
    open_store(p).close()
    return p


def _imported(db: Path) -> int:
    with sqlite3.connect(db) as c:
        try:
            return c.execute("SELECT COUNT(*) FROM qc_review_items").fetchone()[0] + \
                c.execute("SELECT COUNT(*) FROM qc_reviews").fetchone()[0]
        except sqlite3.OperationalError:  # tables never created: nothing imported either
            return 0


def _import(tmp_path, db, sheet: Path):
    return cli(["review", "import", sheet.name, "--db", str(db), "--reviewer", "张三"], tmp_path)


def test_zip_bomb_with_a_1_gb_cell(tmp_path, db):
    def bomb(fh):
        fh.write(b'<row r="2"><c r="A2" t="inlineStr"><is><t>')
        chunk = b"x" * (1 << 20)
        for _ in range(1024):  # 1 GiB of one cell, a few MB compressed
            fh.write(chunk)
        fh.write(b"</t></is></c></row>")

    sheet = _workbook(tmp_path, "bomb.xlsx", bomb)
    assert sheet.stat().st_size < 8 * 2**20
    r = _import(tmp_path, db, sheet)
    assert_user_facing(r, 2, "bomb.xlsx: 工作表过大 / worksheet unpacks to 1,024 MiB, the limit is 50 MiB")
    assert _imported(db) == 0


def test_a_million_rows(tmp_path, db):
    def rows(fh):
        for first in range(2, 1_000_002, 10_000):
            fh.write("".join(f'<row r="{n}"><c r="M{n}"><v>1</v></c></row>'
                             for n in range(first, first + 10_000)).encode())

    sheet = _workbook(tmp_path, "rows.xlsx", rows)
    r = _import(tmp_path, db, sheet)
    assert_user_facing(r, 2, "rows.xlsx:row 100002: 工作表行数过多 / more than 100,000 rows (QA_INSPECT_MAX_SHEET_ROWS)")
    assert _imported(db) == 0


@pytest.mark.parametrize("kind,prolog", [
    ("xxe", '<?xml version="1.0"?>\n<!DOCTYPE worksheet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'),
    ("laughs", '<?xml version="1.0"?>\n<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa">'
               + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
               + "]>\n"),
])
def test_xxe_and_entity_bombs(tmp_path, db, kind, prolog):
    ent = "xxe" if kind == "xxe" else "j"

    def row(fh):
        fh.write(f'<row r="2"><c r="A2" t="inlineStr"><is><t>&{ent};</t></is></c></row>'.encode())

    sheet = _workbook(tmp_path, f"{kind}.xlsx", row, prolog)
    r = _import(tmp_path, db, sheet)
    assert_user_facing(r, 2, f"{kind}.xlsx: {SHEET_PART} declares a DTD/entities")
    assert "root:" not in r.text  # /etc/passwd never read into anything
    assert _imported(db) == 0


def test_not_a_workbook(tmp_path, db):
    (tmp_path / "fake.xlsx").write_bytes(b"PK\x03\x04 not really a zip" * 100)
    r = _import(tmp_path, db, tmp_path / "fake.xlsx")
    assert_user_facing(r, 2, "fake.xlsx: cannot read worksheet (BadZipFile")
    assert _imported(db) == 0


def test_dtd_in_a_utf16_part_is_refused_too(tmp_path, db):
    """A sheet part in UTF-16 (legal XML) hides '<!DOCTYPE' from a byte search for UTF-8."""
    from openpyxl import Workbook

    base = tmp_path / "base.xlsx"
    wb = Workbook()
    wb.active.title = SHEET
    wb.save(base)
    xml = ('<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE worksheet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
           + HEAD.split("\n", 1)[1] + _header_row() + '<row r="2"><c r="A2" t="inlineStr"><is><t>&xxe;</t></is></c></row>'
           + TAIL)
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(tmp_path / "u16.xlsx", "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, xml.encode("utf-16") if info.filename == SHEET_PART else src.read(info))
    r = _import(tmp_path, db, tmp_path / "u16.xlsx")
    assert_user_facing(r, 2, f"u16.xlsx: {SHEET_PART} declares a DTD/entities")
    assert _imported(db) == 0
