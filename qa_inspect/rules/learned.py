"""Learned conditions: a linear classifier over sentence embeddings, trained from labelled calls.

A rule condition ``learned: learned/agent_impolite.json`` scores every scoped turn of a call
with a logistic regression over its sentence embedding (the packaged multilingual USE encoder,
``enrich.embeddings``): a turn whose probability reaches the model's threshold matches, like a
phrase would (``min_count``, windows, roles and composition apply as usual). The turns that
drove the verdict are the evidence (matcher ``learned``, confidence = the probability), so a
learned verdict is explained like any other hit.

A model is one JSON file next to the pack: the weights, the threshold, what it was trained on
(``training.data_id``: a hash of the labels and transcripts used, the counts, the
cross-validated F1 on the training calls — a dev figure) and its own ``hash``; the pack's hash
includes the model's, so a retrained model re-scores. ``train`` fits one from labelled calls
(labels as ``rules eval`` reads them, with ``evidence`` turn indexes), choosing the threshold
on out-of-fold call scores; ``qa-inspect rules learn`` is its command.
"""
from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from qa_inspect.errors import RuleError
from qa_inspect.strict_yaml import ParseContext, line_of

FORMAT = "qa_inspect.learned/1"
ENCODER = "usem3"  # enrich.embeddings.MODEL_ID: a model is only valid with the encoder it was trained on


@dataclass(frozen=True)
class LearnedModel:
    item: str
    role: str  # agent | customer | any
    weights: tuple[float, ...]
    bias: float
    threshold: float
    training: dict = field(default_factory=dict, compare=False)
    source: str = ""
    hash: str = ""

    def turn_scores(self, vectors: np.ndarray) -> np.ndarray:
        """Probability per turn from its (n, dim) unit embedding."""
        if len(vectors) == 0:
            return np.zeros(0, dtype=np.float32)
        z = vectors @ np.asarray(self.weights, dtype=np.float32) + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    def call_score(self, probs: np.ndarray) -> float:
        """The call's score: its highest turn probability (0 for no turn)."""
        return float(probs.max()) if len(probs) else 0.0

    def describe(self) -> str:
        return f"{Path(self.source).name or self.item} (threshold {self.threshold:.2f})"

    def to_dict(self) -> dict:
        return {"format": FORMAT, "encoder": ENCODER, "item": self.item, "role": self.role,
                "threshold": round(self.threshold, 6), "bias": self.bias,
                "weights": list(self.weights), "training": self.training}


def _digest(d: dict) -> str:
    body = {k: v for k, v in d.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def load_model(path: str | Path) -> LearnedModel:
    """Read a model file; a missing, unreadable or foreign file is a RuleError naming it."""
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RuleError("learned model not found (train one with `qa-inspect rules learn`)", str(p)) from None
    except (OSError, ValueError) as e:
        raise RuleError(f"learned model is not readable JSON ({e})", str(p)) from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise RuleError(f"not a learned model file (expected format {FORMAT!r})", str(p))
    if d.get("encoder") != ENCODER:
        raise RuleError(f"learned model needs encoder {d.get('encoder')!r}; this build has {ENCODER!r}", str(p))
    try:
        w = tuple(float(x) for x in d["weights"])
        m = LearnedModel(item=str(d["item"]), role=str(d.get("role", "any")), weights=w, bias=float(d["bias"]),
                         threshold=float(d["threshold"]), training=dict(d.get("training") or {}), source=str(p), hash=_digest(d))
    except (KeyError, TypeError, ValueError) as e:
        raise RuleError(f"learned model is missing or has a bad field ({e})", str(p)) from None
    if not all(map(math.isfinite, w)) or not 0.0 < m.threshold < 1.0:
        raise RuleError("learned model has non-finite weights or a threshold outside (0, 1)", str(p))
    return m


def save_model(model: LearnedModel, path: str | Path) -> LearnedModel:
    """Write ``model`` (weights rounded to 6 digits) and return it as loaded back."""
    d = model.to_dict()
    d["weights"] = [round(float(x), 6) for x in d["weights"]]
    d["bias"] = round(float(d["bias"]), 6)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(d, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(p)
    return load_model(p)


# --- training ---------------------------------------------------------------------------------

@dataclass
class LabelledCall:
    """One labelled call for training: the texts of its scoped turns, the positions (within
    ``texts``) of the turns the labeller named as evidence, and the call's label."""
    call_id: str
    texts: list[str]
    evidence: list[int]
    label: bool


def _fit(X: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Weighted L2-regularised logistic regression (L-BFGS)."""
    from scipy.optimize import minimize

    n, d = X.shape

    def f(theta):
        beta, b = theta[:d], theta[d]
        z = X @ beta + b
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        eps = 1e-9
        loss = -np.sum(w * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))) / w.sum() + l2 * beta @ beta
        g = (w * (p - y)) / w.sum()
        return loss, np.concatenate([X.T @ g + 2 * l2 * beta, [g.sum()]])

    res = minimize(f, np.zeros(d + 1), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return res.x[:d], float(res.x[d])


def _turn_set(calls: Sequence[LabelledCall], vecs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Training turns: the evidence turns of positive calls (positives) and every turn of
    negative calls (negatives). Positive calls without evidence give no turn."""
    X, y = [], []
    for c in calls:
        v = vecs[c.call_id]
        if c.label:
            for i in c.evidence:
                if 0 <= i < len(v):
                    X.append(v[i])
                    y.append(1.0)
        else:
            X.extend(v)
            y.extend([0.0] * len(v))
    if not X:
        return np.zeros((0, 0)), np.zeros(0)
    return np.asarray(X, dtype=np.float64), np.asarray(y)


def _train_turns(calls, vecs, l2) -> tuple[np.ndarray, float]:
    X, y = _turn_set(calls, vecs)
    if len(X) == 0 or y.min() == y.max():
        raise RuleError("training needs positive calls with evidence turns and negative calls")
    pos = y.sum()
    w = np.where(y > 0, (len(y) - pos) / max(pos, 1.0), 1.0)  # balance the classes
    return _fit(X, y, w, l2)


def _best_threshold(scores: Sequence[float], labels: Sequence[bool]) -> tuple[float, float]:
    """(threshold, F1) maximising F1 of ``score >= threshold`` over the calls."""
    best = (0.5, -1.0)
    for t in sorted(set(round(s, 4) for s in scores)):
        if not 0.0 < t < 1.0:
            continue
        tp = sum(1 for s, lab in zip(scores, labels) if s >= t and lab)
        fp = sum(1 for s, lab in zip(scores, labels) if s >= t and not lab)
        fn = sum(1 for s, lab in zip(scores, labels) if s < t and lab)
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f1 > best[1] or (f1 == best[1] and abs(t - 0.5) < abs(best[0] - 0.5)):
            best = (t, f1)
    return best


def train(calls: Sequence[LabelledCall], item: str, role: str, embed, *, l2: float = 1e-3,
          folds: int = 5, seed: int = 0, data_id: str = "") -> LearnedModel:
    """Fit a model on ``calls``; the threshold is the one that maximises F1 on out-of-fold call
    scores (``folds``-fold CV by call, seeded), reported in ``training.cv_f1`` (a dev figure:
    the calls it was tuned on). ``embed``: texts → (n, dim) unit vectors."""
    calls = [c for c in calls if c.texts]
    if sum(c.label for c in calls) < 2 or sum(not c.label for c in calls) < 2:
        raise RuleError(f"{item}: training needs at least 2 positive and 2 negative labelled calls")
    vecs = {c.call_id: np.asarray(embed(c.texts), dtype=np.float64) for c in calls}
    order = sorted(calls, key=lambda c: c.call_id)
    random.Random(seed).shuffle(order)
    k = max(2, min(folds, sum(c.label for c in calls)))
    oof: dict[str, float] = {}
    for f in range(k):
        test = order[f::k]
        test_ids = {c.call_id for c in test}
        train_calls = [c for c in order if c.call_id not in test_ids]
        try:
            beta, b = _train_turns(train_calls, vecs, l2)
        except RuleError:
            continue
        probe = LearnedModel(item, role, tuple(beta), b, 0.5)
        for c in test:
            oof[c.call_id] = probe.call_score(probe.turn_scores(vecs[c.call_id]))
    scored = [c for c in calls if c.call_id in oof]
    threshold, cv_f1 = _best_threshold([oof[c.call_id] for c in scored], [c.label for c in scored])
    beta, b = _train_turns(calls, vecs, l2)
    training = {"data_id": data_id, "calls": len(calls), "positives": sum(c.label for c in calls),
                "evidence_turns": sum(len(c.evidence) for c in calls if c.label), "folds": k,
                "cv_f1": round(cv_f1, 4), "l2": l2, "seed": seed}
    return LearnedModel(item, role, tuple(float(x) for x in beta), b, float(threshold), training)


def data_id(*parts: Any) -> str:
    """A short, stable id of the training data (labels and transcripts as given)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, ensure_ascii=False, default=str).encode())
    return h.hexdigest()[:16]


def labelled_calls(transcripts: dict, labels: dict[str, dict], item: str, role: str,
                   index_maps: dict[str, dict[int, int]] | None = None,
                   last_turns: int | None = None) -> list[LabelledCall]:
    """Training calls for ``item`` from transcripts and label records (``{item: bool, "evidence":
    {item: [turn index]}}``). Only turns of ``role`` (``any``: all) count, and with
    ``last_turns`` only that role's last N turns (the rule's ``window: {last_turns: N}``); the
    evidence indexes are the transcript's turn indexes, or mapped through
    ``index_maps[call_id]`` (label index → transcript index) when the labels index another
    rendering of the call."""
    out = []
    for cid, lab in sorted(labels.items()):
        tr = transcripts.get(cid)
        if tr is None or item not in lab:
            continue
        keep = [i for i, t in enumerate(tr.turns) if (role == "any" or t.role == role) and t.text.strip()]
        if last_turns:
            keep = keep[-last_turns:]
        pos_of = {ti: k for k, ti in enumerate(keep)}
        ev = (lab.get("evidence") or {}).get(item) or []
        m = (index_maps or {}).get(cid)
        ev_turns = [m.get(int(i)) if m is not None else int(i) for i in ev]
        evidence = sorted({pos_of[t] for t in ev_turns if t is not None and t in pos_of})
        out.append(LabelledCall(cid, [tr.turns[i].text for i in keep], evidence, bool(lab[item])))
    return out


def train_item(calls: Sequence[LabelledCall], item: str, role: str, **kw) -> LearnedModel:
    """``train`` with the packaged sentence encoder and a data id of the calls given."""
    from qa_inspect.enrich import embeddings

    did = data_id([(c.call_id, c.label, c.evidence, c.texts) for c in calls])
    return train(calls, item, role, embeddings.embed, data_id=did, **kw)


# --- the rule language's side ---------------------------------------------------------------

def learned_condition(ctx: ParseContext, m: Any, what: str) -> LearnedModel | None:
    """``learned: PATH`` in a condition: the model file, relative to the pack's file."""
    v = m.get("learned")
    line = line_of(m, "learned")
    if not isinstance(v, str) or not v.strip():
        ctx.err(line, f"{what}: 'learned' must be the path of a model file (qa-inspect rules learn)")
        return None
    path = Path(v.strip())
    if not path.is_absolute():
        path = Path(ctx.file).parent / path
    try:
        return load_model(path)
    except RuleError as e:
        ctx.err(line, f"{what}: {e}")
        return None


def _conditions(rule):
    return [c for c in (rule.match, rule.when, *(c for _n, c in rule.conditions)) if c is not None]


def model_hashes(rules) -> list[str]:
    """The hashes of the learned models the rules use (in rule order), for the pack's hash."""
    return [c.learned.hash for r in rules for c in _conditions(r) if c.learned is not None]


def learned_models(rules) -> list[tuple[str, LearnedModel]]:
    """(rule id, model) of every learned condition, each model once."""
    out: list[tuple[str, LearnedModel]] = []
    for r in rules:
        for c in _conditions(r):
            if c.learned is not None and all(m is not c.learned for _i, m in out):
                out.append((r.id, c.learned))
    return out


def read_label_records(path: str | Path) -> dict[str, dict]:
    """Label records by call id (``call_id`` or ``id``), evidence included (JSONL, as ``rules
    eval`` reads them); a bad line is an error naming file:line."""
    from qa_inspect.errors import InputError

    out: dict[str, dict] = {}
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read labels ({e})", str(p)) from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            out[str(d.get("call_id") or d["id"])] = d
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise InputError(f"not a label record ({type(e).__name__}: {e})", f"{p}:{n}") from None
    return out
