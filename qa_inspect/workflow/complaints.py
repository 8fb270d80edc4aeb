"""The complaint closed loop (投诉闭环): 快速响应、分级处理、闭环管理.

A call opens a complaint ticket when a complaint rule hit (``customer_complaint``,
``complaint_intent`` by default) or a risk rule alerted at 紧急 (threats to go to the regulator, the media or a
lawyer). One ticket per customer and issue within a window (default 7 days): a later call
from the same customer about the same issue attaches to the open ticket instead of opening
another. The issue is the call's ``disposition``, else its ``queue`` (skill group), else none.

Grades follow the pack's alert levels (its ``alert:`` tags): 紧急 ← urgent, 重大 ← high,
普通 ← watch or no alert. Clocks run from the time of the call that opened the ticket: received
by an owner within 2 h, first handling within 48 h (``ComplaintPolicy``, per grade). Steps:
assign → receive → handle (note) → callback (回访, the customer's outcome) → close; each is
audited (who, when, note). Every function takes ``now`` so tests control the clock.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

from qa_inspect.records import CallResult
from qa_inspect.reports.alerts import call_alerts
from qa_inspect.store.kpi_sql import COMPLAINT_RULES, TICKET_COLS, parse_time
from qa_inspect.workflow.db import WorkflowError

GRADES = ("普通", "重大", "紧急")
LEVEL_GRADE = {"urgent": "紧急", "high": "重大", "watch": "普通"}
STEPS = ("assign", "receive", "handle", "callback", "close")
STEP_LABELS = {"opened": "立单", "attached": "重复来电并入", "assign": "派单", "receive": "签收",
               "handle": "首次处理", "callback": "回访", "close": "结单"}
STATUS_LABELS = {"open": "待派单", "assigned": "已派单", "received": "已签收", "handled": "已处理",
                 "callback": "已回访", "closed": "已结单"}
OUTCOMES = ("满意", "基本满意", "不满意", "未接通")


@dataclass(frozen=True)
class ComplaintPolicy:
    complaint_rules: tuple[str, ...] = COMPLAINT_RULES
    window_days: float = 7.0  # a repeat call within this many days attaches to the open ticket
    open_levels: tuple[str, ...] = ("urgent",)  # risk alerts at these levels open a ticket too
    receive_hours: Mapping[str, float] = field(default_factory=lambda: {g: 2.0 for g in GRADES})
    handle_hours: Mapping[str, float] = field(default_factory=lambda: {g: 48.0 for g in GRADES})


@dataclass(frozen=True)
class Ticket:
    ticket_id: int
    customer: str
    issue: str
    grade: str
    status: str
    opened_at: str
    opened_ts: float
    first_call_id: str
    receive_due_ts: float
    handle_due_ts: float
    owner: str | None
    received_ts: float | None
    handled_ts: float | None
    callback_ts: float | None
    callback_outcome: str | None
    closed_ts: float | None
    calls: int = 1

    def late(self, now: float) -> list[tuple[str, float]]:
        """``(clock, seconds late)`` of each clock missed by ``now`` (done late, or not done)."""
        out = []
        for clock, due, done in (("签收", self.receive_due_ts, self.received_ts),
                                 ("首次处理", self.handle_due_ts, self.handled_ts)):
            at = done if done is not None else now
            if at > due:
                out.append((clock, at - due))
        return out

    def overdue(self, now: float) -> list[tuple[str, float]]:
        """The clocks running past due now (not done yet)."""
        return [(c, now - d) for c, d, done in (("签收", self.receive_due_ts, self.received_ts),
                                                ("首次处理", self.handle_due_ts, self.handled_ts))
                if done is None and now > d and self.status != "closed"]

    def timely(self, now: float) -> bool | None:
        """Met both clocks (True), missed one (False), or not decided yet (None)."""
        if self.late(now):
            return False
        if self.received_ts is not None and self.handled_ts is not None:
            return True
        return None


def _ts(now: datetime | float | None) -> float:
    if now is None:
        return datetime.now(timezone.utc).timestamp()
    return now.timestamp() if isinstance(now, datetime) else float(now)


_UNSET: Any = object()


def _grade(r: CallResult, alert_policy: Any, policy: ComplaintPolicy, alert: Any = _UNSET) -> str | None:
    """The call's ticket grade, or None when the call is no complaint. ``alert``: the call's
    ``call_alerts`` result when the caller has it already."""
    complaint = any(x.rule_id in policy.complaint_rules and x.matched for x in r.rules)
    a = call_alerts(r, alert_policy) if alert is _UNSET else alert
    levels = [x.level for x in a.reasons if x.kind == "risk"] if a is not None else []
    if not complaint and not any(lv in policy.open_levels for lv in levels):
        return None
    return LEVEL_GRADE[min(levels, key=("urgent", "high", "watch").index)] if levels else "普通"


def _customer(r: CallResult) -> str:
    return r.call.customer_id or f"call:{r.call.call_id}"  # unknown caller: a ticket of its own


def _issue(r: CallResult) -> str:
    return r.call.disposition or r.call.queue or ""


@dataclass(frozen=True)
class ComplaintCall:
    """What the complaint loop needs of one ok call: small, so that a batch of any size is
    gathered in one pass over its results and then handled oldest first."""
    call_id: str
    ts: float
    grade: str | None  # the ticket grade, None when the call is no complaint
    customer_id: str | None
    customer: str
    issue: str
    started_at: str | None


def complaint_call(r: CallResult, alert_policy: Any = None, policy: ComplaintPolicy = ComplaintPolicy(),
                   now: datetime | float | None = None, alert: Any = _UNSET) -> ComplaintCall:
    """The complaint-loop facts of the ok call ``r`` (``alert_policy``: its pack's alert levels;
    ``alert``: its ``call_alerts`` result, when the caller has worked it out already)."""
    return ComplaintCall(call_id=r.call.call_id, ts=_call_ts(r, _ts(now)), grade=_grade(r, alert_policy, policy, alert),
                         customer_id=r.call.customer_id or None, customer=_customer(r), issue=_issue(r),
                         started_at=r.call.started_at)


def process_calls(store: Any, results: Iterable[CallResult], *, alert_policies: Mapping[str, Any] | None = None,
                  policy: ComplaintPolicy = ComplaintPolicy(), now: datetime | float | None = None,
                  actor: str = "system") -> tuple[int, int]:
    """Open or attach tickets for these results (ok calls, oldest first); calls already on a
    ticket are skipped, so a re-run changes nothing. ``(opened, attached)``."""
    now_ts = _ts(now)
    calls = [complaint_call(r, (alert_policies or {}).get(r.pack_id), policy, now_ts)
             for r in results if r.status == "ok"]
    return process_complaint_calls(store, calls, policy=policy, now=now_ts, actor=actor)


def process_complaint_calls(store: Any, calls: Iterable[ComplaintCall], *,
                            policy: ComplaintPolicy = ComplaintPolicy(), now: datetime | float | None = None,
                            actor: str = "system") -> tuple[int, int]:
    """``process_calls`` over gathered ``complaint_call`` facts."""
    now_ts = _ts(now)
    opened = attached = 0
    for c in sorted(calls, key=lambda c: (c.ts, c.call_id)):
        if store.ticket_of_call(c.call_id) is not None:
            continue
        tid = None
        if c.customer_id:
            tid = store.open_ticket_for(c.customer_id, c.issue, c.ts - policy.window_days * 86400)
        if tid is not None:
            t = get_ticket(store, tid)
            up = c.grade if c.grade is not None and GRADES.index(c.grade) > GRADES.index(t.grade) else None
            store.attach_call(tid, c.call_id, c.ts, up, actor, now_ts)
            attached += 1
        elif c.grade is not None:
            store.add_ticket({"customer": c.customer, "issue": c.issue, "grade": c.grade, "status": "open",
                              "opened_at": c.started_at or datetime.fromtimestamp(c.ts, timezone.utc).isoformat(),
                              "opened_ts": c.ts, "first_call_id": c.call_id,
                              "receive_due_ts": c.ts + policy.receive_hours.get(c.grade, 2.0) * 3600,
                              "handle_due_ts": c.ts + policy.handle_hours.get(c.grade, 48.0) * 3600},
                             c.ts, actor, now_ts)
            opened += 1
    return opened, attached


def _call_ts(r: CallResult, now_ts: float) -> float:
    t = parse_time(r.call.started_at)
    return t.timestamp() if t is not None else now_ts


def get_ticket(store: Any, ticket_id: int) -> Ticket:
    rows = store.ticket_rows(ticket_id)
    if not rows:
        raise WorkflowError(f"没有这个投诉工单 / no complaint ticket {ticket_id}")
    return _ticket(rows[0])


def _ticket(row: Sequence[Any]) -> Ticket:
    kw = dict(zip(TICKET_COLS, row))
    return Ticket(**kw, calls=int(row[len(TICKET_COLS)]))


def list_tickets(store: Any, *, now: datetime | float | None = None, overdue_only: bool = False) -> list[Ticket]:
    """Tickets, overdue first (the latest-due clock first: the longest late), then open by
    opening time, closed last."""
    now_ts = _ts(now)
    ts = [_ticket(r) for r in store.ticket_rows()]
    if overdue_only:
        ts = [t for t in ts if t.overdue(now_ts)]
    return sorted(ts, key=lambda t: (not t.overdue(now_ts), t.status == "closed",
                                     -max((s for _c, s in t.overdue(now_ts)), default=0.0), t.opened_ts))


_ORDER = ("open", "assigned", "received", "handled", "callback", "closed")


def step(store: Any, ticket_id: int, what: str, *, by: str, note: str = "", owner: str = "",
         outcome: str = "", now: datetime | float | None = None) -> Ticket:
    """One step of the loop, audited. ``assign`` needs ``owner``; ``handle`` a note; ``callback``
    the customer's ``outcome`` (满意/基本满意/不满意/未接通); ``close`` a callback first."""
    t = get_ticket(store, ticket_id)
    now_ts = _ts(now)
    if not by.strip():
        raise WorkflowError("请用 --by 写明操作人 / say who does this step (--by)")
    if t.status == "closed":
        raise WorkflowError(f"工单 {ticket_id} 已结单 / ticket {ticket_id} is closed")
    at = _ORDER.index(t.status)
    sets: dict[str, Any]
    if what == "assign":
        if not owner.strip():
            raise WorkflowError("派单需要 --owner / assign needs an owner")
        sets = {"owner": owner.strip(), "status": "assigned" if at <= 1 else t.status}
        note = note or f"owner {owner.strip()}"
    elif what == "receive":
        if t.received_ts is not None:
            raise WorkflowError(f"工单 {ticket_id} 已签收 / already received")
        sets = {"received_ts": now_ts, "status": "received", "owner": t.owner or by.strip()}
    elif what == "handle":
        if not note.strip():
            raise WorkflowError("首次处理需要 --note 写明处理内容 / handle needs a note")
        if t.received_ts is None:
            raise WorkflowError(f"工单 {ticket_id} 还未签收 / receive the ticket first")
        sets = {"handled_ts": now_ts, "status": "handled"} if t.handled_ts is None else {}
    elif what == "callback":
        if outcome not in OUTCOMES:
            raise WorkflowError(f"回访结果须为 {'、'.join(OUTCOMES)} / --outcome must be one of these")
        if t.handled_ts is None:
            raise WorkflowError(f"工单 {ticket_id} 还未处理 / handle the ticket first")
        sets = {"callback_ts": now_ts, "callback_outcome": outcome, "status": "callback"}
        note = f"{outcome}{'：' + note if note else ''}"
    elif what == "close":
        if t.callback_ts is None:
            raise WorkflowError(f"工单 {ticket_id} 还未回访 / call the customer back (callback) before closing")
        sets = {"closed_ts": now_ts, "status": "closed"}
    else:
        raise WorkflowError(f"unknown step {what!r}: one of {', '.join(STEPS)}")
    store.ticket_step(ticket_id, what, by.strip(), now_ts, note, sets)
    return get_ticket(store, ticket_id)


def timely_rate(tickets: Sequence[Ticket], now: datetime | float | None = None) -> tuple[float | None, int]:
    """投诉解决及时率: share of decided tickets that met both clocks, and how many are decided."""
    now_ts = _ts(now)
    decided = [v for v in (t.timely(now_ts) for t in tickets) if v is not None]
    return (sum(decided) / len(decided) if decided else None), len(decided)


def fmt_late(seconds: float) -> str:
    h = seconds / 3600
    return f"{h / 24:.1f} 天" if h >= 48 else f"{h:.1f} 小时"


def fmt_ts(ts: float | None) -> str:
    return "—" if ts is None else datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
