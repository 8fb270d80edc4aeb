"""Shared by the hostile-input tests: run `qa-inspect` as a user does (a subprocess) and
measure what it cost (wall time, peak RSS of that one process, via ``os.wait4``)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT_S = 60.0  # bound for any single hostile input (issue 17)
LIMIT_MB = 1024.0


@dataclass
class Ran:
    code: int
    out: str
    err: str
    seconds: float
    rss_mb: float

    @property
    def text(self) -> str:
        return self.out + self.err


def env(**extra: str) -> dict[str, str]:
    e = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
         "QA_INSPECT_SENTIMENT": "lexicon"}  # the model-free scorer: these tests are about inputs
    e.update(extra)
    return e


def start(args: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, Path]:
    logs = cwd / f"cli-{time.monotonic_ns()}"
    proc = subprocess.Popen([sys.executable, "-m", "qa_inspect.cli", *args], cwd=cwd,
                            stdout=open(f"{logs}.out", "w"), stderr=open(f"{logs}.err", "w"),
                            env=env(**(extra_env or {})))
    return proc, logs


def finish(proc: subprocess.Popen, logs: Path, t0: float, timeout: float = LIMIT_S) -> Ran:
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - t0 > timeout:
            proc.send_signal(signal.SIGKILL)
            os.wait4(proc.pid, 0)
            proc.returncode = -9
            raise AssertionError(f"still running after {timeout:.0f} s: {Path(f'{logs}.err').read_text()[-2000:]}")
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Ran(proc.returncode, Path(f"{logs}.out").read_text(), Path(f"{logs}.err").read_text(),
               time.monotonic() - t0, usage.ru_maxrss / 1024)


def cli(args: list[str], cwd: Path, extra_env: dict[str, str] | None = None,
        timeout: float = LIMIT_S) -> Ran:
    t0 = time.monotonic()
    proc, logs = start(args, cwd, extra_env)
    return finish(proc, logs, t0, timeout)


def assert_user_facing(r: Ran, code: int, *names: str) -> None:
    """The exit code, no traceback, every name in one readable line, bounded time and memory."""
    assert r.code == code, r.text[-3000:]
    assert "Traceback" not in r.text, r.text[-3000:]
    lines = r.text.splitlines()
    for name in names:
        assert any(name in ln and len(ln) < 600 for ln in lines), (name, r.text[-3000:])
    assert r.seconds <= LIMIT_S and r.rss_mb <= LIMIT_MB, (r.seconds, r.rss_mb)


def transcript_line(call_id: str, *turns: tuple, **extra) -> str:
    """One transcripts-JSONL line; turns as (role, text, start, end)."""
    return json.dumps({"call_id": call_id, "agent_id": "A001", "language": "zh", **extra,
                       "turns": [{"role": r, "text": t, "start": s, "end": e} for r, t, s, e in turns]},
                      ensure_ascii=False)


GOOD_TURNS = (("agent", "您好，工号1234，很高兴为您服务，请问有什么可以帮您", 0.0, 3.0),
              ("customer", "我想查一下这个月的话费", 3.5, 5.0),
              ("agent", "好的，请问还有什么可以帮您？感谢来电，再见", 5.5, 8.0))


def stored(db: Path) -> dict:
    """The stored results by call id (what a later report would show)."""
    from qa_inspect.store import open_store

    with open_store(db) as s:
        return {r.call.call_id: r for r in s.results()}
