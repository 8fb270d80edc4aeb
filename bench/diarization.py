"""Diarization error rate of qa_inspect.speech.speakers on real and mixed calls.

    .venv/bin/python bench/diarization.py [--collar 0.25] [--data ../shared/data/asr-en-phone]

Sets:
- the real two-speaker English phone call in ../shared/data/asr-en-phone (truth: sample.rttm);
- mono mixes of the stereo samples (the two channels averaged, as DecodedAudio.mono does);
  truth: an energy VAD on each channel separately (qa_inspect.enrich.acoustics.energy_vad), channel =
  speaker. Speakers found are mapped to the truth speakers by the best assignment.

DER (own implementation, frame-based on 10 ms frames, like NIST md-eval): (missed speech + false
alarm + speaker confusion) / reference speech time, frames within ``collar`` seconds of any
reference boundary not scored (0.25 s is the usual choice; 0 scores everything). Overlapped
reference frames count both speakers (our output has one speaker per frame, so overlap is at
least partly missed). For the mixes it also prints the role accuracy: the share of reference
turns (samples/transcripts.jsonl) whose role comes out right when the reference turns go through
the mono path (asr.mono_turns: diarization, or content when diarization is unsure) — what a mono
call's turns would get — and which method decided.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_inspect.enrich.acoustics import energy_vad  # noqa: E402
from qa_inspect.speech.decode import decode  # noqa: E402
from qa_inspect.speech.speakers import DiarizeConfig, diarize_detail, diarization_error as der, encoder  # noqa: E402



def read_rttm(path: Path) -> list[tuple[float, float, str]]:
    out = []
    for line in path.read_text().splitlines():
        f = line.split()
        if f and f[0] == "SPEAKER":
            s, d = float(f[3]), float(f[4])
            out.append((s, s + d, f[7]))
    return out


def role_accuracy(call_id: str, audio, lang: str) -> tuple[float, str] | None:
    """Share of reference turns given the right role by the mono path (asr.mono_turns: diarization,
    or content when diarization is unsure), with the reference text/times standing in for Whisper."""
    import json

    from qa_inspect.speech.asr import Segment, mono_turns

    for line in (ROOT / "samples" / "transcripts.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        if d["call_id"] != call_id:
            continue
        ref = [t for t in d["turns"] if t.get("start") is not None]
        turns, method = mono_turns([Segment(t["start"], t["end"], t["text"]) for t in ref], audio.mono, lang)
        return sum(t.role == r["role"] for t, r in zip(turns, ref)) / len(ref), method
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--collar", type=float, default=0.25)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "asr-en-phone"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    encoder()
    print(f"encoder load: {time.perf_counter() - t0:.1f} s")
    diarize_detail(decode(ROOT / "samples" / "audio" / "en_billing_inquiry.flac").mono)  # first-call warm-up
    rows = []
    data = Path(args.data)
    if (data / "sample.rttm").exists():
        a = decode(data / "sample.wav")
        t0 = time.perf_counter()
        segs, sil = diarize_detail(a.mono)
        dt = time.perf_counter() - t0
        m = der(read_rttm(data / "sample.rttm"), [(s.start, s.end, s.speaker) for s in segs], a.duration, args.collar)
        rows.append(("asr-en-phone/sample (real)", a.duration, dt, m, None, sil))
    with open(ROOT / "samples" / "manifest.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if not row["channel_layout"].startswith("stereo") or row["call_id"] == "corrupt_call":
                continue
            a = decode(ROOT / "samples" / row["path"])
            ref = [(s, e, f"ch{k}") for k, ch in enumerate(a.channels[:2]) for s, e in energy_vad(ch)]
            t0 = time.perf_counter()
            segs, sil = diarize_detail(a.mono)
            dt = time.perf_counter() - t0
            m = der(ref, [(s.start, s.end, s.speaker) for s in segs], a.duration, args.collar)
            rows.append((f"{row['call_id']} (mono mix)", a.duration, dt, m, role_accuracy(row["call_id"], a, row["language"]), sil))
    print(f"\nDER, collar {args.collar} s (miss / false alarm / confusion as shares of reference speech)\n")
    gate = DiarizeConfig().min_silhouette
    print(f"| call | audio s | diarize s | RTF | miss | FA | confusion | DER | silhouette (gate ≥ {gate}) | roles right (method) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    tot = {"ref_s": 0.0, "err": 0.0, "aud": 0.0, "t": 0.0}
    for name, dur, dt, m, racc, sil in rows:
        print(f"| {name} | {dur:.1f} | {dt:.2f} | {dt / dur:.3f} | {m['miss']:.1%} | {m['fa']:.1%} | "
              f"{m['conf']:.1%} | **{m['der']:.1%}** | {sil:.2f} | "
              f"{'' if racc is None else f'{racc[0]:.0%} ({racc[1]})'} |")
        if name.endswith("(mono mix)"):
            tot["ref_s"] += m["ref_s"]
            tot["err"] += m["der"] * m["ref_s"]
            tot["aud"] += dur
            tot["t"] += dt
    if tot["ref_s"]:
        print(f"| all mono mixes | {tot['aud']:.1f} | {tot['t']:.2f} | {tot['t'] / tot['aud']:.3f} | | | | "
              f"**{tot['err'] / tot['ref_s']:.1%}** | | |")


if __name__ == "__main__":
    main()
