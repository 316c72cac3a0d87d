"""Segments of upcoming tables, fetched in the background while the current table is emitted.

On a slow link a sequential tap's speed is set by latency, not by the budget: with answers taking
a second and more, most of the app's 60 requests a minute go unused. So requests for different
tables go out at once, up to `max_parallel_requests`, each still paying into the one budget and
carrying the one authenticator's token. A table's own segments stay one after another (each asks
for the rows after the last one it got).

What stays exactly as in a sequential run: the Singer output. Only the main thread writes
messages, stream by stream in the SDK's order; a background thread only fetches and parses
segments into a queue, and the main thread takes them when it reaches that table. So bookmarks,
ACTIVATE_VERSION, exactly-once delivery and resume after a kill do not change; a failure in the
background is raised in the main thread when it reaches that table, with the same one line.

Memory is bounded: each table holds at most `QUEUE_DEPTH` segments not yet taken, and all tables
other than the one being emitted hold at most `ahead_cap` (2 per worker) between them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

LOGGER = logging.getLogger("tap_maptable.prefetch")
QUEUE_DEPTH = 2
THREAD_PREFIX = "tap-maptable-fetch"

Segment = list[dict[str, Any]]
_RUNNING: list[Prefetcher] = []


class _End:
    """The last item of a table's queue: its fetch finished (or failed with `error`)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


@dataclass
class _Job:
    """One table's background fetch and the segments it has not handed over yet."""

    key: str
    fetch: Callable[[], Iterator[Segment]]
    queue: queue.Queue[Segment | _End] = field(default_factory=lambda: queue.Queue(QUEUE_DEPTH))
    started_at: float | None = None
    ahead: int = 0  # segments in the queue that were put while another table was current


class StoppedError(Exception):
    """The run is ending: a background fetch stops between two requests."""


class Prefetcher:
    """Background fetches of whole tables, in the order the main thread will emit them."""

    def __init__(self, workers: int) -> None:
        """Up to `workers` tables fetched at once (1: everything in the main thread)."""
        self.workers = workers
        self.ahead_cap = 2 * workers
        self._jobs: dict[str, _Job] = {}
        self._order: list[str] = []
        self._lock = threading.Condition()
        self._current: str | None = None
        self._ahead = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._next = 0
        _RUNNING.append(self)

    @property
    def parallel(self) -> bool:
        """Whether tables are fetched in the background at all."""
        return self.workers > 1

    def plan(self, jobs: list[tuple[str, Callable[[], Iterator[Segment]]]]) -> None:
        """Start fetching these tables in this order (the order the main thread emits them)."""
        if not self.parallel or self._threads:
            return
        for key, fetch in jobs:
            self._jobs[key] = _Job(key, fetch)
            self._order.append(key)
        for n in range(min(self.workers, len(self._order))):
            thread = threading.Thread(target=self._work, name=f"{THREAD_PREFIX}-{n}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def started_at(self, key: str) -> float | None:
        """When the background fetch of `key` sent its first request (epoch s), if it has."""
        job = self._jobs.get(key)
        return job.started_at if job is not None else None

    def segments(self, key: str, fetch: Callable[[], Iterator[Segment]]) -> Iterator[Segment]:
        """The segments of table `key`: from its background fetch if planned, else fetched here."""
        job = self._jobs.get(key)
        if job is None:
            yield from fetch()
            return
        with self._lock:
            self._current = key
            self._ahead -= job.ahead
            job.ahead = 0
            self._lock.notify_all()
        while True:
            item = job.queue.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def stop(self) -> None:
        """End every background fetch at its next step, and silence their threads' logs.

        Called when the run ends early (an error, SIGTERM): the last line of the log must be the
        run's own one-line error, not a late retry message from a fetch nobody waits for.
        """
        if self._stop.is_set():
            return
        self._stop.set()
        quiet = _QuietAfterStop(self._stop)
        for handler in _all_handlers():
            handler.addFilter(quiet)
        with self._lock:
            self._lock.notify_all()

    # -- the worker threads -----------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if self._next >= len(self._order):
                    return
                job = self._jobs[self._order[self._next]]
                self._next += 1
            self._run(job)

    def _run(self, job: _Job) -> None:
        job.started_at = time.time()
        try:
            for segment in job.fetch():
                self._hold(job)
                self._put(job, segment)
            self._put(job, _End())
        except StoppedError:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, raised there
            try:
                self._put(job, _End(exc))
            except StoppedError:
                return

    def _put(self, job: _Job, item: Segment | _End) -> None:
        """Queue `item`, waiting while the table's queue is full, unless the run stops."""
        while True:
            if self._stop.is_set():
                raise StoppedError
            try:
                job.queue.put(item, timeout=0.2)
            except queue.Full:
                continue
            return

    def _hold(self, job: _Job) -> None:
        """Wait until one more segment of `job` may be held, counting it if it is ahead."""
        with self._lock:
            while (
                not self._stop.is_set()
                and self._current != job.key
                and self._ahead >= self.ahead_cap
            ):
                self._lock.wait()
            if self._stop.is_set():
                raise StoppedError
            if self._current != job.key:
                self._ahead += 1
                job.ahead += 1


def map_in_threads(
    read: Callable[[Any], Any], keys: list[Any], workers: int
) -> list[Any | Exception]:
    """`read(key)` for every key, up to `workers` at once; each result or the error it raised.

    Daemon threads, not `concurrent.futures`: at exit Python joins an executor's threads, so a
    SIGTERM would have to wait for every request in flight (and its retries) to finish.
    """
    todo: queue.Queue[tuple[int, Any]] = queue.Queue()
    for index, key in enumerate(keys):
        todo.put((index, key))
    done: queue.Queue[tuple[int, Any | Exception]] = queue.Queue()

    def work() -> None:
        while True:
            try:
                index, key = todo.get_nowait()
            except queue.Empty:
                return
            try:
                done.put((index, read(key)))
            except Exception as exc:  # noqa: BLE001 - handed back, raised for its key alone
                done.put((index, exc))

    for n in range(min(workers, len(keys))):
        threading.Thread(target=work, name=f"{THREAD_PREFIX}-{n}", daemon=True).start()
    results: list[Any | Exception] = [None] * len(keys)
    for _ in keys:
        index, result = done.get()
        results[index] = result
    return results


def stop_all() -> None:
    """Stop every background fetch of this process (the run is ending early)."""
    for prefetcher in _RUNNING:
        prefetcher.stop()


def _all_handlers() -> list[logging.Handler]:
    loggers = [
        logging.getLogger(),
        *(
            logger
            for logger in logging.Logger.manager.loggerDict.values()
            if isinstance(logger, logging.Logger)
        ),
    ]
    return [handler for logger in loggers for handler in logger.handlers]


class _QuietAfterStop(logging.Filter):
    """Drop log records of background fetch threads once the run is stopping."""

    def __init__(self, stopped: threading.Event) -> None:
        """Quiet once `stopped` is set."""
        super().__init__()
        self._stopped = stopped

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but a stopped fetch thread's."""
        return not (self._stopped.is_set() and (record.threadName or "").startswith(THREAD_PREFIX))
