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
    """Run a command's work on ``store``: a database error or a domain error becomes one line
    and exit code 2; the store is closed in any case."""
    import sqlite3

    try:
        yield
    except sqlite3.DatabaseError as e:
        fail(QAError(f"{db}: {e}"))
    except QAError as e:
        fail(e)
    finally:
        store.close()


DB_HELP = "Results database: the SQLite file written by `run`, or a postgresql:// URL."


def open_existing_store(db: str):
    """The results store of a finished run: a SQLite file that must exist (never create an
    empty one here), or a ``postgresql://`` URL; anything else is one error line, exit 2."""
    import sqlite3

    from qa_inspect.store import open_store

    if "://" not in db or db.startswith("sqlite:///"):
        path = db[len("sqlite:///"):] if db.startswith("sqlite:///") else db
        if not Path(path).is_file():
            fail(QAError(f"{path}: results database not found (run `qa-inspect run` first)"))
    try:
        return open_store(db)
    except sqlite3.Error as e:
        fail(QAError(f"{db}: cannot open results database ({e})"))
    except QAError as e:
        fail(e)
