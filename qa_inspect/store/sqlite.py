"""The embedded default store: one SQLite file in WAL mode.

Before anything is written the file is checked (``_preflight``, then ``PRAGMA quick_check``
on a read-only connection): a directory, a file that is not SQLite, a truncated or damaged
database or a read-only file is refused with one ``StoreError`` line and left byte for byte
as it was (issue 17: ``run`` used to write into a damaged file before failing).
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Iterator, Sequence

from qa_inspect.records import CallResult, Transcript
from qa_inspect.store.base import SCHEMA, ResultRow, SQLStoreBase, dumps, loads, split_rows
from qa_inspect.store.kpi_sql import SQLITE_SCHEMA as KPI_SCHEMA, KpiSQL
from qa_inspect.store.errors import StoreError, wrap_driver_errors
from qa_inspect.store.workflow_sql import SQLITE_SCHEMA as WORKFLOW_SCHEMA, WorkflowSQL

VECTOR_SCHEMA = """
CREATE TABLE IF NOT EXISTS turn_embeddings (
    model TEXT NOT NULL,
    text_sha1 TEXT NOT NULL,
    vec BLOB NOT NULL,
    PRIMARY KEY (model, text_sha1)
);
"""

_HEADER = b"SQLite format 3\x00"
DAMAGED = "数据库文件已损坏 / damaged database ({why})：从备份恢复，或换一个新的 --db 文件重新运行"

# files that passed quick_check in this process: (real path, size, mtime) — a re-score's
# forked workers inherit it and do not read the whole file again
_checked: set[tuple[str, int, int]] = set()
_checked_lock = threading.Lock()
# (device, inode) → how many stores of this process have the file open. The header check below
# reads the file with a plain descriptor, and closing *any* descriptor of a file drops every POSIX
# lock the process holds on it, its SQLite connections' included (fcntl semantics; SQLite's own
# connections share descriptors to avoid this). The workspace opens a store per thread: a second
# store's header read dropped the first one's locks, and another process (a `review import`, a
# `run`) closing its connection then found itself alone and deleted the -wal and -shm files under
# the server ("disk I/O error", or commits lost). A file this process has open was checked when
# it was opened, so it is not read again while it is open.
_open_files: Counter[tuple[int, int]] = Counter()


def _translate(store: "SQLiteStore", e: BaseException) -> StoreError:
    """A driver (or OS) error as one line naming the file and what to do."""
    path = str(getattr(store, "path", "")) or "?"
    if isinstance(e, OSError):
        return StoreError(f"无法访问数据库文件 / cannot access the database ({e.strerror or e})：检查路径和权限", path)
    msg = str(e)
    low = msg.lower()
    if "full" in low:
        what = ("磁盘已满或数据库到达大小上限 / database or disk is full：之前已完成的通话都已保存；"
                "腾出空间后重新运行，已完成的通话会被跳过")
    elif "readonly" in low or "read-only" in low:
        what = f"数据库文件只读 / read-only database ({msg})：给文件写权限 (chmod u+w) 或换一个 --db"
    elif "malformed" in low or "not a database" in low or "corrupt" in low:
        what = DAMAGED.format(why=msg)
    elif "no such table" in low:
        what = f"不是 qa-inspect 的结果数据库 / not a qa-inspect results database ({msg})：检查 --db 路径"
    elif "locked" in low or "busy" in low:
        what = f"数据库正被另一个进程使用 / {msg}：等它结束后重试"
    elif "unable to open" in low:
        what = f"无法打开数据库文件 / {msg}：检查路径、所在目录是否存在以及权限"
    else:
        what = f"数据库出错 / database error ({msg})"
    return StoreError(what, path)


def _read_only_file(path: Path, st: os.stat_result) -> bool:
    # root may write anything: honour the file's mode bits too, so a file someone made
    # read-only (chmod a-w) to protect it is not written behind their back
    return not os.access(path, os.W_OK) or not (st.st_mode & 0o222)


def _preflight(path: Path, write: bool) -> bool:
    """Refuse what is not a usable SQLite results file, reading only its header; True when
    the file exists with content (then it is worth a ``quick_check``)."""
    if path.is_dir():
        raise StoreError("这是一个目录，不是数据库文件 / is a directory: --db 要给文件路径，例如 qa.db", str(path))
    if not path.exists():
        parent = next((p for p in path.absolute().parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise StoreError(f"路径中的 {parent} 不是目录 / not a directory：换一个 --db 路径", str(path))
        if not write:
            raise StoreError("结果数据库不存在 / results database not found：先运行 `qa-inspect run`", str(path))
        return False
    if not path.is_file():
        raise StoreError("不是普通文件 / not a regular file：--db 要给一个数据库文件", str(path))
    st = path.stat()
    if st.st_size == 0:  # an empty file is an empty database (SQLite's own rule)
        if write and _read_only_file(path, st):
            raise StoreError("数据库文件只读 / read-only file：给文件写权限 (chmod u+w) 或换一个 --db", str(path))
        return False
    with _checked_lock:
        already_open = _open_files[(st.st_dev, st.st_ino)] > 0
    if already_open:  # checked when it was opened; a descriptor closed here would drop its locks
        if write and _read_only_file(path, st):
            raise StoreError("数据库文件只读 / read-only file：给文件写权限 (chmod u+w) 或换一个 --db", str(path))
        return True
    with open(path, "rb") as f:
        head = f.read(100)
    if head[:len(_HEADER)] != _HEADER:
        raise StoreError("不是 SQLite 数据库文件 / not a SQLite database：检查 --db 路径（这个文件没有被改动）",
                         str(path))
    if len(head) < 100:
        raise StoreError(DAMAGED.format(why=f"truncated: {st.st_size} bytes"), str(path))
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    if page < 512 or page & (page - 1):
        raise StoreError(DAMAGED.format(why=f"page size {page} in the header"), str(path))
    pages = int.from_bytes(head[28:32], "big")
    # the header's page count is valid when its "version-valid-for" matches the change counter
    if pages and head[92:96] == head[24:28] and st.st_size < pages * page:
        raise StoreError(DAMAGED.format(why=f"truncated: {st.st_size} of {pages * page} bytes"), str(path))
    if st.st_size % page:
        raise StoreError(DAMAGED.format(why=f"truncated: {st.st_size} bytes is not a whole number of "
                                            f"{page}-byte pages"), str(path))
    if write and _read_only_file(path, st):
        raise StoreError("数据库文件只读 / read-only file：给文件写权限 (chmod u+w) 或换一个 --db", str(path))
    return True


def _ro_uri(path: Path) -> str:
    """A read-only URI. Without a ``-wal`` beside the file nothing is being written and no
    un-checkpointed data exists, so ``immutable=1``: no ``-shm``/``-wal`` files are created next
    to a file we only read (``mode=ro`` on a WAL database leaves them behind)."""
    quiet = not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()
    return path.resolve().as_uri() + ("?immutable=1" if quiet else "?mode=ro")


def _quick_check(path: Path) -> None:
    """``PRAGMA quick_check`` on a read-only connection (the file is never written here)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _checked_lock:
        if key in _checked:
            return
    db = sqlite3.connect(_ro_uri(path), uri=True, timeout=30)
    try:
        rows = [r[0] for r in db.execute("PRAGMA quick_check(3)")]
    except sqlite3.DatabaseError as e:
        if "locked" in str(e).lower() or "busy" in str(e).lower():
            raise
        raise StoreError(DAMAGED.format(why=str(e)), str(path)) from e
    finally:
        db.close()
    if rows != ["ok"]:
        why = "; ".join(str(r).replace("*** in database main ***", "").strip() for r in rows)
        raise StoreError(DAMAGED.format(why=why[:200]), str(path))
    with _checked_lock:
        _checked.add(key)


@wrap_driver_errors((sqlite3.Error,), _translate)
class SQLiteStore(SQLStoreBase, WorkflowSQL, KpiSQL):
    """``readonly``: the caller only reads (reports, export): the file must exist, and a
    read-only file is opened read-only instead of refused (a writable one opens as usual).
    ``check``: run ``PRAGMA quick_check`` first (a full read; once per file per process)."""

    def __init__(self, path: str | Path, *, readonly: bool = False, check: bool = True) -> None:
        self.path = Path(path)
        self.url = str(self.path)  # what a re-score worker process opens its own connection with
        self.readonly = False
        self.db = None
        has_data = _preflight(self.path, write=not readonly)
        if has_data and check:
            _quick_check(self.path)
        if readonly and _read_only_file(self.path, self.path.stat()):
            self.readonly = True  # nothing will be written: no schema, no vectors
            self.db = sqlite3.connect(_ro_uri(self.path), uri=True, timeout=30)
            self._hold()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")  # the file exists from here on
        self._hold()
        self.db.execute("PRAGMA synchronous=NORMAL")
        new_facts = not self.db.execute("SELECT 1 FROM sqlite_master WHERE name='call_facts'").fetchone()
        self.db.executescript(SCHEMA + WORKFLOW_SCHEMA + VECTOR_SCHEMA + KPI_SCHEMA)
        if new_facts:  # a database from before the KPI tables: index its stored calls once
            self.backfill_facts(loads)

    _ident: tuple[int, int] | None = None

    def _hold(self) -> None:
        st = self.path.stat()
        self._ident = (st.st_dev, st.st_ino)
        with _checked_lock:
            _open_files[self._ident] += 1

    def close(self) -> None:
        if self._ident is not None and not self._closed:
            with _checked_lock:
                _open_files[self._ident] -= 1
                if _open_files[self._ident] <= 0:
                    del _open_files[self._ident]
        super().close()

    def _tx(self):
        return self.db  # sqlite3's connection context manager: commit, or roll back on error

    def _upsert(self, table: str, cols: Sequence[str], key: Sequence[str]) -> str:
        return f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) VALUES ({','.join('?' * len(cols))})"

    def put_transcript(self, audio_hash: str, asr_key: str, transcript: Transcript) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO transcripts VALUES (?,?,?,?)",
                            (audio_hash, asr_key, dumps(transcript.to_dict()), time.time()))

    def put_rows(self, rows: Sequence[ResultRow]) -> None:
        """Rows made by ``result_row``, in one transaction (all stored, or none)."""
        results, facts = split_rows(rows)
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?)", results)
            self._put_facts(facts)

    def results(self) -> Iterator[CallResult]:
        for (rec,) in self.db.execute("SELECT record FROM results ORDER BY started_at, call_id"):
            yield CallResult.from_dict(loads(rec))

    # --- utterance vectors -----------------------------------------------------------------
    # A short connection per call, not the store's: the embedder may run on another thread and
    # after the store is closed; and a second long-lived connection would keep SQLite from
    # folding the WAL back into the file on close (a copied .db would miss the latest results).
    def _vectors_db(self) -> sqlite3.Connection:
        if self.readonly:
            return sqlite3.connect(_ro_uri(self.path), uri=True, timeout=30)
        return sqlite3.connect(str(self.path), timeout=30)

    def get_vectors(self, model: str, keys: Sequence[str]) -> dict[str, bytes]:
        """The stored vectors (raw bytes) of these text keys under ``model``."""
        out: dict[str, bytes] = {}
        ks = list(dict.fromkeys(keys))
        if not ks or not self.path.exists():
            return out
        db = self._vectors_db()
        try:
            for i in range(0, len(ks), 500):
                part = ks[i:i + 500]
                q = f"SELECT text_sha1, vec FROM turn_embeddings WHERE model=? AND text_sha1 IN ({','.join('?' * len(part))})"
                try:
                    out.update((k, bytes(v)) for k, v in db.execute(q, (model, *part)))
                except sqlite3.OperationalError as e:
                    if "no such table" in str(e):  # a read-only older database: nothing stored
                        return out
                    raise
        finally:
            db.close()
        return out

    def put_vectors(self, model: str, items: Sequence[tuple[str, bytes]]) -> None:
        """Store vectors (a key already stored keeps its vector); nothing on a read-only store."""
        if not items or self.readonly:
            return
        db = self._vectors_db()
        try:
            with db:
                db.executemany("INSERT OR IGNORE INTO turn_embeddings VALUES (?,?,?)",
                               [(model, k, v) for k, v in items])
        finally:
            db.close()

    def count_vectors(self, model: str) -> int:
        db = self._vectors_db()
        try:
            return db.execute("SELECT COUNT(*) FROM turn_embeddings WHERE model=?", (model,)).fetchone()[0]
        finally:
            db.close()
