"""Re-score throughput over a database of N stored calls (default 10,000).

Fills a fresh database with N calls made from the 13 reference transcripts in
samples/transcripts.jsonl (variants: a distinct call id, agent and audio hash each; every third
call loses its first agent turn, every third other one gets an extra agent line with a new
phrase), each stored as `run` stores it (transcript row + result row). Then times
``pipeline.rescore`` with a changed Mandarin pack (heavier greeting deduction, one more rule)
for each --workers value, on a fresh copy of the database each time. Prints a markdown table
with wall-clock calls/s and calls per CPU second (driver + workers; what the machine would do
per core if nothing else ran on it).

    cd /work/main
    .venv/bin/python bench/rescore.py [--calls 10000] [--workers 1,2] [--db URL]

--db postgresql://... runs the same over a PostgreSQL database (its tables are emptied first).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_inspect.batch.inputs import WorkItem  # noqa: E402
from qa_inspect.batch.rescore import rescore  # noqa: E402
from qa_inspect.batch.score import PackSet, config_hash, score_transcript  # noqa: E402
from qa_inspect.records import CallInput, Transcript, Turn  # noqa: E402
from qa_inspect.rules import load_pack  # noqa: E402
from qa_inspect.store import open_store  # noqa: E402

ASR_KEY = "bench-asr-key"


def variants(n: int) -> list[tuple[CallInput, Transcript]]:
    base = [Transcript.from_dict(json.loads(line)) for line in
            (ROOT / "samples" / "transcripts.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for i in range(n):
        tr = base[i % len(base)]
        turns = list(tr.turns)
        if i % 3 == 1:
            first_agent = next((k for k, t in enumerate(turns) if t.role == "agent"), None)
            if first_agent is not None and len(turns) > 2:
                del turns[first_agent]
        elif i % 3 == 2 and turns:
            last = turns[-1].end or 0.0
            turns.append(Turn(role="agent", text="请您稍等，我帮您查询一下。", start=last + 0.5, end=last + 2.5,
                              channel=0))
        cid = f"bench_{i:06d}_{tr.call_id}"
        call = CallInput(call_id=cid, path=f"/calls/{cid}.flac", agent_id=f"A{i % 37:03d}",
                         agent_name="", team=f"T{i % 5}", started_at=f"2026-11-{1 + i % 28:02d}T09:00:00+08:00",
                         channel_layout="stereo_agent_left", language=tr.language)
        out.append((call, dataclasses.replace(tr, call_id=cid, turns=tuple(turns),
                                              asr={"model": "bench", "config_key": ASR_KEY})))
    return out


def fill(url: str, n: int, packs: PackSet) -> float:
    t0 = time.perf_counter()
    with open_store(url) as st:
        if hasattr(st, "truncate"):
            st.truncate()  # PostgreSQL: start from empty tables
        rows = []
        for call, tr in variants(n):
            ah = hashlib.sha256(call.call_id.encode()).hexdigest()
            pack = packs.for_language(tr.language)
            rows.append((ah, tr, score_transcript(WorkItem(call=call), tr, pack, audio_hash=ah,
                                                  cfg_hash=config_hash(ASR_KEY, pack),
                                                  extra_metrics={"asr_rtf": 0.15})))
        for ah, tr, _res in rows:
            st.put_transcript(ah, ASR_KEY, tr)
        st.put_results([r for _a, _t, r in rows])
    return time.perf_counter() - t0


def modified_zh(tmp: Path) -> Path:
    import yaml

    d = yaml.safe_load((ROOT / "rules/telecom_zh.yaml").read_text(encoding="utf-8"))
    next(r for r in d["rules"] if r["id"] == "greeting")["deduction"] += 20
    d["rules"].append({"id": "bench_wait", "title": "bench phrase", "category": "test", "kind": "forbidden",
                       "severity": "minor", "deduction": 5, "match": {"role": "agent", "any": ["稍等"]}})
    p = tmp / "zh_modified.yaml"
    p.write_text(yaml.safe_dump(d, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return p


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the re-score workers): the
    figure that does not depend on what else the machine is running."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    ap.add_argument("--db", default="", help="database URL (default: a temporary SQLite file)")
    a = ap.parse_args()
    en = load_pack(ROOT / "rules/telecom_en.yaml")
    packs = PackSet([load_pack(ROOT / "rules/telecom_zh.yaml"), en])
    tmp = Path(tempfile.mkdtemp(prefix="qa-bench-rescore-"))
    try:
        new = PackSet([load_pack(modified_zh(tmp)), en])
        src = a.db or str(tmp / "src.db")
        fill_s = fill(src, a.calls, packs)
        print(f"filled {a.calls} calls in {fill_s:.1f} s ({src})", file=sys.stderr)
        rows = []
        for w in [int(x) for x in a.workers.split(",")]:
            url = src
            if not a.db:  # a fresh copy each time: every run re-scores the same old rows
                url = str(tmp / f"w{w}.db")
                shutil.copy(src, url)
            else:
                fill(url, a.calls, packs)
            cpu0 = _cpu_s()
            with open_store(url) as st:
                s = rescore(st, new, workers=w)
                assert st.count() == a.calls
            rows.append((w, s, _cpu_s() - cpu0))
            print(f"workers={w}: {s.rescored} re-scored in {s.wall_s:.2f} s", file=sys.stderr)
        kind = "PostgreSQL" if a.db.startswith("postgres") else "SQLite (WAL)"
        print(f"\n{a.calls} stored calls, {kind}, {os.cpu_count()} CPU cores, "
              f"pack telecom_zh modified + telecom_en\n")
        print("| workers | calls re-scored | changed score | failed | wall s | calls/s | CPU s | calls per CPU s |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for w, s, cpu in rows:
            print(f"| {w} | {s.rescored:,} | {s.changed:,} | {s.failed} | {s.wall_s:.2f} | "
                  f"{s.calls_per_s:,.0f} | {cpu:.2f} | {s.rescored / cpu:,.0f} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
