"""A time budget per call: a call that runs past it becomes an error row naming the stage.

The budget is ``QA_INSPECT_CALL_BUDGET_S`` seconds (default 300) plus, once the audio is
decoded, ``QA_INSPECT_CALL_BUDGET_PER_AUDIO_S`` seconds per second of audio (default 1.0:
transcription at real time, 5–7× slower than measured on a 2-core CPU). ``0`` turns it off.

It is a ``SIGALRM`` timer, so it works where a call runs in a process's main thread (the
in-process batch and the pool workers; elsewhere, e.g. inside a Ray actor thread, it is off).
The alarm raises ``BudgetExceeded`` in whatever Python code runs at that moment; the stage is
named from the innermost ``qa_inspect`` module on the stack. A stage that swallows the
exception gets it again every second, and a call that finishes after swallowing it anyway
still ends as an error row.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from qa_inspect.errors import BudgetExceeded, QAError

log = logging.getLogger(__name__)

ENV = "QA_INSPECT_CALL_BUDGET_S"
ENV_PER_AUDIO = "QA_INSPECT_CALL_BUDGET_PER_AUDIO_S"
DEFAULT_S = 300.0
DEFAULT_PER_AUDIO = 1.0

# module prefix -> stage name (most specific first)
STAGES = (("qa_inspect.enrich.sentiment", "sentiment"), ("qa_inspect.enrich.embeddings", "sentiment"),
          ("qa_inspect.enrich.use_encoder", "sentiment"),
          ("qa_inspect.enrich.acoustics", "acoustics"), ("qa_inspect.enrich.talk", "talk metrics"),
          ("qa_inspect.enrich", "enrich"), ("qa_inspect.speech.decode", "decode"),
          ("qa_inspect.speech.speakers", "speakers"), ("qa_inspect.speech", "transcribe"),
          ("qa_inspect.rules", "rules"), ("qa_inspect.scoring", "score"), ("qa_inspect.store", "store"))


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        v = float(raw)
    except ValueError:
        raise QAError(f"{name}={raw!r}: expected a number of seconds (0 = no budget)") from None
    return max(v, 0.0)


def stage_of(frame) -> str:
    """The stage of the innermost ``qa_inspect`` frame that belongs to one ('pipeline' else)."""
    while frame is not None:
        mod = frame.f_globals.get("__name__", "")
        for prefix, stage in STAGES:
            if mod == prefix or mod.startswith(prefix + "."):
                return stage
        frame = frame.f_back
    return "pipeline"


class _Budget:
    def __init__(self, label: str, seconds: float, per_audio: float) -> None:
        self.label, self.seconds, self.per_audio = label, seconds, per_audio
        self.expired = ""  # the message, once the alarm went off

    def on_alarm(self, _signum, frame) -> None:
        if not self.expired:
            self.expired = (f"超时 / over the time budget of {self.seconds:g} s for this call, in stage "
                            f"'{stage_of(frame)}' (raise {ENV} / {ENV_PER_AUDIO}, 0 = no budget)")
        raise BudgetExceeded(self.expired, self.label)


_current: _Budget | None = None


@contextmanager
def call_budget(label: str) -> Iterator[None]:
    """Run the body under the per-call budget (``label``: the file or call named in the error)."""
    global _current
    seconds = _env_float(ENV, DEFAULT_S)
    if seconds <= 0 or _current is not None or threading.current_thread() is not threading.main_thread():
        yield
        return
    b = _Budget(label, seconds, _env_float(ENV_PER_AUDIO, DEFAULT_PER_AUDIO))
    old = signal.signal(signal.SIGALRM, b.on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)  # again every second if swallowed
    _current = b
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        _current = None
    if b.expired:  # a stage swallowed the alarm and went on: the call still failed
        raise BudgetExceeded(b.expired, label)


def add_audio(duration_s: float) -> None:
    """Extend the running budget by the per-audio allowance for ``duration_s`` of audio."""
    b = _current
    if b is None or b.expired or not b.per_audio or threading.current_thread() is not threading.main_thread():
        return
    extra = b.per_audio * max(duration_s, 0.0)
    left, _ = signal.getitimer(signal.ITIMER_REAL)
    if left > 0 and extra > 0:
        b.seconds += extra
        signal.setitimer(signal.ITIMER_REAL, left + extra, 1.0)
