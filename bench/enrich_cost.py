"""What enrichment costs next to transcription, per sample call.

    .venv/bin/python bench/enrich_cost.py [--manifest samples/manifest.csv] [--json out.json]

For each call: wall time of Whisper (the packaged base model, int8 CPU, as `qa-inspect run`;
mono diarization switched off here so it is timed on its own), of the acoustic metrics
(qa_inspect.enrich.acoustics on the decoded audio + word timestamps), of sentiment (qa_inspect.enrich.sentiment,
when that package is present) and of diarization of the call's mono mix (qa_inspect.speech.speakers,
what a mono call pays). Models are loaded before timing (once per worker in a real run; their
load times are printed separately). Percentages are of that call's transcription time.
Targets (issue 4): acoustics + sentiment ≤ 10 %, diarization ≤ 15 %.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    from qa_inspect.enrich.acoustics import enrich_acoustics
    from qa_inspect.speech.asr import ASRConfig, WhisperTranscriber
    from qa_inspect.speech.decode import decode
    from qa_inspect.speech.speakers import DiarizationError, diarize_detail, encoder

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", default=str(ROOT / "samples" / "manifest.csv"))
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()

    try:  # the sentiment scorer is another engineer's module: optional here
        from qa_inspect.enrich.sentiment import add_sentiment, get_scorer
    except ImportError:
        add_sentiment = get_scorer = None

    t0 = time.perf_counter()
    asr = WhisperTranscriber(ASRConfig(diarize_mono=False))
    loads = {"whisper": time.perf_counter() - t0}
    t0 = time.perf_counter()
    encoder()
    loads["resemblyzer"] = time.perf_counter() - t0
    scorer = None
    if get_scorer is not None:
        t0 = time.perf_counter()
        scorer = get_scorer()
        loads["sentiment"] = time.perf_counter() - t0
    print("model load (once per worker): " + ", ".join(f"{k} {v:.1f} s" for k, v in loads.items()))

    man = Path(args.manifest)
    rows, warmed = [], False
    with open(man, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                audio = decode(man.parent / row["path"])
            except Exception:
                continue  # the corrupt sample
            t0 = time.perf_counter()
            tr = asr.transcribe(row["call_id"], audio, row["channel_layout"], row["language"] or None)
            t_asr = time.perf_counter() - t0
            if not warmed:  # first-call imports (scipy.signal ...) and warm-up are not per-call cost
                enrich_acoustics(tr, audio)
                diarize_detail(audio.mono)
                if scorer is not None:
                    add_sentiment(tr, scorer)
                warmed = True
            t0 = time.perf_counter()
            tr2 = enrich_acoustics(tr, audio)
            t_ac = time.perf_counter() - t0
            t_se = None
            if scorer is not None:
                t0 = time.perf_counter()
                add_sentiment(tr2, scorer)
                t_se = time.perf_counter() - t0
            t0 = time.perf_counter()
            try:
                diarize_detail(audio.mono)
            except DiarizationError:
                pass
            t_di = time.perf_counter() - t0
            rows.append({"call_id": row["call_id"], "layout": row["channel_layout"], "audio_s": audio.duration,
                         "asr_s": t_asr, "acoustics_s": t_ac, "sentiment_s": t_se, "diarize_s": t_di,
                         "speech_rate_agent": tr2.metrics.get("speech_rate_agent"),
                         "speech_rate_unit": tr2.metrics.get("speech_rate_unit")})
            print(f"  {row['call_id']}: asr {t_asr:.2f} s, acoustics {t_ac:.3f} s, "
                  f"sentiment {'-' if t_se is None else f'{t_se:.3f} s'}, diarize {t_di:.2f} s", flush=True)

    def pct(x, base):
        return "–" if x is None else f"{x / base:.1%}"

    print("\n| call | layout | audio s | ASR s | acoustics s | sentiment s | diarize (mono mix) s | "
          "acoustics+sentiment % of ASR | diarization % of ASR | agent speech rate |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    tot = {k: 0.0 for k in ("audio_s", "asr_s", "acoustics_s", "sentiment_s", "diarize_s")}
    for r in rows:
        enr = r["acoustics_s"] + (r["sentiment_s"] or 0.0)
        se = "–" if r["sentiment_s"] is None else f"{r['sentiment_s']:.3f}"
        print(f"| {r['call_id']} | {r['layout']} | {r['audio_s']:.1f} | {r['asr_s']:.2f} | {r['acoustics_s']:.3f} | "
              f"{se} | {r['diarize_s']:.2f} | "
              f"{pct(enr, r['asr_s'])} | {pct(r['diarize_s'], r['asr_s'])} | "
              f"{r['speech_rate_agent']} {r['speech_rate_unit']} |")
        for k in tot:
            tot[k] += r[k] or 0.0
    enr = tot["acoustics_s"] + tot["sentiment_s"]
    print(f"| **all** | | {tot['audio_s']:.1f} | {tot['asr_s']:.2f} | {tot['acoustics_s']:.3f} | "
          f"{tot['sentiment_s']:.3f} | {tot['diarize_s']:.2f} | **{pct(enr, tot['asr_s'])}** | "
          f"**{pct(tot['diarize_s'], tot['asr_s'])}** | |")
    print(f"\nASR RTF {tot['asr_s'] / tot['audio_s']:.3f}; acoustics RTF {tot['acoustics_s'] / tot['audio_s']:.4f}; "
          f"sentiment RTF {tot['sentiment_s'] / tot['audio_s']:.4f}; diarization RTF {tot['diarize_s'] / tot['audio_s']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
