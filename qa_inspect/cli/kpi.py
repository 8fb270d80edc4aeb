"""Service KPIs (`kpi`) and the complaint closed loop (`complaints`), issue 15."""
from __future__ import annotations

from pathlib import Path

import click

from qa_inspect.cli.common import CONTEXT, DB_HELP, fail, open_existing_store, store_errors
from qa_inspect.errors import QAError

NOW_HELP = "The time to judge the clocks at (ISO, e.g. 2026-11-23T12:00:00+08:00); default: now."


def register(main: click.Group) -> None:
    main.add_command(kpi)
    main.add_command(complaints)


def _now(now: str | None):
    if not now:
        return None
    from qa_inspect.store.kpi_sql import parse_time

    t = parse_time(now)
    if t is None:
        fail(QAError(f"--now {now!r} 不是 ISO 时间 / is not an ISO time (2026-11-23T12:00:00+08:00)"))
    return t


@click.command(context_settings=CONTEXT)
@click.option("--db", default="qa.db", show_default=True, help=DB_HELP)
@click.option("--by", "by", type=click.Choice(["agent", "team", "queue"]), default="agent", show_default=True,
              help="Group by agent (坐席), team (班组) or queue (技能组).")
@click.option("--period", type=click.Choice(["day", "week", "month", "all"]), default="day", show_default=True,
              help="Day, ISO week or month of the call's own time; all: one row per group.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "xlsx"]), default="table", show_default=True)
@click.option("--out", type=click.Path(), default=None, help="File to write (csv/xlsx; default kpi.csv / kpi.xlsx).")
@click.option("--complaint-rule", "complaint_rules", default="customer_complaint,complaint_intent",
              show_default=True, help="The rule(s), comma-separated, whose hit makes a call a complaint (投诉率).")
@click.option("--repeat-days", type=click.FloatRange(min=0, min_open=True), default=7.0, show_default=True,
              help="A call is a repeat contact when the same customer calls again within this many days.")
@click.option("--pass-mark", type=float, default=60.0, show_default=True, help="QC pass: score ≥ this and no fatal item.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True, help="Header language.")
def kpi(db, by, period, fmt, out, complaint_rules, repeat_days, pass_mark, lang):
    """Service KPIs per agent / team / queue and day / week / month, computed in the database:
    calls, AHT (talk + hold + wrap where known), hold and silence share, talk ratio,
    interruptions, QC mean score and pass rate, complaint rate, sentiment at the end, and the
    repeat-contact rate (the FCR proxy) with the targets beside them. "—" = not known."""
    from qa_inspect.reports import kpi as report
    from qa_inspect.workflow.complaints import list_tickets, timely_rate

    store = open_existing_store(db)
    with store_errors(db, store):
        rules = [r.strip() for r in complaint_rules.split(",") if r.strip()]
        table = report.kpi_table(store.kpi_rows(by, period, complaint_rules=rules,
                                                repeat_days=repeat_days, pass_mark=pass_mark))
        rate, n = timely_rate(list_tickets(store))
        line = (f"投诉解决及时率 / timely complaint resolution: "
                f"{report.fmt(rate, 'pct')} of {n} decided ticket(s) (target 100%)")
        if fmt == "table":
            click.echo(f"服务指标 / KPIs by {report.BY_LABELS[by]} per {report.PERIOD_LABELS[period]}")
            click.echo(report.render_text(table, lang) if table else "(no ok calls stored)")
            click.echo(line)
            return
        path = Path(out or f"kpi.{fmt}")
        if path.is_dir():
            fail(QAError("--out is a folder: give a file name", str(path)))
        (report.write_csv if fmt == "csv" else report.write_xlsx)(table, path, lang)
        click.echo(f"{len(table)} row(s) → {path}")
        click.echo(line)


@click.group(context_settings=CONTEXT, invoke_without_command=True)
@click.option("--db", default="qa.db", show_default=True, help=DB_HELP)
@click.option("--overdue", is_flag=True, help="Only tickets with a clock past due.")
@click.option("--now", default=None, help=NOW_HELP)
@click.pass_context
def complaints(ctx, db, overdue, now):
    """Complaint tickets (投诉工单): overdue first, with how late. Opened by `run` for every call
    whose complaint rule hit or whose risk alert is 紧急; graded 普通/重大/紧急; clocks: received
    within 2 h, first handling within 48 h of the call. Steps: assign, receive, handle, callback, close."""
    if ctx.invoked_subcommand is not None:
        return
    from qa_inspect.workflow.complaints import (STATUS_LABELS, fmt_late, fmt_ts, list_tickets,
                                                timely_rate)

    store = open_existing_store(db)
    with store_errors(db, store):
        t_now = _now(now)
        tickets = list_tickets(store, now=t_now, overdue_only=overdue)
        rate, n = timely_rate(list_tickets(store, now=t_now), t_now)
        click.echo(f"投诉工单 / complaint tickets: {len(tickets)}")
        for t in tickets:
            late = t.overdue(t_now.timestamp() if t_now else _wall())
            flag = "超时 " + "，".join(f"{c}超 {fmt_late(s)}" for c, s in late) if late else ""
            click.echo(f"  #{t.ticket_id:<5} {t.grade} {STATUS_LABELS.get(t.status, t.status):<4} "
                       f"客户 {t.customer[:18]:<18} 来电 {t.calls} 立单 {t.opened_at} "
                       f"负责人 {t.owner or '—'} 签收时限 {fmt_ts(t.receive_due_ts)} "
                       f"处理时限 {fmt_ts(t.handle_due_ts)} {flag}".rstrip())
        pct = "—" if rate is None else f"{rate * 100:.1f}%"
        click.echo(f"投诉解决及时率 / timely resolution: {pct} of {n} decided ticket(s) (target 100%)")


def _wall() -> float:
    import time

    return time.time()


def _step(what: str, ticket_id: int, db: str, by: str, note: str, now: str | None, **kw) -> None:
    from qa_inspect.workflow.complaints import STATUS_LABELS, step

    store = open_existing_store(db)
    with store_errors(db, store):
        t = step(store, ticket_id, what, by=by, note=note, now=_now(now), **kw)
        click.echo(f"工单 #{t.ticket_id}: {STATUS_LABELS.get(t.status, t.status)} ({what} by {by})")


def _common(f):
    for dec in reversed((
            click.argument("ticket_id", type=int),
            click.option("--db", default="qa.db", show_default=True, help=DB_HELP),
            click.option("--by", required=True, help="Who does this step (audited)."),
            click.option("--note", default="", help="A note kept with the step."),
            click.option("--now", default=None, help="When the step happened (ISO); default now."))):
        f = dec(f)
    return f


@complaints.command("assign", context_settings=CONTEXT)
@_common
@click.option("--owner", required=True, help="The owner who must receive the ticket (签收).")
def assign(ticket_id, db, by, note, now, owner):
    """A supervisor assigns an owner (派单)."""
    _step("assign", ticket_id, db, by, note, now, owner=owner)


@complaints.command("receive", context_settings=CONTEXT)
@_common
def receive(ticket_id, db, by, note, now):
    """The owner receives the ticket (签收; clock: 2 h from the call)."""
    _step("receive", ticket_id, db, by, note, now)


@complaints.command("handle", context_settings=CONTEXT)
@_common
def handle(ticket_id, db, by, note, now):
    """First handling, with a note of what was done (首次处理; clock: 48 h from the call)."""
    _step("handle", ticket_id, db, by, note, now)


@complaints.command("callback", context_settings=CONTEXT)
@_common
@click.option("--outcome", required=True, type=click.Choice(["满意", "基本满意", "不满意", "未接通"]),
              help="The customer's outcome of the callback (回访).")
def callback(ticket_id, db, by, note, now, outcome):
    """Callback to the customer (回访) with the customer's outcome."""
    _step("callback", ticket_id, db, by, note, now, outcome=outcome)


@complaints.command("close", context_settings=CONTEXT)
@_common
def close(ticket_id, db, by, note, now):
    """Close the ticket (结单; after the callback)."""
    _step("close", ticket_id, db, by, note, now)


@complaints.command("show", context_settings=CONTEXT)
@click.argument("ticket_id", type=int)
@click.option("--db", default="qa.db", show_default=True, help=DB_HELP)
def show(ticket_id, db):
    """A ticket's calls and audited steps (who, when, note)."""
    from qa_inspect.workflow.complaints import STEP_LABELS, fmt_ts, get_ticket

    store = open_existing_store(db)
    with store_errors(db, store):
        t = get_ticket(store, ticket_id)
        click.echo(f"工单 #{t.ticket_id} {t.grade} 客户 {t.customer} 问题 {t.issue or '—'} "
                   f"回访结果 {t.callback_outcome or '—'}")
        click.echo("  通话: " + ", ".join(store.ticket_calls(ticket_id)))
        for _tid, st, actor, at, note in store.ticket_events(ticket_id):
            click.echo(f"  {fmt_ts(at)}  {STEP_LABELS.get(st, st)}  {actor}  {note or ''}".rstrip())
