"""Kill a real batch (real Whisper) mid-run with SIGKILL, run it again: nothing lost, nothing
counted twice, the database intact, the calls done before the kill not redone."""
import csv
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

# the shortest calls (both packs) plus the corrupt file, last so the first results are ok calls
SUBSET = ("zh_no_greeting", "zh_forbidden_phrase", "zh_polite_inquiry", "en_billing_inquiry", "corrupt_call")


def _count(db) -> int:
    """Rows in results, from a read-only connection (0 while the file or table isn't there)."""
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def test_sigkill_then_resume(root, samples, tmp_path):
    with open(samples / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = {r["call_id"]: r for r in csv.DictReader(fh)}
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(next(iter(rows.values()))))
        w.writeheader()
        for cid in SUBSET:
            w.writerow({**rows[cid], "path": str((samples / rows[cid]["path"]).resolve())})

    db = tmp_path / "tmp" / "qa.db"
    cmd = [sys.executable, "-m", "qa_inspect.cli", "run", str(manifest),
           "--db", str(db), "--out", str(tmp_path / "tmp" / "r")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if (root / ".cache").is_dir():
        env["QA_INSPECT_CACHE"] = str(root / ".cache")

    log1 = open(tmp_path / "run1.log", "w+", encoding="utf-8")
    first = subprocess.Popen(cmd, stdout=log1, stderr=subprocess.STDOUT, env=env, cwd=root)
    try:
        deadline = time.monotonic() + 120
        while _count(db) < 2:
            assert first.poll() is None, f"first run ended before the kill:\n{(tmp_path / 'run1.log').read_text()}"
            assert time.monotonic() < deadline, "no 2 results within 120 s"
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        log1.close()
    done_before = _count(db)
    assert 2 <= done_before < len(SUBSET)

    second = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root, timeout=300)
    assert second.returncode == 1, second.stdout + second.stderr  # the corrupt call is an error row
    m = re.search(r"done: (\d+) ok, (\d+) error\(s\), (\d+) already done", second.stdout)
    assert m, second.stdout
    ok, errors, skipped = map(int, m.groups())
    assert skipped == done_before >= 2  # every call stored before the kill is not redone
    assert ok + errors + skipped == len(SUBSET) and errors == 1

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ids = [r[0] for r in con.execute("SELECT call_id FROM results")]
        status = dict(con.execute("SELECT call_id, status FROM results"))
    finally:
        con.close()
    assert len(ids) == len(SUBSET) and sorted(ids) == sorted(SUBSET)
    assert status.pop("corrupt_call") == "error"
    assert set(status.values()) == {"ok"}
