"""One request budget per MapTable app, and the HTTP adapter that makes every request pay into it.

MapTable allows 60 requests per minute per app, over all endpoints, token calls included. The
tap treats that as its scarcest resource: every HTTP request of a run (token requests, every
stream's pages, every retry) goes through `ThrottledAdapter.send`, which first takes a slot from
the run's single `RequestBudget`. Nothing else in the tap paces requests or handles 429s.

What comes from pyrate-limiter and what is ours:
- pyrate-limiter keeps the window: a sliding log (`Rate(limit, interval)`) that admits a request
  only while fewer than `limit` requests were admitted in the last `interval`. It uses the budget
  fully (30 requests under a 60/min limit go out at once) and never lets a window overflow. Its
  buckets are swappable, which is where the budget lives: in memory here, in SQLite or Redis
  when several processes share one app (see `open_bucket`).
- Ours: a small margin on the window (a request admitted here reaches the server a little
  later, so the server's window must not see two requests closer than ours did); a pause after
  a 429 that every later request honours (`Retry-After`, or a whole window when the server names
  no time); and the adapter, because the SDK's backoff would count a 429 as a failure and waste
  tries, while a 429 here is a signal to wait, not an error.
"""

from __future__ import annotations

import email.utils
import logging
import math
import sqlite3
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import requests
from pyrate_limiter import InMemoryBucket, Limiter, Rate
from requests.adapters import HTTPAdapter

from tap_maptable import api
from tap_maptable.budget_store import BudgetStore, MemoryRegistry, StoreUnavailableError
from tap_maptable.envelope import signal_code

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

LOGGER = logging.getLogger("tap_maptable.throttle")

# A 429 after this many waits in a row for one request means something else is spending the
# app's budget faster than it frees up: stop with a clear error rather than wait forever.
MAX_RATE_LIMIT_WAITS = 8
# Log "waiting for the budget" at most this often, so a long sync does not flood the log.
_WAIT_LOG_INTERVAL_S = 30.0
# A shared store that fails this many times in a row ends the run.
STORE_TRIES = 5


def _store_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sqlite3.Error, OSError]
    try:
        from filelock import Timeout  # noqa: PLC0415 - optional

        errors.append(Timeout)
    except ImportError:  # pragma: no cover - filelock comes with pyrate-limiter[filelock]
        pass
    try:
        from redis import RedisError  # noqa: PLC0415 - optional extra

        errors.append(RedisError)
    except ImportError:
        pass
    return tuple(errors)


STORE_ERRORS = _store_errors()


@dataclass(frozen=True)
class BudgetSpec:
    """What a budget is: `limit` requests in any `window_s` seconds, for one app (`key`)."""

    limit: int
    window_s: float = 60.0
    key: str = "maptable"

    @property
    def margin_s(self) -> float:
        """Slack added to the window: loopback and LAN latency stay far below it."""
        return max(0.2, 0.01 * self.window_s)

    @property
    def rate(self) -> Rate:
        """The pyrate-limiter rate: `limit` per window plus margin, in milliseconds."""
        return Rate(self.limit, math.ceil((self.window_s + self.margin_s) * 1000))


class RequestBudget:
    """The run's single gate: `acquire()` before every request, `pause()` after a 429."""

    def __init__(self, spec: BudgetSpec, store: BudgetStore | None = None) -> None:
        """Create the budget; `store` is where the window lives (this process when not given)."""
        self.spec = spec
        self.store = store or BudgetStore(
            InMemoryBucket([spec.rate]), MemoryRegistry(), "memory", shared=False
        )
        self._limiter = Limiter(self.store.bucket)
        self._lock = threading.Lock()
        self._resume_at = 0.0
        self._limit = spec.limit
        self._next_heartbeat = 0.0
        self._last_wait_log = -math.inf
        self.acquired = 0
        self.waits = 0

    @property
    def limit(self) -> int:
        """The limit in force: the smallest of every live process sharing the store."""
        return self._limit

    def acquire(self) -> None:
        """Block until one more request fits the budget, then count it as sent."""
        self._with_store(self._acquire_once)
        self.acquired += 1

    def pause(self, seconds: float) -> None:
        """Hold every later request (of every process sharing the store) for `seconds`."""
        until = time.time() + max(seconds, 0.0)
        with self._lock:
            self._resume_at = max(self._resume_at, until)
        self._with_store(lambda: self.store.registry.pause_until(until))

    def close(self) -> None:
        """Leave the shared registry and release the bucket's files and connections."""
        try:
            self.store.close()
        except STORE_ERRORS as exc:
            LOGGER.debug("closing the budget store failed: %s", type(exc).__name__)
        self._limiter.close()

    def _acquire_once(self) -> None:
        self._heartbeat_if_due()
        self._sleep_through_pause()
        if self._limiter.try_acquire(self.spec.key, blocking=False):
            return
        self.waits += 1
        self._log_wait()
        # Bounded: alone, a full window frees every slot; sharing, allow for the others' turns.
        windows = 20 if self.store.shared else 4
        timeout = windows * (self.spec.window_s + self.spec.margin_s)
        if not self._limiter.try_acquire(self.spec.key, blocking=True, timeout=timeout):
            msg = (
                f"no request slot freed up within {timeout:.0f} s "
                f"(limit {self._limit} per {self.spec.window_s:g} s, "
                f"store {self.store.description})"
            )
            raise StoreUnavailableError(msg)

    def _heartbeat_if_due(self) -> None:
        now = time.monotonic()
        if now < self._next_heartbeat:
            return
        self._next_heartbeat = now + min(5.0, self.spec.window_s / 4)
        ttl = 2 * self.spec.window_s + 5
        limit = min(self.spec.limit, self.store.registry.heartbeat(self.spec.limit, ttl))
        if limit != self._limit:
            LOGGER.info(
                "Request budget: another process of this app allows %d requests per %g s; "
                "every process now uses %d.",
                limit,
                self.spec.window_s,
                limit,
            )
            self._limit = limit
            self.store.bucket.rates = [Rate(limit, self.spec.rate.interval)]

    def _sleep_through_pause(self) -> None:
        with self._lock:
            resume = self._resume_at
        if self.store.shared:
            resume = max(resume, self.store.registry.resume_at())
        delay = resume - time.time()
        if delay > 0:
            time.sleep(delay)

    def _with_store(self, action: Callable[[], None]) -> None:
        """Run `action`, retrying a failing shared store with backoff, then failing clearly.

        Never falls back to sending unthrottled: without the store, the tap stops.
        """
        for attempt in range(1, STORE_TRIES + 1):
            try:
                action()
            except STORE_ERRORS as exc:  # noqa: PERF203 - retrying is the point
                if attempt == STORE_TRIES:
                    msg = (
                        f"rate_limit_store {self.store.description} failed "
                        f"{STORE_TRIES} times ({type(exc).__name__}); stopping rather than "
                        "sending requests without the shared budget"
                    )
                    raise StoreUnavailableError(msg) from None
                delay = min(2.0 ** (attempt - 1), 8.0)
                LOGGER.warning(
                    "rate_limit_store %s failed (%s); retrying in %.0f s.",
                    self.store.description,
                    type(exc).__name__,
                    delay,
                )
                time.sleep(delay)
            else:
                return

    def _log_wait(self) -> None:
        now = time.monotonic()
        if now - self._last_wait_log >= _WAIT_LOG_INTERVAL_S:
            self._last_wait_log = now
            LOGGER.info(
                "Request budget in use: %d requests per %g s reached; waiting for a slot "
                "(this is normal pacing, not an error).",
                self._limit,
                self.spec.window_s,
            )


class ThrottledAdapter(HTTPAdapter):
    """An `HTTPAdapter` that takes a budget slot before every send and waits out 429s.

    Mounted on every session of the run (the streams' and the authenticator's), so that no
    request can bypass the budget, however it is made.
    """

    def __init__(
        self,
        budget: RequestBudget,
        before_send: Callable[[requests.PreparedRequest], None] | None = None,
        **kwargs: Any,
    ) -> None:
        """Wrap `budget`; `before_send` runs after each wait (the authenticator's last look)."""
        super().__init__(**kwargs)
        self.budget = budget
        self.before_send = before_send
        self.rate_limited = 0

    def send(
        self,
        request: requests.PreparedRequest,
        *args: Any,
        **kwargs: Any,
    ) -> requests.Response:
        """Send once the budget allows; on a rate-limit answer, wait as told and send again."""
        waits = 0
        while True:
            if self.before_send is not None:
                # Renew a token that is due *before* taking a slot (a renewal takes its own),
                self.before_send(request)
            self.budget.acquire()
            if self.before_send is not None:
                # and look again after the wait, which can outlast a short-lived token.
                self.before_send(request)
            response = super().send(request, *args, **kwargs)
            wait = rate_limit_wait(response, self.budget.spec.window_s)
            if wait is None or waits >= MAX_RATE_LIMIT_WAITS:
                return response
            waits += 1
            self.rate_limited += 1
            LOGGER.warning(
                "MapTable answered 429 (rate limited) for %s %s; waiting %.1f s before "
                "retrying. Another client of the same app may be using its budget.",
                request.method,
                request.path_url.split("?", 1)[0],
                wait,
            )
            response.close()
            self.budget.pause(wait)


def rate_limit_wait(response: requests.Response, window_s: float) -> float | None:
    """Return how long to wait if `response` says "rate limited", else None.

    The server's `Retry-After` wins; without one the tap waits a whole window, the only wait
    that is sure to free the server's count.
    """
    limited = response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    if not limited and response.status_code == HTTPStatus.OK:
        limited = signal_code(response) in api.RATE_LIMIT_CODES
    if not limited:
        return None
    wait = retry_after_seconds(response.headers)
    return window_s if wait is None else wait


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Parse `Retry-After` (seconds or an HTTP date); None when absent or unreadable."""
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def throttled_session(
    budget: RequestBudget,
    before_send: Callable[[requests.PreparedRequest], None] | None = None,
) -> requests.Session:
    """A session whose every request pays into `budget` (both http and https)."""
    session = requests.Session()
    adapter = ThrottledAdapter(budget, before_send)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
