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
    """Start `qa-inspect ARGS` under ``rss_wrap.py`` (signals sent to the returned process
    reach the command)."""
    logs = cwd / f"cli-{time.monotonic_ns()}"
    cmd = [sys.executable, str(Path(__file__).with_name("rss_wrap.py")), f"{logs}.rss",
           sys.executable, "-m", "qa_inspect.cli", *args]
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=open(f"{logs}.out", "w"), stderr=open(f"{logs}.err", "w"),
                            env=env(**(extra_env or {})))
    return proc, logs


def command_pid(logs: Path, timeout: float = 10.0) -> int:
    """The pid of the command itself (not of its wrapper)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            return int(Path(f"{logs}.rss.pid").read_text())
        except (OSError, ValueError):
            time.sleep(0.01)
    raise AssertionError("command did not start")


def finish(proc: subprocess.Popen, logs: Path, t0: float, timeout: float = LIMIT_S) -> Ran:
    try:
        code = proc.wait(timeout=max(0.1, timeout - (time.monotonic() - t0)))
    except subprocess.TimeoutExpired:
        for pid in (command_pid(logs), proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        proc.wait()
        raise AssertionError(f"still running after {timeout:.0f} s: {Path(f'{logs}.err').read_text()[-2000:]}")
    return Ran(code, Path(f"{logs}.out").read_text(), Path(f"{logs}.err").read_text(),
               time.monotonic() - t0, int(Path(f"{logs}.rss").read_text()) / 1024)


def cli(args: list[str], cwd: Path, extra_env: dict[str, str] | None = None,
        timeout: float = LIMIT_S) -> Ran:
    t0 = time.monotonic()
    proc, logs = start(args, cwd, extra_env)
    return finish(proc, logs, t0, timeout)


def assert_user_facing(r: Ran, code: int, *names: str) -> None:
    """The exit code, no traceback, every name in one readable line, bounded time and memory."""
    print(f"[hostile] exit {r.code} in {r.seconds:.1f} s, peak RSS {r.rss_mb:.0f} MiB: {names[0][:70]}")
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
