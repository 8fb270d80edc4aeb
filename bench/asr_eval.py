#!/usr/bin/env python
"""Character error rate (CER) of qa_inspect's transcriber on a labelled folder.

DATA_DIR holds ``text.tsv`` (tab-separated, with a header; columns ``file`` -- a path
relative to DATA_DIR -- and ``text``; other columns are ignored) and the audio it names.

    QA_INSPECT_CACHE=$PWD/.cache .venv/bin/python bench/asr_eval.py \
        /work/shared/data/asr-zh-customer-service --limit 50 --raw

Rows: ``qa_inspect transcribe`` (WhisperTranscriber with the project's defaults: domain
prompt, VAD, beam 5, t2s) and, with ``--raw``, plain ``faster_whisper.WhisperModel`` on the
same decoded audio and the same model directory with default options (only ``language=``).
Corpus CER = sum(edits) / sum(reference length), after qa_inspect.text.normalize.
Peak RSS is ``ru_maxrss`` of this process, so it is process-wide and never goes down:
the raw row (run second) includes whatever the first row already held.
"""
from __future__ import annotations

import argparse
import csv
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def read_rows(data_dir: Path, limit: int | None) -> list[tuple[Path, str]]:
    tsv = data_dir / "text.tsv"
    with open(tsv, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"file", "text"} - set(reader.fieldnames or ())
        if missing:
            sys.exit(f"error: {tsv} lacks column(s): {', '.join(sorted(missing))}")
        rows = [(data_dir / r["file"], r["text"] or "") for r in reader if r.get("file")]
    return rows[:limit] if limit else rows


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / (1024 * 1024) if sys.platform == "darwin" else kb / 1024  # bytes on macOS


def evaluate(name, transcribe, audios, refs, verbose=False) -> dict:
    edits = ref_len = 0
    from qa_inspect.text import cer

    t0 = time.perf_counter()
    for (path, audio), ref in zip(audios, refs):
        hyp = transcribe(audio)
        e, n = cer(ref, hyp)
        edits += e
        ref_len += n
        if verbose:
            print(f"  [{name}] {path.name}: {e}/{n}  ref={ref!r}  hyp={hyp!r}", file=sys.stderr)
    wall = time.perf_counter() - t0
    return {"name": name, "edits": edits, "ref_len": ref_len, "wall": wall, "rss": peak_rss_mb()}


def format_table(results: list[dict], n_utt: int, audio_s: float) -> str:
    head = "| system | utterances | audio min | CER | wall s | RTF | peak RSS MB |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        cer_v = r["edits"] / r["ref_len"] if r["ref_len"] else float("nan")
        lines.append(f"| {r['name']} | {n_utt} | {audio_s / 60:.2f} | {cer_v:.4f} "
                     f"| {r['wall']:.1f} | {r['wall'] / audio_s:.3f} | {r['rss']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", metavar="DATA_DIR", type=Path,
                    help="folder with text.tsv (columns file, text) and the audio")
    ap.add_argument("--limit", type=int, default=None, metavar="N", help="first N rows only")
    ap.add_argument("--language", default="zh", help="language code (default zh)")
    ap.add_argument("--raw", action="store_true",
                    help="also measure plain faster-whisper (default options, only language=)")
    ap.add_argument("--out", type=Path, default=None, metavar="FILE.md",
                    help="append the markdown table to this file")
    ap.add_argument("-v", "--verbose", action="store_true", help="per-utterance ref/hyp on stderr")
    args = ap.parse_args(argv)

    if not args.data_dir.is_dir():
        print(f"error: data folder not found: {args.data_dir} (nothing to evaluate)", file=sys.stderr)
        return 2
    if not (args.data_dir / "text.tsv").is_file():
        print(f"error: {args.data_dir / 'text.tsv'} not found", file=sys.stderr)
        return 2

    from qa_inspect.speech.asr import ASRConfig, WhisperTranscriber, ensure_model
    from qa_inspect.speech.decode import decode

    rows = read_rows(args.data_dir, args.limit)
    if not rows:
        print("error: no rows in text.tsv", file=sys.stderr)
        return 2
    audios, refs, audio_s = [], [], 0.0
    for path, ref in rows:
        d = decode(path)  # raises AudioError with a one-line reason on bad input
        audios.append((path, d.mono))
        refs.append(ref)
        audio_s += d.duration
    print(f"{len(rows)} utterances, {audio_s / 60:.2f} min of audio from {args.data_dir}", file=sys.stderr)

    lang = args.language
    sep = "" if lang in ("zh", "ja", "yue") else " "  # how segment texts join
    results = []
    tr = WhisperTranscriber(ASRConfig(language=lang))
    results.append(evaluate(
        "qa_inspect transcribe",
        lambda a: sep.join(s.text for s in tr.transcribe_array(a, lang)), audios, refs, args.verbose))
    del tr

    if args.raw:
        from faster_whisper import WhisperModel

        model = WhisperModel(str(ensure_model()), device="cpu", compute_type="int8")

        def raw(a):
            segs, _info = model.transcribe(a, language=lang)
            return sep.join(s.text.strip() for s in segs)

        results.append(evaluate("raw faster-whisper", raw, audios, refs, args.verbose))

    table = format_table(results, len(rows), audio_s)
    print(table)
    print("(peak RSS is process-wide ru_maxrss: a later row includes what earlier rows held)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(f"\n{args.data_dir.name}, language={lang}, limit={args.limit or 'all'}, "
                    f"{time.strftime('%Y-%m-%d %H:%M')}\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
