"""Service KPIs (trend charts) and the complaint tickets in the workspace (issue 15). Thin: the
same store query and workflow functions the `kpi` and `complaints` commands call; steps are
form posts with the session's CSRF token, audited by ``complaints.step`` (who, when, note)."""
from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from qa_inspect.reports import kpi as K
from qa_inspect.reports.svg import line_chart
from qa_inspect.web.auth import authorize, check_csrf, current_user
from qa_inspect.web.pages import render
from qa_inspect.workflow import complaints as C
from qa_inspect.workflow.accounts import User

router = APIRouter()


@router.get("/kpi")
def kpi_page(request: Request, by: str = "team", period: str = "day", user: User = Depends(current_user)):
    authorize(user, "kpi.read")
    by = by if by in K.BY_LABELS else "team"
    period = period if period in K.PERIOD_LABELS else "day"
    store = request.app.state.pool.get()
    table = K.kpi_table(store.kpi_rows(by, period))
    periods = sorted({r["period"] for r in table})
    overall = table  # the trend: every group's calls together, weighted by calls
    charts = []
    for key, title, lo, hi, scale in (("score_mean", "质检均分", 0, 100, 1), ("repeat_rate", "重复来电率 (%)", 0, 100, 100),
                                      ("complaint_rate", "投诉率 (%)", 0, 100, 100)):
        pts = []
        for p in periods:
            rows = [r for r in overall if r["period"] == p and r[key] is not None]
            n = sum(r["calls"] for r in rows)
            v = sum(r[key] * r["calls"] for r in rows) / n * scale if n else None
            pts.append((p, v, sum(r["calls"] for r in overall if r["period"] == p)))
        charts.append(line_chart(pts, title=title, y_min=lo, y_max=hi))
    rate, n = C.timely_rate(C.list_tickets(store))
    return render(request, "kpi.html.j2", charts=charts, header=K.headers("zh"), rows=K.text_rows(table),
                  by=by, period=period, by_labels=K.BY_LABELS, period_labels=K.PERIOD_LABELS,
                  timely=K.fmt(rate, "pct"), decided=n)


@router.get("/complaints")
def complaints_page(request: Request, user: User = Depends(current_user)):
    authorize(user, "complaint.read")
    store = request.app.state.pool.get()
    now = time.time()
    tickets = [{"t": t, "late": "，".join(f"{c}超 {C.fmt_late(s)}" for c, s in t.overdue(now)),
                "events": store.ticket_events(t.ticket_id), "calls": store.ticket_calls(t.ticket_id)}
               for t in C.list_tickets(store, now=now)]
    return render(request, "complaints.html.j2", tickets=tickets, status_labels=C.STATUS_LABELS,
                  step_labels=C.STEP_LABELS, outcomes=C.OUTCOMES, fmt_ts=C.fmt_ts,
                  can_assign=user.role in ("supervisor", "admin"))


@router.post("/complaints/{ticket_id}/{what}")
def complaint_step(ticket_id: int, what: str, request: Request, csrf: str = Form(""), note: str = Form(""),
                   owner: str = Form(""), outcome: str = Form(""), user: User = Depends(current_user)):
    check_csrf(request, request.state.session, csrf)
    authorize(user, "complaint.assign" if what == "assign" else "complaint.step")
    C.step(request.app.state.pool.get(), ticket_id, what, by=user.name, note=note, owner=owner, outcome=outcome)
    return RedirectResponse(f"/complaints#t{ticket_id}", status_code=303)
