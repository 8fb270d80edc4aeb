#!/usr/bin/env python
"""Per-item F1 of a rule pack on the labelled MUSIED hotline calls, by split, with bootstrap
95 % intervals, and the human agreement (Cohen's kappa) beside it.

    .venv/bin/python bench/musied_eval.py [--pack rules/customer_service_zh.yaml] [--cv 5]
        [--calls ../shared/data/dialogues-zh/musied-dev-calls.jsonl]

Labels: the shared 60-call file (the pack was tuned on it: `dev60`, a dev figure), our blind
labels in `bench/data/musied-*-labels*.jsonl`, and the frozen split `bench/data/musied-split.json`
(`tune`: tuning by cross-validation; `heldout`: reported once, clean). Kappa: between two
independent labellings of the same calls (`bench/data/musied-second-labels.jsonl` against the
shared reviewer's labels).

With `--cv K`, each rule with a `learned:` condition is re-trained K times on the `tune` calls
outside a fold and predicts that fold (the `tune (CV)` column); `heldout` uses the models
shipped with the pack (trained on all `tune` calls). Evidence turn indexes in the labels are
MUSIED's own (empty separator turns included); they are mapped onto the converted transcript.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_inspect.records import Transcript, Turn  # noqa: E402

ITEMS = {"opening_greeting": "greeting", "self_introduction": "self_introduction", "offers_help": "offer_help",
         "apology": "apology", "closing_courtesy": "closing", "customer_complaint": "customer_complaint",
         "escalation_threat": "escalation_threat", "customer_negative_end": "customer_negative_end",
         "agent_impolite": "agent_impolite"}
DATA = ROOT / "bench" / "data"


def load_calls(path: Path) -> tuple[dict[str, Transcript], dict[str, dict[int, int]]]:
    """Transcripts (empty and separator turns dropped) and, per call, MUSIED index → turn index."""
    calls, index = {}, {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        turns, mapping = [], {}
        for i, t in enumerate(d.get("turns", [])):
            if t.get("role") in ("agent", "customer") and str(t.get("text") or "").strip():
                mapping[i] = len(turns)
                turns.append(Turn(role=t["role"], text=t["text"]))
        if turns:
            calls[str(d["id"])] = Transcript(call_id=str(d["id"]), language="zh", turns=tuple(turns))
            index[str(d["id"])] = mapping
    return calls, index


def load_labels(path: Path) -> dict[str, dict]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            out[str(d.get("call_id") or d["id"])] = d
    return out


def f1_of(pairs: list[tuple[bool, bool]]) -> tuple[float | None, int, int, int]:
    tp = sum(1 for t, p in pairs if t and p)
    fp = sum(1 for t, p in pairs if p and not t)
    fn = sum(1 for t, p in pairs if t and not p)
    if tp + fn == 0:
        return None, tp, fp, fn  # no positives: F1 undefined
    return 2 * tp / (2 * tp + fp + fn), tp, fp, fn


def bootstrap(ids: list[str], fn, n: int = 1000, seed: int = 1) -> tuple[float, float] | None:
    rng = random.Random(seed)
    vals = []
    for _ in range(n):
        sample = [rng.choice(ids) for _ in ids]
        v = fn(sample)
        if v is not None:
            vals.append(v)
    if len(vals) < n // 2:
        return None
    vals.sort()
    return vals[int(0.025 * len(vals))], vals[int(0.975 * len(vals)) - 1]


def kappa_table(a: dict[str, dict], b: dict[str, dict]) -> dict[str, tuple[float | None, int]]:
    from qa_inspect.workflow.calibration import cohen_kappa

    common = sorted(set(a) & set(b))
    return {item: (cohen_kappa([bool(a[c][item]) for c in common], [bool(b[c][item]) for c in common]), len(common))
            for item in ITEMS}


def predict(pack_path: Path, calls: dict[str, Transcript], ids: list[str]) -> dict[str, dict[str, bool]]:
    from qa_inspect.enrich import call_metrics, enrich
    from qa_inspect.rules import evaluate, load_pack

    pack = load_pack(pack_path)
    out = {}
    for cid in ids:
        tr = _enriched(calls, cid, enrich)
        out[cid] = {r.rule_id: r.matched for r in evaluate(pack, tr, call_metrics(tr))}
    return out


_ENRICHED: dict[str, Transcript] = {}


def _enriched(calls, cid, enrich):
    if cid not in _ENRICHED:
        _ENRICHED[cid] = enrich(calls[cid])
    return _ENRICHED[cid]


def learned_rules(pack_path: Path) -> list[tuple[str, str]]:
    """(rule id, model path) of every learned condition in the pack file."""
    from qa_inspect.rules import load_pack
    from qa_inspect.rules.learned import learned_models

    return [(rid, m.source) for rid, m in learned_models(load_pack(pack_path).rules)]


def cv_predict(pack_path: Path, calls, index, labels, tune_ids: list[str], k: int) -> dict[str, dict[str, bool]]:
    """Out-of-fold predictions on ``tune_ids``: learned models re-trained without each fold."""
    from qa_inspect.rules.learned import load_model, save_model
    from qa_inspect.rules.learned import labelled_calls, train_item

    learned = learned_rules(pack_path)
    if not learned:
        return predict(pack_path, calls, tune_ids)
    order = sorted(tune_ids)
    random.Random(5).shuffle(order)
    out: dict[str, dict[str, bool]] = {}
    for f in range(k):
        fold = order[f::k]
        train_ids = [c for c in order if c not in set(fold)]
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / pack_path.parent.name
            shutil.copytree(pack_path.parent, work)
            for rule_id, model_path in learned:
                model = load_model(model_path)
                rel = Path(model_path).relative_to(pack_path.parent)
                item = next(lab for lab, rid in ITEMS.items() if rid == rule_id)
                examples = labelled_calls({c: calls[c] for c in train_ids}, {c: labels[c] for c in train_ids},
                                          item, model.role, index)
                save_model(train_item(examples, item, model.role), work / rel)
            out.update(predict(work / pack_path.name, calls, fold))
    return out


def show_errors(item: str, ids, labels, preds, calls, index, pack_path) -> None:
    from qa_inspect.enrich import call_metrics, enrich
    from qa_inspect.rules import evaluate, load_pack

    pack, rule = load_pack(pack_path), ITEMS[item]
    for cid in ids:
        truth, pred = bool(labels[cid][item]), bool(preds[cid].get(rule))
        if truth == pred:
            continue
        tr = _enriched(calls, cid, enrich)
        print(f"--- {'FN' if truth else 'FP'} {cid}")
        if truth:
            for i in (labels[cid].get("evidence") or {}).get(item, []):
                t = index[cid].get(int(i))
                if t is not None:
                    print(f"   [{t}] {tr.turns[t].role}: {tr.turns[t].text[:120]}")
            if item == "customer_negative_end":
                print("   end:", call_metrics(tr).get("customer_sentiment_end"),
                      " | ".join(t.text[:40] for t in tr.turns[-4:]))
        else:
            res = next(r for r in evaluate(pack, tr, call_metrics(tr)) if r.rule_id == rule)
            for e in res.evidence[:4]:
                print(f"   hit [{e.turn}] {tr.turns[e.turn].text[:120] if e.turn is not None else ''} <{e.matched}>")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pack", default=str(ROOT / "rules/customer_service_zh.yaml"))
    ap.add_argument("--calls", default=str(ROOT.parent / "shared/data/dialogues-zh/musied-dev-calls.jsonl"))
    ap.add_argument("--cv", type=int, default=0, help="K-fold CV on the tune split (learned conditions re-trained)")
    ap.add_argument("--json", dest="json_out", default="", help="also write the figures as JSON here")
    ap.add_argument("--splits", default="dev60,tune,heldout",
                    help="which splits to score (leave heldout out while tuning: it is reported once)")
    ap.add_argument("--errors", default="", metavar="ITEM",
                    help="list the tune split's false positives/negatives of ITEM with the turns (for rule authors)")
    args = ap.parse_args()
    calls_path = Path(args.calls)
    if not calls_path.exists():
        print(f"skip: {calls_path} not found (evaluation data is not shipped)", file=sys.stderr)
        return 0
    calls, index = load_calls(calls_path)
    split = json.loads((DATA / "musied-split.json").read_text())
    shared = load_labels(calls_path.parent / "musied-dev-labels.jsonl")
    ours: dict[str, dict] = {}
    for p in sorted(DATA.glob("musied-*labels*.jsonl")):
        if "second" not in p.name:
            ours.update(load_labels(p))
    labels = {**ours, **shared}
    splits = {"dev60": [c for c in split["dev60"] if c in labels and c in calls],
              "tune": [c for c in split["tune"] if c in labels and c in calls],
              "heldout": [c for c in split["heldout"] if c in labels and c in calls]}
    splits = {s: splits[s] for s in args.splits.split(",")}
    pack = Path(args.pack)
    preds = {s: predict(pack, calls, ids) for s, ids in splits.items() if s != "tune"}
    if "tune" in splits:
        preds["tune"] = cv_predict(pack, calls, index, labels, splits["tune"], args.cv) if args.cv \
            else predict(pack, calls, splits["tune"])
    for item in filter(None, args.errors.split(",")):
        show_errors(item, splits.get("tune", []), labels, preds.get("tune", {}), calls, index, pack)
    second = DATA / "musied-second-labels.jsonl"
    kappas = kappa_table(shared, load_labels(second)) if second.exists() else {}
    cols = [c for c in ("dev60", "tune", "heldout") if c in splits]
    res: dict = {"pack": str(pack), "n": {s: len(v) for s, v in splits.items()}, "items": {}, "macro": {}}
    print(f"pack {pack.name}; calls labelled: " + ", ".join(f"{s} {len(v)}" for s, v in splits.items())
          + (" (tune = out-of-fold, learned conditions re-trained per fold)" if args.cv else ""))
    hdr = f"{'item':<22}" + "".join(f"{c + (' (CV)' if c == 'tune' and args.cv else ''):>26}" for c in cols) + f"{'kappa':>12}"
    print(hdr)
    for item, rule in ITEMS.items():
        row = f"{item:<22}"
        res["items"][item] = {}
        for c in cols:
            ids = splits[c]
            pairs = lambda sample: [(bool(labels[i][item]), bool(preds[c][i].get(rule))) for i in sample]  # noqa: E731
            f1, tp, fp, fn = f1_of(pairs(ids))
            ci = bootstrap(ids, lambda s: f1_of(pairs(s))[0]) if f1 is not None else None
            res["items"][item][c] = {"f1": f1, "ci": ci, "tp": tp, "fp": fp, "fn": fn}
            row += f"{'no positives':>26}" if f1 is None else \
                f"{f1:>8.3f} [{ci[0]:.2f}–{ci[1]:.2f}] ({tp + fn:>3})" if ci else f"{f1:>8.3f} ({tp + fn:>3})".rjust(26)
        k, n = kappas.get(item, (None, 0))
        res["items"][item]["kappa"] = k
        row += f"{k:>8.3f} n={n}" if k is not None else f"{'—':>12}"
        print(row)
    row = f"{'macro F1':<22}"
    for c in cols:
        ids = splits[c]

        def macro(sample, c=c):
            vals = [f1_of([(bool(labels[i][it]), bool(preds[c][i].get(r))) for i in sample])[0]
                    for it, r in ITEMS.items()]
            vals = [v for v in vals if v is not None]
            return sum(vals) / len(vals) if vals else None
        m = macro(ids)
        ci = bootstrap(ids, macro)
        res["macro"][c] = {"f1": m, "ci": ci}
        row += f"{m:>8.3f} [{ci[0]:.2f}–{ci[1]:.2f}]      " if ci else f"{m:>8.3f}".rjust(26)
    print(row)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
