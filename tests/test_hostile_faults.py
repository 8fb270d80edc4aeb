"""Issue 17, faults: kill -9 of `rescore` leaves no worker behind; SIGTERM/SIGINT during
`run` stop cleanly and a re-run resumes without losing or double-counting a call; an
interrupted `report agents` never leaves an index linking a page that does not exist; any
unexpected exception reaches the user as one line (the traceback only with -vv)."""
from __future__ import annotations

import logging
import os
import re
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from hostile import GOOD_TURNS, ROOT, assert_user_facing, cli, command_pid, finish, start, stored, transcript_line

SAMPLES = ROOT / "samples"
PACK = str(ROOT / "rules/telecom_zh.yaml")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited (nobody may reap it in a container)


def _big_store(db: Path, n: int) -> None:
    """``n`` stored ok calls: the sample transcripts scored once, copied under new ids."""
    from qa_inspect.batch.inputs import read_input
    from qa_inspect.batch.pipeline import PackSet, score_transcript
    from qa_inspect.rules import load_pack
    from qa_inspect.store import open_store, result_row

    packs = PackSet([load_pack(PACK), load_pack(ROOT / "rules/telecom_en.yaml")])
    scored = [score_transcript(it, it.transcript, packs.for_language(it.call.language), cfg_hash="c")
              for it in read_input(SAMPLES / "transcripts.jsonl")]
    rows = [result_row(replace(r, call=replace(r.call, call_id=f"{r.call.call_id}-{i:05d}")))
            for i in range(n // len(scored) + 1) for r in scored]
    with open_store(db) as s:
        s.put_rows(rows[:n])


@linux_only
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="rescore uses a pool only with 2+ cores")
def test_kill_9_of_rescore_leaves_no_worker_running(tmp_path):
    _big_store(tmp_path / "q.db", 4_000)
    t0 = time.monotonic()
    proc, logs = start(["rescore", "--db", "q.db", "--rules", PACK, "--rules", str(ROOT / "rules/telecom_en.yaml")],
                       tmp_path)
    driver = command_pid(logs)
    kids: list[int] = []
    while time.monotonic() - t0 < 60 and proc.poll() is None:
        kids = _children(driver)
        if len(kids) >= 2:  # the pool is up and working
            break
        time.sleep(0.01)
    assert len(kids) >= 2, f"no worker pool seen: {Path(f'{logs}.err').read_text()[-2000:]}"
    time.sleep(0.3)  # let them get into their chunks
    kids = _children(driver)
    os.kill(driver, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(map(_alive, kids)):
        time.sleep(0.05)
    left = [k for k in kids if _alive(k)]
    for k in left:  # don't leave them to the next test either
        os.kill(k, signal.SIGKILL)
    assert not left, f"worker processes {left} outlived their killed driver"
    # what was written is whole: every row old or new, the store opens and counts as before
    from qa_inspect.store import open_store

    with open_store(tmp_path / "q.db") as s:
        assert s.count("ok") == 4_000


@linux_only
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_run_with_workers_killed_or_stopped_leaves_no_worker_running(tmp_path, sig):
    """`run --workers 2` killed (kill -9) or stopped (SIGTERM) while its workers start and
    load the model: no worker stays; SIGTERM ends with the interrupted line, exit code 130."""
    from conftest import sample_manifest

    manifest = sample_manifest(tmp_path, SAMPLES, {"zh_billing_12315", "zh_plan_change_verify", "zh_long_hold"})
    t0 = time.monotonic()
    proc, logs = start(["run", manifest.name, "--workers", "2", "--db", "q.db", "--out", "rep", "--rules", PACK],
                       tmp_path)
    driver = command_pid(logs)
    kids: list[int] = []
    while time.monotonic() - t0 < 60 and proc.poll() is None and len(kids) < 3:
        kids = _children(driver)  # two workers and multiprocessing's resource tracker
        time.sleep(0.01)
    assert len(kids) >= 2, Path(f"{logs}.err").read_text()[-2000:]
    time.sleep(1.0)  # into their initializer
    kids = _children(driver)
    os.kill(driver, sig)
    if sig == signal.SIGTERM:
        assert_user_facing(finish(proc, logs, t0), 130, "中断 / interrupted: 0 call(s) finished")
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(map(_alive, kids)):
        time.sleep(0.05)
    left = [k for k in kids if _alive(k)]
    for k in left:
        os.kill(k, signal.SIGKILL)
    assert not left, f"processes {left} outlived their killed driver"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_run_stops_cleanly_and_a_rerun_resumes(tmp_path, sig):
    n = 600
    (tmp_path / "t.jsonl").write_text("".join(transcript_line(f"c{i:05d}", *GOOD_TURNS) + "\n" for i in range(n)),
                                      encoding="utf-8")
    args = ["run", "t.jsonl", "--db", "q.db", "--out", "rep", "--rules", PACK]
    t0 = time.monotonic()
    proc, logs = start(args, tmp_path)
    out = Path(f"{logs}.out")
    while time.monotonic() - t0 < 60 and out.read_text().count("\n") < 30 and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the batch ended before it could be interrupted"
    proc.send_signal(sig)
    r = finish(proc, logs, t0)
    assert_user_facing(r, 130, "中断 / interrupted:")
    first = stored(tmp_path / "q.db")
    assert 0 < len(first) < n and all(v.status == "ok" for v in first.values())
    again = cli(args, tmp_path)
    assert_user_facing(again, 0, f"done: {n - len(first)} ok, 0 error(s), {len(first)} already done")
    final = stored(tmp_path / "q.db")
    assert len(final) == n and all(v.status == "ok" for v in final.values())


def test_interrupted_agent_report_never_links_a_missing_page(tmp_path, monkeypatch):
    from qa_inspect.reports import agents
    from report_fixtures import build_db
    from qa_inspect.store import open_store

    with open_store(build_db(ROOT, SAMPLES, tmp_path / "qa.db")) as s:
        results = [r for r in s.results() if r.status == "ok"]
    out = tmp_path / "sc"
    real, calls = agents._agent_view, []

    def interrupted(*a, **k):  # Ctrl-C while the third agent page is being written
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(agents, "_agent_view", interrupted)
    with pytest.raises(KeyboardInterrupt):
        agents.write_agent_reports(results, out)
    assert not (out / "index.html").exists()  # a first report: no index until every page is there
    assert not [p for p in out.iterdir() if ".tmp" in p.name]
    monkeypatch.setattr(agents, "_agent_view", real)
    agents.write_agent_reports(results, out)  # a complete report
    before = (out / "index.html").read_text(encoding="utf-8")
    calls.clear()
    monkeypatch.setattr(agents, "_agent_view", interrupted)
    with pytest.raises(KeyboardInterrupt):  # the next night's report, interrupted
        agents.write_agent_reports(results[: len(results) // 2], out)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert index == before  # the index is replaced only once all its pages are in place
    links = set(re.findall(r'href="([^"#?/:]+\.html)"', index))
    assert links and not [ln for ln in links if not (out / ln).exists()]
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


def test_any_unexpected_exception_is_one_line_unless_vv(tmp_path, monkeypatch):
    from qa_inspect.batch import inputs
    from qa_inspect.cli import main

    def broken(*a, **k):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(inputs, "read_input_segments", broken)
    (tmp_path / "t.jsonl").write_text(transcript_line("a", *GOOD_TURNS) + "\n", encoding="utf-8")
    args = ["run", str(tmp_path / "t.jsonl"), "--db", str(tmp_path / "q.db"), "--out", str(tmp_path / "r"),
            "--rules", PACK]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines()[-1] == "error: RuntimeError: boom second line (run with -vv for details)"
    assert "Traceback" not in r.output
    r = CliRunner().invoke(main, ["-vv", *args])
    assert isinstance(r.exception, RuntimeError)  # -vv: the exception and its traceback go through


def test_log_records_carry_no_traceback_below_vv():
    from qa_inspect.cli.main import _NoTraceback

    try:
        raise ValueError("bad value")
    except ValueError:
        rec = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "scoring %s failed",
                                                ("c1",), sys.exc_info())
    text = _NoTraceback("%(levelname)s %(name)s: %(message)s").format(rec)
    assert text == "ERROR x: scoring c1 failed: ValueError: bad value (run with -vv for details)"
    assert logging.Formatter().format(rec).count("Traceback") == 1  # the record still has it for -vv
