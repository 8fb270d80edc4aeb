"""What every command module shares: one error line and an exit code, and store error handling."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

import click

from .errors import QAError

CONTEXT = {"help_option_names": ["-h", "--help"]}


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
