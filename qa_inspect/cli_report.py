"""Supervisor and trainer commands: agent scorecards, risk alerts, example library."""
from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add this module's commands to the ``qa-inspect`` group."""
