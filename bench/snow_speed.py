"""snownlp sentiment speed: ``snow.SnowSentiment.score`` now vs the implementation it replaced.

    .venv/bin/python bench/snow_speed.py TRANSCRIPTS.jsonl [--chunk 20] [--passes 3] [--before REF]
        [--check-snownlp]

TRANSCRIPTS.jsonl: e.g. the 339 MUSIED dev calls written by ``bench/musied_to_transcripts.py``.
Each call's customer utterances that are not fillers (``lexicon.is_filler``: those the snownlp
part of the combined scorer scores) are scored one by one with ``score(text)``.

"before" is ``qa_inspect/enrich/sentiment/snow.py`` at git revision REF (default be9c6e2, the
version this work started from), loaded from ``git show`` into a temporary module. A/B in one
process, over chunks of ``--chunk`` calls: before, now with its memos emptied before every
chunk (every chunk starts cold: the first use of a bigram, trigram or word is counted), and
now with memos kept across chunks (as in a pipeline worker), in rotation (the order changes
from chunk to chunk). Each chunk is timed ``--passes`` times per implementation, the best
kept (the machine may be shared; the kept memos are restored to their state before the chunk
for every pass); times are CPU seconds of this process.

Prints a markdown table: ms CPU per call, speed-up over before, and whether every score and
every word list equals before's. ``--check-snownlp`` also compares words and scores of every
distinct utterance of the file (all roles) with ``snownlp.SnowNLP`` itself (imports snownlp:
~5 s, ~400 MB) and times it on the customer utterances. Nothing is written anywhere.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_inspect.enrich.sentiment.lexicon import is_filler  # noqa: E402
from qa_inspect.enrich.sentiment.snow import SnowSentiment  # noqa: E402


def _calls(path: Path) -> tuple[list[list[str]], list[str]]:
    """Per call, its non-filler customer utterances; and every distinct utterance text."""
    calls, every = [], {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            turns = json.loads(line)["turns"]
            calls.append([t["text"] for t in turns if t.get("role") == "customer" and not is_filler(t["text"])])
            every.update(dict.fromkeys(t["text"] for t in turns if t["text"].strip()))
    return calls, list(every)


def _before(ref: str):
    src = subprocess.run(["git", "show", f"{ref}:qa_inspect/enrich/sentiment/snow.py"], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    tmp = Path(tempfile.mkdtemp()) / "snow_before.py"
    tmp.write_text(src, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("snow_before", tmp)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.SnowSentiment()


def _time(score, texts: list[str]) -> tuple[float, list[float]]:
    t0 = time.process_time()
    out = [score(t) for t in texts]
    return time.process_time() - t0, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("transcripts", type=Path)
    ap.add_argument("--chunk", type=int, default=20, help="calls per chunk (default 20)")
    ap.add_argument("--passes", type=int, default=3, help="timings per chunk and implementation, best kept")
    ap.add_argument("--before", default="be9c6e2", help="git revision of the snow.py to compare with")
    ap.add_argument("--check-snownlp", action="store_true", help="also compare every distinct utterance with snownlp")
    a = ap.parse_args(argv)
    if a.chunk < 1 or a.passes < 1:
        ap.error("--chunk and --passes must be at least 1")
    if not a.transcripts.is_file():
        print(f"not found: {a.transcripts}", file=sys.stderr)
        return 2
    calls, every = _calls(a.transcripts)
    n_utt = sum(map(len, calls))
    n_chars = sum(len(t) for c in calls for t in c)
    print(f"{len(calls)} calls, {n_utt} customer utterances (not fillers), {n_chars / len(calls):.0f} characters "
          f"per call; chunks of {a.chunk} calls, best of {a.passes}")

    before, cold, warm = _before(a.before), SnowSentiment(), SnowSentiment()
    for t in ("好的谢谢", "我要投诉"):  # first calls outside the timing
        before.score(t), cold.score(t), warm.score(t)
    names = ("before", "cold", "warm")
    total = dict.fromkeys(names, 0.0)
    same = {"cold": True, "warm": True}
    for k, start in enumerate(range(0, len(calls), a.chunk)):
        texts = [t for c in calls[start:start + a.chunk] for t in c]
        best = dict.fromkeys(names, float("inf"))
        # the kept memos as they were before this chunk: each pass starts from them again (so
        # that a second pass does not find this chunk's own entries)
        kept = (warm._bigrams, warm._trigrams, warm._words)
        for p in range(a.passes):
            order = names[(k + p) % 3:] + names[:(k + p) % 3]  # rotation
            for name in order:
                if name == "before":
                    s, ref = _time(before.score, texts)
                elif name == "cold":
                    cold.clear_caches()  # every chunk starts cold
                    s, got_cold = _time(cold.score, texts)
                else:
                    warm._bigrams, warm._trigrams, warm._words = (dict(m) for m in kept)
                    s, got_warm = _time(warm.score, texts)
                best[name] = min(best[name], s)
        same["cold"] &= got_cold == ref
        same["warm"] &= got_warm == ref
        for name in names:
            total[name] += best[name]
    words_same = all(cold.words(t) == before.words(t) for c in calls for t in c)
    memo = f"{len(warm._bigrams)} bigram / {len(warm._trigrams)} trigram / {len(warm._words)} word entries at the end"

    per = {n: 1e3 * total[n] / len(calls) for n in names}
    print(f"\n| implementation | ms CPU per call | speed-up | scores equal to before's |")
    print("|---|---:|---:|---|")
    print(f"| before ({a.before}) | {per['before']:.2f} | 1.00× | – |")
    print(f"| now, memos emptied per chunk | {per['cold']:.2f} | {per['before'] / per['cold']:.2f}× | "
          f"{'all' if same['cold'] else 'NO'} ({n_utt}) |")
    print(f"| now, memos kept (as in a worker) | {per['warm']:.2f} | {per['before'] / per['warm']:.2f}× | "
          f"{'all' if same['warm'] else 'NO'} ({n_utt}) |")
    print(f"\nword lists equal to before's: {'all' if words_same else 'NO'}; kept memos: {memo}")

    if a.check_snownlp:
        from snownlp import SnowNLP

        bad = [t for t in every if SnowNLP(t).words != cold.words(t) or SnowNLP(t).sentiments != cold.score(t)]
        print(f"snownlp: {len(every) - len(bad)} of {len(every)} distinct utterances (all roles) give the same "
              f"words and score{'' if not bad else ': DIFFERENT: ' + repr(bad[:5])}")
        texts = [t for c in calls for t in c]
        s_ref, _ = _time(lambda t: SnowNLP(t).sentiments, texts)
        cold.clear_caches()
        s_new, _ = _time(cold.score, texts)
        print(f"SnowNLP(t).sentiments: {1e3 * s_ref / len(calls):.1f} ms CPU per call; now (memos emptied once, "
              f"then kept over the {len(calls)} calls): {1e3 * s_new / len(calls):.2f} ms, "
              f"{s_ref / s_new:.0f}× faster")
    return 0 if all(same.values()) and words_same else 1


if __name__ == "__main__":
    sys.exit(main())
