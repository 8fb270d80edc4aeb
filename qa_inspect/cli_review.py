"""QC workflow commands: scorecards, manual sampling, review import, appeals, calibration."""
from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add this module's commands to the ``qa-inspect`` group."""
