"""Measure a rule pack against calls labelled by a QC reviewer.

An item is a rule id; a call's prediction for an item is ``RuleResult.matched`` (the rule's
condition was found, whatever the rule's kind or ``when``), the truth is the reviewer's bool.
Per item: the confusion counts, precision, recall and F1, and the call ids behind every
false positive and false negative; ``macro_f1`` averages F1 over the items.

Conventions for empty denominators (so a perfect item with no positives scores 1.0):
precision is 1.0 when nothing was predicted positive, recall 1.0 when nothing is positive,
F1 is 1.0 when there is neither a true positive nor an error, else 2PR / (P + R).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from qa_inspect.records import Transcript
from qa_inspect.rules.engine import evaluate
from qa_inspect.rules.model import RulePack


@dataclass
class ItemScore:
    item: str  # the rule id
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    false_positives: list[str] = field(default_factory=list)  # call ids
    false_negatives: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        if self.tp + self.fp + self.fn == 0:
            return 1.0
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn)  # = 2PR/(P+R)

    def to_dict(self) -> dict:
        return {"item": self.item, "n": self.n, "tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn,
                "precision": self.precision, "recall": self.recall, "f1": self.f1,
                "false_positives": list(self.false_positives), "false_negatives": list(self.false_negatives)}


def macro_f1(scores: list[ItemScore]) -> float:
    """Unweighted mean of the items' F1 (0.0 for no items)."""
    return sum(s.f1 for s in scores) / len(scores) if scores else 0.0


def evaluate_pack_against_labels(pack: RulePack, transcripts: list[Transcript],
                                 labels: dict[str, dict[str, bool]],
                                 metrics: Mapping[str, Mapping[str, Any]] | None = None) -> list[ItemScore]:
    """One ItemScore per rule of ``pack`` that some labelled call has a label for, in pack order.

    Only calls present in both ``transcripts`` and ``labels`` count; a call without a label for
    an item does not count for that item. ``metrics``: each call's metrics by call id, as the
    pipeline computes them (``enrich.call_metrics`` of the enriched transcript) — the engine
    sees transcripts and metrics only; without them, ``metric:`` conditions see the metrics
    stored with each transcript."""
    items = [r.id for r in pack.rules if any(r.id in lab for lab in labels.values())]
    scores = {i: ItemScore(i) for i in items}
    for tr in transcripts:
        lab = labels.get(tr.call_id)
        if lab is None:
            continue
        m = metrics.get(tr.call_id) if metrics is not None else None
        predicted = {r.rule_id: r.matched for r in evaluate(pack, tr, dict(m if m is not None else tr.metrics))}
        for item in items:
            if item not in lab:
                continue
            truth, pred, s = bool(lab[item]), bool(predicted.get(item, False)), scores[item]
            if truth and pred:
                s.tp += 1
            elif pred:
                s.fp += 1
                s.false_positives.append(tr.call_id)
            elif truth:
                s.fn += 1
                s.false_negatives.append(tr.call_id)
            else:
                s.tn += 1
    return [scores[i] for i in items]


def read_labels(path, item_map: dict[str, str] | None = None, id_key: str = "") -> dict[str, dict[str, bool]]:
    """A labels JSONL (one call a line: an id plus ``item: bool`` fields; other fields such as
    ``evidence`` or ``note`` are ignored) as {call_id: {item: bool}}. ``item_map`` renames label
    items to rule ids; the id is ``id_key`` if given, else ``call_id``, else ``id``."""
    import json
    from pathlib import Path

    from qa_inspect.errors import InputError

    item_map = item_map or {}
    out: dict[str, dict[str, bool]] = {}
    p = Path(path)
    if not p.exists():
        raise InputError("labels file not found", str(p))
    with open(p, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"not valid JSON ({e.msg} at column {e.colno})", f"{p}:{n}") from None
            if not isinstance(d, dict):
                raise InputError("line is not a JSON object", f"{p}:{n}")
            keys = [id_key] if id_key else ["call_id", "id"]
            cid = next((str(d[k]) for k in keys if d.get(k) not in (None, "")), "")
            if not cid:
                raise InputError(f"missing call id ({' or '.join(keys)})", f"{p}:{n}")
            if cid in out:
                raise InputError(f"duplicate call id {cid!r}", f"{p}:{n}")
            out[cid] = {item_map.get(k, k): v for k, v in d.items() if isinstance(v, bool)}
    return out
