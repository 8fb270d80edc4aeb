"""Shared by the workspace tests: a results database built by the real batch on the samples
(fake transcriber: reference text, real audio decode), users of every role, and logging in."""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import sample_manifest

PASSWORD = "correct horse 12"
PHONE = "13812345678"
XSS = "<script>alert('x')</script>"
# a call with a phone number (agents see it redacted) and markup in names and text (escaped)
EXTRA = {"call_id": "zh_extra_pii", "agent_id": "A006", "agent_name": f"赵{XSS}", "team": "三组",
         "started_at": "2026-11-25T09:00:00+08:00", "language": "zh", "turns": [
             {"role": "agent", "text": "您好，工号5566为您服务，请问有什么可以帮您？", "start": 0.0, "end": 4.0},
             {"role": "customer", "text": f"我要投诉，我的手机号{PHONE}一直扣费{XSS}", "start": 4.5, "end": 9.0},
             {"role": "agent", "text": "非常抱歉，我马上为您查询。请问还有什么可以帮您？", "start": 9.5, "end": 14.0},
             {"role": "customer", "text": "没有了。", "start": 14.5, "end": 15.0},
             {"role": "agent", "text": "感谢来电，再见。", "start": 15.5, "end": 17.0}]}
USERS = {"rev1": ("reviewer", ""), "rev2": ("reviewer", ""), "sup": ("supervisor", ""),
         "ag1": ("agent", "A001"), "ag3": ("agent", "A003"), "boss": ("admin", "")}


def build_db(tmp: Path, root: Path, samples: Path) -> Path:
    """Run the real batch (scorecards on) over the samples with the reference-text transcriber."""
    from qa_inspect.batch.inputs import read_input
    from qa_inspect.batch.pipeline import PackSet, run_batch
    from qa_inspect.rules import load_pack
    from qa_inspect.scoring.scorecard import load_scorecard
    from qa_inspect.speech.fakes import ReferenceTranscriber
    from qa_inspect.store import open_store

    extra = tmp / "extra.jsonl"
    extra.write_text(json.dumps(EXTRA, ensure_ascii=False) + "\n", encoding="utf-8")
    items = read_input(sample_manifest(tmp, samples)) + read_input(extra)
    packs = [load_pack(root / f"rules/telecom_{x}.yaml") for x in ("zh", "en")]
    cards = [load_scorecard(root / f"rules/scorecard_telecom_{x}.yaml") for x in ("zh", "en")]
    fake = ReferenceTranscriber(samples / "transcripts.jsonl")
    db = tmp / "qa.db"
    with open_store(db) as store:
        run_batch(items, PackSet(packs, cards), store, lambda: fake, "fake-asr")
    add_users(str(db))
    return db


def copy_db(template: Path, url_or_dir) -> str:
    """A fresh copy of the template results: a SQLite file in a folder, or a postgresql:// database."""
    from qa_inspect.store import SQLiteStore, open_store

    if str(url_or_dir).startswith("postgresql://"):
        src = SQLiteStore(template)
        rows = src.db.execute("SELECT * FROM results").fetchall()
        users = src.db.execute("SELECT name, role, agent_id, pw_hash, disabled, lang, created_at FROM web_users").fetchall()
        src.close()
        from qa_inspect.store import workspace

        with open_store(url_or_dir) as dst:
            dst.put_rows(rows)
            for u in users:  # the template's accounts (hashing them again is slow)
                workspace.user_put(dst, u[0], u[1], u[2], u[3], u[6])
        return str(url_or_dir)
    dst = Path(url_or_dir) / "web.db"
    shutil.copy(template, dst)
    return str(dst)


def add_users(url: str) -> None:
    from qa_inspect.store import open_store
    from qa_inspect.workflow import accounts

    with open_store(url) as s:
        for name, (role, agent) in USERS.items():
            accounts.add_user(s, name, role, PASSWORD, agent)


def login(client, name: str, password: str = PASSWORD) -> str:
    """Log in through the real form (with its CSRF token); the session's CSRF token."""
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = client.post("/login", data={"username": name, "password": password, "csrf": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return csrf_of(client)


def csrf_of(client) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get("/").text).group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(db: str, root: Path, *extra: str):
    """A real `qa-inspect serve` on a free 127.0.0.1 port over ``db``; yields its base URL once
    it answers, and stops it afterwards."""
    port = free_port()
    # the server's output goes to a file (a pipe nobody reads would block it once full); a
    # test that fails can read it, and a server error is printed when the server stops
    out = tempfile.NamedTemporaryFile("w+", prefix="serve-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "qa_inspect.cli", "serve", "--db", db, "--port", str(port),
                             *extra], env={**os.environ, "PYTHONPATH": str(root)}, stdout=out,
                            stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/login", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("serve exited: " + Path(out.name).read_text())
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log = Path(out.name).read_text()
        out.close()
        os.unlink(out.name)
        if "Traceback" in log:
            print("serve output:\n" + log[-6000:])
