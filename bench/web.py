"""Review workspace latency on a generated database of N calls (default 100,000).

    PYTHONPATH=. python bench/web.py [--calls 100000] [--requests 200] [--db /tmp/web-bench.db]

Builds the database by inserting result rows directly (a synthetic Chinese call: 16 turns,
scorecard breakdown, evidence; the audio of every call is one real sample file), indexes it
with the workspace's own ``sync_index``, starts the real server (`qa-inspect serve`, uvicorn)
on 127.0.0.1 and times, over HTTP with an API token: the queue page (/, newest 50 of all calls),
a filtered API query, the call page (/calls/ID, random calls) and an audio seek (a Range request
at a random offset). Prints p50/p95 per request kind. Target: p95 ≤ 150 ms for pages.
"""
from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AUDIO = ROOT / "samples/audio/zh_billing_12315.flac"
TEAMS = ["一组", "二组", "三组", "四组"]
RULES = [("greeting", "开场问候", "opening", 8), ("self_introduction", "自报工号", "opening", 8),
         ("offer_help", "主动询问需求", "opening", 4), ("identity_verification", "办理业务前核实身份", "business", 30),
         ("apology", "客户不满时致歉", "complaint", 30), ("closing", "标准结束语", "closing", 20),
         ("long_silence", "长时间静音", "manner", 5)]
TURNS = ["您好，很高兴为您服务，我是工号{n}的客服代表，请问有什么可以帮您？", "你好，我想查一下这个月的话费，怎么扣了这么多。",
         "好的，请您提供一下机主姓名和身份证后四位。", "张三，后四位是1234。", "好的，已经核实，您本月有一笔国际漫游费用。",
         "我没出国啊，这是怎么回事？", "非常抱歉给您带来困扰，我马上帮您提交核查。", "多久能有结果？",
         "三个工作日内会有专人联系您。", "好吧，那我等着。"]


def record(i: int, rng: random.Random) -> dict:
    day = 1 + i % 28
    started = f"2026-11-{day:02d}T{8 + i % 10:02d}:{i % 60:02d}:{(i * 7) % 60:02d}+08:00"
    fails = {r[0] for r in RULES if rng.random() < 0.12}
    fatal = rng.random() < 0.02
    breakdown, rules = [], []
    for rid, title, section, pts in RULES:
        hit = rid in fails
        breakdown.append({"rule_id": rid, "section": section, "outcome": "fail" if hit else "pass",
                          "points": -float(pts) if hit else 0.0, "possible": float(pts), "note": "",
                          "evidence": "", "turns": []})
        ev = [] if hit else [{"role": "agent", "turn": 0, "start": 0.5, "end": 6.0, "text": TURNS[0].format(n=i % 9000),
                              "matcher": "keyword", "matched": "您好", "confidence": 1.0}]
        rules.append({"rule_id": rid, "title": title, "category": section, "severity": "major", "matched": not hit,
                      "outcome": "fail" if hit else "pass", "deduction": float(pts) if hit else 0.0, "fatal": False,
                      "kind": "required", "evidence": ev, "reason": ""})
    rules.append({"rule_id": "forbidden_phrase", "title": "服务禁语", "category": "服务态度", "severity": "critical",
                  "matched": fatal, "outcome": "hit" if fatal else "pass", "deduction": 20.0 if fatal else 0.0,
                  "fatal": False, "kind": "forbidden", "reason": "",
                  "evidence": [{"role": "agent", "turn": 8, "start": 40.0, "end": 43.0, "text": "这不归我管。",
                                "matcher": "keyword", "matched": "不归我管", "confidence": 1.0}] if fatal else []})
    score = 0.0 if fatal else max(0.0, 100.0 - sum(r[3] for r in RULES if r[0] in fails))
    turns = [{"role": "agent" if k % 2 == 0 else "customer", "text": TURNS[k % len(TURNS)].format(n=i % 9000),
              "start": 5.0 * k, "end": 5.0 * k + 4.5, "words": [], "channel": k % 2} for k in range(16)]
    return {"call_id": f"c{i:07d}", "agent_id": f"A{i % 200:03d}", "agent_name": f"坐席{i % 200}",
            "team": TEAMS[i % 4], "started_at": started, "path": str(AUDIO), "channel_layout": "stereo_agent_left",
            "language": "zh", "status": "ok", "error": "", "score": score,
            "grade": "A" if score >= 90 else "B" if score >= 80 else "C" if score >= 60 else "D", "fatal": fatal,
            "score_breakdown": breakdown, "scorecard_id": "bench", "scorecard_version": "1", "rules": rules,
            "metrics": {}, "transcript": {"call_id": f"c{i:07d}", "language": "zh", "duration": 80.0,
                                          "role_method": "channel", "asr": {}, "turns": turns},
            "audio_hash": "", "config_hash": "bench", "pack_id": "bench", "pack_hash": ""}


def build(db: str, n: int) -> None:
    from qa_inspect.store import dumps, open_store
    from qa_inspect.store import workspace as ws
    from qa_inspect.workflow import accounts, workspace

    rng = random.Random(7)
    t0 = time.perf_counter()
    with open_store(db) as s:
        for lo in range(0, n, 5000):
            rows = []
            for i in range(lo, min(n, lo + 5000)):
                r = record(i, rng)
                rows.append((r["call_id"], r["agent_id"], r["started_at"], "ok", r["score"], "bench", dumps(r),
                             time.time()))
            s.put_rows(rows)
        t1 = time.perf_counter()
        workspace.sync_index(s)
        t2 = time.perf_counter()
        accounts.add_user(s, "bench", "reviewer", "bench-password")
        with ws.tx(s):
            ws.assign(s, "bench-sample", [(f"c{i:07d}", "bench") for i in range(0, n, max(1, n // 50))], "now")
    print(f"built {n} calls in {t1 - t0:.1f} s, indexed in {t2 - t1:.1f} s ({db})")


def pct(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"p50 {statistics.median(xs) * 1000:6.1f} ms   p95 {xs[int(0.95 * (len(xs) - 1))] * 1000:6.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--db", default="/tmp/qa-web-bench.db", help="SQLite file (rebuilt) or postgresql:// URL (must be empty)")
    a = ap.parse_args()
    import httpx

    if "://" not in a.db:
        for suffix in ("", "-wal", "-shm"):
            Path(a.db + suffix).unlink(missing_ok=True)
    build(a.db, a.calls)
    from qa_inspect.store import open_store
    from qa_inspect.workflow import accounts

    with open_store(a.db) as s:
        token = accounts.make_token(s, "bench")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = open(Path(a.db + ".serve.log") if "://" not in a.db else os.devnull, "w")
    proc = subprocess.Popen([sys.executable, "-m", "qa_inspect.cli", "-v", "serve", "--db", a.db, "--port", str(port)],
                            env=env, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        c = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        for _ in range(300):
            try:
                c.get("/api/me")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        rng = random.Random(1)
        size = AUDIO.stat().st_size
        kinds = {
            "queue page  GET /": lambda: "/",
            "queue API   GET /api/calls?team=二组&score_max=80": lambda: "/api/calls?team=二组&score_max=80",
            "call page   GET /calls/ID": lambda: f"/calls/c{rng.randrange(a.calls):07d}",
            "call API    GET /api/calls/ID": lambda: f"/api/calls/c{rng.randrange(a.calls):07d}",
            "audio seek  GET /api/audio/ID (Range)": lambda: f"/api/audio/c{rng.randrange(a.calls):07d}",
        }
        print(f"{a.requests} requests each, one client, server on {base} ({a.calls} calls)")
        for name, path in kinds.items():
            times = []
            for k in range(a.requests + 5):
                p = path()
                hdr = {}
                if "audio" in name:
                    off = rng.randrange(size - 65536)
                    hdr = {"Range": f"bytes={off}-{off + 65535}"}
                t = time.perf_counter()
                r = c.get(p, headers=hdr)
                dt = time.perf_counter() - t
                if r.status_code not in (200, 206):
                    sys.exit(f"{p}: HTTP {r.status_code} {r.text[:200]} (server log: {log.name})")
                if k >= 5:  # warm-up
                    times.append(dt)
            print(f"{name:45s} {pct(times)}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
