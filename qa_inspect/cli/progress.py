"""Live progress for `qa-inspect run`: a rich bar on stderr when stderr is a terminal.

The bar shows calls done/total, calls/s and ETA (both from the calls actually processed, so
calls skipped as already done don't make the estimate look fast), and minutes of audio done.
When stderr is not a terminal (cron, CI, a pipe) nothing live is drawn and the caller keeps
its plain per-call lines.
"""
from __future__ import annotations

import sys
import time
from typing import IO, Any


def stream_is_tty(stream: IO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class BatchProgress:
    """``with BatchProgress(total) as p: ... p.update(summary)`` after every call.

    ``console``: a rich Console to draw on (tests); default a stderr console. ``p.print(line,
    err=...)`` writes a line above the bar (only meaningful while live)."""

    def __init__(self, total: int, console: Any = None, *, live: bool | None = None) -> None:
        self.total = total
        self.live = stream_is_tty(sys.stderr) if live is None else live
        self._console = console
        self._progress: Any = None
        self._task: Any = None
        self._t0 = time.perf_counter()

    def __enter__(self) -> "BatchProgress":
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            console = self._console or Console(stderr=True)
            self._progress = Progress(
                TextColumn("[bold]calls"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TextColumn("audio {task.fields[audio]}"),
                TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"),
                console=console, redirect_stdout=False, redirect_stderr=False, transient=False)
            self._progress.__enter__()
            self._task = self._progress.add_task("calls", total=self.total, rate="– calls/s",
                                                 audio="0.0 min", eta="–")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None

    @staticmethod
    def fields(summary: Any, total: int) -> dict[str, str]:
        """calls/s, audio minutes and ETA from a BatchSummary (skipped calls cost ~nothing)."""
        processed = summary.ok + summary.errors
        done = processed + summary.skipped
        wall = summary.wall_s
        rate = processed / wall if processed and wall > 0 else None
        left = max(total - done, 0)
        eta = "0:00:00" if left == 0 else (_hms(left / rate) if rate else "–")
        return {"rate": f"{rate:.2f} calls/s" if rate else "– calls/s",
                "audio": f"{summary.audio_s / 60:.1f} min", "eta": eta}

    def update(self, summary: Any) -> None:
        if self._progress is None:
            return
        done = summary.ok + summary.errors + summary.skipped
        self._progress.update(self._task, completed=done, **self.fields(summary, self.total))

    def print(self, line: str) -> None:
        """A line above the live bar (rich markup is not interpreted)."""
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
