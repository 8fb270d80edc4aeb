import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


def sample_manifest(tmp_path: Path, samples: Path, ids=None) -> Path:
    """A manifest CSV in ``tmp_path`` with the sample calls ``ids`` (all if None), audio paths
    made absolute, for tests that run a batch on a subset of the samples."""
    import csv

    with open(samples / "manifest.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    keep = [dict(r, path=str((samples / r["path"]).resolve())) for r in rows
            if ids is None or r["call_id"] in ids]
    p = tmp_path / "m.csv"
    with open(p, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(keep)
    return p


def exported_records(db, env: dict) -> dict[str, dict]:
    """``qa-inspect export --db DB`` run as a user would (a subprocess), by call id."""
    import json
    import subprocess
    import sys

    exp = subprocess.run([sys.executable, "-m", "qa_inspect.cli", "export", "--db", str(db)],
                         capture_output=True, text=True, check=True, env=env)
    return {d["call_id"]: d for d in map(json.loads, exp.stdout.splitlines())}
