"""The `qa-inspect` command line. The only place that parses options, configures logging
and turns domain errors into one clear line and an exit code. Heavy imports live inside
commands so `--help` is instant. The root group lives here; each command group has its own
module in this folder (``qa_inspect.cli`` imports them all).

No traceback reaches a user unless they ask for it with ``-vv``: ``GuardedGroup`` turns any
exception a command lets through into one ``error: …`` line and exit code 2, and log records
carry their traceback only at ``-vv``."""
from __future__ import annotations

import functools
import logging
import sys

import click

from qa_inspect.cli.common import CONTEXT

DETAILS_HINT = "(run with -vv for details)"
_verbosity = 0


class _NoTraceback(logging.Formatter):
    """Log records without their traceback (``-vv`` shows it)."""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text:
            exc = record.exc_info[1] if record.exc_info else None
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
            if exc is not None:
                record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc} {DETAILS_HINT}"
                record.args = None
        return super().format(record)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 500 else text[:500] + " …"


class GuardedGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort, SystemExit,
                KeyboardInterrupt):
            raise
        except Exception as e:
            if _verbosity >= 2:
                raise
            from qa_inspect.errors import QAError

            if isinstance(e, QAError):
                click.echo(f"error: {_one_line(e)}", err=True)
            elif isinstance(e, (MemoryError, RecursionError)):
                click.echo(f"error: 输入过大或嵌套过深 / the input is too large or too deeply nested "
                           f"({type(e).__name__}) {DETAILS_HINT}", err=True)
            else:
                click.echo(f"error: {type(e).__name__}: {_one_line(e)} {DETAILS_HINT}", err=True)
            sys.exit(2)


@click.group(cls=GuardedGroup, context_settings=CONTEXT)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug and full tracebacks).")
@click.version_option(package_name="qa-inspect")
def main(verbose: int) -> None:
    """qa_inspect: offline quality inspection (质检) of call-center recordings."""
    global _verbosity
    _verbosity = verbose
    configure_logging(logging.WARNING - 10 * min(verbose, 2))


def configure_logging(level: int, fmt: str = "%(levelname)s %(name)s: %(message)s") -> None:
    """Logging for this process: the CLI's, and each worker process's (``worker_log_setup``).
    As ``logging.basicConfig`` (an embedding program's logging stays as it is); below debug
    level (``-vv``) records are written without their traceback."""
    root = logging.getLogger()
    if not root.handlers:
        h = logging.StreamHandler()
        h.setFormatter(_NoTraceback(fmt) if level > logging.DEBUG else logging.Formatter(fmt))
        root.addHandler(h)
        root.setLevel(level)


def worker_log_setup():
    """A picklable callable that configures logging in a worker process as in this one."""
    return functools.partial(configure_logging, logging.getLogger().getEffectiveLevel(),
                             "%(levelname)s %(name)s[%(process)d]: %(message)s")
