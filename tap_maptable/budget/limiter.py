"""The request budget: `limit` requests in any sliding window, for one app, in one store.

pyrate-limiter keeps the window: a sliding log (`Rate(limit, interval)`) that admits a request only
while fewer than `limit` requests were admitted in the last `interval`. It uses the budget fully
(30 requests under a 60/min limit go out at once) and never lets a window overflow. Ours: a small
margin on the window (a request admitted here reaches the server a little later, so the server's
window must not see two requests closer than ours did), the limit shared with other processes,
and a pause after a 429 that every later request (of every process sharing the store) honours.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import logging
import math
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyrate_limiter import InMemoryBucket, Limiter, Rate

from tap_maptable.budget.stores import BudgetStore, MemoryRegistry, StoreUnavailableError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

LOGGER = logging.getLogger("tap_maptable.budget")

# Log "waiting for the budget" at most this often, so a long sync does not flood the log.
_WAIT_LOG_INTERVAL_S = 30.0
# A shared store that fails this many times in a row ends the run.
STORE_TRIES = 5
# Waiting for a slot: ask the bucket again at most this long apart, and at least this long.
_POLL_S = 0.25
_MIN_POLL_S = 0.005
# Waiting for each of the limiter's own locks (held for a moment by the SQLite store's leak thread
# or a process sharing the store); beyond this the ask fails as a full window would, and is asked
# again. The SQLite store's lock is two (thread and file), each waited for up to this.
STORE_LOCK_WAIT_S = 5.0
# The priority of a request made outside a table read (token calls, the workspace list and
# details): before any table. Table reads wait by the rank of their table (0, 1, ...).
URGENT = -1
_PRIORITY: contextvars.ContextVar[int] = contextvars.ContextVar("budget_priority", default=URGENT)


@contextlib.contextmanager
def urgent() -> Iterator[None]:
    """Requests of this thread, inside the block, go before every table's (a token call)."""
    token = _PRIORITY.set(URGENT)
    try:
        yield
    finally:
        _PRIORITY.reset(token)


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
    """The run's single gate: `acquire()` before every request, `pause()` after a 429.

    A slot is stamped at the moment it is granted, and the request leaves right after: the
    window the tap keeps is the server's window. (pyrate-limiter's blocking wait would stamp a
    slot with the time it planned to wake, which a busy lock or a late thread can put a second
    before the request leaves: on a slow link that let a 31st request into a server's window of
    30.) So the budget asks without blocking, and waits between asks itself.

    Requests waiting for a slot take it in order of priority (`priority`), then arrival: the
    table being written before the tables after it, and token calls and the workspace list
    before any table.
    """

    def __init__(self, spec: BudgetSpec, store: BudgetStore | None = None) -> None:
        """Create the budget; `store` is where the window lives (this process when not given)."""
        self.spec = spec
        self.store = store or BudgetStore(
            InMemoryBucket([spec.rate]), MemoryRegistry(), "memory", shared=False
        )
        self._limiter = Limiter(self.store.bucket)
        self._lock = threading.Lock()
        self._gate = threading.Condition()
        self._waiting: list[tuple[int, int]] = []  # heap of (priority, arrival)
        self._arrivals = itertools.count()
        self._granted: deque[float] = deque()  # this process's slots, one window (monotonic)
        self._resume_at = 0.0
        self._limit = spec.limit
        self._next_heartbeat = 0.0
        self._last_wait_log = -math.inf
        self.acquired = 0
        self.waits = 0
        self.rate_limited = 0

    @property
    def limit(self) -> int:
        """The limit in force: the smallest of every live process sharing the store."""
        return self._limit

    @contextlib.contextmanager
    def priority(self, rank: int) -> Iterator[None]:
        """Requests of this thread, inside the block, wait for slots behind lower ranks."""
        token = _PRIORITY.set(rank)
        try:
            yield
        finally:
            _PRIORITY.reset(token)

    def acquire(self) -> None:
        """Block until one more request fits the budget, then count it as sent (now)."""
        ticket = (_PRIORITY.get(), next(self._arrivals))
        with self._gate:
            heapq.heappush(self._waiting, ticket)
            self._gate.notify_all()
        try:
            self._with_store(lambda: self._acquire_once(ticket))
        finally:
            with self._gate:
                self._waiting.remove(ticket)
                heapq.heapify(self._waiting)
                self._gate.notify_all()
        with self._lock:
            self.acquired += 1
            self._granted.append(time.monotonic())

    def free_slots(self) -> int:
        """Slots this process has not used in the current window (others' use is not known)."""
        return self.window_view()[0]

    def window_view(self) -> tuple[int, tuple[float, ...]]:
        """Free slots now, and in how many seconds each slot this process holds frees."""
        now = time.monotonic()
        span = self.spec.window_s + self.spec.margin_s
        with self._lock:
            while self._granted and self._granted[0] <= now - span:
                self._granted.popleft()
            frees_in = tuple(granted + span - now for granted in self._granted)
            return max(0, self._limit - len(self._granted)), frees_in

    @property
    def max_pause_s(self) -> float:
        """The longest pause there can be: one window frees every slot the server counts."""
        return self.spec.window_s + self.spec.margin_s

    def pause(self, seconds: float) -> None:
        """Hold every later request (of every process sharing the store) for `seconds`.

        Never longer than `max_pause_s`, whatever the caller asks: a pause in a shared store
        outlives this process, and must never hang the next run of the same app.
        """
        now = time.time()
        if not math.isfinite(seconds):  # NaN compares false both ways: it would slip through
            seconds = self.max_pause_s
        until = now + min(max(seconds, 0.0), self.max_pause_s)
        with self._lock:
            self._resume_at = max(self._resume_at, until)
            self.rate_limited += 1
        self._with_store(lambda: self.store.registry.pause_until(until, now + self.max_pause_s))

    def close(self) -> None:
        """Leave the shared registry and release the bucket's files and connections."""
        try:
            self.store.close()
        except STORE_ERRORS as exc:
            LOGGER.debug("closing the budget store failed: %s", type(exc).__name__)
        self._limiter.close()

    def _acquire_once(self, ticket: tuple[int, int]) -> None:
        # Bounded: alone, a full window frees every slot; sharing, allow for the others' turns.
        windows = 20 if self.store.shared else 4
        timeout = windows * (self.spec.window_s + self.spec.margin_s)
        # Counted from when this request is first in line, pauses after a 429 left out: time
        # spent behind more urgent requests (which were granted slots) is not "no slot".
        deadline: float | None = None
        started, waited = time.monotonic(), False
        while True:
            self._heartbeat_if_due()
            if self._sleep_through_pause() and deadline is not None:
                deadline = None
            with self._gate:
                while self._waiting[0] != ticket:
                    self._gate.wait(timeout=_POLL_S)
                    deadline = None
            if deadline is None:
                deadline = time.monotonic() + timeout
            if self._try_slot():
                return
            frees_in = self._frees_in_s()
            short = min(1.0, self.spec.window_s / 4)
            if not waited and time.monotonic() - started + frees_in >= short:
                # A moment's wait is the bucket's own bookkeeping; beyond it, the window is full.
                waited = True
                with self._lock:
                    self.waits += 1
                self._log_wait(frees_in)
            if time.monotonic() > deadline:
                msg = (
                    f"no request slot freed up within {timeout:.0f} s "
                    f"(limit {self._limit} per {self.spec.window_s:g} s, "
                    f"store {self.store.description})"
                )
                raise StoreUnavailableError(msg)
            with self._gate:  # woken early when a more urgent request arrives
                self._gate.wait(timeout=min(max(frees_in, _MIN_POLL_S), _POLL_S))

    def _try_slot(self) -> bool:
        """Ask the bucket for a slot, without waiting for one; True if it gave one.

        With the limiter's lock held here first (waiting for it, within the store's own lock
        timeout): pyrate-limiter's non-blocking ask also gives up at once when its lock is busy
        (the SQLite store's leak thread, another process sharing the file, or another thread of
        this one), which read as a full window: a quarter-second wait and a false "budget ...
        reached" line. Its locks are re-entrant (`threading.RLock`, the SQLite store's
        `HostLock`), so the ask inside takes them again.
        """
        lock = self._limiter.lock
        locks = (lock,) if hasattr(lock, "acquire") else tuple(lock)  # one lock, or several
        held: list[Any] = []
        try:
            for each in locks:
                if not each.acquire(blocking=True, timeout=STORE_LOCK_WAIT_S):
                    return False
                held.append(each)
            return bool(self._limiter.try_acquire(self.spec.key, blocking=False))
        finally:
            for each in reversed(held):
                each.release()

    def _frees_in_s(self) -> float:
        """Seconds until this process's oldest slot in the window frees (0: none to wait for).

        Other processes sharing the store have slots of their own, which this one cannot see:
        a waiter asks the store again at least every `_POLL_S`.
        """
        with self._lock:
            oldest = self._granted[0] if self._granted else None
        if oldest is None:
            return 0.0
        return max(0.0, oldest + self.spec.window_s + self.spec.margin_s - time.monotonic())

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

    def _sleep_through_pause(self) -> bool:
        """Wait out a pause after a 429 (this process's, or a shared one); whether it waited."""
        now = time.time()
        with self._lock:
            resume = self._resume_at
        if self.store.shared:
            resume = max(resume, self.store.registry.resume_at(now + self.max_pause_s))
        delay = min(resume - now, self.max_pause_s)
        if delay <= 0:
            return False
        time.sleep(delay)
        return True

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

    def _log_wait(self, frees_in: float) -> None:
        """Say the window is full, and when its next slot frees if this process holds it.

        A wait can last a whole window (a minute) with nothing else in the log: the time tells
        whoever watches that the run is pacing, not stuck. A slot held by another process
        sharing the store frees at a time this one does not know: when this process holds none,
        no time is given; when it holds some but not the whole window, the time its own oldest
        frees is only the latest a slot can free (it said "in 61 s" for a slot that freed 44 s
        later, held by the process that ran just before).
        """
        now = time.monotonic()
        if now - self._last_wait_log >= _WAIT_LOG_INTERVAL_S:
            self._last_wait_log = now
            with self._lock:
                held = len(self._granted)
            if frees_in <= 0:
                when = "waiting for a slot"
            elif held >= self._limit:
                when = f"the next slot frees in {math.ceil(frees_in)} s"
            else:
                when = f"a slot frees within {math.ceil(frees_in)} s (others hold some)"
            LOGGER.info(
                "Request budget in use: %d requests per %g s reached; %s "
                "(this is normal pacing, not an error).",
                self._limit,
                self.spec.window_s,
                when,
            )
