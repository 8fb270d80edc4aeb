"""The FastAPI application: one store per worker thread, the user of each request, security
headers, and errors turned into a status and one line (JSON for the API, a page otherwise)."""
from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from qa_inspect.web.auth import LoginLimiter, NeedLogin, Sessions
from qa_inspect.web.i18n import translator
from qa_inspect.workflow import workspace
from qa_inspect.workflow.db import WorkflowError

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


class StorePool:
    """A store per thread (SQLite connections belong to the thread that opened them; a psycopg
    connection serves one request at a time)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.local = threading.local()

    def get(self):
        s = getattr(self.local, "store", None)
        if s is None:
            from qa_inspect.store import open_store

            s = self.local.store = open_store(self.url)
        return s


def _indexer(url: str, stop: threading.Event, every: float) -> None:
    """While the server runs: index calls that a batch or re-score wrote meanwhile (the queue
    filters read the index), off the request path. Its own store, its own thread."""
    from qa_inspect.store import open_store

    store = open_store(url)
    try:
        while not stop.wait(every):
            try:
                n = workspace.sync_index(store, full=False)
            except Exception:  # a failed pass (database busy, bad row) must not stop the server
                log.exception("indexing new results failed; retrying in %.0f s", every)
                continue
            if n:
                log.info("indexed %d new or re-scored calls", n)
    finally:
        store.close()


def create_app(db: str, *, secret: str | None = None, audio_root: str | Path = ".",
               appeal_window_days: int = workspace.APPEAL_WINDOW_DAYS,
               appeal_limit: int = workspace.APPEAL_LIMIT, appeal_levels: int = 1,
               index_every_s: float = 10.0) -> FastAPI:
    """The workspace over the results database ``db`` (SQLite path or postgresql:// URL).
    Relative audio paths in the database are read relative to ``audio_root``; calls written
    while it runs reach the queue within ``index_every_s``."""
    pool = StorePool(str(db))
    workspace.sync_index(pool.get(), full=True)  # every ok call in the queue index before the first page

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        stop = threading.Event()
        t = threading.Thread(target=_indexer, args=(str(db), stop, index_every_s), daemon=True, name="qa-index")
        t.start()
        yield
        stop.set()
        t.join(timeout=10)

    app = FastAPI(title="qa-inspect review workspace", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.pool = pool
    app.state.sessions = Sessions(secret)
    app.state.limiter = LoginLimiter()
    app.state.audio_root = Path(audio_root).resolve()
    app.state.appeal = {"window_days": appeal_window_days, "limit": appeal_limit, "levels": appeal_levels}
    templates = Jinja2Templates(directory=str(HERE / "templates"))  # autoescape on for .html
    templates.env.autoescape = True
    app.state.templates = templates

    @app.middleware("http")
    async def headers(request: Request, call_next):
        resp = await call_next(request)
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        if not request.url.path.startswith("/static/"):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    @app.exception_handler(NeedLogin)
    async def need_login(request: Request, exc: NeedLogin):
        if is_api(request):
            return JSONResponse({"error": "需要登录 (authentication required)"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        return RedirectResponse("/login", status_code=303)

    def page_or_json(request: Request, status: int, msg: str):
        if is_api(request):
            return JSONResponse({"error": msg}, status_code=status)
        t = translator(getattr(request.state, "lang", "zh"))
        return templates.TemplateResponse(request, "error.html.j2", {"t": t, "code": status, "message": msg,
                                                                     "user": None}, status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return page_or_json(request, exc.status_code, str(exc.detail))

    @app.exception_handler(WorkflowError)
    async def workflow_error(request: Request, exc: WorkflowError):
        status = 404 if isinstance(exc, workspace.NotFound) else 409 if isinstance(exc, workspace.Conflict) else 400
        return page_or_json(request, status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return page_or_json(request, 422, f"请求格式错误 / invalid request: {where}: {first.get('msg', '')}")

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    from qa_inspect.web import api, pages, service

    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(service.router)
    return app
