"""Worker processes never outlive their driver.

``worker_process_setup`` runs first thing in every pool worker (process pool of ``run`` and
of ``rescore``). A driver killed with ``kill -9`` runs no clean-up, and forked workers keep
the task pipe open among themselves, so they would wait for work forever. Here:

- Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker when its parent
  dies (checked once more right after, for a parent that died before the call);
- elsewhere: a daemon thread polls ``os.getppid()`` and exits when the worker is re-parented;
- SIGINT is ignored in workers: Ctrl-C goes to the whole process group, and the driver alone
  decides what happens (it stops the batch; workers end with it), so no worker prints a
  ``KeyboardInterrupt`` traceback.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def _pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except Exception:  # no libc symbol (musl without prctl …): fall back to polling
        return False


def _poll(parent: int, every_s: float) -> None:
    while True:
        time.sleep(every_s)
        if os.getppid() != parent:
            os._exit(1)  # the driver is gone: nothing left to report to


def worker_process_setup(poll_s: float = 1.0) -> None:
    """Make this (worker) process die with its parent and leave Ctrl-C to the driver."""
    import multiprocessing

    known = multiprocessing.parent_process()  # the driver, even if it died before this line ran
    parent = known.pid if known is not None and known.pid else os.getppid()
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread (e.g. an actor thread): nothing to do here
        pass
    if not _pdeathsig():
        threading.Thread(target=_poll, args=(parent, poll_s), name="qa-inspect-parent-watch",
                         daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)  # the parent died before we could watch it
