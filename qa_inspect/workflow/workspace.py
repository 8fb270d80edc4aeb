"""The review workspace's workflow: what the browser and the JSON API call (``qa_inspect.web``).

A review saved here lands in ``qc_reviews`` / ``qc_review_items`` and an appeal in
``qc_appeals``: the tables a worksheet import and ``qa-inspect appeal`` write, so ``calibrate``,
agent scorecards and ``final_scores`` see browser and worksheet reviews alike. Every write is
audited (``web_audit``) in the same transaction, and a review save is a compare-and-swap on the
call's version: two reviewers saving the same call → the second gets ``Conflict``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from qa_inspect.store import loads
from qa_inspect.store import workspace as ws
from qa_inspect.workflow.db import WorkflowError, now_iso

VERDICTS = ("confirmed", "false_positive", "missed")
FLAGGED = ("fail", "hit")
WEB_SAMPLE = "(web)"  # the sample id of a browser review of a call that is in no sample
APPEAL_WINDOW_DAYS = 7
APPEAL_LIMIT = 2  # appeals per call


class NotFound(WorkflowError):
    """No such call or appeal."""


class Conflict(WorkflowError):
    """Someone else saved first (the version the caller read is stale) or the thing is decided."""


def ready(store) -> None:
    """The workspace tables exist (first use creates them; the workflow's come with the store)."""
    if getattr(store, "_workflow_ready", False):
        return
    ws.ensure(store)
    ws.ensure_review_indexes(store)
    store._workflow_ready = True


# --- the call index ---------------------------------------------------------------------------

def index_row(call_id: str, record: Mapping[str, Any], updated_at: float) -> tuple:
    """The ``web_calls`` row of a stored record (``ws.INDEX_COLS`` order) and its transcript text."""
    tr = record.get("transcript") or {}
    hits = sorted({r["rule_id"] for r in record.get("rules") or () if r.get("outcome") in FLAGGED})
    text = " ".join(t.get("text", "") for t in tr.get("turns") or ())
    started = record.get("started_at") or ""
    return (call_id, started, started[:10], record.get("agent_id") or "", record.get("agent_name") or "",
            record.get("team") or "", record.get("score"), record.get("grade") or "",
            int(bool(record.get("fatal"))), "," + ",".join(hits) + ",", float(updated_at)), (call_id, text)


def sync_index(store, batch: int = 2000, *, full: bool = True, margin_s: float = 300.0) -> int:
    """Bring the queue index up to date with the results (new or re-scored calls); rows indexed.
    ``full=False`` looks only at results written since the newest indexed one (less a margin for
    transactions that committed late): milliseconds on 100,000 calls, where a full pass reads
    every row."""
    ready(store)
    newest = None if full else ws.index_newest(store)
    since = None if newest is None else newest - margin_s
    n = 0
    while True:
        stale = ws.index_stale(store, batch, since)
        if not stale:
            return n
        recs = [(cid, loads(rec), upd) for cid, rec, upd in stale]
        built = [index_row(cid, rec, upd) for cid, rec, upd in recs]
        ws.index_put(store, [b[0] for b in built], [b[1] for b in built])
        known = ws.titles(store)
        new = {r["rule_id"]: r.get("title") or r["rule_id"] for _c, rec, _u in recs for r in rec.get("rules") or ()}
        ws.titles_put(store, {k: v for k, v in new.items() if known.get(k) != v})
        n += len(stale)


@dataclass(frozen=True)
class Filters:
    """The queue's filters (all optional). ``agent`` is forced to the agent's own id for agents."""
    date_from: str = ""
    date_to: str = ""
    team: str = ""
    agent: str = ""
    score_min: float | None = None
    score_max: float | None = None
    grade: str = ""
    fatal: bool | None = None
    rule: str = ""
    reviewed: bool | None = None
    q: str = ""


def search_calls(store, f: Filters, page: int = 1, per_page: int = 50) -> dict[str, Any]:
    """One page of calls matching the filters, newest first, with the total."""
    ready(store)
    page, per_page = max(1, page), min(max(1, per_page), 200)
    where: list[tuple[str, Any]] = []
    if f.date_from:
        where.append(("w.day >= ?", f.date_from))
    if f.date_to:
        where.append(("w.day <= ?", f.date_to))
    for col, val in (("team", f.team), ("agent_id", f.agent), ("grade", f.grade)):
        if val:
            where.append((f"w.{col} = ?", val))
    if f.score_min is not None:
        where.append(("w.score >= ?", f.score_min))
    if f.score_max is not None:
        where.append(("w.score <= ?", f.score_max))
    if f.fatal is not None:
        where.append(("w.fatal = ?", int(f.fatal)))
    if f.rule:
        where.append(("w.hits LIKE ? ESCAPE '\\'", f"%,{_like(f.rule)},%"))
    total, capped, rows = ws.search(store, where, per_page, (page - 1) * per_page, f.reviewed, _like(f.q))
    calls = [{"call_id": r[0], "started_at": r[1], "agent_id": r[2], "agent_name": r[3], "team": r[4],
              "score": r[5], "grade": r[6], "fatal": bool(r[7]), "hits": [h for h in r[8].split(",") if h],
              "reviewed": bool(r[9])} for r in rows]
    return {"total": total, "total_capped": capped, "page": page, "per_page": per_page, "calls": calls,
            "rule_titles": ws.titles(store)}


def rule_titles(store) -> dict[str, str]:
    """Rule id → title of every rule seen in the results (标准结束语 for closing)."""
    ready(store)
    return ws.titles(store)


def _like(s: str) -> str:
    """``s`` as literal text inside a LIKE pattern (``ESCAPE '\\'``): a filter, not a pattern."""
    return s[:100].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def queue(store, reviewer: str) -> list[dict[str, Any]]:
    """The calls of open samples assigned to ``reviewer`` that they have not reviewed yet."""
    ready(store)
    out = []
    for sid, cid in ws.assigned_open(store, reviewer):
        r = ws.index_row(store, cid)
        if r:
            out.append({"sample_id": sid, "call_id": cid, "started_at": r[1], "agent_id": r[3], "agent_name": r[4],
                        "team": r[5], "score": r[6], "grade": r[7], "fatal": bool(r[8]),
                        "hits": [h for h in r[9].split(",") if h]})
    return out


def assign(store, sample_id: str, reviewers: list[str] | None = None, *, call_id: str = "",
           reviewer: str = "", check_users: bool = True) -> list[tuple[str, str]]:
    """Assign a sample's calls round-robin to ``reviewers`` (in call order), or one call by hand.
    ``check_users``: each must be a workspace account that reviews (``sample`` with a plan's
    reviewers skips this: the accounts may come later)."""
    ready(store)
    calls = ws.sample_calls(store, sample_id)
    if not calls:
        raise NotFound(f"没有抽检批次 {sample_id!r} / no sample {sample_id!r} (or it has no calls)")
    if call_id:
        if call_id not in calls:
            raise NotFound(f"通话 {call_id!r} 不在抽检批次 {sample_id} 中 / call {call_id!r} is not in sample {sample_id}")
        pairs = [(call_id, reviewer)]
    else:
        names = [r.strip() for r in reviewers or [] if r.strip()]
        if not names:
            raise WorkflowError("请至少指定一名质检员 / name at least one reviewer")
        pairs = [(cid, names[i % len(names)]) for i, cid in enumerate(calls)]
    from qa_inspect.workflow.accounts import get_user

    for who in sorted({w for _, w in pairs}) if check_users else ():
        if get_user(store, who).role not in ("reviewer", "supervisor", "admin"):
            raise WorkflowError(f"用户 {who!r} 不是质检员 / user {who!r} is not a reviewer")
    stamp = now_iso()
    with ws.tx(store):
        ws.assign(store, sample_id, pairs, stamp)
        for cid, who in pairs:
            ws.audit(store, stamp, "sample" if not check_users else "cli", "assign", cid, sample_id, None, who)
    return pairs


# --- one call -------------------------------------------------------------------------------

def load_record(store, call_id: str) -> dict[str, Any]:
    row = ws.result_record(store, call_id)
    if row is None:
        raise NotFound(f"没有通话 {call_id!r} / no call {call_id!r}")
    if row[0] != "ok":
        raise NotFound(f"通话 {call_id!r} 没有可复核的结果 / call {call_id!r} has no result to review (status {row[0]})")
    return loads(row[1])


def call_items(rec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The scorecard items of a call (the breakdown, or the rules' deductions without a
    scorecard), then the risk rules, each with its evidence hits."""
    rules = {r["rule_id"]: r for r in rec.get("rules") or ()}
    items, seen = [], set()

    def hits(r):
        return [{"turn": e["turn"], "role": e["role"], "start": e["start"], "end": e["end"], "text": e["text"],
                 "matched": e.get("matched", "")} for e in (r or {}).get("evidence") or ()]

    for b in rec.get("score_breakdown") or ():
        r = rules.get(b["rule_id"], {})
        seen.add(b["rule_id"])
        items.append({"rule_id": b["rule_id"], "title": r.get("title", b["rule_id"]), "section": b["section"],
                      "kind": r.get("kind", ""), "outcome": b["outcome"], "hit": b["outcome"] in FLAGGED,
                      "points": b["points"], "possible": b.get("possible", 0.0),
                      "fatal": b["section"] == "fatal" or bool(r.get("fatal")), "note": b.get("note", ""),
                      "reason": r.get("reason", b.get("evidence", "")), "hits": hits(r)})
    for rid, r in rules.items():
        if rid in seen:
            continue
        pts = -float(r.get("deduction") or 0) if r["outcome"] in FLAGGED and not rec.get("score_breakdown") else 0.0
        items.append({"rule_id": rid, "title": r.get("title", rid), "section": r.get("category", ""),
                      "kind": r.get("kind", ""), "outcome": r["outcome"], "hit": r["outcome"] in FLAGGED,
                      "points": pts, "possible": float(r.get("deduction") or 0), "fatal": bool(r.get("fatal")),
                      "note": "", "reason": r.get("reason", ""), "hits": hits(r)})
    return items


def recompute(machine: float | None, items: list[dict[str, Any]], verdicts: Mapping[str, str]) -> float | None:
    """The score with the reviewer's verdicts applied to the scorecard items: a false hit gives its
    points back, a miss costs the item's points, a fatal item (一票否决) confirmed or missed scores
    0. Section caps are not re-applied (the reviewer can type the manual score). The same
    arithmetic runs in the browser (static/call.js) as the reviewer marks items."""
    if machine is None:
        return None
    if any(i["fatal"] and i["hit"] for i in items):
        base = 100.0  # a fatal call's 0 hides its base; the shipped scorecards start from 100
    else:
        base = machine - sum(i["points"] for i in items if not i["fatal"])
    total, fatal = base, False
    for i in items:
        v = verdicts.get(i["rule_id"])
        if i["fatal"]:
            fatal |= (i["hit"] and v != "false_positive") or (not i["hit"] and v == "missed")
            continue
        if i["hit"] and v == "false_positive":
            continue
        total += -abs(i["possible"]) if (not i["hit"] and v == "missed") else i["points"]
    return 0.0 if fatal else round(min(100.0, max(0.0, total)), 1)


def final_score(store, call_id: str, machine: float | None) -> dict[str, Any]:
    """Machine, manual and final score (upheld appeal > manual review > machine)."""
    m, a = ws.final_parts(store, call_id)
    if a is not None:
        final, source = a[0], "appeal"
    elif m is not None:
        final, source = m[0], "manual"
    else:
        final, source = machine, "machine"
    return {"machine": machine, "manual": m[0] if m else None, "manual_by": m[1] if m else None,
            "appeal": a[0] if a else None, "final": final, "source": source}


def _json(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def call_view(store, call_id: str, *, redact: bool = False) -> dict[str, Any]:
    """Everything the call page and ``GET /api/calls/{id}`` show; ``redact`` (agents): personal
    numbers in the transcript and evidence masked."""
    ready(store)
    rec = load_record(store, call_id)
    if redact:
        from qa_inspect.redact import redact_call_dict

        rec = redact_call_dict(rec)
    tr = rec.get("transcript") or {}
    items = call_items(rec)
    appeals = [get_appeal(store, row[0]) for row in store.appeal_rows(call_id=call_id)]
    history = [{"id": r[0], "at": r[1], "by": r[2], "action": r[3], "target": r[5], "before": _json(r[6]),
                "after": _json(r[7])} for r in ws.audit_rows(store, call_id)]
    reviews = [{"sample_id": r[0], "reviewer": r[1], "manual_score": r[2], "note": r[3], "source": r[4],
                "at": r[5]} for r in ws.reviews_of(store, call_id)]
    verdicts = [{"reviewer": r[0], "rule_id": r[1], "machine_outcome": r[2], "verdict": r[3], "note": r[4],
                 "at": r[5]} for r in ws.review_items_of(store, call_id)]
    return {
        "call": {k: rec.get(k) for k in ("call_id", "agent_id", "agent_name", "team", "started_at", "language",
                                           "channel_layout")} | {"duration": tr.get("duration")},
        "scores": {**final_score(store, call_id, rec.get("score")), "grade": rec.get("grade"),
                   "fatal": bool(rec.get("fatal")), "scorecard_id": rec.get("scorecard_id", "")},
        "items": items,
        "turns": [{"turn": i, "role": t.get("role"), "text": t.get("text", ""), "start": t.get("start"),
                   "end": t.get("end")} for i, t in enumerate(tr.get("turns") or ())],
        "audio_url": f"/api/audio/{call_id}" if rec.get("path") else None,
        "reviews": reviews, "verdicts": verdicts, "appeals": appeals, "history": history,
        "version": ws.version_of(store, call_id),
        "next_call": _next(store, call_id),
    }


def _next(store, call_id: str) -> str | None:
    r = ws.index_row(store, call_id)
    return ws.next_call(store, r[1], call_id) if r else None


def audio_path(store, call_id: str) -> str:
    """The audio file the database registers for the call (the manifest path of its result)."""
    rec = load_record(store, call_id)
    if not rec.get("path"):
        raise NotFound(f"通话 {call_id!r} 没有录音 / call {call_id!r} has no audio")
    return rec["path"]


def call_owner(store, call_id: str) -> str:
    """The agent id of a call (for the 'agents see only their own calls' check)."""
    r = ws.index_row(store, call_id)
    return r[3] if r else (load_record(store, call_id).get("agent_id") or "")


# --- review -------------------------------------------------------------------------------

def save_review(store, call_id: str, reviewer: str, verdicts: Mapping[str, str], *, version: int,
                manual_score: float | None = None, comment: str = "",
                notes: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Record a reviewer's verdicts and manual score for a call, if nobody saved since ``version``;
    the manual score defaults to ``recompute`` of the verdicts. Raises ``Conflict`` otherwise."""
    ready(store)
    rec = load_record(store, call_id)
    items = {i["rule_id"]: i for i in call_items(rec)}
    notes = notes or {}
    comment = (comment or "").strip()
    for rid, v in verdicts.items():
        it = items.get(rid)
        if it is None:
            raise WorkflowError(f"通话 {call_id!r} 没有质检项 {rid!r} / call {call_id!r} has no item {rid!r}")
        if v not in VERDICTS:
            raise WorkflowError(f"{rid} 的结论 {v!r} 无效 / verdict {v!r} for {rid} is not one of {', '.join(VERDICTS)}")
        if v == "false_positive" and not it["hit"]:
            raise WorkflowError(f"{rid} 机器未命中，不能标为误报 / false_positive on {rid}, which the machine did not flag ({it['outcome']})")
        if v == "missed" and it["hit"]:
            raise WorkflowError(f"{rid} 机器已命中，不能标为漏检 / missed on {rid}, which the machine flagged ({it['outcome']})")
        if v == "false_positive" and it["fatal"] and not (comment or (notes.get(rid) or "").strip()):
            raise WorkflowError(f"推翻一票否决项 {rid} 须填写复核意见 / overturning the fatal item {rid} needs a comment")
    if manual_score is None:
        manual_score = recompute(rec.get("score"), list(items.values()), verdicts)
    elif not isinstance(manual_score, (int, float)) or not 0 <= manual_score <= 100:
        raise WorkflowError(f"人工评分 {manual_score!r} 超出 0–100 / manual_score {manual_score!r} is outside 0–100")
    samples = ws.samples_of(store, call_id)
    sample_id = samples[0] if samples else WEB_SAMPLE
    before = [r for r in ws.reviews_of(store, call_id) if r[1] == reviewer]
    before_items = {r[1]: r[3] for r in ws.review_items_of(store, call_id) if r[0] == reviewer}
    stamp = now_iso()
    rows = [(rid, items[rid]["outcome"], v, (notes.get(rid) or "").strip() or None) for rid, v in sorted(verdicts.items())]
    with ws.tx(store):
        if not ws.version_bump(store, call_id, int(version)):
            raise Conflict(f"他人已先保存通话 {call_id}，请刷新后查看 / call {call_id} was saved by someone else since you opened it (version {version}); "
                           "reload to see their review")
        ws.review_put(store, sample_id, call_id, reviewer, manual_score, comment or None, "web", stamp, rows)
        ws.audit(store, stamp, reviewer, "review", call_id, sample_id,
                 json.dumps({"manual_score": before[-1][2], "items": before_items} if before else None,
                            ensure_ascii=False),
                 json.dumps({"manual_score": manual_score, "items": dict(verdicts), "comment": comment},
                            ensure_ascii=False))
    return call_view(store, call_id)


# --- appeals (申诉) ---------------------------------------------------------------------------

def _started(rec: Mapping[str, Any]) -> datetime | None:
    try:
        t = datetime.fromisoformat(rec.get("started_at") or "")
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def appealable(item: Mapping[str, Any]) -> bool:
    """An item an agent may appeal: one that cost the call points, or a fatal hit (一票否决)."""
    return item["points"] < 0 or (item["fatal"] and item["hit"])


def open_appeal(store, call_id: str, by: str, items: Iterable[str], reason: str, *,
                window_days: int = APPEAL_WINDOW_DAYS, limit: int = APPEAL_LIMIT,
                now: datetime | None = None) -> dict[str, Any]:
    """An agent appeals chosen flagged items of their call, within ``window_days`` of the call and
    at most ``limit`` times per call, one open appeal at a time."""
    ready(store)
    rec = load_record(store, call_id)
    chosen = sorted({str(i) for i in items})
    reason = (reason or "").strip()
    if not chosen:
        raise WorkflowError("请勾选要申诉的检出项 / choose at least one item to appeal")
    if not reason:
        raise WorkflowError("请填写申诉理由 / an appeal needs a reason")
    flagged = {i["rule_id"] for i in call_items(rec) if appealable(i)}
    bad = [i for i in chosen if i not in flagged]
    if bad:
        raise WorkflowError(f"只能申诉扣分项或一票否决项 / only items that cost points can be appealed; not these: {', '.join(bad)}")
    started = _started(rec)
    now = now or datetime.now(timezone.utc)
    if started is not None and now - started > timedelta(days=window_days):
        raise WorkflowError(f"已超过申诉期限（通话后 {window_days} 天）/ the appeal window ({window_days} days after the call) has closed")
    old = store.appeal_rows(call_id=call_id)
    if any(a[5] == "open" for a in old):
        raise Conflict(f"通话 {call_id} 已有处理中的申诉 / call {call_id} already has an open appeal")
    if len(old) >= limit:
        raise WorkflowError(f"该通话申诉次数已达上限 {limit} 次 / call {call_id} has reached the limit of {limit} appeals")
    stamp = now_iso()
    with ws.tx(store):
        aid = ws.appeal_insert(store, call_id, reason, by, stamp, chosen)
        ws.audit(store, stamp, by, "appeal", call_id, f"#{aid}", None,
                 json.dumps({"items": chosen, "reason": reason}, ensure_ascii=False))
    return get_appeal(store, aid)


def get_appeal(store, appeal_id: int) -> dict[str, Any]:
    ready(store)
    row = store.appeal_row(appeal_id)
    if row is None:
        raise NotFound(f"没有申诉 #{appeal_id} / no appeal #{appeal_id}")
    d = dict(zip(ws.APPEAL_COLS.split(", "), row))
    d["id"] = d["appeal_id"]
    d["items"] = ws.appeal_items(store, appeal_id)
    d["steps"] = [{"level": lv, "upheld": bool(up), "score": sc, "comment": c, "by": by, "at": at}
                  for lv, up, sc, c, by, at in ws.appeal_steps(store, appeal_id)]
    return d


def list_open_appeals(store, agent: str | None = None) -> list[dict[str, Any]]:
    ready(store)
    out = []
    for row in store.appeal_rows(status="open"):
        d = get_appeal(store, row[0])
        r = ws.index_row(store, d["call_id"])
        d["agent_id"] = r[3] if r else ""
        if agent is None or d["agent_id"] == agent:
            out.append(d)
    return out


def decide(store, appeal_id: int, by: str, upheld: bool, *, score: float | None = None,
           comment: str = "", levels: int = 1) -> dict[str, Any]:
    """Uphold (score: given, or the call re-scored with the appealed items as false hits) or
    reject an open appeal, with a comment. With ``levels=2`` the first decision is a first-level
    opinion (the appeal stays open) and a second, different person decides. Decided appeals are
    final (``Conflict``)."""
    a = get_appeal(store, appeal_id)
    comment = (comment or "").strip()
    if not comment:
        raise WorkflowError("请填写处理意见 / a decision needs a comment")
    if a["status"] != "open":
        raise Conflict(f"申诉 #{appeal_id} 已处理，结果为终审 / appeal #{appeal_id} is already {a['status']} (decided appeals are final)")
    if not upheld and score is not None:
        raise WorkflowError("驳回的申诉不改分，请勿填写分数 / a rejected appeal keeps the call's score: give no score")
    level = len(a["steps"]) + 1
    if level > 1 and any(st["by"] == by for st in a["steps"]):
        raise WorkflowError(f"二级复核须由另一位主管处理 / the level-{level} decision needs another supervisor")
    rec = load_record(store, a["call_id"])
    if upheld and score is None:
        score = recompute(rec.get("score"), call_items(rec), {i: "false_positive" for i in a["items"]})
    if score is not None and not 0 <= score <= 100:
        raise WorkflowError(f"分数 {score:g} 超出 0–100 / score {score:g} is outside 0–100")
    before = final_score(store, a["call_id"], rec.get("score"))["final"]
    stamp = now_iso()
    final = level >= levels
    status = "upheld" if upheld else "rejected"
    with ws.tx(store):
        if not ws.appeal_step_put(store, appeal_id, level, upheld, score, comment, by, stamp):
            raise Conflict(f"申诉 #{appeal_id} 已被他人处理 / appeal #{appeal_id} was decided meanwhile")
        if final and not ws.appeal_decide(store, appeal_id, status, by, stamp, score, comment):
            raise Conflict(f"申诉 #{appeal_id} 已被他人处理 / appeal #{appeal_id} was decided meanwhile")
        ws.audit(store, stamp, by, "appeal_decision" if final else "appeal_level1", a["call_id"], f"#{appeal_id}",
                 json.dumps({"status": "open", "final": before}),
                 json.dumps({"status": status, "score": score, "comment": comment, "level": level},
                            ensure_ascii=False))
    return get_appeal(store, appeal_id)
