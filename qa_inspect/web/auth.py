"""Who is asking and what they may do: sessions, tokens, CSRF, login rate limit, and the one
role policy every route checks (``authorize``)."""
from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import defaultdict, deque

from fastapi import HTTPException, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from qa_inspect.workflow import accounts
from qa_inspect.workflow.accounts import User
from qa_inspect.workflow.db import WorkflowError

SESSION_COOKIE = "qa_session"
LOGIN_CSRF_COOKIE = "qa_login_csrf"
SESSION_MAX_AGE = 12 * 3600

# the whole access policy: action → roles allowed. Agents additionally only touch their own
# calls (``owner``); nothing else decides who may do what.
POLICY: dict[str, frozenset[str]] = {
    "calls.read": frozenset({"reviewer", "supervisor", "admin", "agent"}),
    "calls.search_text": frozenset({"reviewer", "supervisor", "admin"}),
    "review.save": frozenset({"reviewer", "supervisor", "admin"}),
    "appeal.open": frozenset({"agent"}),
    "appeal.read": frozenset({"reviewer", "supervisor", "admin", "agent"}),
    "appeal.decide": frozenset({"supervisor", "admin"}),
    "audio": frozenset({"reviewer", "supervisor", "admin", "agent"}),
    "settings": frozenset({"reviewer", "supervisor", "admin", "agent"}),
    "kpi.read": frozenset({"reviewer", "supervisor", "admin"}),
    "complaint.read": frozenset({"reviewer", "supervisor", "admin"}),
    "complaint.assign": frozenset({"supervisor", "admin"}),  # 派单
    "complaint.step": frozenset({"reviewer", "supervisor", "admin"}),  # the owner's steps
    "calibration.read": frozenset({"reviewer", "supervisor", "admin"}),  # 规则校准: machine vs reviewers
    "labels.export": frozenset({"supervisor", "admin"}),  # the verdicts as labels, for rule authors
}


class NeedLogin(Exception):
    """No valid session or token: API → 401, pages → redirect to the login page."""


def authorize(user: User, action: str, owner: str | None = None) -> None:
    """403 unless ``user``'s role may do ``action``; an agent only on calls whose agent id is theirs."""
    if user.role not in POLICY[action]:
        raise HTTPException(403, "没有权限 (forbidden)")
    if user.role == "agent" and owner is not None and owner != user.agent_id:
        raise HTTPException(403, "没有权限 (not your call)")


class Sessions:
    """Signed session cookies ({user, csrf token}); the secret lives in the process (or
    ``QA_INSPECT_SECRET``), so a restart without it logs everyone out."""

    def __init__(self, secret: str | None = None) -> None:
        self.signer = URLSafeTimedSerializer(secret or secrets.token_hex(32), salt="qa-session")

    def make(self, name: str) -> tuple[str, str]:
        csrf = secrets.token_urlsafe(24)
        return self.signer.dumps({"u": name, "c": csrf}), csrf

    def read(self, cookie: str | None) -> dict | None:
        if not cookie:
            return None
        try:
            return self.signer.loads(cookie, max_age=SESSION_MAX_AGE)
        except BadSignature:
            return None


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "?"


class LoginLimiter:
    """At most ``attempts`` failed logins per user name and per client address in ``window`` s."""

    def __init__(self, attempts: int = 5, window: float = 300.0) -> None:
        self.attempts, self.window = attempts, window
        self.fails: dict[str, deque] = defaultdict(deque)
        self.lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque:
        q = self.fails[key]
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def blocked(self, *keys: str) -> bool:
        now = time.monotonic()
        with self.lock:
            return any(len(self._recent(k, now)) >= self.attempts for k in keys)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self.lock:
            for k in keys:
                self._recent(k, now).append(now)

    def succeeded(self, name_key: str) -> None:
        with self.lock:
            self.fails.pop(name_key, None)


def check_csrf(request: Request, session: dict | None, sent: str | None) -> None:
    """403 unless ``sent`` (form field or X-CSRF-Token header) matches the session's token."""
    if session is None or not same(session.get("c"), sent):
        raise HTTPException(403, "CSRF 令牌无效，请刷新页面后重试 (invalid CSRF token)")


def current_user(request: Request) -> User:
    """The user behind the request: a bearer token, else the session cookie; ``NeedLogin``
    otherwise. Sets ``request.state`` (user, session, lang). Routes take their store from
    ``request.app.state.pool.get()`` in their own thread (a dependency may run in another)."""
    store = request.app.state.pool.get()
    auth = request.headers.get("authorization", "")
    user, session = None, None
    if auth.lower().startswith("bearer "):
        user = accounts.user_by_token(store, auth[7:].strip())
    else:
        session = request.app.state.sessions.read(request.cookies.get(SESSION_COOKIE))
        if session:
            try:
                user = accounts.get_user(store, session["u"])
            except WorkflowError:
                user = None
            if user is not None and user.disabled:
                user = None
    if user is None:
        raise NeedLogin()
    request.state.user, request.state.session, request.state.lang = user, session, user.lang
    return user
