"""The review workspace's tables (``qa-inspect serve``), on SQLite and PostgreSQL alike.

- ``web_users`` / ``web_tokens``: accounts (argon2 hashes made by the caller) and API tokens
  (only their SHA-256 is kept).
- ``web_audit``: every write (who, when, what, before → after), the call page's review history.
- ``web_versions``: one counter per call, bumped by every review save (compare-and-swap), so two
  reviewers saving the same call cannot overwrite each other (the second gets a conflict).
- ``web_assignments``: which reviewer reviews which call of a sample.
- ``web_appeal_items``: the items an appeal (``qc_appeals``) is about.
- ``web_calls``: a narrow index of the results (day, team, agent, score, grade, fatal, rule hits,
  transcript text) so the queue filters 100,000 calls without parsing their JSON records.

A browser review writes the QC workflow tables (``qc_reviews``, ``qc_review_items``,
``qc_appeals``; see ``workflow_sql``): the same rows a worksheet import writes. Every function
takes a store (``SQLStoreBase``).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from qa_inspect.store.base import SQLStoreBase
from qa_inspect.store.workflow_sql import APPEAL_COLS as _APPEAL_COLS
from qa_inspect.store.workflow_sql import REVIEW_COLS, REVIEW_ITEM_COLS

_TABLES = """
CREATE TABLE IF NOT EXISTS web_users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, agent_id TEXT NOT NULL DEFAULT '',
    pw_hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, lang TEXT NOT NULL DEFAULT 'zh',
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS web_tokens (
    token_hash TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS web_audit (
    audit_id {serial}, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    call_id TEXT NOT NULL DEFAULT '', target TEXT NOT NULL DEFAULT '', before_v TEXT, after_v TEXT);
CREATE INDEX IF NOT EXISTS web_audit_call ON web_audit(call_id, audit_id);
CREATE TABLE IF NOT EXISTS web_versions (call_id TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS web_assignments (
    sample_id TEXT NOT NULL, call_id TEXT NOT NULL, reviewer TEXT NOT NULL, assigned_at TEXT NOT NULL,
    PRIMARY KEY (sample_id, call_id));
CREATE INDEX IF NOT EXISTS web_assignments_reviewer ON web_assignments(reviewer);
CREATE TABLE IF NOT EXISTS web_appeal_steps (
    appeal_id INTEGER NOT NULL, level INTEGER NOT NULL, upheld INTEGER NOT NULL, score {real},
    comment TEXT NOT NULL, by_user TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (appeal_id, level));
CREATE TABLE IF NOT EXISTS web_appeal_items (
    appeal_id INTEGER NOT NULL, rule_id TEXT NOT NULL, PRIMARY KEY (appeal_id, rule_id));
CREATE TABLE IF NOT EXISTS web_calls (
    call_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, day TEXT NOT NULL, agent_id TEXT NOT NULL,
    agent_name TEXT NOT NULL, team TEXT NOT NULL, score {real}, grade TEXT NOT NULL,
    fatal INTEGER NOT NULL, hits TEXT NOT NULL, updated_at {real} NOT NULL);
CREATE TABLE IF NOT EXISTS web_call_text (call_id TEXT PRIMARY KEY, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS web_rule_titles (rule_id TEXT PRIMARY KEY, title TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS web_calls_order ON web_calls(started_at, call_id);
CREATE INDEX IF NOT EXISTS web_calls_agent ON web_calls(agent_id, started_at);
CREATE INDEX IF NOT EXISTS web_calls_day ON web_calls(day, started_at);
CREATE INDEX IF NOT EXISTS web_results_updated ON results(updated_at);
CREATE INDEX IF NOT EXISTS web_calls_updated ON web_calls(updated_at);
"""

USER_COLS = "name, role, agent_id, pw_hash, disabled, lang, created_at"
APPEAL_COLS = ", ".join(_APPEAL_COLS)  # the store's own list (workflow_sql)


def _pg(store: SQLStoreBase) -> bool:
    return store.P != "?"


def ensure(store: SQLStoreBase) -> None:
    """Create the workspace tables if missing (the workflow tables come with the store)."""
    if getattr(store, "_workspace_ready", False):
        return
    if _pg(store):
        with store.db.transaction():
            store.db.execute("SELECT pg_advisory_xact_lock(%s)", (0x7161_5F77,))
            for stmt in filter(str.strip, _TABLES.format(serial="BIGSERIAL PRIMARY KEY",
                                                         real="DOUBLE PRECISION").split(";")):
                store.db.execute(stmt)
    else:
        store.db.executescript(_TABLES.format(serial="INTEGER PRIMARY KEY AUTOINCREMENT", real="REAL"))
    store._workspace_ready = True  # type: ignore[attr-defined]


def ensure_review_indexes(store: SQLStoreBase) -> None:
    """Indexes the call page needs on the workflow tables (they are keyed by sample first)."""
    for stmt in ("CREATE INDEX IF NOT EXISTS web_qc_reviews_call ON qc_reviews(call_id)",
                 "CREATE INDEX IF NOT EXISTS web_qc_review_items_call ON qc_review_items(call_id)",
                 "CREATE INDEX IF NOT EXISTS web_qc_sample_calls_call ON qc_sample_calls(call_id)"):
        with tx(store):
            store.db.execute(stmt)


@contextmanager
def tx(store: SQLStoreBase) -> Iterator[Any]:
    """One transaction on either driver (all or nothing)."""
    if _pg(store):
        with store.db.transaction():
            yield store.db
    else:
        with store.db:
            yield store.db


def _x(store: SQLStoreBase, sql: str, args: Sequence = ()) -> Any:
    return store.db.execute(store._q(sql), tuple(args))


def all_rows(store: SQLStoreBase, sql: str, args: Sequence = ()) -> list[tuple]:
    return [tuple(r) for r in _x(store, sql, args).fetchall()]


def one_row(store: SQLStoreBase, sql: str, args: Sequence = ()) -> tuple | None:
    r = _x(store, sql, args).fetchone()
    return tuple(r) if r is not None else None


# --- users and tokens --------------------------------------------------------------------

def user_get(store: SQLStoreBase, name: str) -> tuple | None:
    ensure(store)
    return one_row(store, f"SELECT {USER_COLS} FROM web_users WHERE name=?", (name,))


def user_put(store: SQLStoreBase, name: str, role: str, agent_id: str, pw_hash: str, now: str) -> bool:
    """Create or replace (keeping ``created_at``) a user; True when new."""
    ensure(store)
    with tx(store):
        old = one_row(store, "SELECT created_at FROM web_users WHERE name=?", (name,))
        if old:
            _x(store, "UPDATE web_users SET role=?, agent_id=?, pw_hash=?, disabled=0 WHERE name=?",
               (role, agent_id, pw_hash, name))
        else:
            _x(store, f"INSERT INTO web_users ({USER_COLS}) VALUES (?,?,?,?,0,'zh',?)",
               (name, role, agent_id, pw_hash, now))
    return old is None


def user_set(store: SQLStoreBase, name: str, **cols: Any) -> bool:
    """Update some columns of a user (``disabled``, ``lang``, ``pw_hash``); False if unknown."""
    ensure(store)
    allowed = {"disabled", "lang", "pw_hash"}
    assert set(cols) <= allowed, cols
    sets = ", ".join(f"{k}=?" for k in cols)
    with tx(store):
        cur = _x(store, f"UPDATE web_users SET {sets} WHERE name=?", (*cols.values(), name))
    return cur.rowcount > 0


def users(store: SQLStoreBase) -> list[tuple]:
    ensure(store)
    return all_rows(store, f"SELECT {USER_COLS} FROM web_users ORDER BY name")


def token_put(store: SQLStoreBase, token_hash: str, name: str, now: str) -> None:
    ensure(store)
    with tx(store):
        _x(store, "INSERT INTO web_tokens VALUES (?,?,?)", (token_hash, name, now))


def token_user(store: SQLStoreBase, token_hash: str) -> str | None:
    ensure(store)
    r = one_row(store, "SELECT name FROM web_tokens WHERE token_hash=?", (token_hash,))
    return r[0] if r else None


# --- audit -------------------------------------------------------------------------------

def audit(store: SQLStoreBase, at: str, actor: str, action: str, call_id: str, target: str,
          before: str | None, after: str | None) -> None:
    """Append one audit row; call inside the write's own transaction (``tx``)."""
    _x(store, "INSERT INTO web_audit (at, actor, action, call_id, target, before_v, after_v) VALUES (?,?,?,?,?,?,?)",
       (at, actor, action, call_id, target, before, after))


def audit_rows(store: SQLStoreBase, call_id: str | None = None, limit: int = 200) -> list[tuple]:
    """(audit_id, at, actor, action, call_id, target, before, after), oldest first."""
    ensure(store)
    if call_id is None:
        return all_rows(store, "SELECT audit_id, at, actor, action, call_id, target, before_v, after_v FROM web_audit "
                               "ORDER BY audit_id DESC LIMIT ?", (limit,))[::-1]
    return all_rows(store, "SELECT audit_id, at, actor, action, call_id, target, before_v, after_v FROM web_audit "
                           "WHERE call_id=? ORDER BY audit_id", (call_id,))


# --- versions (optimistic concurrency) ------------------------------------------------------

def version_of(store: SQLStoreBase, call_id: str) -> int:
    ensure(store)
    r = one_row(store, "SELECT version FROM web_versions WHERE call_id=?", (call_id,))
    return int(r[0]) if r else 0


def version_bump(store: SQLStoreBase, call_id: str, expected: int) -> bool:
    """Inside a transaction: move the call's version from ``expected`` to ``expected + 1``;
    False (nothing changed) if someone else moved it first."""
    _x(store, "INSERT INTO web_versions VALUES (?, 0) ON CONFLICT (call_id) DO NOTHING", (call_id,))
    cur = _x(store, "UPDATE web_versions SET version=version+1 WHERE call_id=? AND version=?", (call_id, expected))
    return cur.rowcount == 1


# --- reviews (the same tables a worksheet import writes) ----------------------------------

def review_put(store: SQLStoreBase, sample_id: str, call_id: str, reviewer: str, manual_score: float | None,
               note: str, source: str, stamp: str, items: Sequence[tuple[str, str, str, str]]) -> None:
    """Inside a transaction: the reviewer's manual score and item verdicts
    (rule_id, machine_outcome, verdict, note) for the call, replacing their earlier ones."""
    _x(store, "DELETE FROM qc_review_items WHERE sample_id=? AND call_id=? AND reviewer=?",
       (sample_id, call_id, reviewer))
    _x(store, "DELETE FROM qc_reviews WHERE sample_id=? AND call_id=? AND reviewer=?", (sample_id, call_id, reviewer))
    for rid, outcome, verdict, inote in items:
        _x(store, f"INSERT INTO qc_review_items ({', '.join(REVIEW_ITEM_COLS)}) VALUES (?,?,?,?,?,?,?,?,?)",
           (sample_id, call_id, reviewer, rid, outcome, verdict, inote, source, stamp))
    _x(store, f"INSERT INTO qc_reviews ({', '.join(REVIEW_COLS)}) VALUES (?,?,?,?,?,?,?)",
       (sample_id, call_id, reviewer, manual_score, note, source, stamp))


def reviews_of(store: SQLStoreBase, call_id: str) -> list[tuple]:
    """(sample_id, reviewer, manual_score, note, source, imported_at), oldest first."""
    ensure(store)
    return all_rows(store, "SELECT sample_id, reviewer, manual_score, note, source, imported_at FROM qc_reviews "
                           f"WHERE call_id=? ORDER BY imported_at, {store._SEQ}", (call_id,))


def review_items_of(store: SQLStoreBase, call_id: str) -> list[tuple]:
    """(reviewer, rule_id, machine_outcome, verdict, note, imported_at), oldest first."""
    ensure(store)
    return all_rows(store, "SELECT reviewer, rule_id, machine_outcome, verdict, note, imported_at "
                           "FROM qc_review_items WHERE call_id=? ORDER BY imported_at, reviewer, rule_id", (call_id,))


def samples_of(store: SQLStoreBase, call_id: str) -> list[str]:
    """The samples a call was drawn into, newest first."""
    ensure(store)
    return [r[0] for r in all_rows(store, "SELECT c.sample_id FROM qc_sample_calls c JOIN qc_samples s "
                                          "ON s.sample_id = c.sample_id WHERE c.call_id=? "
                                          "ORDER BY s.created_at DESC", (call_id,))]


def sample_calls(store: SQLStoreBase, sample_id: str) -> list[str]:
    ensure(store)
    return [r[0] for r in all_rows(store, "SELECT call_id FROM qc_sample_calls WHERE sample_id=? "
                                          "ORDER BY started_at, call_id", (sample_id,))]


def assign(store: SQLStoreBase, sample_id: str, pairs: Sequence[tuple[str, str]], now: str) -> None:
    """Inside a transaction: (call_id, reviewer) assignments of a sample, replacing earlier ones."""
    for cid, who in pairs:
        _x(store, "DELETE FROM web_assignments WHERE sample_id=? AND call_id=?", (sample_id, cid))
        _x(store, "INSERT INTO web_assignments VALUES (?,?,?,?)", (sample_id, cid, who, now))


def assigned_open(store: SQLStoreBase, reviewer: str, limit: int = 200) -> list[tuple]:
    """(sample_id, call_id) assigned to ``reviewer`` that they have not reviewed yet."""
    ensure(store)
    return all_rows(store, "SELECT a.sample_id, a.call_id FROM web_assignments a JOIN web_calls c "
                           "ON c.call_id = a.call_id WHERE a.reviewer=? AND NOT EXISTS (SELECT 1 FROM qc_reviews r "
                           "WHERE r.call_id = a.call_id AND r.reviewer = a.reviewer) "
                           "ORDER BY c.started_at, a.call_id LIMIT ?", (reviewer, limit))


# --- appeals -----------------------------------------------------------------------------

def appeal_insert(store: SQLStoreBase, call_id: str, reason: str, by: str, now: str, items: Sequence[str]) -> int:
    """Inside a transaction: a new open appeal and its items; its id."""
    if _pg(store):
        aid = _x(store, "INSERT INTO qc_appeals (call_id, reason, opened_by, opened_at, status) "
                        "VALUES (?,?,?,?,'open') RETURNING appeal_id", (call_id, reason, by, now)).fetchone()[0]
    else:
        aid = _x(store, "INSERT INTO qc_appeals (call_id, reason, opened_by, opened_at, status) "
                        "VALUES (?,?,?,?,'open')", (call_id, reason, by, now)).lastrowid
    for rid in items:
        _x(store, "INSERT INTO web_appeal_items VALUES (?,?)", (aid, rid))
    return int(aid)


def appeal_items(store: SQLStoreBase, appeal_id: int) -> list[str]:
    ensure(store)
    return [r[0] for r in all_rows(store, "SELECT rule_id FROM web_appeal_items WHERE appeal_id=? ORDER BY rule_id",
                                   (appeal_id,))]


def appeal_step_put(store: SQLStoreBase, appeal_id: int, level: int, upheld: bool, score: float | None,
                    comment: str, by: str, at: str) -> bool:
    """Inside a transaction: one level's decision of an appeal; False if that level was decided."""
    cur = _x(store, "INSERT INTO web_appeal_steps VALUES (?,?,?,?,?,?,?) ON CONFLICT (appeal_id, level) DO NOTHING",
             (appeal_id, level, int(upheld), score, comment, by, at))
    return cur.rowcount == 1


def appeal_steps(store: SQLStoreBase, appeal_id: int) -> list[tuple]:
    """(level, upheld, score, comment, by, at) of an appeal's decisions, level order."""
    ensure(store)
    return all_rows(store, "SELECT level, upheld, score, comment, by_user, at FROM web_appeal_steps "
                           "WHERE appeal_id=? ORDER BY level", (appeal_id,))


def appeal_decide(store: SQLStoreBase, appeal_id: int, status: str, by: str, now: str, score: float | None,
                  note: str) -> bool:
    """Inside a transaction: decide an open appeal; False if it was no longer open."""
    cur = _x(store, "UPDATE qc_appeals SET status=?, decided_by=?, decided_at=?, decided_score=?, decision_note=? "
                    "WHERE appeal_id=? AND status='open'", (status, by, now, score, note or None, appeal_id))
    return cur.rowcount == 1


def final_parts(store: SQLStoreBase, call_id: str) -> tuple[tuple | None, tuple | None]:
    """The latest manual review (score, reviewer) and latest upheld appeal (score, id) of a call —
    the same precedence as ``workflow.final_scores``."""
    ensure(store)
    m = one_row(store, "SELECT manual_score, reviewer FROM qc_reviews WHERE call_id=? AND manual_score IS NOT NULL "
                       f"ORDER BY imported_at DESC, {store._SEQ} DESC LIMIT 1", (call_id,))
    a = one_row(store, "SELECT decided_score, appeal_id FROM qc_appeals WHERE call_id=? AND status='upheld' "
                       "ORDER BY decided_at DESC, appeal_id DESC LIMIT 1", (call_id,))
    return m, a


# --- the call index (queue filters) --------------------------------------------------------

INDEX_COLS = "call_id, started_at, day, agent_id, agent_name, team, score, grade, fatal, hits, updated_at"
COUNT_CAP = 2000  # a filtered count stops here ("2000+"): counting 100,000 rows on every page costs more than it tells


def index_stale(store: SQLStoreBase, limit: int = 2000, since: float | None = None) -> list[tuple[str, str, float]]:
    """(call_id, record JSON, updated_at) of ok results the index lacks or holds an older version
    of; only those written after ``since`` (an index range on ``results.updated_at``), or all."""
    ensure(store)
    # ordered by the column the range is on, so the planner walks that index (not every row)
    recent, args, order = (("AND r.updated_at > ? ", [since], "r.updated_at") if since is not None
                           else ("", [], "r.call_id"))
    return all_rows(store, "SELECT r.call_id, r.record, r.updated_at FROM results r LEFT JOIN web_calls w "
                           f"ON w.call_id = r.call_id WHERE r.status='ok' {recent}"
                           "AND (w.call_id IS NULL OR w.updated_at < r.updated_at) "
                           f"ORDER BY {order} LIMIT ?", [*args, limit])


def index_newest(store: SQLStoreBase) -> float | None:
    """The newest ``updated_at`` in the index (None when empty)."""
    ensure(store)
    r = one_row(store, "SELECT MAX(updated_at) FROM web_calls", ())
    return float(r[0]) if r and r[0] is not None else None


def index_put(store: SQLStoreBase, rows: Sequence[tuple], texts: Sequence[tuple[str, str]]) -> None:
    """Index rows (``INDEX_COLS`` order) and (call_id, transcript text), replacing older ones;
    one transaction. The text lives in its own table so filter scans stay narrow."""
    if not rows:
        return
    ensure(store)
    with tx(store):
        for row in rows:
            _x(store, "DELETE FROM web_calls WHERE call_id=?", (row[0],))
            _x(store, "DELETE FROM web_call_text WHERE call_id=?", (row[0],))
        q = store._q(f"INSERT INTO web_calls ({INDEX_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)")
        qt = store._q("INSERT INTO web_call_text VALUES (?,?)")
        if _pg(store):
            with store.db.cursor() as cur:
                cur.executemany(q, rows)
                cur.executemany(qt, texts)
        else:
            store.db.executemany(q, rows)
            store.db.executemany(qt, texts)


def search(store: SQLStoreBase, where: Sequence[tuple[str, Any]], limit: int, offset: int,
           reviewed: bool | None, text: str = "") -> tuple[int, bool, list[tuple]]:
    """Index rows matching all ``where`` conditions (``("col op ?", value)`` pairs built by the
    workflow from a fixed list, never from the request) and containing ``text``, newest first;
    (total, whether the total stopped at ``COUNT_CAP``, page rows).
    Each row: call_id, started_at, agent_id, agent_name, team, score, grade, fatal, hits, reviewed."""
    ensure(store)
    conds = [c for c, _ in where]
    args = [v for _, v in where]
    if text:
        conds.append("EXISTS (SELECT 1 FROM web_call_text t WHERE t.call_id = w.call_id AND t.text LIKE ? ESCAPE '\\')")
        args.append(f"%{text}%")
    rev = "EXISTS (SELECT 1 FROM qc_reviews r WHERE r.call_id = w.call_id)"
    if reviewed is True:
        conds.append(rev)
    elif reviewed is False:
        conds.append("NOT " + rev)
    sql_where = (" WHERE " + " AND ".join(conds)) if conds else ""
    if conds:
        total = one_row(store, f"SELECT COUNT(*) FROM (SELECT 1 FROM web_calls w{sql_where} LIMIT ?) x",
                        [*args, COUNT_CAP + 1])[0]
    else:
        total = one_row(store, "SELECT COUNT(*) FROM web_calls", ())[0]
    rows = all_rows(store, f"SELECT w.call_id, w.started_at, w.agent_id, w.agent_name, w.team, w.score, w.grade, "
                           f"w.fatal, w.hits, {rev} FROM web_calls w{sql_where} "
                           "ORDER BY w.started_at DESC, w.call_id DESC LIMIT ? OFFSET ?", [*args, limit, offset])
    capped = bool(conds) and total > COUNT_CAP
    return (COUNT_CAP if capped else int(total)), capped, rows


def titles_put(store: SQLStoreBase, titles: dict[str, str]) -> None:
    """Rule titles seen while indexing (the queue shows 标准结束语, not closing)."""
    if not titles:
        return
    with tx(store):
        for rid, title in sorted(titles.items()):
            _x(store, "DELETE FROM web_rule_titles WHERE rule_id=?", (rid,))
            _x(store, "INSERT INTO web_rule_titles VALUES (?,?)", (rid, title))


def titles(store: SQLStoreBase) -> dict[str, str]:
    ensure(store)
    return dict(all_rows(store, "SELECT rule_id, title FROM web_rule_titles", ()))


def index_row(store: SQLStoreBase, call_id: str) -> tuple | None:
    ensure(store)
    return one_row(store, f"SELECT {INDEX_COLS} FROM web_calls WHERE call_id=?", (call_id,))


def next_call(store: SQLStoreBase, started_at: str, call_id: str) -> str | None:
    """The call listed after this one (newest first order), for "submit → next"."""
    # a row-value comparison: both databases walk the (started_at, call_id) index backwards
    r = one_row(store, "SELECT call_id FROM web_calls WHERE (started_at, call_id) < (?, ?) "
                       "ORDER BY started_at DESC, call_id DESC LIMIT 1", (started_at, call_id))
    return r[0] if r else None


def result_record(store: SQLStoreBase, call_id: str) -> tuple[str, str] | None:
    """(status, record JSON) of a stored result."""
    return one_row(store, "SELECT status, record FROM results WHERE call_id=?", (call_id,))
