"""Convert MUSIED dialogue JSONL (``../shared/data/dialogues-zh/musied-dev-calls.jsonl``) into
qa_inspect's transcripts JSONL, for `qa-inspect rules eval` / `qa-inspect run`.

    .venv/bin/python bench/musied_to_transcripts.py IN.jsonl OUT.jsonl

MUSIED lines are ``{"id", "source", "turns": [{"role": agent|customer|unknown, "text"}], "events"}``.
The output line is ``{"call_id": id, "language": "zh", "turns": [{"role", "text"}]}``: the call id
is MUSIED's ``id``, the same key the QC labels (``musied-dev-labels.jsonl``) use, so ids line up.
Turns whose role is not agent/customer (MUSIED's ``unknown`` separators, almost all empty) and
empty turns are dropped, so turn indexes differ from the labels' ``evidence`` indexes.
Write OUT outside the repository (e.g. /tmp): the data is not redistributable.
"""
from __future__ import annotations

import json
import sys


def convert_line(d: dict) -> dict:
    turns = [{"role": t["role"], "text": t["text"]} for t in d.get("turns", [])
             if t.get("role") in ("agent", "customer") and str(t.get("text") or "").strip()]
    return {"call_id": str(d["id"]), "language": "zh", "turns": turns}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    src, dst = argv
    n = dropped = 0
    with open(src, encoding="utf-8") as fin, open(dst, "w", encoding="utf-8") as fout:
        for line in fin:
            if not line.strip():
                continue
            out = convert_line(json.loads(line))
            if not out["turns"]:
                dropped += 1
                continue
            fout.write(json.dumps(out, ensure_ascii=False) + "\n")
            n += 1
    print(f"{n} call(s) written to {dst}" + (f", {dropped} without turns skipped" if dropped else ""),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
