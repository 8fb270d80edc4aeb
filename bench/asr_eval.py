#!/usr/bin/env python
"""Character error rate (CER) of qa_inspect's transcriber on a labelled folder.

DATA_DIR holds ``text.tsv`` (tab-separated, with a header; columns ``file`` -- a path
relative to DATA_DIR -- and ``text``; other columns are ignored) and the audio it names.

    QA_INSPECT_CACHE=$PWD/.cache .venv/bin/python bench/asr_eval.py \
        /work/shared/data/asr-zh-customer-service --limit 50 --raw

Rows: ``qa_inspect transcribe`` (WhisperTranscriber with the project's defaults: no prompt,
word timestamps, VAD, beam 5, turns cut at pauses, t2s) and, with ``--raw``, plain
``faster_whisper.WhisperModel`` on the same decoded audio and the same model directory with
default options (only ``language=``). Both models are loaded first; then each utterance is
transcribed by every row in turn, the order alternating from one utterance to the next, so a
shared machine's load falls on all rows alike. Wall s is the sum of each row's own calls.
Corpus CER = sum(edits) / sum(reference length), after qa_inspect.text.normalize.
Peak RSS (``ru_maxrss``) is process-wide: it is printed once, for all rows together.
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


def evaluate(systems, audios, refs, verbose=False) -> list[dict]:
    """``systems``: (name, transcribe) pairs, run alternately on each utterance."""
    from qa_inspect.text import cer

    res = [{"name": name, "edits": 0, "ref_len": 0, "wall": 0.0} for name, _ in systems]
    for i, ((path, audio), ref) in enumerate(zip(audios, refs)):
        order = range(len(systems)) if i % 2 == 0 else reversed(range(len(systems)))
        for k in order:
            name, transcribe = systems[k]
            t0 = time.perf_counter()
            hyp = transcribe(audio)
            res[k]["wall"] += time.perf_counter() - t0
            e, n = cer(ref, hyp)
            res[k]["edits"] += e
            res[k]["ref_len"] += n
            if verbose:
                print(f"  [{name}] {path.name}: {e}/{n}  ref={ref!r}  hyp={hyp!r}", file=sys.stderr)
    return res


def format_table(results: list[dict], n_utt: int, audio_s: float) -> str:
    head = "| system | utterances | audio min | CER | wall s | RTF |"
    lines = [head, "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        cer_v = r["edits"] / r["ref_len"] if r["ref_len"] else float("nan")
        lines.append(f"| {r['name']} | {n_utt} | {audio_s / 60:.2f} | {cer_v:.4f} "
                     f"| {r['wall']:.1f} | {r['wall'] / audio_s:.3f} |")
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
    tr = WhisperTranscriber(ASRConfig(language=lang))
    systems = [("qa_inspect transcribe",
                lambda a: sep.join(s.text for s in tr.transcribe_array(a, lang)))]
    if args.raw:
        from faster_whisper import WhisperModel

        model = WhisperModel(str(ensure_model()), device="cpu", compute_type="int8")

        def raw(a):
            segs, _info = model.transcribe(a, language=lang)
            return sep.join(s.text.strip() for s in segs)

        systems.append(("raw faster-whisper", raw))
    results = evaluate(systems, audios, refs, args.verbose)

    table = format_table(results, len(rows), audio_s)
    print(table)
    print(f"(rows alternated per utterance; peak RSS of this process, all rows: {peak_rss_mb():.0f} MB; "
          f"load {os.getloadavg()[0]:.1f} at the end)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(f"\n{args.data_dir.name}, language={lang}, limit={args.limit or 'all'}, "
                    f"{time.strftime('%Y-%m-%d %H:%M')}\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
