"""Bad results databases (issue 17): random bytes, a truncated or page-garbled SQLite file, a
directory, a read-only file, a full disk mid-batch, a PostgreSQL URL that cannot connect.

Every case goes through the CLI as a user meets it and asserts: exit code 2, one readable
error line naming the database and what to do, no traceback, and the file byte for byte as
it was (sha256 before and after)."""
import hashlib
import json
import os
import random
import shutil
import stat
import subprocess
import sys

import pytest
from click.testing import CliRunner

from qa_inspect.cli import main

PAGE = 4096


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def good_db(tmp_path_factory, root, samples):
    """A results database written by `run` on the samples' 13 reference transcripts."""
    d = tmp_path_factory.mktemp("good")
    r = CliRunner().invoke(main, ["run", str(samples / "transcripts.jsonl"), "--db", str(d / "qa.db"),
                                  "--out", str(d / "rep"), "--rules", str(root / "rules/telecom_zh.yaml"),
                                  "--rules", str(root / "rules/telecom_en.yaml")])
    assert r.exit_code == 0, r.output
    assert not (d / "qa.db-wal").exists()  # folded back on close: the file alone is the database
    assert os.path.getsize(d / "qa.db") > 40 * PAGE
    return d / "qa.db"


def commands(db, root, samples, out):
    """The five commands of the issue, each on ``db``."""
    zh, en = str(root / "rules/telecom_zh.yaml"), str(root / "rules/telecom_en.yaml")
    return {
        "run": ["run", str(samples / "transcripts.jsonl"), "--db", str(db), "--out", str(out / "rep"),
                "--rules", zh, "--rules", en],
        "rescore": ["rescore", "--db", str(db), "--rules", zh, "--rules", en],
        "export": ["export", "--db", str(db)],
        "report": ["report", "agents", "--db", str(db), "--out", str(out / "cards")],
        "sample": ["sample", "--db", str(db), "--plan", str(root / "rules/sampling_plan.yaml"), "--seed", "1",
                   "--out", str(out / "ws.xlsx")],
    }


def make_bad(kind: str, good, tmp_path):
    p = tmp_path / f"{kind}.db"
    data = good.read_bytes()
    if kind == "random":
        p.write_bytes(random.Random(1).randbytes(64 * 1024))
    elif kind == "truncated":  # cut at a page boundary: only the header's page count tells
        p.write_bytes(data[:10 * PAGE])
    elif kind == "truncated_mid_page":
        p.write_bytes(data[:len(data) // 2 + 100])
    elif kind == "garbled":  # one page of the results in the middle overwritten
        n = len(data) // PAGE // 2
        p.write_bytes(data[:n * PAGE] + random.Random(2).randbytes(PAGE) + data[(n + 1) * PAGE:])
    elif kind == "garbled_page1":  # the schema page after the 100-byte header
        p.write_bytes(data[:100] + random.Random(3).randbytes(PAGE - 100) + data[PAGE:])
    elif kind == "directory":
        p.mkdir()
        (p / "keep.txt").write_text("x")
    else:
        raise AssertionError(kind)
    return p


def state(p):
    """What must not change: a file's bytes and that no -wal/-shm appear beside it, or a
    directory's listing."""
    if p.is_dir():
        return sorted(os.listdir(p))
    return sha(p), sorted(x.name for x in p.parent.glob(p.name + "-*"))


def one_error_line(res, path) -> str:
    """The result's single ``error:`` line (which names ``path``), with no traceback anywhere."""
    assert "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, res.output
    assert str(path) in errors[0], errors[0]
    return errors[0]


WHAT_TO_DO = {  # the words of the line that tell the user what is wrong and what to do
    "random": ("不是 SQLite", "not a SQLite database", "--db"),
    "truncated": ("已损坏", "truncated", "备份"),
    "truncated_mid_page": ("已损坏", "truncated", "备份"),
    "garbled": ("已损坏", "damaged", "备份"),
    "garbled_page1": ("已损坏", "damaged", "备份"),
    "directory": ("目录", "is a directory", "--db"),
}


@pytest.mark.parametrize("kind", sorted(WHAT_TO_DO))
@pytest.mark.parametrize("command", ["run", "rescore", "export", "report", "sample"])
def test_a_bad_database_file_is_one_line_and_left_as_it_was(kind, command, good_db, root, samples, tmp_path):
    bad = make_bad(kind, good_db, tmp_path)
    before = state(bad)
    res = CliRunner().invoke(main, commands(bad, root, samples, tmp_path)[command])
    assert res.exit_code == 2, res.output
    line = one_error_line(res, bad)
    assert all(w in line for w in WHAT_TO_DO[kind]), line
    assert state(bad) == before
    assert not (tmp_path / "ws.xlsx").exists() and not (tmp_path / "cards").exists()


def test_a_garbled_database_is_refused_before_run_writes_anything(good_db, root, samples, tmp_path):
    """As a user runs it (a subprocess): `run --force` would rewrite every row of a damaged file."""
    bad = make_bad("garbled", good_db, tmp_path)
    before = sha(bad)
    cmd = commands(bad, root, samples, tmp_path)["run"] + ["--force"]
    p = subprocess.run([sys.executable, "-m", "qa_inspect.cli", *cmd], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "PYTHONPATH": str(root)})
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1 and str(bad) in p.stderr, p.stderr
    assert sha(bad) == before and not (tmp_path / "rep").exists()


@pytest.mark.parametrize("command", ["run", "rescore", "sample"])
def test_a_read_only_file_is_not_written(command, good_db, root, samples, tmp_path):
    ro = tmp_path / "ro.db"
    shutil.copy(good_db, ro)
    os.chmod(ro, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    before = state(ro)
    res = CliRunner().invoke(main, commands(ro, root, samples, tmp_path)[command])
    assert res.exit_code == 2, res.output
    line = one_error_line(res, ro)
    assert "只读" in line and "chmod u+w" in line, line
    assert state(ro) == before


@pytest.mark.parametrize("command", ["export", "report"])
def test_a_read_only_file_can_still_be_read(command, good_db, root, samples, tmp_path):
    """Reading needs no write permission: export and reports open the file read-only."""
    ro = tmp_path / "ro.db"
    shutil.copy(good_db, ro)
    os.chmod(ro, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    before = state(ro)
    res = CliRunner().invoke(main, commands(ro, root, samples, tmp_path)[command])
    assert res.exit_code == 0, res.output
    if command == "export":
        assert len([json.loads(x) for x in res.output.splitlines() if x.startswith("{")]) == 13
    assert state(ro) == before


def test_a_path_under_a_file_is_one_line(good_db, root, samples, tmp_path):
    (tmp_path / "file").write_text("x")
    db = tmp_path / "file" / "qa.db"
    res = CliRunner().invoke(main, commands(db, root, samples, tmp_path)["run"])
    assert res.exit_code == 2 and "不是目录" in one_error_line(res, db), res.output
    assert (tmp_path / "file").read_text() == "x"


def test_a_full_disk_stops_the_batch_and_keeps_the_calls_before_it(monkeypatch, root, samples, tmp_path):
    """SQLite's max_page_count stands in for a full disk (SQLITE_FULL mid-batch)."""
    import qa_inspect.store as store_mod
    from qa_inspect.store import SQLiteStore, open_store

    class SmallDisk(SQLiteStore):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            n = self.db.execute("PRAGMA page_count").fetchone()[0]
            self.db.execute(f"PRAGMA max_page_count = {n + 20}")  # room for a few calls only

    db = tmp_path / "qa.db"
    monkeypatch.setattr(store_mod, "SQLiteStore", SmallDisk)
    res = CliRunner().invoke(main, commands(db, root, samples, tmp_path)["run"])
    assert res.exit_code == 2, res.output
    line = one_error_line(res, db)
    assert "磁盘已满" in line and "disk is full" in line and "重新运行" in line, line
    monkeypatch.setattr(store_mod, "SQLiteStore", SQLiteStore)

    with open_store(db) as st:  # a sound database holding the calls done before the disk filled
        kept = st.call_ids()
        assert 0 < len(kept) < 13, kept
        assert all(st.get_result(c).status in ("ok", "error") for c in kept)
        assert st.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # with space again, the batch resumes: the kept calls are skipped, the rest are done
    res = CliRunner().invoke(main, commands(db, root, samples, tmp_path)["run"])
    assert res.exit_code == 0 and f"{13 - len(kept)} ok, 0 error(s), {len(kept)} already done" in res.output, \
        res.output
    with open_store(db) as st:
        assert st.count("ok") == 13


SECRET = "Pw-S3cret!x"


@pytest.mark.parametrize("command", ["run", "rescore", "export", "report", "sample"])
def test_a_postgres_url_that_cannot_connect_never_shows_its_password(command, root, samples, tmp_path):
    pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")
    for url in (f"postgresql://qa:{SECRET.replace('!', '%21')}@127.0.0.1:1/qa",  # refused at once
                f"postgresql://qa@127.0.0.1:1/qa?password={SECRET.replace('!', '%21')}&connect_timeout=2",
                f"postgres://qa:{SECRET}@127.0.0.1:99999/qa"):  # a port psycopg rejects
        res = CliRunner().invoke(main, commands(url, root, samples, tmp_path)[command])
        assert res.exit_code == 2, res.output
        assert "Traceback" not in res.output
        errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and "cannot connect to PostgreSQL" in errors[0], res.output
        assert "S3cret" not in res.output and "***" in errors[0] and "127.0.0.1" in errors[0], res.output


def test_store_error_is_one_line_and_survives_a_worker_process():
    import pickle

    from qa_inspect.errors import QAError
    from qa_inspect.store import StoreError

    e = pickle.loads(pickle.dumps(StoreError("page 3:\n  bad", "qa.db")))
    assert isinstance(e, QAError) and str(e) == "qa.db: page 3: bad"


def test_redact_url():
    from qa_inspect.store.errors import mask_secret, redact_url

    assert redact_url("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("postgresql://u@h/db?sslmode=require&password=x&port=1") == \
        "postgresql://u@h/db?sslmode=require&password=***&port=1"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db" and redact_url("qa.db") == "qa.db"
    assert mask_secret('password "p@ss" rejected', "postgresql://u:p%40ss@h/db") == 'password "***" rejected'


def test_a_second_store_in_the_process_keeps_the_first_ones_locks(good_db, tmp_path):
    """The workspace opens a store per thread while a `review import` or `run` may write from
    another process. Opening the second store must not drop the first one's POSIX locks (closing
    any descriptor of the file would): otherwise the other process, closing its connection, finds
    itself alone and deletes the -wal and -shm files under the live server."""
    from qa_inspect.store import SQLiteStore

    db = tmp_path / "live.db"
    shutil.copy(good_db, db)
    first = SQLiteStore(db)
    n = first.count()
    second = SQLiteStore(db)  # as the next request thread's store
    writer = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
              "c.execute('CREATE TABLE IF NOT EXISTS other_process (x)'); c.execute('INSERT INTO other_process VALUES (1)'); "
              "c.commit(); c.close()")
    subprocess.run([sys.executable, "-c", writer, str(db)], check=True)
    assert os.path.exists(f"{db}-wal") and os.path.exists(f"{db}-shm")  # still ours: not deleted
    assert first.db.execute("SELECT COUNT(*) FROM other_process").fetchone()[0] == 1
    assert first.count() == second.count() == n
    second.close()
    first.close()
    assert SQLiteStore(db).db.execute("SELECT x FROM other_process").fetchall() == [(1,)]  # nothing lost
