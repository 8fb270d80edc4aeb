"""The `qa-inspect` command line. The only place that parses options, configures logging
and turns domain errors into one clear line and an exit code. Heavy imports live inside
commands so `--help` is instant. The root group lives here; each command group has its own
module in this folder (``qa_inspect.cli`` imports them all)."""
from __future__ import annotations

import functools
import logging

import click

from qa_inspect.cli.common import CONTEXT


@click.group(context_settings=CONTEXT)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="qa-inspect")
def main(verbose: int) -> None:
    """qa_inspect: offline quality inspection (质检) of call-center recordings."""
    configure_logging(logging.WARNING - 10 * min(verbose, 2))


def configure_logging(level: int, fmt: str = "%(levelname)s %(name)s: %(message)s") -> None:
    """Logging for this process: the CLI's, and each worker process's (``worker_log_setup``)."""
    logging.basicConfig(level=level, format=fmt)


def worker_log_setup():
    """A picklable callable that configures logging in a worker process as in this one."""
    return functools.partial(configure_logging, logging.getLogger().getEffectiveLevel(),
                             "%(levelname)s %(name)s[%(process)d]: %(message)s")
