"""Time and peak memory of diarizing one mono call in a fresh process (issue 18).

    .venv/bin/python bench/diarize_memory.py [AUDIO] [--repeat 2]

Prints one JSON line: seconds to import + decode, to load the voice encoder, to diarize the call
the first time (first-call costs such as JIT compilation included) and again, peak RSS (VmHWM)
after each step, and which of torch / librosa / numba / resemblyzer the process imported. Run it
once per code version (e.g. ``PYTHONPATH=<checkout>``), each in its own process: the peak of a
process never goes down, so before/after must not share one. AUDIO defaults to the mono mix of
samples/audio/en_complaint_escalation.flac (two voices, diarization used).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def vm(field: str) -> float:
    """VmHWM / VmRSS of this process in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("audio", nargs="?", default=str(ROOT / "samples" / "audio" / "en_complaint_escalation.flac"))
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    out: dict = {"code": __import__("qa_inspect").__file__}
    t0 = time.perf_counter()
    from qa_inspect.speech.decode import decode
    from qa_inspect.speech.speakers import diarize_detail, encoder

    a = decode(args.audio)
    x = a.mono
    out.update(audio_s=round(a.duration, 1), import_decode_s=round(time.perf_counter() - t0, 2),
               rss_after_decode=round(vm("VmHWM")))
    t0 = time.perf_counter()
    encoder()
    out.update(load_s=round(time.perf_counter() - t0, 2), rss_after_load=round(vm("VmHWM")))
    for i in range(args.repeat):
        t0 = time.perf_counter()
        segs, sil = diarize_detail(x)
        out[f"diarize_{i + 1}_s"] = round(time.perf_counter() - t0, 2)
    out.update(rss_peak=round(vm("VmHWM")), rss_now=round(vm("VmRSS")), segments=len(segs),
               silhouette=round(sil, 4),
               imported=sorted(m for m in ("torch", "librosa", "numba", "resemblyzer") if m in sys.modules))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
