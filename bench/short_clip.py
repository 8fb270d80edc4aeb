"""`qa-inspect transcribe` of one short clip vs raw faster-whisper, as a user waits for it.

    .venv/bin/python bench/short_clip.py [CLIP] [--repeats 3]

Each side is a fresh process, timed from start to exit (interpreter start, imports, model
load, decode, transcription, output), alternated ``--repeats`` times (raw, qa, raw, qa, ...);
the table gives each side's median and the ratio. Raw = ``WhisperModel(packaged base, cpu,
int8).transcribe(clip, language, beam 5, VAD, word timestamps, no prompt)``
(the pipeline's options) on each channel
(as the pipeline transcribes a stereo call), segments consumed; once with faster-whisper's
default thread count and once with ``cpu_threads`` = cores, as ``qa-inspect`` sets it. Default CLIP: the shortest
decodable call of ``samples/manifest.csv``.
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RAW = r"""
import sys
from faster_whisper import WhisperModel, decode_audio
from qa_inspect.speech.asr import ensure_model
m = WhisperModel(str(ensure_model()), device="cpu", compute_type="int8", cpu_threads=int(sys.argv[2]))
for x in decode_audio(sys.argv[1], split_stereo=True):
    segs, _ = m.transcribe(x, language="zh", beam_size=5,
                           word_timestamps=True, vad_filter=True, condition_on_previous_text=False)
    for s in segs:
        print(s.start, s.end, s.text)
"""


def shortest_clip() -> Path:
    import soundfile as sf

    best = None
    for r in csv.DictReader(open(ROOT / "samples" / "manifest.csv", encoding="utf-8")):
        p = ROOT / "samples" / r["path"]
        try:
            d = sf.info(str(p)).duration
        except Exception:
            continue
        if r.get("language", "zh") == "zh" and (best is None or d < best[0]):
            best = (d, p)
    return best[1]


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if p.returncode:
        sys.exit(f"{cmd[:4]} failed:\n{p.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", nargs="?", default="")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    clip = Path(a.clip) if a.clip else shortest_clip()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    import soundfile as sf

    dur = sf.info(str(clip)).duration
    cores = os.cpu_count() or 1
    raw, raw_c, qa = [], [], []
    for _ in range(a.repeats):
        raw.append(timed([sys.executable, "-c", RAW, str(clip), "0"], env))
        raw_c.append(timed([sys.executable, "-c", RAW, str(clip), str(cores)], env))
        qa.append(timed([sys.executable, "-m", "qa_inspect.cli", "transcribe", "--language", "zh", str(clip)], env))
    r, rc, q = statistics.median(raw), statistics.median(raw_c), statistics.median(qa)
    print(f"clip {clip.name} ({dur:.1f} s, stereo), {a.repeats} alternated runs each, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()[0]:.1f}\n")
    print("| process | median wall s | runs s |\n|---|---:|---|")
    print(f"| raw faster-whisper (its default threads) | {r:.2f} | {', '.join(f'{x:.1f}' for x in raw)} |")
    print(f"| raw faster-whisper, cpu_threads={cores} (as qa-inspect) | {rc:.2f} | {', '.join(f'{x:.1f}' for x in raw_c)} |")
    print(f"| `qa-inspect transcribe` | {q:.2f} | {', '.join(f'{x:.1f}' for x in qa)} |")
    print(f"\nratio qa-inspect / raw: {q / r:.2f}× (default threads), {q / rc:.2f}× (same threads)")


if __name__ == "__main__":
    main()
