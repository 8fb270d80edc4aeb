"""`qa-inspect kpi` over N stored calls (default 1,000,000): the KPI queries run in SQL over the
indexed ``call_facts`` / ``call_hits`` tables, never by loading the call records.

Fills a fresh SQLite database through ``Store.put_rows`` with N synthetic rows (a tiny record
JSON each; the facts a real ``put_result`` would derive: 200 agents in 20 teams and 8 queues,
300,000 customers over 90 days, hold/wrap known for 2 calls in 3, 8 % complaints), then times
``kpi_rows`` for every --by and --period and prints a markdown table.

    cd /work/main
    .venv/bin/python bench/kpi.py [--calls 1000000] [--db PATH]
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_inspect.store import open_store  # noqa: E402

CST = timezone(timedelta(hours=8))
START = datetime(2026, 9, 1, tzinfo=CST)


def rows(n: int, seed: int = 7):
    rnd = random.Random(seed)
    for i in range(n):
        t = START + timedelta(seconds=rnd.randrange(90 * 86400))
        agent = rnd.randrange(200)
        cid = f"c{i:08d}"
        iso = t.isocalendar()
        known = i % 3 != 0
        talk = rnd.uniform(30, 900)
        fact = (cid, "ok", f"A{agent:03d}", f"T{agent // 10:02d}", f"Q{agent % 8}", f"u{rnd.randrange(300_000)}",
                t.isoformat(), t.timestamp(), t.date().isoformat(), f"{iso[0]}-W{iso[1]:02d}", t.strftime("%Y-%m"),
                rnd.uniform(40, 100), int(rnd.random() < 0.03), talk, rnd.uniform(0, 60) if known else None,
                rnd.uniform(0, 90) if known else None, rnd.random() * 0.3, rnd.uniform(0.5, 2.0),
                float(rnd.randrange(4)), rnd.uniform(-1, 1))
        hits = [(cid, "customer_complaint")] if rnd.random() < 0.08 else []
        yield (cid, fact[2], fact[6], "ok", fact[11], "bench", "{}", 0.0, (fact, hits))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--db", default=None, help="SQLite file to create (default: a temporary one)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="qa-kpi-")
    db = Path(a.db or Path(tmp) / "kpi.db")
    if db.exists():
        sys.exit(f"{db} exists: give a new file")
    t0 = time.perf_counter()
    with open_store(db) as st:
        chunk = []
        for r in rows(a.calls):
            chunk.append(r)
            if len(chunk) == 50_000:
                st.put_rows(chunk)
                chunk = []
        st.put_rows(chunk)
    fill = time.perf_counter() - t0
    print(f"filled {a.calls:,} calls into {db} in {fill:.1f} s ({db.stat().st_size / 2**20:.0f} MiB)\n")
    print("| --by | --period | groups | seconds |")
    print("|---|---|---:|---:|")
    with open_store(db, check=False) as st:
        for by in ("agent", "team", "queue"):
            for period in ("day", "week", "month"):
                t0 = time.perf_counter()
                out = st.kpi_rows(by, period)
                print(f"| {by} | {period} | {len(out):,} | {time.perf_counter() - t0:.2f} |", flush=True)


if __name__ == "__main__":
    main()
