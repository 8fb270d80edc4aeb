"""Transcript import speed: rules + sentiment + score + store, the default configuration.

    .venv/bin/python bench/import_speed.py TRANSCRIPTS.jsonl [--calls 1000,10000] [--ab 120]
        [--as-is] [--workers 1,2] [--backend combined|lexicon]

TRANSCRIPTS.jsonl: e.g. the 339 MUSIED dev calls written by ``bench/musied_to_transcripts.py``.
The calls are repeated up to N (new call ids); unless ``--as-is``, every utterance of a repeat
gets the repeat's number appended, so no utterance text repeats across copies and the
per-utterance caches (sentiment scores, embeddings) only hit what repeats in the real data.

1. A/B in one process: the same ``--ab`` calls imported in chunks of 20 with the sentiment
   scorer as it was before issue 18 (snownlp through ``SnowNLP(...).sentiments``, model parts on
   every utterance, no score cache) and as it is now, chunks interleaved (A B, B A, …), the
   embedding cache emptied before every chunk (no vector shared between A and B). Both sides'
   scores are compared on the customer utterances and the customer metrics (must be equal).
2. Scaling: the import (``read_input_segments`` + ``run_batch`` per segment, as ``run``, into a fresh SQLite file, packs
   telecom_zh + telecom_en as ``qa-inspect run`` uses by default) for each N in ``--calls``, each
   in a fresh process (model loads included in the wall time and reported apart), with that
   process's peak RSS.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHUNK = 20


def _peak_rss_mb() -> float:
    from qa_inspect.batch.pool import peak_rss_mb  # VmHWM: this process's own peak

    return peak_rss_mb()


def make_input(src: Path, n: int, out: Path, as_is: bool, tag: str = "") -> None:
    """``n`` calls from ``src`` (repeated; repeat k > 0 has ``k`` appended to every text unless
    ``as_is``; ``tag`` is appended to every text of every call)."""
    base = [json.loads(x) for x in src.read_text(encoding="utf-8").splitlines() if x.strip()]
    with out.open("w", encoding="utf-8") as f:
        for i in range(n):
            k, d = divmod(i, len(base))
            c = dict(base[d])
            c["call_id"] = f"{c['call_id']}-{k}{tag}"
            suffix = ("" if as_is or k == 0 else str(k)) + tag
            if suffix:
                c["turns"] = [{**t, "text": t["text"] + suffix} for t in c["turns"]]
            f.write(json.dumps(c, ensure_ascii=False) + "\n")


def _packs():
    from qa_inspect.batch.pipeline import PackSet
    from qa_inspect.rules import load_pack

    return PackSet([load_pack(ROOT / "rules" / "telecom_zh.yaml"), load_pack(ROOT / "rules" / "telecom_en.yaml")])


def _no_transcriber():
    raise RuntimeError("transcripts input: no ASR")


def import_file(path: Path, db: Path, packs, workers: int = 1,
                stats: dict | None = None, enrich_cfg=None) -> tuple[float, int]:
    """Wall seconds and ok calls of importing ``path`` into a fresh SQLite file ``db``
    (``workers`` > 1: ``run --workers N``, sentiment in the workers; ``enrich_cfg``: default
    what the packs need, as ``run``)."""
    from qa_inspect.batch.inputs import read_input_segments
    from qa_inspect.batch.pipeline import run_batch
    from qa_inspect.store import open_store

    t0 = time.perf_counter()
    ok = 0
    _, segments = read_input_segments(path, language="zh")  # as `run`: a segment at a time
    with open_store(db) as store:
        for items in segments:
            if workers > 1:
                from qa_inspect.batch.pool import run_batch_parallel
                from qa_inspect.speech.asr import ASRConfig

                s = run_batch_parallel(items, packs, store, ASRConfig(language="zh"), workers, worker_stats=stats,
                                       enrich_cfg=enrich_cfg)
            else:
                s = run_batch(items, packs, store, _no_transcriber, "none", enrich_cfg=enrich_cfg)
            ok += s.ok
            del items  # as `run`: the next segment is read only once this one is let go
    return time.perf_counter() - t0, ok


def scale_child(path: str, db: str, workers: str) -> None:
    """One scaling run in this (fresh) process; prints one JSON line. One worker: the models
    are loaded before the timing; several: they load in the workers, inside the wall time."""
    from qa_inspect.enrich.sentiment import get_scorer

    t0 = time.perf_counter()
    packs = _packs()
    if int(workers) <= 1:
        get_scorer().score(["好的谢谢", "我要投诉"], ["agent", "customer"])  # load every model
    load_s = time.perf_counter() - t0
    stats: dict = {}
    c0 = _cpu_s()
    wall, ok = import_file(Path(path), Path(db), packs, int(workers), stats)
    rss = [_peak_rss_mb()] + sorted(stats.values())
    print(json.dumps({"load_s": load_s, "wall_s": wall, "ok": ok, "rss_mb": rss, "cpu_s": _cpu_s() - c0}))


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the pool's workers, once joined)."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def ab(src: Path, n: int, as_is: bool, tmp: Path) -> list[str]:
    """Three arms over the same calls, chunks rotated: the sentiment as it was before issue 18
    (every utterance, snownlp through SnowNLP, no score cache), now over every customer
    utterance (what a pack reading customer_sentiment_min gets), and now as ``run`` does by
    default (the scope the packs read: the end window for telecom_zh/en)."""
    import dataclasses

    from qa_inspect.enrich import EnrichConfig, embeddings, sentiment
    from qa_inspect.enrich.sentiment import CombinedScorer, SentimentConfig

    packs = _packs()
    every = dataclasses.replace(EnrichConfig.from_env(), sentiment_scope="all")
    old = CombinedScorer(model_roles=None, reference_snownlp=True, cache_size=0)
    new = CombinedScorer()
    cfg = SentimentConfig.from_env()
    for s in (old, new):  # load the models outside the timing
        s.score(["好的谢谢", "我要投诉"], ["agent", "customer"])
    arms = {"before": (old, every), "now, every customer utterance": (new, every),
            "now (default: what the packs read)": (new, None)}
    names = list(arms)
    times = dict.fromkeys(names, 0.0)
    make_input(src, n, tmp / "ab.jsonl", as_is)
    lines = (tmp / "ab.jsonl").read_text(encoding="utf-8").splitlines()
    # every arm scores the same texts (to compare them); the embedding cache and the new
    # scorer's score cache are emptied before every chunk, so no arm reuses another's work
    for c, i in enumerate(range(0, n, CHUNK)):
        for a in names[c % 3:] + names[:c % 3]:
            scorer, ecfg = arms[a]
            p = tmp / "chunk.jsonl"
            p.write_text("\n".join(lines[i:i + CHUNK]) + "\n", encoding="utf-8")
            embeddings.clear_cache()
            new._cache.clear()
            sentiment._scorers[cfg] = scorer  # what enrich() uses
            t0 = time.perf_counter()
            import_file(p, tmp / f"chunk-{names.index(a)}-{i}.db", packs, enrich_cfg=ecfg)
            times[a] += time.perf_counter() - t0
    sentiment._scorers.pop(cfg, None)
    from qa_inspect.store import open_store

    def cust(k):
        out = {}
        for j in range(0, n, CHUNK):
            with open_store(tmp / f"chunk-{k}-{j}.db") as st:
                for r in st.results():
                    out[r.call.call_id] = ([t.metrics.get("sentiment") for t in r.transcript.turns if t.role == "customer"],
                                           {k: v for k, v in r.transcript.metrics.items() if k.startswith("customer_")})
        return out
    base = cust(0)
    rows = ["| sentiment | wall s | calls/s | µs per call | customer utterances scored | "
            "scores and customer_* metrics equal to before's (calls) | largest difference |", "|---|---:|---:|---:|---:|---:|---:|"]
    for k, a in enumerate(names):
        got = cust(k) if k else base
        scored = sum(x is not None for u, _ in got.values() for x in u)
        same, diff = 0, 0.0  # float32 encoder batches can differ in the 7th digit: rounding
        for cid, (ua, ma) in base.items():
            ub, mb = got[cid]
            d = [abs(x - y) for x, y in zip(ua, ub) if y is not None] + [abs(ma[m] - v) for m, v in mb.items()]
            same += not any(d) and all(m in ma for m in mb)
            diff = max([diff] + d)
        rows.append(f"| {a} | {times[a]:.1f} | {n / times[a]:.1f} | {1e6 * times[a] / n:,.0f} | {scored:,} | "
                    f"{same} / {len(base)} | {diff:.4f} |")
    return [f"A/B/C on {n} calls (chunks of {CHUNK}, rotated, models loaded before timing, in-process):"] + rows \
        + [f"speed-up of the default over before: {times[names[0]] / times[names[2]]:.1f}×"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("transcripts", nargs="?", default="")
    ap.add_argument("--calls", default="1000,10000", help="comma-separated call counts for the scaling table")
    ap.add_argument("--ab", type=int, default=120, help="calls for the before/now A/B (0: skip)")
    ap.add_argument("--as-is", action="store_true", help="repeat calls verbatim (caches then hit)")
    ap.add_argument("--workers", default="1", help="comma-separated worker counts for the scaling table")
    ap.add_argument("--backend", default="", help="QA_INSPECT_SENTIMENT for the scaling runs (default: as set)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        scale_child(*a.child)
        return 0
    src = Path(a.transcripts)
    if not src.is_file():
        print(f"transcripts not found: {src!r} (write them with bench/musied_to_transcripts.py)", file=sys.stderr)
        return 2
    out: list[str] = [f"`bench/import_speed.py {src.name}` {'--as-is ' if a.as_is else ''}"
                      f"{time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()[0]:.1f}"]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if a.ab:
            out += ab(src, a.ab, a.as_is, tmp)
            print("\n".join(out), file=sys.stderr, flush=True)
        rows = ["| calls | workers | model load s (before timing) | import wall s | calls/s | "
                "CPU ms per call | peak RSS MiB (driver; workers) |", "|---:|---:|---:|---:|---:|---:|---|"]
        for n in (int(x) for x in a.calls.split(",") if x.strip()):
            p = tmp / f"in-{n}.jsonl"
            make_input(src, n, p, a.as_is)
            for w in (int(x) for x in a.workers.split(",") if x.strip()):
                db = tmp / f"s-{n}-{w}.db"
                env = {**os.environ, "PYTHONPATH": str(ROOT)}
                if a.backend:
                    env["QA_INSPECT_SENTIMENT"] = a.backend
                r = subprocess.run([sys.executable, __file__, "--child", str(p), str(db), str(w)],
                                   capture_output=True, text=True, env=env)
                db.unlink(missing_ok=True)
                if r.returncode:
                    print(r.stderr, file=sys.stderr)
                    return 1
                j = json.loads(r.stdout.strip().splitlines()[-1])
                rss = j["rss_mb"]
                rows.append(f"| {n:,} | {w} | {j['load_s']:.1f} | {j['wall_s']:.1f} | {j['ok'] / j['wall_s']:.1f} | "
                            f"{1e3 * j['cpu_s'] / j['ok']:.1f} | {rss[0]:.0f}"
                            + (f"; {', '.join(f'{x:.0f}' for x in rss[1:])}" if rss[1:] else "") + " |")
                print(rows[-1], file=sys.stderr, flush=True)
        backend = a.backend or os.environ.get("QA_INSPECT_SENTIMENT", "combined")
        out += ["", f"Scaling, a fresh process per row, sentiment backend {backend} (wall includes the "
                    "workers' start and model loads when workers > 1):"] + rows
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
