"""A bad --out is one line naming it and what to do, exit 2, before any call is processed."""
import hashlib
import os

import pytest
from click.testing import CliRunner

from qa_inspect.cli import main


def _run(tmp_path, samples, out):
    db = tmp_path / "q.db"
    r = CliRunner().invoke(main, ["run", str(samples / "transcripts.jsonl"), "--db", str(db), "--out", str(out)])
    return r, db


def test_a_file_in_the_way_of_out(tmp_path, samples):
    f = tmp_path / "report"
    f.write_text("keep me")
    r, db = _run(tmp_path, samples, f)
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert f"{f}: --out must be a folder" in r.output and "choose another --out" in r.output
    assert f.read_text() == "keep me" and not db.exists()  # nothing ran


def test_out_under_a_file(tmp_path, samples):
    f = tmp_path / "afile"
    f.write_text("x")
    r, db = _run(tmp_path, samples, f / "sub")
    assert r.exit_code == 2 and f"{f / 'sub'}: cannot write the report folder" in r.output
    assert not db.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out(tmp_path, samples):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    r, _db = _run(tmp_path, samples, ro)
    assert r.exit_code == 2 and "cannot write the report folder" in r.output


def test_report_agents_and_rescore_check_out_first(tmp_path, samples):
    r, db = _run(tmp_path, samples, tmp_path / "rep")
    assert r.exit_code in (0, 1), r.output
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    f = tmp_path / "file"
    f.write_text("x")
    r = CliRunner().invoke(main, ["rescore", "--db", str(db), "--out", str(f)])
    assert r.exit_code == 2 and f"{f}: --out must be a folder" in r.output, r.output
    r = CliRunner().invoke(main, ["report", "agents", "--db", str(db), "--out", str(f / "sub")])
    assert r.exit_code == 2 and f"{f / 'sub'}: cannot write the report folder" in r.output, r.output
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # rescore stopped before writing


def test_run_report_over_the_page_limit_keeps_every_call_in_the_csv(tmp_path, samples, monkeypatch):
    """`run` builds its report from the run's stored results a page at a time; over the page's
    call limit the page says so and points at the CSV, which holds every call."""
    import csv

    monkeypatch.setenv("QA_INSPECT_REPORT_MAX_CALLS", "3")
    monkeypatch.setenv("QA_INSPECT_SENTIMENT", "lexicon")
    out = tmp_path / "rep"
    r, _db = _run(tmp_path, samples, out)
    assert r.exit_code == 0, r.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="calls-cut"' in html and "QA_INSPECT_REPORT_MAX_CALLS" in html
    with open(out / "report.csv", encoding="utf-8-sig", newline="") as f:
        ids = [row["call_id"] for row in csv.DictReader(f)]
    with open(samples / "transcripts.jsonl", encoding="utf-8") as f:
        assert ids == [__import__("json").loads(x)["call_id"] for x in f if x.strip()]  # input order
    assert len(ids) == 13 and html.count("<details id=\"call-") < 13
