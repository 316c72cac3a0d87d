"""Where the request budget lives: one process (memory), one host (SQLite) or many hosts (Redis).

MapTable's limit is per app, not per process: a `meltano run` alone is two processes (discovery,
then sync), and teams run backfills beside nightly loads, or schedulers on several hosts. Every
process that names the same store and the same app shares one sliding window.

From pyrate-limiter: the window itself (`SQLiteBucket` with a file lock, `RedisBucket` with its
atomic Lua script). Ours, and why:
- `Registry`: every process records its own `requests_per_minute` (with an expiry, renewed while
  it runs), and all of them use the smallest live one, so processes that disagree on the limit
  never together exceed the strictest; it also shares a pause after a 429, so that when one
  process is told to wait, all of them wait. pyrate-limiter has neither notion.
- `RedisClockBucket`: pyrate's Redis bucket stamps requests with the local clock; across hosts
  that would mix clocks in one window, so this subclass asks Redis for the time instead.
- The SQLite file lock is built here (not by `init_from_file`) to give it a timeout: a stuck
  process must never block the others forever. A killed one releases its lock with its file
  handles, and its window entries age out like any other.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from pyrate_limiter import InMemoryBucket, RedisBucket, SQLiteBucket

from tap_maptable.errors import ConfigurationError, MapTableError

if TYPE_CHECKING:
    from pyrate_limiter import AbstractBucket, Rate

LOGGER = logging.getLogger("tap_maptable.budget_store")
LOCK_TIMEOUT_S = 30.0
DEFAULT_STORE_FILE = "request-budget.sqlite"


class StoreUnavailableError(MapTableError):
    """The shared budget's store cannot be used; the tap stops rather than run unthrottled."""


class Registry(Protocol):
    """What processes sharing a budget tell each other, besides the window itself."""

    def heartbeat(self, limit: int, ttl_s: float) -> int:
        """Record this process's limit for `ttl_s` seconds; return the smallest live limit."""
        ...

    def pause_until(self, until: float) -> None:
        """Ask every process to send nothing before `until` (epoch seconds)."""
        ...

    def resume_at(self) -> float:
        """The epoch time before which no process should send (0 when none)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass
class BudgetStore:
    """An opened store: the bucket holding the window, the registry, and a printable name."""

    bucket: AbstractBucket
    registry: Registry
    description: str
    shared: bool

    def close(self) -> None:
        """Release the registry (the bucket is closed by its limiter)."""
        self.registry.close()


def budget_key(app_key: str) -> str:
    """A short, stable name for an app's budget; the secret is never part of it."""
    return hashlib.sha256(app_key.encode()).hexdigest()[:20]


def default_store_url() -> str | None:
    """A SQLite file in the user's cache directory, or None if it cannot be written."""
    from platformdirs import user_cache_dir  # noqa: PLC0415 - only needed for the default

    directory = Path(user_cache_dir("tap-maptable"))
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = directory / f".probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError:
        return None
    return f"sqlite:///{directory / DEFAULT_STORE_FILE}"


def describe_store(url: str) -> str:
    """The store's URL without any user or password (whatever the scheme), for logs and errors.

    Everything between the scheme and the last `@` is dropped, so a password containing `/`,
    `#` or `@` (or a URL missing its `:`) cannot survive a parser's misreading.
    """
    safe = url
    if "@" in url:
        scheme = url.split("://", 1)[0] + "://" if "://" in url.split("@", 1)[0] else ""
        safe = scheme + url.rsplit("@", 1)[1]
    if safe.startswith(("redis://", "rediss://")):
        parts = urlsplit(safe)
        try:
            port = parts.port or 6379
        except ValueError:
            return f"{parts.scheme}://{parts.hostname}"
        return f"{parts.scheme}://{parts.hostname}:{port}{parts.path or '/0'}"
    return safe


def open_store(url: str | None, rate: Rate, app_key: str) -> BudgetStore:
    """Open the store `url` names (None: the default SQLite file, else memory)."""
    if url is None:
        url = default_store_url()
        if url is None:
            LOGGER.warning(
                "The cache directory cannot be written: the request budget is kept in this "
                "process only (other processes of the same app will not share it)."
            )
            url = "memory"
    key = budget_key(app_key)
    if url == "memory":
        return BudgetStore(InMemoryBucket([rate]), MemoryRegistry(), "memory", shared=False)
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return _open_sqlite(url, rate, key)
    if scheme in {"redis", "rediss"}:
        return _open_redis(url, rate, key)
    msg = (
        f"invalid config: rate_limit_store {describe_store(url)!r} is not 'memory', "
        "'sqlite:///<path>' or 'redis://host:port/db'"
    )
    raise ConfigurationError(msg)


class MemoryRegistry:
    """One process: nothing to share."""

    def __init__(self) -> None:
        """Start with no pause."""
        self._until = 0.0

    def heartbeat(self, limit: int, ttl_s: float) -> int:  # noqa: ARG002 - same shape as others
        """This process's own limit is the only one."""
        return limit

    def pause_until(self, until: float) -> None:
        """Remember the pause."""
        self._until = max(self._until, until)

    def resume_at(self) -> float:
        """The remembered pause."""
        return self._until

    def close(self) -> None:
        """Nothing to release."""


def _member() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# -- SQLite: every process on this host ---------------------------------------------------------


def _open_sqlite(url: str, rate: Rate, key: str) -> BudgetStore:
    # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////absolute/path.db
    path = Path(unquote(url.removeprefix("sqlite:///")))
    if not url.startswith("sqlite:///") or not str(path):
        msg = f"invalid config: rate_limit_store {url!r}: expected sqlite:///<path>"
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
        msg = f"cannot open rate_limit_store {url!r}: {type(exc).__name__}: {exc}"
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
        self._member = _member()
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

    def pause_until(self, until: float) -> None:
        """Share a pause with every process of this app."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO budget_pauses VALUES (?, ?) ON CONFLICT(key) "
                "DO UPDATE SET until = MAX(until, excluded.until)",
                (self._key, until),
            )
            self._conn.commit()

    def resume_at(self) -> float:
        """When the shared pause ends."""
        row = self._conn.execute(
            "SELECT until FROM budget_pauses WHERE key = ?", (self._key,)
        ).fetchone()
        return float(row[0]) if row else 0.0

    def close(self) -> None:
        """Forget this process's limit and close the connection."""
        try:
            with self._lock:
                self._conn.execute("DELETE FROM budget_limits WHERE member = ?", (self._member,))
                self._conn.commit()
        finally:
            self._conn.close()


# -- Redis: every process on every host ---------------------------------------------------------


def _open_redis(url: str, rate: Rate, key: str) -> BudgetStore:
    safe = describe_store(url)
    try:
        import redis  # noqa: PLC0415 - an optional extra: pip install 'tap-maptable[redis]'
    except ImportError:
        msg = f"rate_limit_store {safe} needs the redis client: pip install 'tap-maptable[redis]'"
        raise ConfigurationError(msg) from None
    try:
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    except ValueError:
        # The parser's message can quote part of the password: never pass it on.
        msg = f"invalid config: rate_limit_store {safe} is not a valid Redis URL"
        raise ConfigurationError(msg) from None
    try:
        client.ping()
        bucket = RedisClockBucket.init([rate], client, f"tap-maptable:budget:{key}")
    except redis.RedisError as exc:
        msg = f"cannot reach rate_limit_store {safe}: {type(exc).__name__}"
        raise StoreUnavailableError(msg) from None
    return BudgetStore(bucket, RedisRegistry(client, key), safe, shared=True)


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


class RedisClockBucket(RedisBucket):
    """pyrate's Redis bucket, stamping requests with the Redis server's clock, not the host's."""

    def leak(self, current_timestamp: int | None = None) -> Any:
        """Drop expired entries; on a Redis error, try again at the next interval."""
        try:
            return super().leak(current_timestamp)
        except Exception as exc:  # noqa: BLE001 - redis is optional; any failure only postpones
            LOGGER.debug("budget clean-up postponed: %s", type(exc).__name__)
            return 0

    def now(self) -> int:
        """Milliseconds since the epoch, by Redis `TIME`."""
        seconds, micros = self.redis.time()  # type: ignore[misc]  # a sync client here
        return int(seconds) * 1000 + int(micros) // 1000


class RedisRegistry:
    """Limits in a hash (member -> "limit:expires"), the pause in a key that expires."""

    def __init__(self, client: Any, key: str) -> None:
        """Use `client` for keys under `tap-maptable:*:<key>`."""
        self._client = client
        self._limits = f"tap-maptable:limits:{key}"
        self._pause = f"tap-maptable:pause:{key}"
        self._member = _member()

    def heartbeat(self, limit: int, ttl_s: float) -> int:
        """Record this process's limit; return the smallest live one."""
        now = time.time()
        self._client.hset(self._limits, self._member, f"{limit}:{now + ttl_s}")
        self._client.expire(self._limits, int(ttl_s * 4) + 1)
        live = []
        for member, value in self._client.hgetall(self._limits).items():
            member_limit, expires = value.decode().split(":")
            if float(expires) < now:
                self._client.hdel(self._limits, member)
            else:
                live.append(int(member_limit))
        return min(live, default=limit)

    def pause_until(self, until: float) -> None:
        """Share a pause with every process of this app, on every host."""
        ttl_ms = max(int((until - time.time()) * 1000), 1)
        current = self.resume_at()
        if until > current:
            self._client.set(self._pause, str(until), px=ttl_ms)

    def resume_at(self) -> float:
        """When the shared pause ends, by this host's clock (from the key's remaining life).

        The key's time-to-live is kept by Redis, so hosts whose clocks disagree still pause
        for the same length of time.
        """
        remaining_ms = int(self._client.pttl(self._pause))
        return time.time() + remaining_ms / 1000 if remaining_ms > 0 else 0.0

    def close(self) -> None:
        """Forget this process's limit."""
        try:
            self._client.hdel(self._limits, self._member)
        except Exception:  # noqa: BLE001 - closing must not mask the run's real outcome
            LOGGER.debug("could not remove this process from the shared budget registry")
