"""Users of the review workspace: roles, argon2 password hashes, API tokens.

Roles: ``reviewer`` (质检员: reviews calls), ``supervisor`` (班组长: decides appeals, reviews),
``agent`` (坐席: sees only their own calls, appeals), ``admin`` (everything).
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from qa_inspect.store import workspace as ws
from qa_inspect.workflow.db import WorkflowError, now_iso

ROLES = ("reviewer", "supervisor", "agent", "admin")
LANGS = ("zh", "en")


@dataclass(frozen=True)
class User:
    name: str
    role: str
    agent_id: str = ""
    disabled: bool = False
    lang: str = "zh"
    created_at: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "role": self.role, "agent_id": self.agent_id, "disabled": self.disabled,
                "lang": self.lang, "created_at": self.created_at}


def _user(row: tuple) -> User:
    name, role, agent_id, _h, disabled, lang, created = row
    return User(name, role, agent_id or "", bool(disabled), lang or "zh", created)


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


def add_user(store, name: str, role: str, password: str, agent_id: str = "") -> tuple[User, bool]:
    """Create (or reset the role/password of) a user; (user, created)."""
    name = name.strip()
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise WorkflowError(f"用户名 {name!r} 须为 1–64 个字符且不含空格 / user name {name!r} must be 1–64 characters without spaces")
    if role not in ROLES:
        raise WorkflowError(f"角色 {role!r} 无效 / role {role!r} is not one of {', '.join(ROLES)}")
    if role == "agent" and not agent_id.strip():
        raise WorkflowError("坐席账号须指定 --agent-id（清单中的坐席工号，如 A001）/ an agent account needs --agent-id")
    if len(password) < 8:
        raise WorkflowError("密码至少 8 个字符 / the password needs at least 8 characters")
    old = ws.user_get(store, name)
    new = ws.user_put(store, name, role, agent_id.strip(), _hasher().hash(password), now_iso())
    _audit(store, "user_add" if new else "user_update", name,
           {"role": old[1], "agent_id": old[2], "disabled": bool(old[4])} if old else None,
           {"role": role, "agent_id": agent_id.strip(), "disabled": False})
    return get_user(store, name), new


def _audit(store, action: str, name: str, before, after, by: str = "cli") -> None:
    """Account changes go to the same audit table as reviews (the password never does)."""
    import json

    with ws.tx(store):
        ws.audit(store, now_iso(), by, action, "", name, json.dumps(before, ensure_ascii=False) if before else None,
                 json.dumps(after, ensure_ascii=False))


def get_user(store, name: str) -> User:
    row = ws.user_get(store, name)
    if row is None:
        raise WorkflowError(f"没有用户 {name!r} / no user {name!r}")
    return _user(row)


def list_users(store) -> list[User]:
    return [_user(r) for r in ws.users(store)]


def set_disabled(store, name: str, disabled: bool = True) -> User:
    before = get_user(store, name).disabled
    ws.user_set(store, name, disabled=int(disabled))
    _audit(store, "user_disable" if disabled else "user_enable", name, {"disabled": before}, {"disabled": disabled})
    return get_user(store, name)


def set_lang(store, name: str, lang: str) -> User:
    if lang not in LANGS:
        raise WorkflowError(f"界面语言 {lang!r} 无效 / language {lang!r} is not one of {', '.join(LANGS)}")
    before = get_user(store, name).lang
    ws.user_set(store, name, lang=lang)
    _audit(store, "user_lang", name, {"lang": before}, {"lang": lang}, by=name)
    return get_user(store, name)


def check_password(store, name: str, password: str) -> User | None:
    """The user if the name and password match an enabled account, else None (same cost either way)."""
    from argon2.exceptions import VerificationError, InvalidHashError

    row = ws.user_get(store, name)
    h = _hasher()
    if row is None:
        # spend the same time as a real check, so a wrong name and a wrong password look alike
        try:
            h.verify(_DUMMY[0] or _dummy(), password)
        except (VerificationError, InvalidHashError):
            pass
        return None
    try:
        h.verify(row[3], password)
    except (VerificationError, InvalidHashError):
        return None
    u = _user(row)
    return None if u.disabled else u


_DUMMY: list[str] = [""]


def _dummy() -> str:
    _DUMMY[0] = _hasher().hash(secrets.token_hex(8))
    return _DUMMY[0]


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def make_token(store, name: str) -> str:
    """A new API token for ``name`` (shown once; only its hash is stored)."""
    get_user(store, name)
    token = "qai_" + secrets.token_urlsafe(32)
    ws.token_put(store, _token_hash(token), name, now_iso())
    _audit(store, "token_add", name, None, {"token_sha256": _token_hash(token)[:12]})
    return token


def user_by_token(store, token: str) -> User | None:
    name = ws.token_user(store, _token_hash(token))
    if name is None:
        return None
    row = ws.user_get(store, name)
    if row is None:
        return None
    u = _user(row)
    return None if u.disabled else u
