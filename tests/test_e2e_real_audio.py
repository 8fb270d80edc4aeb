"""End to end: the real faster-whisper model on the real sample audio, through the CLI."""
import json
import os
import subprocess
import sys

import pytest
from conftest import exported_records

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def batch(tmp_path_factory, root, samples):
    out = tmp_path_factory.mktemp("e2e")
    cmd = [sys.executable, "-m", "qa_inspect.cli", "run", str(samples / "manifest.csv"),
           "--rules", str(root / "rules/telecom_zh.yaml"), "--rules", str(root / "rules/telecom_en.yaml"),
           "--db", str(out / "qa.db"), "--out", str(out / "reports")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root)
    records = exported_records(out / "qa.db", env)
    return proc, records, out, cmd, env


def _rule(rec, rid):
    return next(r for r in rec["rules"] if r["rule_id"] == rid)


def test_exit_code_and_report(batch):
    proc, records, out, *_ = batch
    assert proc.returncode == 1, proc.stderr  # some calls failed (the corrupt file)
    assert "report:" in proc.stdout
    done = next(l for l in proc.stdout.splitlines() if l.startswith("done: "))
    assert "s wall" in done and "real-time factor" in done and "ASR RTF" in done
    html = (out / "reports" / "report.html").read_text(encoding="utf-8")
    assert "corrupt_call" in html and "cannot decode audio" in html
    assert len(records) == 14


def test_corrupt_file_is_an_error_row(batch):
    rec = batch[1]["corrupt_call"]
    assert rec["status"] == "error" and "corrupt_call.wav" in rec["error"] and rec["score"] is None


def test_greetings_found_on_real_audio(batch, samples):
    expected = json.loads((samples / "expected.json").read_text(encoding="utf-8"))
    records = batch[1]
    for cid, exp in expected.items():
        if "greeting" in exp:
            assert _rule(records[cid], "greeting")["matched"] == exp["greeting"], cid


def test_forbidden_phrase_caught_with_timestamp(batch):
    r = _rule(batch[1]["zh_forbidden_phrase"], "forbidden_phrase")
    assert r["outcome"] == "hit" and r["deduction"] > 0
    ev = next(e for e in r["evidence"] if "不归我管" in e["text"])
    assert ev["role"] == "agent" and 5 < ev["start"] < ev["end"] < 26


def test_escalation_risk_12315_and_media(batch):
    records = batch[1]
    r = _rule(records["zh_billing_12315"], "escalation_risk")
    assert r["matched"] and any(e["matched"] == "12315" and e["role"] == "customer" for e in r["evidence"])
    assert _rule(records["zh_media_threat"], "escalation_risk")["matched"]
    assert _rule(records["en_complaint_escalation"], "escalation_risk")["matched"]
    assert not _rule(records["zh_polite_inquiry"], "escalation_risk")["matched"]


def test_roles_and_transcript_recorded(batch):
    rec = batch[1]["zh_network_fault"]  # stereo_agent_right
    tr = rec["transcript"]
    assert tr["role_method"] == "channel" and tr["asr"]["compute_type"] == "int8"
    assert "为您服务" in next(t["text"] for t in tr["turns"] if t["role"] == "agent")
    assert batch[1]["zh_mono_inquiry"]["transcript"]["role_method"] == "content"
    assert rec["metrics"]["duration_s"] > 30


def test_rerun_skips_done_calls(batch):
    _, _, _, cmd, env = batch
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    assert "13 already done" in proc.stdout


def test_transcribe_command_prints_roles_and_times(root, samples):
    out = subprocess.run([sys.executable, "-m", "qa_inspect.cli", "transcribe", "--format", "jsonl",
                          str(samples / "audio" / "en_complaint_escalation.flac"), "--language", "en"],
                         capture_output=True, text=True, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    tr = json.loads(out.stdout)
    roles = {t["role"] for t in tr["turns"]}
    assert roles == {"agent", "customer"}
    assert any("lawyer" in t["text"].lower() for t in tr["turns"] if t["role"] == "customer")
    assert all(t["start"] <= t["end"] for t in tr["turns"])
