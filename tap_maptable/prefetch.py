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

Memory is bounded: the table being emitted holds at most `QUEUE_DEPTH` segments not yet taken,
and all upcoming tables together at most `ahead_cap` (`AHEAD_PER_WORKER` per parallel request:
64 segments at the default of 8), plus one segment in hand per worker waiting for room.
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
# Segments held for upcoming tables, per parallel request. Too few and the workers stall on
# tables the main thread has not reached, idling the budget on a slow link (bench figure 8).
AHEAD_PER_WORKER = 8
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

    index: int
    key: str
    fetch: Callable[[], Iterator[Segment]]
    queue: queue.Queue[Segment | _End] = field(default_factory=queue.Queue)
    started_at: float | None = None
    ahead: int = 0  # segments held (or being fetched) while another table was current
    segments: Iterator[Segment] | None = None
    done: bool = False
    taken: bool = False


class Prefetcher:
    """Background fetches of whole tables, in the order the main thread will emit them."""

    def __init__(self, workers: int) -> None:
        """Up to `workers` tables fetched at once (1: everything in the main thread)."""
        self.workers = workers
        self.ahead_cap = AHEAD_PER_WORKER * workers
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Condition()
        self._current: str | None = None
        self._ahead = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ready: list[_Job] = []  # tables whose next segment nobody is fetching, in order
        _RUNNING.append(self)

    @property
    def parallel(self) -> bool:
        """Whether tables are fetched in the background at all."""
        return self.workers > 1

    def plan(self, jobs: list[tuple[str, Callable[[], Iterator[Segment]]]]) -> None:
        """Start fetching these tables in this order (the order the main thread emits them)."""
        if not self.parallel or self._threads:
            return
        for index, (key, fetch) in enumerate(jobs):
            self._jobs[key] = _Job(index, key, fetch)
            self._ready.append(self._jobs[key])
        for n in range(min(self.workers, len(self._ready))):
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
        if job is None or job.taken or self._stop.is_set():
            # Not planned, already taken once (a second sync reads anew), or stopped.
            yield from fetch()
            return
        job.taken = True
        with self._lock:
            self._current = key
            self._lock.notify_all()
        finished = False
        try:
            while True:
                item = job.queue.get()
                with self._lock:
                    if job.ahead:  # fetched while another table was current: frees a place
                        job.ahead -= 1
                        self._ahead -= 1
                    self._lock.notify_all()
                if isinstance(item, _End):
                    finished = True
                    if item.error is not None:
                        raise item.error
                    return
                yield item
        finally:
            if not finished:
                # The table was abandoned (the run is failing, or a dry run reads one record):
                # fetch nothing more in the background; what is still to read is read here.
                self.stop()

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
        """Fetch one segment at a time, taking the tables in turn.

        A worker is not tied to a table: each step takes the next segment of the table being
        emitted if it has room, else of the table that has waited longest. So every table's
        chain of segments advances while up to `workers` requests are in flight, the last
        requests of a run are spread over many tables instead of queued behind one table's
        chain, and the main thread is never starved.
        """
        while True:
            job = self._take()
            if job is None:
                return
            if job.started_at is None:
                job.started_at = time.time()
                job.segments = iter(job.fetch())
            assert job.segments is not None  # noqa: S101 - set just above
            item: Segment | _End
            try:
                item = next(job.segments)
            except StopIteration:
                item = _End()
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread, raised there
                item = _End(exc)
            job.queue.put(item)
            with self._lock:
                if isinstance(item, _End):
                    job.done = True
                else:
                    self._ready.append(job)
                self._lock.notify_all()

    def _take(self) -> _Job | None:
        """The next ready table with room for one more segment (None: nothing left)."""
        with self._lock:
            while not self._stop.is_set():
                current = [j for j in self._ready if j.key == self._current]
                job = next((j for j in (*current, *self._ready) if self._room_for(j)), None)
                if job is not None:
                    self._ready.remove(job)
                    if self._current != job.key:
                        self._ahead += 1
                        job.ahead += 1
                    return job
                if not self._ready and not self._busy():
                    return None
                self._lock.wait()
            return None

    def _busy(self) -> bool:
        """Whether some table's fetch is still under way (it will come back to `_ready`)."""
        return not all(job.done for job in self._jobs.values())

    def _room_for(self, job: _Job) -> bool:
        if self._current == job.key:
            return job.queue.qsize() < QUEUE_DEPTH
        return self._ahead < self.ahead_cap


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
    done: queue.Queue[tuple[int, Any]] = queue.Queue()

    def work() -> None:
        while True:
            try:
                index, key = todo.get_nowait()
            except queue.Empty:
                return
            try:
                done.put((index, read(key)))
            except BaseException as exc:  # noqa: BLE001 - handed back, raised for its key alone
                done.put((index, exc))

    for n in range(min(workers, len(keys))):
        threading.Thread(target=work, name=f"{THREAD_PREFIX}-{n}", daemon=True).start()
    results: list[Any | Exception] = [None] * len(keys)
    for _ in keys:
        index, result = done.get()
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result
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
