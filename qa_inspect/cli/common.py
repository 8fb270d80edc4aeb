"""What every command module shares: one error line and an exit code, and store error handling."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click

from qa_inspect.errors import QAError

CONTEXT = {"help_option_names": ["-h", "--help"]}

DEFAULT_PACK = "rules/telecom_zh.yaml"
DEFAULT_PACK_EN = "rules/telecom_en.yaml"


def fail(e: QAError, code: int = 2) -> None:
    """Print the error as one line on stderr and exit (2: nothing useful was done)."""
    click.echo(f"error: {e}", err=True)
    sys.exit(code)


@contextmanager
def store_errors(db: str, store) -> Iterator[None]:
    """Run a command's work on ``store``: a database error (``StoreError``) or a domain error
    becomes one line and exit code 2; the store is closed in any case."""
    try:
        yield
    except QAError as e:  # StoreError included: it names the database (never its password)
        fail(e)
    finally:
        close_quietly(store)


def close_quietly(store) -> None:
    """Close ``store``; an error while closing (the first error has been said) is not a traceback."""
    try:
        store.close()
    except QAError:
        pass


DB_HELP = "Results database: the SQLite file written by `run`, or a postgresql:// URL."


def shown_db(db: str) -> str:
    """``db`` as it may be printed: a URL's password masked."""
    from qa_inspect.store import redact_url

    return redact_url(db)


def open_existing_store(db: str, *, readonly: bool = False):
    """The results store of a finished run: a SQLite file that must exist (never create an
    empty one here), or a ``postgresql://`` URL; anything else is one error line, exit 2.
    ``readonly``: a SQLite file is opened for reading only (reports, export)."""
    from qa_inspect.store import open_store

    if "://" not in db or db.startswith("sqlite:///"):
        path = db[len("sqlite:///"):] if db.startswith("sqlite:///") else db
        if not Path(path).exists():
            fail(QAError("结果数据库不存在 / results database not found (run `qa-inspect run` first)", path))
    try:
        return open_store(db, readonly=readonly)
    except QAError as e:  # StoreError: damaged, not SQLite, a directory, read-only, server down …
        fail(e)


def check_out_dir(out) -> None:
    """Before any work: ``out`` must be a folder this process can write, or a path it can create.
    A file in the way, a path under a file, or a folder that cannot be written is a QAError
    naming the path and what to do (checked first, so a batch never runs to fail at the report).
    Nothing is left behind: the folder itself is made only when the report is written."""
    import os
    import tempfile

    p = Path(out)
    if p.exists() and not p.is_dir():
        raise QAError(f"{p}: --out must be a folder, but a file is in the way: choose another --out or move the file")
    where = p
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        if not where.is_dir():
            raise NotADirectoryError(f"{where} is a file")
        fd, probe = tempfile.mkstemp(prefix=".qa-inspect-write-test-", dir=where)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise QAError(f"{p}: cannot write the report folder ({e.strerror or e}): choose another --out "
                      "or fix its permissions") from None
