"""The store's one error (``StoreError``) and the helpers that make driver errors into it.

Every public method of a store class runs inside ``wrap_driver_errors``: a ``sqlite3`` or
``psycopg`` error never leaves the store folder; it becomes a ``StoreError`` whose message
names the database (a PostgreSQL URL with its password masked) and says what to do.
"""
from __future__ import annotations

import functools
import inspect
import re
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from qa_inspect.errors import QAError

MASK = "***"


class StoreError(QAError):
    """The results database cannot be opened, read or written (damaged file, full disk,
    read-only file, server down …). ``source`` names the database, never with a password.
    The message is always one line (drivers' messages can span several)."""

    def __init__(self, message: str, source: str = "") -> None:
        super().__init__(" ".join(str(message).split()), source)

    def __reduce__(self):  # a re-score worker's error reaches the driver with its database named
        return (type(self), (self.message, self.source))


def url_password(url: str) -> str | None:
    """The password in a ``postgresql://user:password@host/db`` URL (or ``?password=``)."""
    try:
        parts = urlsplit(url)
        pw = parts.password
    except ValueError:  # a port that is not a number, a broken IPv6 host …
        m = re.match(r"^[a-z0-9+.-]+://[^:/@]*:([^@]*)@", url, re.I)
        pw = m.group(1) if m else None
    if pw:
        return pw
    m = re.search(r"[?&]password=([^&]*)", url)
    return m.group(1) if m else None


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for every message that shows a URL)."""
    s = str(url)
    if "://" not in s:
        return s
    s = re.sub(r"([?&]password=)[^&]*", r"\1" + MASK, s)
    return re.sub(r"^([a-z0-9+.-]+://[^:/@?]*):[^@/?]*@", r"\1:" + MASK + "@", s, flags=re.I)


def mask_secret(text: str, url: str) -> str:
    """``text`` with every copy of the URL's password (as written and URL-decoded) masked."""
    pw = url_password(str(url))
    if not pw:
        return text
    for secret in {pw, unquote(pw)}:
        if secret:
            text = text.replace(secret, MASK)
    return text


def wrap_driver_errors(driver_errors: tuple[type[BaseException], ...],
                       translate: Callable[[Any, BaseException], StoreError]) -> Callable[[type], type]:
    """Class decorator: every public method (inherited ones included; generators too) turns
    ``driver_errors`` (and ``OSError``) into ``translate(store, error)``; ``__init__`` too."""
    catch = (*driver_errors, OSError)

    def wrap(fn: Callable) -> Callable:
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen(self, *a, **kw):
                try:
                    yield from fn(self, *a, **kw)
                except catch as e:
                    raise translate(self, e) from e
            return gen

        @functools.wraps(fn)
        def call(self, *a, **kw):
            try:
                return fn(self, *a, **kw)
            except catch as e:
                raise translate(self, e) from e
        return call

    def deco(cls: type) -> type:
        for name in dir(cls):
            if name.startswith("_") and name != "__init__":
                continue
            attr = inspect.getattr_static(cls, name)
            if inspect.isfunction(attr) and not getattr(attr, "_store_wrapped", False):
                w = wrap(attr)
                w._store_wrapped = True  # type: ignore[attr-defined]
                setattr(cls, name, w)
        return cls

    return deco
