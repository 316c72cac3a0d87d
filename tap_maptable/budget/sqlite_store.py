"""The budget in a SQLite file: every process on this host that names the file shares it.

pyrate-limiter's `SQLiteBucket` keeps the window. The file lock is built here (not by
`init_from_file`) to give it a timeout: a stuck process must never block the others forever. A
killed one releases its lock with its file handles, and its window entries age out like any other.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from pyrate_limiter import SQLiteBucket

from tap_maptable.budget.stores import (
    BudgetStore,
    StoreUnavailableError,
    describe_store,
    member_id,
)
from tap_maptable.errors import ConfigurationError

if TYPE_CHECKING:
    from pyrate_limiter import Rate

LOGGER = logging.getLogger("tap_maptable.budget")
LOCK_TIMEOUT_S = 30.0


def open_sqlite(url: str, rate: Rate, key: str) -> BudgetStore:
    """Open (creating if needed) the budget file `url` names, under its file lock."""
    # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////absolute/path.db
    path = Path(unquote(url.removeprefix("sqlite:///").split("?", 1)[0]))
    if not url.startswith("sqlite:///") or not str(path):
        msg = f"invalid config: rate_limit_store {describe_store(url)!r}: expected sqlite:///<path>"
        raise ConfigurationError(msg)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = HostLock(f"{path}.lock", LOCK_TIMEOUT_S)
        with lock:
            conn = sqlite3.connect(path, isolation_level="DEFERRED", check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            table = f"budget_{key}"
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS '{table}' (name VARCHAR, item_timestamp INTEGER)"
            )
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS 'idx_{table}_ts' ON '{table}' (item_timestamp)"
            )
            conn.commit()
        bucket = SafeLeakSQLiteBucket([rate], conn, table=table, lock=lock)
        registry = SQLiteRegistry(path, key, lock)
    except (OSError, sqlite3.Error) as exc:
        msg = f"cannot open rate_limit_store {describe_store(url)!r}: {type(exc).__name__}: {exc}"
        raise StoreUnavailableError(msg) from None
    return BudgetStore(bucket, registry, f"sqlite:///{path}", shared=True)


class HostLock:
    """A lock across the threads of this process and the processes of this host, with a timeout.

    pyrate-limiter calls `acquire(blocking, timeout)` the way `threading.Lock` spells it, while
    `filelock` takes `acquire(timeout)`; and a file lock alone does not exclude the threads of
    one process (pyrate's background leaker shares the bucket's connection). Hence both locks.
    """

    def __init__(self, path: str, timeout_s: float) -> None:
        """A lock on `path` that never waits longer than `timeout_s`."""
        from filelock import FileLock  # noqa: PLC0415 - an extra of pyrate-limiter

        self._file = FileLock(path, thread_local=False)
        self._thread = threading.RLock()
        self._timeout_s = timeout_s

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:  # noqa: FBT001, FBT002 - threading.Lock's signature
        """Take both locks, or neither; False if they are not free within the timeout."""
        wait = 0.0 if not blocking else self._timeout_s
        if blocking and timeout is not None and timeout >= 0:
            wait = min(timeout, self._timeout_s)
        if not self._thread.acquire(timeout=wait if blocking else -1, blocking=blocking):
            return False
        from filelock import Timeout  # noqa: PLC0415

        try:
            self._file.acquire(timeout=wait, blocking=blocking)
        except Timeout:
            self._thread.release()
            return False
        except BaseException:  # the file cannot be locked (OSError): neither lock is kept
            self._thread.release()
            raise
        return True

    def release(self) -> None:
        """Release both locks."""
        self._file.release()
        self._thread.release()

    def __enter__(self) -> HostLock:  # noqa: PYI034 - Self needs typing_extensions on 3.10
        """Take the lock or raise TimeoutError: never wait forever."""
        if not self.acquire():
            msg = f"the budget store lock was not free within {self._timeout_s:g} s"
            raise TimeoutError(msg)
        return self

    def __exit__(self, *_exc: object) -> None:
        """Release the lock."""
        self.release()


class SQLiteRegistry:
    """Limits and pauses in two small tables of the budget's SQLite file."""

    def __init__(self, path: Path, key: str, lock: Any) -> None:
        """Create the tables if needed."""
        self._conn = sqlite3.connect(path, timeout=LOCK_TIMEOUT_S, check_same_thread=False)
        self._key = key
        self._lock = lock
        self._member = member_id()
        with self._lock:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS budget_limits "
                "(key TEXT, member TEXT, lim INTEGER, expires REAL, PRIMARY KEY (key, member))"
            )
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS budget_pauses (key TEXT PRIMARY KEY, until REAL)"
            )
            self._conn.commit()

    def heartbeat(self, limit: int, ttl_s: float) -> int:
        """Record this process's limit; return the smallest live one."""
        now = time.time()
        with self._lock:
            self._conn.execute("DELETE FROM budget_limits WHERE expires < ?", (now,))
            self._conn.execute(
                "INSERT OR REPLACE INTO budget_limits VALUES (?, ?, ?, ?)",
                (self._key, self._member, limit, now + ttl_s),
            )
            row = self._conn.execute(
                "SELECT MIN(lim) FROM budget_limits WHERE key = ?", (self._key,)
            ).fetchone()
            self._conn.commit()
        return int(row[0]) if row and row[0] is not None else limit

    def pause_until(self, until: float, horizon: float) -> None:
        """Share a pause with every process of this app; one past `horizon` is replaced."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO budget_pauses VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET until = "
                "CASE WHEN typeof(until) NOT IN ('real', 'integer') OR until > ? "
                "THEN excluded.until ELSE MAX(until, excluded.until) END",
                (self._key, until, horizon),
            )
            self._conn.commit()

    def resume_at(self, horizon: float) -> float:
        """When the shared pause ends (0 for none, or for one past `horizon`)."""
        row = self._conn.execute(
            "SELECT until FROM budget_pauses WHERE key = ?", (self._key,)
        ).fetchone()
        value = row[0] if row else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return 0.0  # none, or not a time (NULL, text): not a pause of ours
        return float(value) if math.isfinite(value) and value <= horizon else 0.0

    def close(self) -> None:
        """Forget this process's limit and close the connection."""
        try:
            with self._lock:
                self._conn.execute("DELETE FROM budget_limits WHERE member = ?", (self._member,))
                self._conn.commit()
        finally:
            self._conn.close()


class SafeLeakSQLiteBucket(SQLiteBucket):
    """pyrate's SQLite bucket, whose background clean-up survives a busy or failing store.

    pyrate's leaker thread stops (with a traceback) on any error but RuntimeError; a lock held
    too long by another process must only postpone the clean-up, not end it.
    """

    def leak(self, current_timestamp: int | None = None) -> int:
        """Drop expired entries; on a store error, try again at the next interval."""
        try:
            return int(super().leak(current_timestamp))
        except (TimeoutError, OSError, sqlite3.Error) as exc:
            LOGGER.debug("budget clean-up postponed: %s", type(exc).__name__)
            return 0
