"""Server-rendered pages (Jinja2, autoescaped): login, queue, call, appeals, 规则校准 (calibration),
settings. Writes from the call and appeal pages go through the JSON API (static/*.js); the pages'
own form posts (login, logout, settings) carry a CSRF token."""
from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from qa_inspect.errors import InputError
from qa_inspect.web.api import filters_from, page_args
from qa_inspect.web.auth import (LOGIN_CSRF_COOKIE, POLICY, SESSION_COOKIE, SESSION_MAX_AGE, authorize, check_csrf,
                                 client_ip, current_user, same)
from qa_inspect.web.i18n import translator
from qa_inspect.workflow import accounts
from qa_inspect.workflow import complaints as C
from qa_inspect.workflow import workspace as W
from qa_inspect.workflow.accounts import User

router = APIRouter()


def render(request: Request, name: str, status: int = 200, **ctx):
    user = getattr(request.state, "user", None)
    session = getattr(request.state, "session", None)
    t = translator(user.lang if user else "zh")
    return request.app.state.templates.TemplateResponse(
        request, name, {"t": t, "user": user, "csrf": (session or {}).get("c", ""), **ctx}, status_code=status)


def _cookie_args(request: Request) -> dict:
    return {"httponly": True, "samesite": "strict", "secure": request.url.scheme == "https", "path": "/"}


@router.get("/login")
def login_page(request: Request, error: str = ""):
    token = secrets.token_urlsafe(24)
    resp = render(request, "login.html.j2", login_csrf=token, error=error)
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **_cookie_args(request))
    return resp


@router.post("/login")
def login(request: Request, username: str = Form(""), password: str = Form(""), csrf: str = Form("")):
    if not same(request.cookies.get(LOGIN_CSRF_COOKIE), csrf):
        return render(request, "error.html.j2", 403, code=403, message="CSRF 令牌无效，请刷新登录页 (invalid CSRF token)")
    limiter = request.app.state.limiter
    keys = ("user:" + username.strip(), "ip:" + client_ip(request))
    t = translator("zh")
    if limiter.blocked(*keys):
        return _login_again(request, t("too_many"), 429)
    user = accounts.check_password(request.app.state.pool.get(), username.strip(), password)
    if user is None:
        limiter.failed(*keys)
        return _login_again(request, t("login_failed"), 401)
    limiter.succeeded(keys[0])
    cookie, _csrf = request.app.state.sessions.make(user.name)
    resp = RedirectResponse("/", status_code=303)
    resp.set_cookie(SESSION_COOKIE, cookie, max_age=SESSION_MAX_AGE, **_cookie_args(request))
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return resp


def _login_again(request: Request, error: str, status: int):
    token = secrets.token_urlsafe(24)
    resp = render(request, "login.html.j2", status, login_csrf=token, error=error)
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **_cookie_args(request))
    return resp


@router.post("/logout")
def logout(request: Request, csrf: str = Form(""), user: User = Depends(current_user)):
    check_csrf(request, request.state.session, csrf)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.post("/settings")
def settings(request: Request, lang: str = Form("zh"), csrf: str = Form(""), user: User = Depends(current_user)):
    check_csrf(request, request.state.session, csrf)
    authorize(user, "settings")
    accounts.set_lang(request.app.state.pool.get(), user.name, lang)
    return RedirectResponse(request.headers.get("referer") or "/", status_code=303)


@router.get("/")
def queue_page(request: Request, user: User = Depends(current_user)):
    authorize(user, "calls.read")
    store = request.app.state.pool.get()
    f = filters_from(request, user)
    page, per = page_args(request)
    found = W.search_calls(store, f, page, per)
    mine = W.queue(store, user.name) if user.role in ("reviewer", "supervisor", "admin") else []
    appeals = W.list_open_appeals(store, user.agent_id) if user.role == "agent" else []
    overdue = []  # the home page leads with the complaint tickets that missed a clock (投诉闭环)
    if user.role in POLICY["complaint.read"]:
        now = time.time()
        overdue = [{"t": t, "late": "，".join(f"{c}超 {C.fmt_late(sec)}" for c, sec in t.overdue(now))}
                   for t in C.list_tickets(store, now=now, overdue_only=True)]
    args = {k: v for k, v in request.query_params.items() if k != "page" and v}
    pages = {"prev": urlencode({**args, "page": page - 1}) if page > 1 else None,
             "next": urlencode({**args, "page": page + 1}) if page * found["per_page"] < found["total"] else None}
    return render(request, "queue.html.j2", found=found, mine=mine, f=f, pages=pages, appeals=appeals, overdue=overdue,
                  params=request.query_params, titles=found["rule_titles"])


@router.get("/calls/{call_id}")
def call_page(call_id: str, request: Request, user: User = Depends(current_user)):
    store = request.app.state.pool.get()
    authorize(user, "calls.read", owner=W.call_owner(store, call_id))
    view = W.call_view(store, call_id, redact=user.role == "agent")
    if user.role in ("reviewer", "supervisor", "admin"):
        q = [c["call_id"] for c in W.queue(store, user.name) if c["call_id"] != call_id]
        view["next_call"] = q[0] if q else view["next_call"]
    mine = [v for v in view["verdicts"] if v["reviewer"] == user.name]
    t = translator(user.lang)
    titles = {i["rule_id"]: i["title"] for i in view["items"]}
    for h in view["history"]:
        h["before_text"], h["after_text"] = describe(h["before"], t, titles), describe(h["after"], t, titles)
    return render(request, "call.html.j2", v=view, segments=highlight(view), data=page_data(view), titles=titles,
                  my_verdicts={m["rule_id"]: m for m in mine},
                  can_review=user.role in ("reviewer", "supervisor", "admin"),
                  can_appeal=user.role == "agent", appealable=W.appealable,
                  can_decide=user.role in ("supervisor", "admin"))


@router.get("/appeals")
def appeals_page(request: Request, user: User = Depends(current_user)):
    authorize(user, "appeal.decide")
    store = request.app.state.pool.get()
    return render(request, "appeals.html.j2", appeals=W.list_open_appeals(store), titles=W.rule_titles(store))


@router.get("/calibration")
def calibration_page(request: Request, user: User = Depends(current_user)):
    """规则校准: per rule, the machine against the reviewers' verdicts (``workflow.calibration``,
    what `qa-inspect calibrate` prints), rules worth fixing first, and the labels download."""
    from qa_inspect.workflow.calibration import calibrate

    authorize(user, "calibration.read")
    store = request.app.state.pool.get()
    cal = calibrate(store)
    return render(request, "calibration.html.j2", c=cal, titles=W.rule_titles(store),
                  can_export=user.role in POLICY["labels.export"])


@router.get("/calibration/labels.jsonl")
def calibration_labels(request: Request, since: str = "", user: User = Depends(current_user)):
    """The reviewers' verdicts as labels (`qa-inspect review labels`): call ids, true/false per
    rule and evidence turn indexes only, no transcript text."""
    from qa_inspect.workflow.labels import review_labels, since_utc

    authorize(user, "labels.export")
    try:
        at = since_utc(since)
    except InputError as e:
        raise HTTPException(400, str(e)) from None
    lab = review_labels(request.app.state.pool.get(), at)
    return Response(lab.jsonl(), media_type="application/x-ndjson; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="review-labels.jsonl"',
                             "X-Content-Type-Options": "nosniff"})


def highlight(view: dict) -> list[list[tuple[str, str, str]]]:
    """Per turn, its text cut into (text, css class, rule_id) pieces: the evidence of flagged
    items marked ``hit-bad``, of passed items ``hit-ok`` (escaped by the template, never here)."""
    marks: dict[int, list[tuple[str, str, str]]] = {}
    for it in view["items"]:
        for h in it["hits"]:
            if h.get("matched"):
                marks.setdefault(h["turn"], []).append((h["matched"], "hit-bad" if it["hit"] else "hit-ok",
                                                        it["rule_id"]))
    out = []
    for turn in view["turns"]:
        text, spans = turn["text"], []
        for term, cls, rid in marks.get(turn["turn"], ()):
            at = text.find(term)
            if at >= 0 and not any(a < at + len(term) and at < b for a, b, _c, _r in spans):
                spans.append((at, at + len(term), cls, rid))
        pieces, pos = [], 0
        for a, b, cls, rid in sorted(spans):
            pieces += [(text[pos:a], "", "")] if a > pos else []
            pieces.append((text[a:b], cls, rid))
            pos = b
        pieces += [(text[pos:], "", "")] if pos < len(text) else []
        out.append(pieces)
    return out


def page_data(view: dict) -> dict:
    """What static/call.js needs (JSON in a non-executed script tag, escaped by ``tojson``)."""
    return {"call_id": view["call"]["call_id"], "version": view["version"], "next_call": view["next_call"],
            "machine": view["scores"]["machine"], "duration": view["call"]["duration"],
            "items": [{k: i[k] for k in ("rule_id", "points", "possible", "hit", "fatal")} for i in view["items"]],
            "marks": [{"rule_id": i["rule_id"], "start": h["start"], "end": h["end"], "turn": h["turn"],
                       "bad": i["hit"]} for i in view["items"] for h in i["hits"] if h["start"] is not None]}


def describe(change, t, titles: dict | None = None) -> str:
    """One audit side (before or after) in words: 人工评分 63；forbidden_phrase 误报；意见 …"""
    if change is None:
        return "—"
    if not isinstance(change, dict):
        return str(change)
    words = {"confirmed": t("confirm"), "false_positive": t("false_positive"), "missed": t("missed")}
    parts = []
    for k, v in change.items():
        if k == "items" and isinstance(v, dict):
            parts += [f"{(titles or {}).get(rid, rid)} {words.get(x, x)}" for rid, x in v.items()]
        elif k == "items":
            parts.append("、".join((titles or {}).get(str(r), str(r)) for r in v))
        elif k == "level":
            parts.append(t("level", n=v))
        elif v not in (None, ""):
            label = {"manual_score": t("manual"), "comment": t("comment"), "reason": t("appeal_reason"),
                     "score": t("score"), "final": t("final"), "status": ""}.get(k, k)
            val = t("appeal_" + v) if k == "status" else v
            parts.append(f"{label} {val}".strip())
    return "；".join(parts) or "—"
