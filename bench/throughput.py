"""Batch throughput of `qa-inspect run` with 1 vs N decode/ASR worker processes.

Each configuration runs in a fresh Python process (so model loading and peak memory are its
own) over the same manifest, with a fresh temporary database and force=True (nothing skipped,
nothing from the transcript cache). Prints a markdown table:

    workers | calls | audio min | wall s | audio h / wall h | peak RSS per worker MiB

Wall time is the whole batch (model loading in every worker, decode, ASR, rules, store).
Peak RSS is ``ru_maxrss`` of each process that transcribed (the batch process itself for
workers=1, each pool worker otherwise; the driver's own memory is not in the N>1 rows).

    cd /work/main
    QA_INSPECT_CACHE=$PWD/.cache .venv/bin/python bench/throughput.py [--workers 1,2] [MANIFEST]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(manifest: str, workers: int, db: str) -> None:
    sys.path.insert(0, str(ROOT))
    from qa_inspect.cli import DEFAULT_PACK, DEFAULT_PACK_EN, _asr_config
    from qa_inspect.executors import run_batch_parallel
    from qa_inspect.inputs import read_input
    from qa_inspect.pipeline import PackSet
    from qa_inspect.rules import load_pack
    from qa_inspect.store import open_store

    packs = PackSet([load_pack(ROOT / DEFAULT_PACK), load_pack(ROOT / DEFAULT_PACK_EN)])
    items = read_input(manifest, language=packs.language)
    cfg = _asr_config(packs.language, "", "auto", "auto", 0)
    stats: dict[int, float] = {}
    with open_store(db) as store:
        s = run_batch_parallel(items, packs, store, cfg, workers, force=True, worker_stats=stats)
    print(json.dumps({"workers": workers, "calls": s.ok + s.errors, "ok": s.ok, "errors": s.errors,
                      "audio_s": s.audio_s, "wall_s": s.wall_s, "asr_rtf": s.rtf,
                      "rss_mb": sorted(stats.values())}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest", nargs="?", default=str(ROOT / "samples" / "manifest.csv"))
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.manifest, a.child, a.db)
        return
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if not env.get("QA_INSPECT_CACHE") and (ROOT / ".cache" / "models" / "whisper-base").exists():
        env["QA_INSPECT_CACHE"] = str(ROOT / ".cache")
    rows = []
    for n in [int(x) for x in a.workers.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, __file__, a.manifest, "--child", str(n),
                                "--db", str(Path(tmp) / "qa.db")],
                               capture_output=True, text=True, env=env, cwd=ROOT)
            proc_wall = time.perf_counter() - t0
        if p.returncode != 0:
            sys.exit(f"workers={n} failed:\n{p.stderr[-2000:]}")
        r = json.loads(p.stdout.strip().splitlines()[-1])
        r["proc_wall_s"] = proc_wall
        rows.append(r)
        print(f"workers={n}: {r['calls']} calls in {r['wall_s']:.1f} s", file=sys.stderr)
    with_start = ", ".join(f"{r['proc_wall_s']:.1f}" for r in rows)
    print(f"\n{a.manifest}, {os.cpu_count()} CPU cores; wall = batch (process start/imports excluded; "
          f"with them: {with_start} s)\n")
    print("| workers | calls (ok/err) | audio min | wall s | audio h / wall h | ASR RTF (per worker) | peak RSS per worker MiB |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        speed = r["audio_s"] / r["wall_s"] if r["wall_s"] else 0.0
        rss = ", ".join(f"{x:.0f}" for x in r["rss_mb"]) or "—"
        print(f"| {r['workers']} | {r['calls']} ({r['ok']}/{r['errors']}) | {r['audio_s'] / 60:.1f} | "
              f"{r['wall_s']:.1f} | {speed:.1f} | {r['asr_rtf']} | {rss} |")


if __name__ == "__main__":
    main()
