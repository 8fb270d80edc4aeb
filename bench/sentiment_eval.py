"""Measure the sentiment scorer on the labelled MUSIED calls (../shared/data/dialogues-zh).

    .venv/bin/python bench/sentiment_eval.py [CALLS.jsonl LABELS.jsonl] [--pack rules/customer_service_zh.yaml]
        [--backend combined|lexicon|transformers] [--samples samples/transcripts.jsonl]

Prints, for the QC label ``customer_negative_end`` (60 calls):
- the rule ``customer_negative_end`` of the pack (its metric threshold as shipped): accuracy,
  confusion table, precision/recall/F1;
- a held-out estimate: 5-fold stratified cross-validation (repeated 20x) where the threshold
  on ``customer_sentiment_end`` is chosen on 4 folds and applied to the fifth;
- ranking: the data has no satisfaction rating, so the ordinal is the reviewer's verdict
  (satisfied end = 1, negative end = 0); Spearman and AUC for ours vs snownlp on the last
  customer utterance (the baseline the issue names), and for each part of the scorer alone;
- utterance level: customer utterances the reviewer cited as complaint evidence vs the other
  customer utterances of the same calls (AUC, and accuracy of "score < 0");
- cost: sentiment seconds per call, and against transcription time (Whisper base on CPU
  ≈ 0.13 × audio duration; MUSIED has no audio, so its duration is estimated at 250 字/min;
  ``--samples`` adds the sample calls, which carry real timestamps).
Nothing of the data is written anywhere.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_inspect.records import Transcript, Turn  # noqa: E402
from qa_inspect.enrich.sentiment import (CombinedScorer, SentimentConfig, SnowNLPScorer, add_sentiment,  # noqa: E402
                                  get_scorer, is_filler)

DATA = ROOT.parent / "shared" / "data" / "dialogues-zh"
ASR_RTF = 0.13  # Whisper base, CPU (bench/RESULTS.md)
ZH_CPM = 250.0  # characters per minute of conversational Mandarin, to estimate call duration


def rankdata(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):  # average ranks for ties
        m = x == v
        r[m] = r[m].mean()
    return r


def spearman(a, b) -> float:
    ra, rb = rankdata(np.asarray(a, float)), rankdata(np.asarray(b, float))
    return float(np.corrcoef(ra, rb)[0, 1])


def auc(scores, truth) -> float:
    """P(a true item scores higher than a false one), ties count half."""
    s, t = np.asarray(scores, float), np.asarray(truth, bool)
    pos, neg = s[t], s[~t]
    if not len(pos) or not len(neg):
        return float("nan")
    return float(np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])))


def f1(pred, truth) -> float:
    tp = int(np.sum(pred & truth))
    d = int(pred.sum() + truth.sum())
    return 2 * tp / d if d else 1.0


def load(calls_path: Path, labels_path: Path):
    labels = {}
    for line in open(labels_path, encoding="utf-8"):
        if line.strip():
            d = json.loads(line)
            labels[str(d["id"])] = d
    calls = []
    for line in open(calls_path, encoding="utf-8"):
        if not line.strip():
            continue
        d = json.loads(line)
        if str(d["id"]) not in labels:
            continue
        # keep MUSIED's turn index (the labels' evidence indexes) beside each kept turn
        kept = [(i, t) for i, t in enumerate(d["turns"])
                if t.get("role") in ("agent", "customer") and str(t.get("text") or "").strip()]
        tr = Transcript(call_id=str(d["id"]), language="zh",
                        turns=tuple(Turn(role=t["role"], text=t["text"]) for _, t in kept))
        calls.append((tr, [i for i, _ in kept], labels[str(d["id"])]))
    return calls


def pack_threshold(pack_path: Path):
    """The (op, value) of the metric condition on customer_sentiment_end in rule customer_negative_end."""
    from qa_inspect.rules import load_pack

    pack = load_pack(pack_path)
    rule = next((r for r in pack.rules if r.id == "customer_negative_end"), None)
    if rule is None:
        return pack, None
    conds = [rule.match, rule.when, *(c for _, c in rule.conditions)]
    for c in conds:
        if c is not None and c.metric is not None and c.metric.name == "customer_sentiment_end":
            return pack, (c.metric.op, c.metric.value)
    return pack, None


def cv_threshold(score: np.ndarray, truth: np.ndarray, reps: int = 20, folds: int = 5, seed: int = 0):
    """Mean F1 and accuracy of 'score ≤ t', t chosen on the training folds (max F1)."""
    rng = np.random.default_rng(seed)
    f1s, accs = [], []
    for _ in range(reps):
        pos, neg = rng.permutation(np.where(truth)[0]), rng.permutation(np.where(~truth)[0])
        parts = [np.concatenate([pos[k::folds], neg[k::folds]]) for k in range(folds)]
        pred = np.zeros(len(truth), bool)
        for k in range(folds):
            te = parts[k]
            tr = np.setdiff1d(np.arange(len(truth)), te)
            cands = np.unique(score[tr])
            t = max(cands, key=lambda c: (f1(score[tr] <= c, truth[tr]), -c))
            pred[te] = score[te] <= t
        f1s.append(f1(pred, truth))
        accs.append(float(np.mean(pred == truth)))
    return float(np.mean(f1s)), float(np.std(f1s)), float(np.mean(accs))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("calls", nargs="?", default=str(DATA / "musied-dev-calls.jsonl"))
    ap.add_argument("labels", nargs="?", default=str(DATA / "musied-dev-labels.jsonl"))
    ap.add_argument("--pack", default=str(ROOT / "rules" / "customer_service_zh.yaml"))
    ap.add_argument("--backend", default="combined", choices=("combined", "lexicon", "transformers"))
    ap.add_argument("--model", default="", help="local model directory for --backend transformers")
    ap.add_argument("--scope", default="all", choices=("end", "start+end", "all"),
                    help="customer utterances scored (enrich.sentiment.SCOPES; `run` with the shipped "
                         "packs: end); the utterance level reads the scored ones only")
    ap.add_argument("--samples", default=str(ROOT / "samples" / "transcripts.jsonl"),
                    help="transcripts JSONL with timestamps, for the cost figure ('' to skip)")
    a = ap.parse_args(argv)
    if not Path(a.calls).exists() or not Path(a.labels).exists():
        print(f"data not found: {a.calls} / {a.labels}", file=sys.stderr)
        return 2
    calls = load(Path(a.calls), Path(a.labels))
    truth = np.array([bool(lab["customer_negative_end"]) for _, _, lab in calls])
    print(f"{len(calls)} labelled calls, {int(truth.sum())} with customer_negative_end; backend {a.backend}")

    scorer = get_scorer(SentimentConfig(backend=a.backend, model_path=a.model))
    t0 = time.perf_counter()
    scorer.score(["好的谢谢"], ["customer"])  # load the models once, outside the timing
    load_s = time.perf_counter() - t0
    enriched, secs, est_asr = [], [], []
    for tr, _, _ in calls:
        t0 = time.perf_counter()
        enriched.append(add_sentiment(tr, scorer, a.scope))
        secs.append(time.perf_counter() - t0)
        est_asr.append(ASR_RTF * 60.0 * sum(len(t.text) for t in tr.turns) / ZH_CPM)
    end = np.array([e.metrics.get("customer_sentiment_end", 0.0) for e in enriched])

    # --- the rule as shipped -------------------------------------------------------------
    pack, thr = pack_threshold(Path(a.pack))
    if thr is not None:
        from qa_inspect.enrich.talk import talk_metrics
        from qa_inspect.rules import evaluate

        pred = np.array([next(r.matched for r in evaluate(pack, e, {**talk_metrics(e), **e.metrics})
                              if r.rule_id == "customer_negative_end") for e in enriched])
        tp, fp = int(np.sum(pred & truth)), int(np.sum(pred & ~truth))
        fn, tn = int(np.sum(~pred & truth)), int(np.sum(~pred & ~truth))
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        print(f"\nrule customer_negative_end (customer_sentiment_end {thr[0]} {thr[1]:g}), all {len(calls)} calls:")
        print(f"  accuracy {np.mean(pred == truth):.3f}  precision {p:.3f}  recall {r:.3f}  F1 {f1(pred, truth):.3f}")
        print("                      predicted neg  predicted not")
        print(f"  labelled neg end    {tp:>13}  {fn:>13}")
        print(f"  labelled not        {fp:>13}  {tn:>13}")
    cvf, cvsd, cva = cv_threshold(end, truth)
    print(f"held-out (5-fold CV x20, threshold tuned on 4 folds): F1 {cvf:.3f} ± {cvsd:.3f}, accuracy {cva:.3f}")

    # --- ranking against the reviewer's verdict ----------------------------------------------
    satisfied = (~truth).astype(float)
    snow = SnowNLPScorer()
    last = []
    for tr, _, _ in calls:
        cust = [t.text for t in tr.turns if t.role == "customer" and not is_filler(t.text)]
        last.append(snow.score(cust[-1:])[0] if cust else 0.0)
    rows = [("ours: customer_sentiment_end", end), ("snownlp, last customer utterance", np.array(last))]
    if isinstance(scorer, CombinedScorer):  # each part alone, same call-level window
        from qa_inspect.enrich.sentiment import call_metrics
        feats = [scorer.features([t.text for t in tr.turns], [t.role for t in tr.turns]) for tr, _, _ in calls]
        for part in scorer.weights:
            vals = []
            for (tr, _, _), f in zip(calls, feats):
                sc = [0.0 if v is None else v for v in f[part]]
                vals.append(call_metrics([t.role for t in tr.turns], [t.text for t in tr.turns], sc)
                            .get("customer_sentiment_end", 0.0))
            rows.append((f"  part alone: {part}", np.array(vals)))
    print("\nranking calls against the reviewer's verdict (satisfied end = 1, negative end = 0):")
    print(f"  {'score':<36} {'Spearman':>8} {'AUC':>6}")
    for name, v in rows:
        print(f"  {name:<36} {spearman(v, satisfied):>8.3f} {auc(v, satisfied):>6.3f}")

    # --- utterance level ----------------------------------------------------------------
    u_s, u_t = [], []
    for (tr, idx, lab), e in zip(calls, enriched):
        ev = set((lab.get("evidence") or {}).get("customer_complaint", []))
        for i, t in zip(idx, e.turns):
            if t.role == "customer" and not is_filler(t.text) and "sentiment" in t.metrics:
                u_s.append(t.metrics["sentiment"])
                u_t.append(i in ev)
    u_s, u_t = np.array(u_s), np.array(u_t)
    print(f"\nutterance level: {int(u_t.sum())} complaint-evidence vs {int((~u_t).sum())} other customer utterances")
    print(f"  AUC (complaint scores lower) {auc(-u_s, u_t):.3f}; accuracy of 'score < 0 ⇔ complaint' "
          f"{np.mean((u_s < 0) == u_t):.3f}; complaint utterances with score < 0: {np.mean(u_s[u_t] < 0):.3f}")

    # --- cost ---------------------------------------------------------------------------
    secs_a = np.array(secs)
    ratio = secs_a / np.array(est_asr)
    print(f"\ncost: model load {load_s:.1f} s once per process; per call {np.mean(secs_a):.2f} s mean, "
          f"{np.percentile(secs_a, 90):.2f} s p90 ({np.mean([len(t.turns) for t, _, _ in calls]):.0f} turns); "
          f"vs estimated Whisper-base time: {np.mean(ratio) * 100:.1f}% mean")
    if a.samples and Path(a.samples).exists():
        trs = [Transcript.from_dict(json.loads(x)) for x in open(a.samples, encoding="utf-8") if x.strip()]
        s_secs, s_asr = 0.0, 0.0
        for tr in trs:
            t0 = time.perf_counter()
            add_sentiment(tr, scorer)
            s_secs += time.perf_counter() - t0
            dur = tr.duration or max((t.end or 0.0) for t in tr.turns)
            s_asr += ASR_RTF * dur
        print(f"samples: {len(trs)} calls, sentiment {s_secs:.2f} s in all = {100 * s_secs / s_asr:.1f}% of "
              f"Whisper-base time ({ASR_RTF} × {s_asr / ASR_RTF:.0f} s audio)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
