"""The store contract, run against SQLite and against a real PostgreSQL server.

The PostgreSQL server is a throwaway one started for this module (initdb + pg_ctl in a
temporary directory, Unix socket only, no TCP). As root it runs as the `postgres` (or
`nobody`) user, since initdb refuses root. Without the PostgreSQL binaries the PostgreSQL
cases are skipped, saying so."""
import glob
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from qa_inspect.speech.fakes import ReferenceTranscriber
from qa_inspect.batch.inputs import read_input
from qa_inspect.batch.pipeline import PackSet, run_batch
from qa_inspect.batch.rescore import RescoreSummary, rescore
from qa_inspect.batch.rescore import rescore_store
from qa_inspect.records import CallInput, CallResult, Transcript, Turn
from qa_inspect.rules import load_pack
from qa_inspect.store import SQLiteStore, open_store, result_row


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))  # Debian/Ubuntu layout
    return cands[-1] if cands else None


def _as_user() -> list[str]:
    """Command prefix that runs a PostgreSQL binary as a non-root user when we are root."""
    if os.geteuid() != 0:
        return []
    import pwd

    for user in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            continue
        if shutil.which("runuser"):
            return ["runuser", "-u", user, "--"]
        if shutil.which("setpriv"):
            return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"]
    pytest.skip("running as root without a non-root user (postgres/nobody) or runuser/setpriv to start PostgreSQL")


@pytest.fixture(scope="module")
def pg_server():
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in "
                    "/usr/lib/postgresql/*/bin: apt-get install postgresql to run these tests")
    pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")
    prefix = _as_user()
    # not pytest's tmp_path: its parents are private to root, and the server runs as another user
    base = Path(tempfile.mkdtemp(prefix="qa-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if prefix:
        import pwd

        pw = pwd.getpwnam(prefix[2] if prefix[0] == "runuser" else "postgres")
        for p in (base, sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    run = lambda *cmd: subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=120)  # noqa: E731
    r = run(initdb, "-D", str(data), "-U", "qa", "-A", "trust", "--no-sync", "-E", "UTF8")
    if r.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"initdb failed: {r.stderr.strip()[-300:]}")
    port = "5439"
    r = run(pg_ctl, "-D", str(data), "-w", "-t", "60", "-l", str(base / "log"), "-o",
            f"-p {port} -k {sock} -c listen_addresses='' -c fsync=off", "start")
    if r.returncode != 0:
        log = (base / "log").read_text() if (base / "log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {(r.stderr + log).strip()[-300:]}")
    try:
        yield f"postgresql://qa@/postgres?host={sock}&port={port}"
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    """A fresh, empty database: a SQLite file, or a new database on the test server."""
    if request.param == "sqlite":
        yield str(tmp_path / "q.db")
        return
    import psycopg

    admin_url = request.getfixturevalue("pg_server")
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    yield admin_url.replace("/postgres?", f"/{name}?")
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _result(cid: str, started: str = "2026-11-23T09:00:00+08:00", status: str = "ok", cfg: str = "c1",
            text: str = "您好，工号1234") -> CallResult:
    tr = Transcript(call_id=cid, language="zh", duration=3.0,
                    turns=(Turn(role="agent", text=text, start=0.0, end=1.5, channel=0),))
    return CallResult(call=CallInput(call_id=cid, agent_id="A1", started_at=started, language="zh"),
                      status=status, transcript=tr if status == "ok" else None, config_hash=cfg,
                      error="" if status == "ok" else "bad file")


def test_open_store_picks_the_backend(store_url):
    with open_store(store_url) as st:
        assert isinstance(st, SQLiteStore) == (not store_url.startswith("postgresql://"))
        assert st.count() == 0


def test_transcripts_and_results_round_trip(store_url):
    tr1 = _result("c").transcript
    tr2 = Transcript(call_id="c", language="zh", turns=(Turn(role="customer", text="我要投诉"),), duration=1.0)
    with open_store(store_url) as st:
        assert st.get_transcript("h1", "k1") is None
        st.put_transcript("h1", "k1", tr1)
        st.put_transcript("h1", "k2", tr2)
        st.put_transcript("h1", "k1", tr1)  # replace, not a second row
        assert st.get_transcript("h1", "k1") == tr1
        assert [k for k, _ in st.asr_keys("h1")] == ["k2", "k1"]  # oldest first
        assert st.transcript_keys() == {"h1": ["k2", "k1"]}

        # report order is (started_at, call_id), byte-wise as in SQLite
        st.put_result(_result("b", "2026-11-23T10:00:00+08:00"))
        st.put_result(_result("a", "2026-11-23T10:00:00+08:00"))
        st.put_result(_result("Z", "2026-11-23T08:00:00+08:00", status="error"))
        st.put_result(_result("b", "2026-11-23T10:00:00+08:00", cfg="c2", text="新的"))  # replaced
        assert st.count() == 3 and st.count("ok") == 2 and st.count("error") == 1
        assert st.call_ids() == ["Z", "a", "b"] and st.call_ids("ok") == ["a", "b"]
        assert [r.call.call_id for r in st.results()] == ["Z", "a", "b"]
        b = st.get_result("b")
        assert b.transcript.turns[0].text == "新的" and b.config_hash == "c2"
        assert b.to_dict() == _result("b", "2026-11-23T10:00:00+08:00", cfg="c2", text="新的").to_dict()
        assert st.get_result("nope") is None
        assert st.done("b", "c2") and not st.done("b", "c1") and not st.done("Z", "c1")


def test_put_rows_is_one_transaction(store_url):
    with open_store(store_url) as st:
        st.put_result(_result("keep", cfg="old"))
        good = result_row(_result("keep", cfg="new"))
        bad = (*result_row(_result("x"))[:3], None, *result_row(_result("x"))[4:])  # status NOT NULL
        with pytest.raises(Exception):
            st.put_rows([good, bad])
        assert st.get_result("keep").config_hash == "old" and st.count() == 1  # nothing of it stored
        st.put_rows([good])
        assert st.get_result("keep").config_hash == "new"


def test_raw_results_pages_by_key_while_rows_are_rewritten(store_url):
    with open_store(store_url) as st:
        st.put_results([_result(f"c{i:02d}") for i in range(7)] + [_result("e", status="error")])
        seen = []
        for page in st.raw_results("ok", batch=3):
            assert len(page) <= 3
            seen += [cid for cid, _ in page]
            # rewriting the rows of this page must not make them come back or hide others
            st.put_results([CallResult.from_dict({**json.loads(rec), "config_hash": "x"}) for _c, rec in page])
        assert seen == [f"c{i:02d}" for i in range(7)]


def test_batch_and_rescore_give_the_same_rows_in_every_store(store_url, root, samples, tmp_path):
    """The whole workflow on the store: run (fake ASR), skip on re-run, re-score in chunks."""
    zh, en = load_pack(root / "rules/telecom_zh.yaml"), load_pack(root / "rules/telecom_en.yaml")
    items = read_input(samples / "manifest.csv")
    fake = ReferenceTranscriber(samples / "transcripts.jsonl")
    with open_store(store_url) as st:
        s = run_batch(items, PackSet([zh, en]), st, lambda: fake, "fake-asr")
        assert (s.ok, s.errors) == (13, 1)
        s = run_batch(items, PackSet([zh, en]), st, lambda: fake, "fake-asr")
        assert (s.skipped, s.ok, fake.calls) == (13, 0, 13)
        before = {r.call.call_id: r for r in st.results()}
        # re-score with the English pack only: the Mandarin calls fall back to it; two worker
        # processes with their own connections, chunks of 4 calls
        rs = RescoreSummary()
        rescore_store(st, PackSet([en]), rs, workers=2, chunk=4)
        assert (rs.total, rs.rescored, rs.failed) == (13, 13, 0)
        after = {r.call.call_id: r for r in st.results()}
        assert after["zh_polite_inquiry"].pack_id == "telecom_en" and after["corrupt_call"].status == "error"
        assert all(after[c].transcript == r.transcript for c, r in before.items() if r.status == "ok")
        rows = {c: r.to_dict() for c, r in after.items()}
    # the same steps on SQLite give the very same records
    with open_store(tmp_path / "ref.db") as ref:
        run_batch(items, PackSet([zh, en]), ref, lambda: ReferenceTranscriber(samples / "transcripts.jsonl"),
                  "fake-asr")
        rescore(ref, PackSet([en]), workers=1)
        assert {r.call.call_id: r.to_dict() for r in ref.results()} == rows


def test_cli_run_and_export_on_postgres(pg_server, samples, tmp_path):
    import psycopg
    from click.testing import CliRunner

    from qa_inspect.cli import main

    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS cli_t WITH (FORCE)")
        c.execute("CREATE DATABASE cli_t")
    url = pg_server.replace("/postgres?", "/cli_t?")
    res = CliRunner().invoke(main, ["run", str(samples / "transcripts.jsonl"), "--db", url,
                                    "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["run", str(samples / "transcripts.jsonl"), "--db", url,
                                    "--out", str(tmp_path / "r")])
    assert res.exit_code == 0 and "13 already done" in res.output, res.output
    with open_store(url) as st:
        assert st.count("ok") == 13
    bad = CliRunner().invoke(main, ["run", str(samples / "transcripts.jsonl"), "--db",
                                    url.replace("port=", "port=1"), "--out", str(tmp_path / "r")])
    assert bad.exit_code == 2 and "cannot connect to PostgreSQL" in bad.output, bad.output
    # export and rescore read the same shared database
    res = CliRunner().invoke(main, ["export", "--db", url])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in res.output.splitlines() if x.strip()]
    assert len(rows) == 13 and {r["status"] for r in rows} == {"ok"}
    res = CliRunner().invoke(main, ["rescore", "--db", url])
    assert res.exit_code == 0 and "rescored: 13 call(s)" in res.output, res.output
