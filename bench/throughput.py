"""Batch throughput: the full pipeline vs raw faster-whisper on the same audio and model.

By default the sample calls are copied until there is at least --minutes of audio (30):
each copy gets a few milliseconds of silence appended so its content hash differs (nothing is
skipped or taken from the transcript cache). Each configuration runs in a fresh Python
process (its own model loading and peak memory) over the same manifest:

    raw       plain faster-whisper: `decode_audio` (each channel of a stereo call), then
              `WhisperModel.transcribe` with the pipeline's settings (same packaged model,
              int8, beam 5, VAD, word timestamps, no prompt, no conditioning on previous
              text), segments consumed; nothing else
    raw-bN    the same through `BatchedInferencePipeline`, batch_size N
    wK        the full pipeline (`run_batch_parallel`: decode, ASR, enrichment, rules, score,
              store in a fresh SQLite file) with K worker processes
    wK-bN     the same with `--batch-size N` (BatchedInferencePipeline in every worker)

Wall time runs from before the model is loaded to the last stored result (model loading,
decode and everything else included, for raw too); Python start-up and imports are not in it.
Peak RSS is `ru_maxrss` of each process that transcribed.

    cd /work/main
    QA_INSPECT_CACHE=$PWD/.cache .venv/bin/python bench/throughput.py [--configs raw,w1,w2,w1-b8]
        [--minutes 30] [--mono] [MANIFEST]

``--mono --minutes 0``: the sample calls once each, mixed down to mono (issue 18's small batch).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_copies(manifest: Path, minutes: float, out: Path, mono: bool = False) -> tuple[Path, float]:
    """A manifest of copies of the manifest's decodable calls, at least ``minutes`` of audio
    (``mono``: every call mixed down to one channel, layout ``mono``: the diarizer's path)."""
    import numpy as np
    import soundfile as sf

    rows = list(csv.DictReader(open(manifest, encoding="utf-8")))
    src = []
    for r in rows:
        p = Path(r["path"]) if Path(r["path"]).is_absolute() else manifest.parent / r["path"]
        try:
            data, sr = sf.read(str(p), dtype="float32", always_2d=True)
        except Exception:  # the corrupt sample: not audio, no throughput to measure
            continue
        src.append((r, data, sr))
    per_round = sum(len(d) / sr for _r, d, sr in src)
    rounds = max(1, int(np.ceil(minutes * 60 / per_round)))
    out.mkdir(parents=True, exist_ok=True)
    new_rows, total = [], 0.0
    for k in range(rounds):
        for r, data, sr in src:
            pad = np.zeros((int(sr * 0.01 * (k + 1)), data.shape[1]), dtype=np.float32)  # distinct hash
            cid = f"{r['call_id']}_copy{k}"
            path = out / f"{cid}.flac"
            x = np.concatenate([data, pad])
            if mono:
                x = x.mean(axis=1, keepdims=True)
            sf.write(str(path), x, sr)
            total += (len(data) + len(pad)) / sr
            new_rows.append({**r, "call_id": cid, "path": str(path),
                             **({"channel_layout": "mono"} if mono else {})})
    m = out / "manifest.csv"
    with open(m, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(new_rows)
    return m, total


def child_pipeline(manifest: str, workers: int, batch: int, db: str) -> dict:
    sys.path.insert(0, str(ROOT))
    from qa_inspect.cli.batch import DEFAULT_PACK, DEFAULT_PACK_EN, _asr_config
    from qa_inspect.batch.pool import run_batch_parallel
    from qa_inspect.batch.inputs import read_input
    from qa_inspect.batch.pipeline import PackSet
    from qa_inspect.rules import load_pack
    from qa_inspect.store import open_store

    packs = PackSet([load_pack(ROOT / DEFAULT_PACK), load_pack(ROOT / DEFAULT_PACK_EN)])
    items = read_input(manifest, language=packs.language)
    cfg = _asr_config(packs.language, "", "auto", "auto", batch)
    stats: dict[int, float] = {}
    with open_store(db) as store:
        s = run_batch_parallel(items, packs, store, cfg, workers, force=True, worker_stats=stats)
    return {"calls": s.ok + s.errors, "ok": s.ok, "errors": s.errors, "audio_s": s.audio_s,
            "wall_s": s.wall_s, "asr_rtf": s.rtf, "rss_mb": sorted(stats.values())}


def child_raw(manifest: str, batch: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio

    from qa_inspect.speech.asr import ensure_model

    rows = list(csv.DictReader(open(manifest, encoding="utf-8")))
    t0 = time.perf_counter()
    model = WhisperModel(str(ensure_model()), device="cpu", compute_type="int8",
                         cpu_threads=os.cpu_count() or 1)  # what the pipeline's 1 worker uses
    run = BatchedInferencePipeline(model=model) if batch else model
    audio_s, n = 0.0, 0
    for r in rows:
        lang = r.get("language") or "zh"
        chans = (decode_audio(r["path"], split_stereo=True) if r["channel_layout"].startswith("stereo")
                 else (decode_audio(r["path"]),))
        audio_s += len(chans[0]) / 16000
        for x in chans:
            kw = dict(language=lang, beam_size=5, word_timestamps=True, vad_filter=True, condition_on_previous_text=False)
            if batch:
                kw["batch_size"] = batch
            segs, _info = run.transcribe(x, **kw)
            n += len(list(segs))  # the generator does the work
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"calls": len(rows), "ok": len(rows), "errors": 0, "audio_s": audio_s, "wall_s": wall,
            "asr_rtf": round(wall / audio_s, 3), "rss_mb": [round(rss, 1)], "segments": n}


def parse_config(c: str) -> tuple[str, int, int]:
    """'raw' | 'raw-b8' | 'w2' | 'w1-b8' -> (kind, workers, batch)."""
    head, _, b = c.partition("-b")
    batch = int(b) if b else 0
    if head == "raw":
        return "raw", 1, batch
    if head.startswith("w") and head[1:].isdigit():
        return "pipeline", int(head[1:]), batch
    raise SystemExit(f"unknown config {c!r}: use raw, raw-bN, wK or wK-bN")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest", nargs="?", default=str(ROOT / "samples" / "manifest.csv"))
    ap.add_argument("--configs", default="raw,w1,w2,w1-b8",
                    help="comma-separated: raw, raw-bN, wK, wK-bN (default raw,w1,w2,w1-b8)")
    ap.add_argument("--minutes", type=float, default=30.0,
                    help="copy the calls until there is this much audio (0: the manifest as is)")
    ap.add_argument("--mono", action="store_true",
                    help="mix every call down to mono (layout mono: diarization runs in the pipeline)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, workers, batch = parse_config(a.child)
        r = child_raw(a.manifest, batch) if kind == "raw" else child_pipeline(a.manifest, workers, batch, a.db)
        print(json.dumps(r))
        return
    configs = [c.strip() for c in a.configs.split(",") if c.strip()]
    for c in configs:
        parse_config(c)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if not env.get("QA_INSPECT_CACHE") and (ROOT / ".cache" / "models" / "whisper-base").exists():
        env["QA_INSPECT_CACHE"] = str(ROOT / ".cache")
    work = Path(tempfile.mkdtemp(prefix="qa-bench-throughput-"))
    try:
        manifest = Path(a.manifest).resolve()
        if a.minutes > 0 or a.mono:
            manifest, total = make_copies(manifest, a.minutes, work / "audio", mono=a.mono)
            print(f"{manifest}: {total / 60:.1f} min of audio", file=sys.stderr)
        rows = []
        for c in configs:
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, __file__, str(manifest), "--child", c,
                                "--db", str(work / f"{c}.db")],
                               capture_output=True, text=True, env=env, cwd=ROOT)
            proc_wall = time.perf_counter() - t0
            if p.returncode != 0:
                sys.exit(f"{c} failed:\n{p.stderr[-2000:]}")
            r = json.loads(p.stdout.strip().splitlines()[-1])
            r.update(config=c, proc_wall_s=proc_wall)
            rows.append(r)
            print(f"{c}: {r['calls']} calls, {r['audio_s'] / 60:.1f} min audio in {r['wall_s']:.1f} s",
                  file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    raw = next((r for r in rows if r["config"] == "raw"), None)
    with_start = ", ".join(f"{r['config']} {r['proc_wall_s']:.0f}" for r in rows)
    print(f"\n{os.cpu_count()} CPU cores, {time.strftime('%Y-%m-%d %H:%M')}; wall = model load to last "
          f"result (with process start and imports: {with_start} s)\n")
    print("| run | calls (ok/err) | audio min | wall s | audio h / wall h | wall vs raw | ASR RTF | peak RSS per process MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        speed = r["audio_s"] / r["wall_s"] if r["wall_s"] else 0.0
        vs = f"{r['wall_s'] / raw['wall_s']:.2f}×" if raw else "—"
        rss = ", ".join(f"{x:.0f}" for x in r["rss_mb"]) or "—"
        print(f"| {r['config']} | {r['calls']} ({r['ok']}/{r['errors']}) | {r['audio_s'] / 60:.1f} | "
              f"{r['wall_s']:.1f} | {speed:.1f} | {vs} | {r['asr_rtf']} | {rss} |")


if __name__ == "__main__":
    main()
