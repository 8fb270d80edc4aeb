"""Cron and shared folders (issue 14): `qa-inspect.toml` settings, shipped packs found from the
installed package, default scorecards (an include:d pack keeps its base pack's card), audio
paths stored absolute, reports with the umask's permissions, calls without a pack of their
language as error rows."""
from __future__ import annotations

import csv
import re
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa_inspect.batch.inputs import read_input
from qa_inspect.cli import main
from qa_inspect.cli.config import default_scorecard, load_config, load_packs, resolve_path
from qa_inspect.errors import QAError
from qa_inspect.rules import load_pack
from qa_inspect.store import open_store

ROOT = Path(__file__).resolve().parents[1]


def test_run_from_another_folder_with_only_a_config_file(tmp_path, monkeypatch):
    job = tmp_path / "job"
    job.mkdir()
    (job / "qa-inspect.toml").write_text(
        'db = "data/qa.db"\nout = "data/reports"\ntimezone = "Asia/Shanghai"\nlang = "zh"\n'
        '[packs]\nzh = "rules/telecom_zh.yaml"\n', encoding="utf-8")
    monkeypatch.chdir(job)  # no rules/ folder here: the shipped pack comes from the package
    old = os.umask(0o022)
    try:
        r = CliRunner().invoke(main, ["run", str(ROOT / "samples/transcripts.jsonl")])
    finally:
        os.umask(old)
    # the two English calls have no pack in this config: error rows (exit 1), not scored in Chinese
    assert r.exit_code == 1, r.output
    assert "telecom_zh 1.0.0 (scorecard telecom_zh_card" in r.output
    assert "no rule pack for language 'en'" in r.output
    rep = job / "data" / "reports"
    with open(rep / "report.csv", encoding="utf-8-sig", newline="") as f:
        rows = {x["call_id"]: x for x in csv.DictReader(f)}
    assert rows["en_billing_inquiry"]["status"] == "error" and rows["zh_forbidden_phrase"]["score"] == "0"
    with open_store(job / "data" / "qa.db") as s:
        assert {x.pack_id for x in s.results() if x.status == "ok"} == {"telecom_zh"}
    for name in ("report.html", "report.csv", "alerts.csv"):  # the umask's permissions, not 0600
        assert stat.S_IMODE((rep / name).stat().st_mode) == 0o644, name
    assert "Asia/Shanghai" in (rep / "report.html").read_text(encoding="utf-8")


def test_flags_override_config_and_explicit_config(tmp_path, monkeypatch):
    cfg = tmp_path / "etc" / "qa.toml"
    cfg.parent.mkdir()
    cfg.write_text('db = "qa.db"\nout = "reports"\nlang = "en"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["run", str(ROOT / "samples/transcripts.jsonl"), "--config", str(cfg),
                                  "--out", str(tmp_path / "mine")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "etc" / "qa.db").is_file()  # relative to the config file's folder
    html = (tmp_path / "mine" / "report.html").read_text(encoding="utf-8")  # --out wins
    assert "Nightly QC report" in html and "质检日报" not in html  # lang = "en" from the config


@pytest.mark.parametrize("text, msg", [
    ('dbb = "x"\n', "unknown setting(s) dbb"),
    ('timezone = "Mars/Olympus"\n', "unknown time zone"),
    ('lang = "fr"\n', "'lang' must be one of zh, en"),
    ('db = \n', "not a valid TOML file"),
])
def test_bad_config_is_one_error_line(tmp_path, text, msg):
    cfg = tmp_path / "qa-inspect.toml"
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(QAError, match=re.escape(msg)):
        load_config(cfg)
    r = CliRunner().invoke(main, ["run", str(ROOT / "samples/transcripts.jsonl"), "--config", str(cfg)])
    assert r.exit_code == 2 and "Traceback" not in r.output and msg.split("(")[0][:20] in r.output


def test_shipped_names_resolve_from_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = Path(resolve_path("rules/telecom_zh.yaml"))
    assert p.is_absolute() and p.is_file()
    assert resolve_path("nope/telecom_zh.yaml") == "nope/telecom_zh.yaml"  # only shipped names


def test_included_pack_keeps_base_scorecard(tmp_path):
    pack = tmp_path / "my_zh.yaml"
    pack.write_text(f"pack: {{id: my_zh, version: '1', title: 本地标准, language: zh}}\n"
                    f"include: [{ROOT / 'rules/telecom_zh.yaml'}]\nrules: []\n", encoding="utf-8")
    card = default_scorecard(load_pack(pack))
    assert card is not None and card.id == "telecom_zh_card" and card.pack == "my_zh"
    packs = load_packs([str(pack)])
    assert "scorecard telecom_zh_card" in packs.describe()


def test_audio_paths_stored_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    items = read_input("samples/manifest.csv")
    ok = [it for it in items if not it.error]
    assert ok and all(Path(it.call.path).is_absolute() and Path(it.call.path).is_file() for it in ok)
