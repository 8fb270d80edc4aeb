"""The JSON API (bearer token or session; session writes also need the X-CSRF-Token header).
Thin: parse, ``authorize``, call the workflow, return its dict."""
from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from qa_inspect.web.auth import authorize, check_csrf, current_user
from qa_inspect.workflow import workspace as W
from qa_inspect.workflow.accounts import User

router = APIRouter(prefix="/api")


def writer(request: Request, user: User = Depends(current_user)) -> User:
    """The user of a write: a session-cookie write must carry the session's CSRF token."""
    if request.state.session is not None:
        check_csrf(request, request.state.session, request.headers.get("x-csrf-token"))
    return user


class ReviewIn(BaseModel):
    items: dict[str, Literal["confirmed", "false_positive", "missed"]] = Field(default_factory=dict)
    manual_score: float | None = None
    comment: str = Field("", max_length=2000)
    notes: dict[str, str] = Field(default_factory=dict)
    version: int


class AppealIn(BaseModel):
    items: list[str] = Field(min_length=1, max_length=50)
    reason: str = Field(min_length=1, max_length=2000)


class DecisionIn(BaseModel):
    upheld: bool
    score: float | None = None
    comment: str = Field(min_length=1, max_length=2000)


def filters_from(request: Request, user: User) -> W.Filters:
    """The queue filters of a query string (shared by the API and the queue page)."""
    q = request.query_params

    def num(k):
        v = q.get(k, "").strip()
        if not v:
            return None
        try:
            return float(v)
        except ValueError:
            raise HTTPException(422, f"{k} 不是数字 / not a number ({v[:20]!r})") from None

    def flag(k):
        v = q.get(k, "").strip().lower()
        return {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}.get(v)

    text = q.get("q", "").strip()
    if text:
        authorize(user, "calls.search_text")  # text search would reveal what redaction hides
    return W.Filters(date_from=q.get("date_from", "").strip()[:10], date_to=q.get("date_to", "").strip()[:10],
                     team=q.get("team", "").strip(), grade=q.get("grade", "").strip(),
                     agent=user.agent_id if user.role == "agent" else q.get("agent", "").strip(),
                     score_min=num("score_min"), score_max=num("score_max"), fatal=flag("fatal"),
                     rule=q.get("rule", "").strip(), reviewed=flag("reviewed"), q=text)


def page_args(request: Request) -> tuple[int, int]:
    try:
        return int(request.query_params.get("page", 1)), int(request.query_params.get("per_page", 50))
    except ValueError:
        raise HTTPException(422, "page / per_page 不是数字 / not a number") from None


@router.get("/me")
def me(user: User = Depends(current_user)):
    return user.to_dict()


@router.get("/calls")
def calls(request: Request, user: User = Depends(current_user)):
    authorize(user, "calls.read")
    page, per = page_args(request)
    return W.search_calls(request.app.state.pool.get(), filters_from(request, user), page, per)


@router.get("/queue")
def my_queue(request: Request, user: User = Depends(current_user)):
    authorize(user, "review.save")
    return {"calls": W.queue(request.app.state.pool.get(), user.name)}


@router.get("/calls/{call_id}")
def call(call_id: str, request: Request, user: User = Depends(current_user)):
    store = request.app.state.pool.get()
    authorize(user, "calls.read", owner=W.call_owner(store, call_id))
    return W.call_view(store, call_id, redact=user.role == "agent")


@router.post("/calls/{call_id}/review")
def review(call_id: str, body: ReviewIn, request: Request, user: User = Depends(writer)):
    authorize(user, "review.save")
    store = request.app.state.pool.get()
    view = W.save_review(store, call_id, user.name, body.items, version=body.version,
                         manual_score=body.manual_score, comment=body.comment, notes=body.notes)
    q = [c["call_id"] for c in W.queue(store, user.name) if c["call_id"] != call_id]
    view["next_call"] = q[0] if q else view["next_call"]
    return view


@router.post("/calls/{call_id}/appeals")
def appeal(call_id: str, body: AppealIn, request: Request, user: User = Depends(writer)):
    store = request.app.state.pool.get()
    authorize(user, "appeal.open", owner=W.call_owner(store, call_id))
    cfg = request.app.state.appeal
    return W.open_appeal(store, call_id, user.name, body.items, body.reason,
                         window_days=cfg["window_days"], limit=cfg["limit"])


@router.get("/calibration")
def api_calibration(request: Request, user: User = Depends(current_user)):
    """The machine against the reviewers, per rule (what `qa-inspect calibrate --json` prints)."""
    from qa_inspect.workflow.calibration import calibrate

    authorize(user, "calibration.read")
    return calibrate(request.app.state.pool.get()).to_dict()


@router.get("/appeals")
def appeals(request: Request, user: User = Depends(current_user)):
    authorize(user, "appeal.read")
    return {"appeals": W.list_open_appeals(request.app.state.pool.get(), user.agent_id if user.role == "agent" else None)}


@router.get("/appeals/{appeal_id}")
def get_appeal(appeal_id: int, request: Request, user: User = Depends(current_user)):
    store = request.app.state.pool.get()
    a = W.get_appeal(store, appeal_id)
    authorize(user, "appeal.read", owner=W.call_owner(store, a["call_id"]))
    return a


@router.post("/appeals/{appeal_id}/decision")
def decision(appeal_id: int, body: DecisionIn, request: Request, user: User = Depends(writer)):
    authorize(user, "appeal.decide")
    return W.decide(request.app.state.pool.get(), appeal_id, user.name, body.upheld, score=body.score,
                    comment=body.comment, levels=request.app.state.appeal["levels"])


@router.get("/audio/{call_id}")
def audio(call_id: str, request: Request, user: User = Depends(current_user)):
    """The call's recording, with HTTP Range (seeking). Only the path the database registers
    for the call is ever opened; the request names a call, never a file."""
    store = request.app.state.pool.get()
    authorize(user, "audio", owner=W.call_owner(store, call_id))
    p = Path(W.audio_path(store, call_id))
    if not p.is_absolute():
        p = request.app.state.audio_root / p
    if not p.is_file():
        raise HTTPException(404, "录音文件不存在 (audio file missing on the server)")
    media = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
    if p.suffix.lower() == ".flac":
        media = "audio/flac"
    return FileResponse(p, media_type=media, headers={"Cache-Control": "private, max-age=3600"})
