"""The budget in Redis: every process on every host that names the server shares it.

pyrate's Redis bucket stamps requests with the local clock; across hosts that would mix clocks
in one window, so `RedisClockBucket` asks Redis for the time instead. Its check also counts the
entries stamped after its own stamp: see `PUT_ITEM`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from pyrate_limiter import RedisBucket
from pyrate_limiter.buckets.redis_bucket import LuaScript

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

# pyrate's check counts the window's entries up to the new entry's stamp (`ZCOUNT key start now`).
# A stamp is taken (Redis TIME) before the check runs, so another process can stamp later and
# check first: its entry lies after this stamp and went uncounted, letting one request too many
# into a window (seen as a 429 with three processes on one Redis). Every entry from the window's
# start on counts, whenever it was stamped. The script is pyrate's own, with that one bound.
_PYRATE_COUNT = "redis.call('ZCOUNT', bucket, window_start, now)"
PUT_ITEM = LuaScript.PUT_ITEM.replace(
    _PYRATE_COUNT, "redis.call('ZCOUNT', bucket, window_start, '+inf')"
)
if PUT_ITEM == LuaScript.PUT_ITEM:  # pragma: no cover - a pyrate upgrade changed the script
    msg = "pyrate-limiter's Redis script changed: review tap_maptable.budget.redis_store.PUT_ITEM"
    raise ImportError(msg)


def open_redis(url: str, rate: Rate, key: str) -> BudgetStore:
    """Connect to the Redis server `url` names; errors never quote the URL's password."""
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


class RedisClockBucket(RedisBucket):
    """pyrate's Redis bucket, stamping requests with the Redis server's clock, not the host's."""

    @classmethod
    def init(cls, rates: list[Rate], redis: Any, bucket_key: str, algorithm: Any = None) -> Any:
        """Load `PUT_ITEM` (not pyrate's script) and build the bucket on it (a sync client)."""
        return cls(rates, redis, bucket_key, redis.script_load(PUT_ITEM), algorithm)

    def leak(self, current_timestamp: int | None = None) -> Any:
        """Drop expired entries; on a Redis error, try again at the next interval."""
        try:
            return super().leak(current_timestamp)
        except Exception as exc:  # noqa: BLE001 - redis is optional; any failure only postpones
            LOGGER.debug("budget clean-up postponed: %s", type(exc).__name__)
            return 0

    def now(self) -> int:
        """Milliseconds since the epoch, by Redis `TIME` (this host's clock if Redis fails).

        pyrate's background clean-up asks for the time outside `leak`: a Redis that went away
        would end that thread with a traceback. The host's clock only dates a clean-up or an
        entry that Redis will refuse anyway (the request then fails through `_with_store`).
        """
        try:
            seconds, micros = self.redis.time()  # type: ignore[misc]  # a sync client here
        except Exception as exc:  # noqa: BLE001 - redis is optional; the put that follows fails
            LOGGER.debug("Redis TIME failed: %s", type(exc).__name__)
            return time.time_ns() // 1_000_000
        return int(seconds) * 1000 + int(micros) // 1000


class RedisRegistry:
    """Limits in a hash (member -> "limit:expires"), the pause in a key that expires."""

    def __init__(self, client: Any, key: str) -> None:
        """Use `client` for keys under `tap-maptable:*:<key>`."""
        self._client = client
        self._limits = f"tap-maptable:limits:{key}"
        self._pause = f"tap-maptable:pause:{key}"
        self._member = member_id()

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

    def pause_until(self, until: float, horizon: float) -> None:
        """Share a pause with every process of this app, on every host (it expires by itself)."""
        ttl_ms = max(int((until - time.time()) * 1000), 1)
        current = self.resume_at(horizon)
        if until > current:
            self._client.set(self._pause, str(until), px=ttl_ms)

    def resume_at(self, horizon: float) -> float:
        """When the shared pause ends, by this host's clock (from the key's remaining life).

        The key's time-to-live is kept by Redis, so hosts whose clocks disagree still pause
        for the same length of time. A pause longer than `horizon` is not one of ours: ignored.
        """
        remaining_ms = int(self._client.pttl(self._pause))
        resume = time.time() + remaining_ms / 1000 if remaining_ms > 0 else 0.0
        return resume if resume <= horizon else 0.0

    def close(self) -> None:
        """Forget this process's limit."""
        try:
            self._client.hdel(self._limits, self._member)
        except Exception:  # noqa: BLE001 - closing must not mask the run's real outcome
            LOGGER.debug("could not remove this process from the shared budget registry")
