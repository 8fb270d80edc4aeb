"""Service KPIs and complaint tickets (issue 15): their tables and queries, for both drivers.

- ``call_facts``: one row per stored call, filled by ``put_rows`` from the same record in the
  same transaction: the indexed columns the KPIs group and count over (agent, team, queue,
  customer, day/week/month, talk/hold/wrap seconds, score, talk metrics). A missing value is
  NULL, so an average over it is NULL and the report shows "—", never 0.
- ``call_hits``: the risk rules that hit in a call (the complaint rule is chosen at query time).
- ``complaint_tickets`` / ``complaint_calls`` / ``complaint_events``: the complaint closed loop
  (投诉闭环): a ticket per customer and issue, the calls attached to it, and every audited step.

A database written before these tables existed gets them (``CREATE TABLE IF NOT EXISTS``);
``backfill_facts`` fills ``call_facts`` for results stored before, once.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Sequence

FACT_COLS = ("call_id", "status", "agent_id", "team", "queue", "customer", "started_at", "ts", "day",
             "week", "month", "score", "fatal", "talk_s", "hold_s", "wrap_s", "silence_share",
             "talk_ratio", "interruptions", "sentiment_end")
TICKET_COLS = ("ticket_id", "customer", "issue", "grade", "status", "opened_at", "opened_ts",
               "first_call_id", "receive_due_ts", "handle_due_ts", "owner", "received_ts",
               "handled_ts", "callback_ts", "callback_outcome", "closed_ts")
EVENT_COLS = ("ticket_id", "step", "actor", "at_ts", "note")


def _tables(text: str, real: str, c: str, serial: str) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS call_facts (
    call_id {c} PRIMARY KEY, status TEXT NOT NULL, agent_id {c}, team {c}, queue {c}, customer {c},
    started_at {c}, ts {real}, day {c}, week {c}, month {c}, score {real}, fatal INTEGER,
    talk_s {real}, hold_s {real}, wrap_s {real}, silence_share {real}, talk_ratio {real},
    interruptions {real}, sentiment_end {real}
);
CREATE INDEX IF NOT EXISTS call_facts_customer ON call_facts(customer, ts);
CREATE INDEX IF NOT EXISTS call_facts_agent ON call_facts(agent_id, day);
CREATE INDEX IF NOT EXISTS call_facts_team ON call_facts(team, day);
CREATE INDEX IF NOT EXISTS call_facts_queue ON call_facts(queue, day);
CREATE TABLE IF NOT EXISTS call_hits (
    call_id {c} NOT NULL, rule_id {c} NOT NULL, PRIMARY KEY (call_id, rule_id)
);
CREATE INDEX IF NOT EXISTS call_hits_rule ON call_hits(rule_id, call_id);
CREATE TABLE IF NOT EXISTS complaint_tickets (
    ticket_id {serial}, customer {c} NOT NULL, issue {c} NOT NULL, grade TEXT NOT NULL,
    status TEXT NOT NULL, opened_at {c} NOT NULL, opened_ts {real} NOT NULL, first_call_id {c} NOT NULL,
    receive_due_ts {real} NOT NULL, handle_due_ts {real} NOT NULL, owner TEXT, received_ts {real},
    handled_ts {real}, callback_ts {real}, callback_outcome TEXT, closed_ts {real}
);
CREATE INDEX IF NOT EXISTS complaint_tickets_customer ON complaint_tickets(customer, issue, status);
CREATE TABLE IF NOT EXISTS complaint_calls (
    call_id {c} PRIMARY KEY, ticket_id INTEGER NOT NULL, call_ts {real}
);
CREATE TABLE IF NOT EXISTS complaint_events (
    event_id {serial}, ticket_id INTEGER NOT NULL, step TEXT NOT NULL, actor TEXT NOT NULL, at_ts {real} NOT NULL, note {text}
);
CREATE INDEX IF NOT EXISTS complaint_events_ticket ON complaint_events(ticket_id);
"""


SQLITE_SCHEMA = _tables("TEXT", "REAL", "TEXT", "INTEGER PRIMARY KEY AUTOINCREMENT")
POSTGRES_SCHEMA = _tables("TEXT", "DOUBLE PRECISION", 'TEXT COLLATE "C"', "BIGSERIAL PRIMARY KEY")


def parse_time(s: str) -> datetime | None:
    """An ISO time as written in a manifest (naive = UTC); None when absent or unreadable."""
    if not s:
        return None
    try:
        t = datetime.fromisoformat(str(s).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def fact_rows(record: dict[str, Any]) -> tuple[tuple, list[tuple[str, str]]]:
    """The ``call_facts`` row (``FACT_COLS``) and ``call_hits`` rows of a stored record."""
    m = record.get("metrics") or {}
    t = parse_time(record.get("started_at") or "")
    # the period of the call's own clock as written (a +08:00 call at 23:30 is that day in China)
    day = week = month = None
    if t is not None:
        day, month = t.date().isoformat(), t.strftime("%Y-%m")
        iso = t.isocalendar()
        week = f"{iso[0]}-W{iso[1]:02d}"
    talk = _num(m.get("duration_s"))
    if talk is None and record.get("transcript"):
        talk = _num((record["transcript"] or {}).get("duration"))
    ai, ci = _num(m.get("agent_interruptions")), _num(m.get("customer_interruptions"))
    inter = ai if ci is None else ci if ai is None else ai + ci
    cid = record["call_id"]
    row = (cid, record["status"], record.get("agent_id") or "", record.get("team") or "",
           record.get("queue") or "", record.get("customer_id") or "", record.get("started_at") or "",
           t.timestamp() if t else None, day, week, month, _num(record.get("score")),
           1 if record.get("fatal") else 0, talk, _num(record.get("hold_s")), _num(record.get("wrap_s")),
           _num(m.get("silence_share")), _num(m.get("talk_ratio")), inter, _num(m.get("customer_sentiment_end")))
    hits = set()
    for r in record.get("rules") or ():  # dicts, or RuleResult objects (re-scoring's fast record)
        rd = r if isinstance(r, dict) else {k: getattr(r, k, None) for k in ("rule_id", "matched", "kind")}
        if rd.get("matched") and rd.get("kind") == "risk":
            hits.add((cid, rd["rule_id"]))
    return row, sorted(hits)


# the rules whose hit makes a call a complaint: customer_service_zh's and telecom_zh's
COMPLAINT_RULES = ("customer_complaint", "complaint_intent")
KPI_KEYS = {"agent": "agent_id", "team": "team", "queue": "queue"}
KPI_PERIODS = {"day": "day", "week": "week", "month": "month", "all": ""}  # all: one row per group
KPI_COLS = ("key", "period", "calls", "aht_s", "hold_share", "silence_share", "talk_ratio", "interruptions",
            "score_mean", "pass_rate", "complaint_rate", "sentiment_end", "repeat_rate", "repeat_base")


class KpiSQL:
    """Mixin for the drivers: they give ``db``, ``_q``, ``_tx``, ``_one``/``_all`` (WorkflowSQL),
    and call ``_put_facts`` inside the transaction that writes the results rows."""

    db: Any
    P: str
    _q: Any
    _tx: Any
    _one: Any
    _all: Any

    def _put_facts(self, facts: Sequence[tuple[tuple, list[tuple[str, str]]]]) -> None:
        if not facts:
            return
        ids = [(f[0][0],) for f in facts]
        cur = self.db.cursor()
        try:
            cur.executemany(self._q("DELETE FROM call_facts WHERE call_id=?"), ids)
            cur.executemany(self._q("DELETE FROM call_hits WHERE call_id=?"), ids)
            cur.executemany(self._q(f"INSERT INTO call_facts ({', '.join(FACT_COLS)}) VALUES "
                                    f"({','.join('?' * len(FACT_COLS))})"), [f[0] for f in facts])
            hits = [h for f in facts for h in f[1]]
            if hits:
                cur.executemany(self._q("INSERT INTO call_hits (call_id, rule_id) VALUES (?,?)"), hits)
        finally:
            cur.close()

    def backfill_facts(self, loads: Any) -> int:
        """Fill ``call_facts`` for results stored before it existed (an older database); the count."""
        missing = self._all("SELECT r.call_id FROM results r LEFT JOIN call_facts f ON f.call_id = r.call_id "
                            "WHERE f.call_id IS NULL")
        for i in range(0, len(missing), 500):
            part = [m[0] for m in missing[i:i + 500]]
            rows = self._all(f"SELECT record FROM results WHERE call_id IN ({','.join('?' * len(part))})", part)
            with self._tx():
                self._put_facts([fact_rows(loads(r[0])) for r in rows])
        return len(missing)

    def kpi_rows(self, by: str, period: str, *, complaint_rules: Sequence[str] = COMPLAINT_RULES,
                 repeat_days: float = 7.0, pass_mark: float = 60.0) -> list[tuple]:
        """One row (``KPI_COLS``) per (agent|team|queue, day|week|month) over the ok calls, period
        order. Rates are 0..1; None where no call of the group carries what the figure needs.
        A call is a complaint when one of ``complaint_rules`` hit in it."""
        key, per = KPI_KEYS[by], KPI_PERIODS[period]
        # "all": one row per group (PostgreSQL refuses a constant in GROUP BY)
        per_sel, group, order = ("''", f"f.{key}", f"f.{key}") if not per else \
            (f"f.{per}", f"f.{key}, f.{per}", f"f.{per}, f.{key}")
        rules = tuple(complaint_rules) or ("",)
        sql = f"""
SELECT f.{key}, {per_sel}, COUNT(*),
  AVG(CASE WHEN f.talk_s IS NOT NULL THEN f.talk_s + COALESCE(f.hold_s, 0) + COALESCE(f.wrap_s, 0) END),
  SUM(f.hold_s) / NULLIF(SUM(CASE WHEN f.hold_s IS NOT NULL AND f.talk_s IS NOT NULL
                             THEN f.talk_s + f.hold_s + COALESCE(f.wrap_s, 0) END), 0),
  AVG(f.silence_share), AVG(f.talk_ratio), AVG(f.interruptions), AVG(f.score),
  AVG(CASE WHEN f.score IS NULL THEN NULL WHEN f.score >= ? AND f.fatal = 0 THEN 1.0 ELSE 0.0 END),
  AVG(CASE WHEN EXISTS (SELECT 1 FROM call_hits h WHERE h.call_id = f.call_id AND h.rule_id IN ({','.join('?' * len(rules))}))
      THEN 1.0 ELSE 0.0 END),
  AVG(f.sentiment_end),
  AVG(CASE WHEN f.customer = '' OR f.ts IS NULL THEN NULL
           WHEN EXISTS (SELECT 1 FROM call_facts g WHERE g.customer = f.customer AND g.ts > f.ts
                        AND g.ts <= f.ts + ? AND g.status = 'ok') THEN 1.0 ELSE 0.0 END),
  SUM(CASE WHEN f.customer = '' OR f.ts IS NULL THEN 0 ELSE 1 END)
FROM call_facts f WHERE f.status = 'ok'
GROUP BY {group} ORDER BY {order}"""
        # PostgreSQL averages 1.0/0.0 literals as NUMERIC: give every figure back as a float
        return [(k, p, int(n), *(None if v is None else float(v) for v in rest[:-1]), int(rest[-1] or 0))
                for k, p, n, *rest in self._all(sql, (pass_mark, *rules, repeat_days * 86400.0))]

    # --- complaint tickets -----------------------------------------------------------------
    def open_ticket_for(self, customer: str, issue: str, since_ts: float) -> int | None:
        """The open ticket of this customer and issue opened at or after ``since_ts`` (newest)."""
        row = self._one("SELECT ticket_id FROM complaint_tickets WHERE customer=? AND issue=? AND status<>'closed' "
                        "AND opened_ts>=? ORDER BY opened_ts DESC, ticket_id DESC", (customer, issue, since_ts))
        return int(row[0]) if row else None

    def ticket_of_call(self, call_id: str) -> int | None:
        row = self._one("SELECT ticket_id FROM complaint_calls WHERE call_id=?", (call_id,))
        return int(row[0]) if row else None

    def add_ticket(self, t: dict[str, Any], call_ts: float, actor: str, now_ts: float) -> int:
        """A new ticket (``TICKET_COLS`` but ticket_id) with its first call and 'opened' event."""
        cols = [c for c in TICKET_COLS if c != "ticket_id" and c in t]
        with self._tx():
            row = self.db.execute(self._q(f"INSERT INTO complaint_tickets ({', '.join(cols)}) VALUES "
                                          f"({','.join('?' * len(cols))}) RETURNING ticket_id"),
                                  tuple(t[c] for c in cols)).fetchone()
            tid = int(row[0])
            self.db.execute(self._q("INSERT INTO complaint_calls (call_id, ticket_id, call_ts) VALUES (?,?,?)"),
                            (t["first_call_id"], tid, call_ts))
            self.db.execute(self._q("INSERT INTO complaint_events (ticket_id, step, actor, at_ts, note) VALUES (?,?,?,?,?)"),
                            (tid, "opened", actor, now_ts, f"call {t['first_call_id']}"))
        return tid

    def attach_call(self, ticket_id: int, call_id: str, call_ts: float | None, grade: str | None,
                    actor: str, now_ts: float) -> None:
        """Attach a repeat call (and raise the ticket's grade to ``grade`` when given)."""
        with self._tx():
            self.db.execute(self._q("INSERT INTO complaint_calls (call_id, ticket_id, call_ts) VALUES (?,?,?)"),
                            (call_id, ticket_id, call_ts))
            if grade is not None:
                self.db.execute(self._q("UPDATE complaint_tickets SET grade=? WHERE ticket_id=?"), (grade, ticket_id))
            self.db.execute(self._q("INSERT INTO complaint_events (ticket_id, step, actor, at_ts, note) VALUES (?,?,?,?,?)"),
                            (ticket_id, "attached", actor, now_ts, f"call {call_id}"))

    def ticket_step(self, ticket_id: int, step: str, actor: str, now_ts: float, note: str,
                    sets: dict[str, Any]) -> None:
        """One audited step: update the ticket's columns ``sets`` and record who, when, note."""
        with self._tx():
            if sets:
                self.db.execute(self._q(f"UPDATE complaint_tickets SET {', '.join(c + '=?' for c in sets)} "
                                        "WHERE ticket_id=?"), (*sets.values(), ticket_id))
            self.db.execute(self._q("INSERT INTO complaint_events (ticket_id, step, actor, at_ts, note) VALUES (?,?,?,?,?)"),
                            (ticket_id, step, actor, now_ts, note))

    def ticket_rows(self, ticket_id: int | None = None) -> list[tuple]:
        """Tickets (``TICKET_COLS`` + number of calls), oldest first."""
        where, args = ("WHERE t.ticket_id=?", (ticket_id,)) if ticket_id is not None else ("", ())
        return self._all(f"SELECT {', '.join('t.' + c for c in TICKET_COLS)}, "
                         "(SELECT COUNT(*) FROM complaint_calls c WHERE c.ticket_id = t.ticket_id) "
                         f"FROM complaint_tickets t {where} ORDER BY t.opened_ts, t.ticket_id", args)

    def ticket_calls(self, ticket_id: int) -> list[str]:
        return [r[0] for r in self._all("SELECT call_id FROM complaint_calls WHERE ticket_id=? "
                                        "ORDER BY call_ts, call_id", (ticket_id,))]

    def ticket_events(self, ticket_id: int) -> list[tuple]:
        """``EVENT_COLS`` of a ticket, in the order they were recorded."""
        return self._all("SELECT ticket_id, step, actor, at_ts, note FROM complaint_events WHERE ticket_id=? "
                         "ORDER BY event_id", (ticket_id,))

    def call_facts_row(self, call_id: str) -> tuple | None:
        return self._one(f"SELECT {', '.join(FACT_COLS)} FROM call_facts WHERE call_id=?", (call_id,))
