"""The run's one reader of tables: every segment request, discovery's first segments included.

One object owns every table read of a run, so that there is one path to the segment endpoint,
one meaning for each answer (`segments.py`), and one order for the requests (`schedule.py`):
the table being written first, then the next one, parallel requests filling only what latency
leaves idle. Per-read state (where a table continues, its loop guard, what it holds) lives in
its `TableRead`, touched by one request at a time; SDK stream objects hold none of it. Only the
main thread writes Singer messages: it takes a table's segments, in order, from `segments()`.

The tap starts a reader for the run and closes it when the run ends (`tap.py`); discovery uses
the same reader for the workspace details and the first segments, which wait in the `Hold`
(memory up to a size, then a temporary file) until their table is synced in the same process.

Threads are daemons, not `concurrent.futures`: at exit Python joins an executor's threads, so a
SIGTERM would have to wait for every request in flight (and its retries) to finish.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tap_maptable import logs, stopping
from tap_maptable.columns.naming import column_essentials
from tap_maptable.errors import MapTableAPIError, one_line
from tap_maptable.progress import WorkLeft, requests_left, typical_size
from tap_maptable.reading.schedule import (
    Claim,
    Latency,
    Window,
    claim,
    holds_up_the_end,
    may_send,
    slow_link,
    workers_wanted,
)
from tap_maptable.reading.segments import (
    ResumeRefusedError,
    SegmentCursor,
    segment_path,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tap_maptable.connection import MapTableConnection
    from tap_maptable.reading.holding import Held, Hold

LOGGER = logging.getLogger("tap_maptable.reading")
THREAD_PREFIX = "tap-maptable-read"
# Workers a run starts with; more join, up to max_parallel_requests, when answers are slow.
FIRST_WORKERS = 8
# Segments the table being written may hold ahead of the main thread, whatever the memory cap.
QUEUE_DEPTH = 2
# A rank after every table a sync plans: first segments read for discovery alone.
_UNPLANNED = 1 << 30
# How often an idle worker looks again (the window moves even when nothing else happens).
_IDLE_WAIT_S = 0.2


class ReaderClosedError(RuntimeError):
    """The run's reading ended before this table was read to its end (never a complete table)."""

    def __init__(self, stream: str) -> None:
        """Name the table left unread."""
        super().__init__(f"{stream}: the run's reading ended before the table was read")


@dataclass(frozen=True)
class ReadPlan:
    """One table a sync writes, in the order it writes them, and where its read starts."""

    stream: str
    table_id: str
    after: str | None = None  # resume after this row (an earlier run's resume point)
    expected_segments: int | None = None  # its size at its last complete read, if known
    done: bool = False  # read to its end by the run this one continues: nothing to fetch


@dataclass(slots=True)
class TableRead:
    """One table's read in this run: where it continues, what it holds, how it ended."""

    table_id: str
    stream: str
    rank: int
    cursor: SegmentCursor
    expected_segments: int | None = None
    # Segments fetched and not yet written: at most QUEUE_DEPTH, so a list (56 bytes empty, a
    # deque 760: at 1,000 tables, most of a megabyte held for nothing).
    queue: list[Held] = field(default_factory=list)
    # The columns of the table's first segment, kept only for discovery (`first_columns`): a read
    # stays in the reader for the whole run, and 1,000 tables' column lists are megabytes.
    columns: Any = None
    fetched: int = 0  # segments fetched in this run
    in_flight: bool = False
    fetched_all: bool = False
    error: BaseException | None = None
    abandoned: bool = False
    planned: bool = False
    restarted: str | None = None  # why the resume point was given up, for the stream to say
    last_size: int = 0
    from_start: bool = True  # fetched from the first segment: once fetched all, its size

    @property
    def finished(self) -> bool:
        """Nothing more will be fetched for this read."""
        return self.fetched_all or self.error is not None or self.abandoned

    def remaining(self) -> int | None:
        """Requests still to send for it, when its size is known (None once finished)."""
        if (
            self.finished
            or self.expected_segments is None
            or self.fetched >= self.expected_segments
        ):
            return None
        return self.expected_segments - self.fetched - (1 if self.in_flight else 0)


def _size_known(read: TableRead) -> int | None:
    """A table's segments, if known: from the STATE, or read whole from its first in this run."""
    if read.fetched_all and read.from_start and read.error is None and read.fetched:
        return read.fetched
    return read.expected_segments or None


def _being_read(read: TableRead) -> bool:
    """Part fetched, more to come, and of a size not known: it has at least one more segment."""
    return bool(read.fetched) and not read.finished and _size_known(read) is None


class Reader:
    """Every table read of one run, from the workers that fetch to the thread that writes."""

    def __init__(  # noqa: PLR0913 - all but the connection are keyword-only options
        self,
        connection: MapTableConnection,
        *,
        workers: int,
        hold: Hold,
        latency: Latency,
        keep_first: bool = True,
        on_wait: Callable[[], None] = lambda: None,
    ) -> None:
        """Up to `workers` requests at once (1: every request in the main thread).

        The reader starts `FIRST_WORKERS` of them and adds more, up to `workers`, when MapTable
        answers too slowly for those to keep the budget busy (`workers_wanted`): a thread per
        request in flight costs memory and time that a fast link never needs.

        `keep_first`: keep discovery's first segments for a sync in this process (not for a
        discovery alone, which only needs their columns). `on_wait`: called in the writing
        thread, between two messages, each time it has waited a while for a segment (the tap
        writes a STATE it held back).
        """
        self._connection = connection
        self._workers = workers
        self._keep_first = keep_first
        self._hold = hold
        self._latency = latency
        self._on_wait = on_wait
        self._cond = threading.Condition()
        self._reads: dict[str, TableRead] = {}  # by table id
        self._by_stream: dict[str, TableRead] = {}
        self._calls: deque[_Call] = deque()
        self._threads: list[threading.Thread] = []
        self._grew = self._grown_out = False
        self._stopped = False
        self._current_stream: str | None = None
        self._drain_logged = False

    # -- the worker pool ------------------------------------------------------------------------

    @property
    def workers(self) -> int:
        """Requests in flight at once, at most, for now (more may join on a slow link)."""
        if not self.parallel:
            return 1
        return len(self._threads) or min(self._workers, FIRST_WORKERS)

    @property
    def parallel(self) -> bool:
        """Whether requests are made by worker threads (else in the caller's thread)."""
        return self._workers > 1

    def _start(self) -> None:
        """Start the first workers, once, in the caller's thread (the connection is built first)."""
        if self._threads or not self.parallel:
            return
        self._connection.open()
        with self._cond:
            try:
                self._add_workers(min(self._workers, FIRST_WORKERS))
            except RuntimeError as exc:  # "can't start new thread": a process or memory limit
                self._grown_out = True
                if self._threads:
                    LOGGER.warning(
                        "No more request workers (%s): reading with %d.", exc, len(self._threads)
                    )
                else:
                    # No thread at all: the callers' thread sends, one request at a time
                    # (`parallel` is now False, and every caller asks it after `_start`).
                    self._workers = 1
                    LOGGER.warning(
                        "No request worker could start (%s): reading one request at a time.", exc
                    )

    def _add_workers(self, count: int) -> None:
        """Start workers until there are `count` (the caller holds `_cond`).

        Only a started thread is counted: one the system refused (a process limit) must not
        stand in for a worker nobody runs.
        """
        while len(self._threads) < count:
            name = f"{THREAD_PREFIX}-{len(self._threads)}"
            thread = threading.Thread(target=self._work, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _grow(self) -> None:
        """Add workers when the answer time measured so far needs more requests in flight.

        Called by the workers; the first growth is logged at INFO, later steps (the estimate
        creeping up) at DEBUG. A thread the system will not start ends the growing, not the
        worker that asked: the workers already running go on reading.
        """
        latency = self._latency.estimate_s
        wanted = workers_wanted(
            self._connection.budget.limit,
            self._connection.window_s,
            latency,
            first=FIRST_WORKERS,
            most=self._workers,
        )
        with self._cond:
            before = len(self._threads)
            if self._stopped or self._grown_out or wanted <= before:
                return
            try:
                self._add_workers(wanted)
            except RuntimeError as exc:  # "can't start new thread"
                self._grown_out = True
                LOGGER.warning(
                    "No more request workers (%s): reading on with %d.",
                    exc,
                    len(self._threads),
                )
                return
            after = len(self._threads)
            first, self._grew = not self._grew, True
        LOGGER.log(
            logging.INFO if first else logging.DEBUG,
            "MapTable answers in %.1f s: up to %d requests in flight at once, was %d "
            "(max_parallel_requests: %d).",
            latency,
            after,
            before,
            self._workers,
        )

    def close(self) -> None:
        """Stop every worker at its next step and delete the held segments' file.

        A worker still waiting for an answer finishes in the background, silently: the last
        line of the log must be the run's own, not a late retry nobody waits for.
        """
        with self._cond:
            if self._stopped:
                return
            self._stopped = True
            self._cond.notify_all()
        logs.quiet_threads(self._threads)
        self._hold.close()

    def map(self, read: Callable[[Any], Any], keys: list[Any]) -> list[Any]:
        """`read(key)` for every key, in parallel when allowed; each result or its error."""
        threaded = len(keys) > 1  # one key needs no thread
        if self.parallel and threaded:
            self._start()  # may find no thread can start: then `parallel` is False
        if not (self.parallel and threaded):
            results = [_outcome(read, key) for key in keys]
            for result in results:
                if isinstance(result, BaseException) and not isinstance(result, Exception):
                    raise result
            return results
        calls = [_Call(read, key) for key in keys]
        with self._cond:
            self._calls.extend(calls)
            self._cond.notify_all()
        for call in calls:
            call.done.wait()
            if isinstance(call.result, BaseException) and not isinstance(call.result, Exception):
                raise call.result
        return [call.result for call in calls]

    def _work(self) -> None:
        while True:
            task = self._next_task()
            if task is None:
                return
            if isinstance(task, _Call):
                task.run()
            else:
                self._fetch(task)
            self._grow()

    def _next_task(self) -> _Call | TableRead | None:
        with self._cond:
            while not self._stopped:
                if self._calls:
                    return self._calls.popleft()
                # A stop being drained starts no new segment request.
                read = None if stopping.stopping() else self._choose()
                if read is not None:
                    read.in_flight = True
                    return read
                self._cond.wait(timeout=_IDLE_WAIT_S)
            return None

    # -- which request next ---------------------------------------------------------------------

    def _choose(self) -> TableRead | None:
        """The first read, in the order of writing, that has room and may send now.

        May send: by the earlier reads' claims (`may_send`), or, near a slow link's end, because
        holding it back would make its segments the run's tail (`holds_up_the_end`).
        """
        active = sorted(
            (r for r in self._reads.values() if not r.finished),
            key=lambda r: r.rank,
        )
        budget = self._connection.budget
        free, frees_in = budget.window_view()
        window = Window(free, frees_in, self._connection.window_s)
        latency = self._latency.estimate_s
        largest = self._largest_size()
        slow = slow_link(window, latency)
        planned = [r for r in active if r.rank != _UNPLANNED]
        left = {r.table_id: self._left(r, largest) for r in planned}
        total = sum(left.values())
        earlier: list[Claim] = []
        for read in active:
            if not read.in_flight and self._has_room(read):
                if read.rank == _UNPLANNED or may_send(earlier, window, latency):
                    return read
                if holds_up_the_end(left[read.table_id], total, window, latency):
                    return read
            if read.rank != _UNPLANNED:
                fetched = read.fetched + (1 if read.in_flight else 0)
                first = not earlier
                earlier.append(
                    claim(read.remaining(), fetched, first=first, largest=largest, slow=slow)
                )
        return None

    @staticmethod
    def _left(read: TableRead, largest: int | None) -> int:
        """Requests the read is counted on to send still: as `claim` counts a later table."""
        fetched = read.fetched + (1 if read.in_flight else 0)
        left = claim(read.remaining(), fetched, first=False, largest=largest).remaining
        return left if left is not None else 1

    def _largest_size(self) -> int | None:
        """Segments of the largest table whose size is known (`_size_known`)."""
        return max((size for r in self._reads.values() if (size := _size_known(r))), default=None)

    def _has_room(self, read: TableRead) -> bool:
        if read.rank == _UNPLANNED:
            return read.fetched == 0  # discovery: the first segment, then it waits for a plan
        if read.stream == self._current_stream:
            return len(read.queue) < QUEUE_DEPTH
        return self._hold.has_room(read.last_size)

    # -- one request ------------------------------------------------------------------------------

    def _fetch(self, read: TableRead) -> None:
        """Send the read's next request and hold its answer (any thread; one per read at once).

        All or nothing: any failure, of the request or of holding its answer (a full disk),
        ends the read with that error, raised when its table is reached. A worker never dies
        with a segment lost on the way (the cursor already past it), and never takes the read
        on silently.
        """
        held: Held | None = None
        try:
            with self._connection.budget.priority(read.rank):
                detail, body = self._request(read)
            keep = detail is not None and (read.rank != _UNPLANNED or self._keep_first)
            if keep:
                held = self._hold.keep(detail, body, in_memory=read.stream == self._current_stream)
        except Exception as exc:  # noqa: BLE001 - handed to the thread that writes the table
            with self._cond:
                read.error = exc
                read.in_flight = False
                self._cond.notify_all()
            return
        with self._cond:
            read.in_flight = False
            if detail is not None and not read.abandoned and not self._stopped:
                if held is not None:
                    read.queue.append(held)
                read.fetched += 1
                read.last_size = len(body)
                read.fetched_all = read.cursor.done
            elif held is not None:
                self._hold.drop(held)
            self._cond.notify_all()

    def _request(self, read: TableRead) -> tuple[dict[str, Any] | None, bytes]:
        """The read's next segment, checked; a refused resume point starts the table again."""
        cursor = read.cursor
        try:
            answer = self._connection.fetch(segment_path(read.table_id), cursor.params)
        except MapTableAPIError as exc:
            if not cursor.resumed:
                raise
            self._restart(read, f"MapTable refused it ({one_line(str(exc), 200)})")
            return None, b""
        try:
            detail = cursor.accept(answer.detail)
        except ResumeRefusedError as exc:
            self._restart(read, str(exc))
            detail = cursor.accept(answer.detail)
        if detail.get("columns") is not None and read.columns is None and not read.planned:
            # Kept until the sync plans the table: only what the tap reads of them.
            read.columns = column_essentials(detail.get("columns"))
        return detail, answer.body

    def _restart(self, read: TableRead, why: str) -> None:
        with self._cond:
            read.restarted = why
            read.cursor.restart()
            read.from_start = True

    # -- discovery --------------------------------------------------------------------------------

    def first_columns(
        self,
        table_ids: list[str],
        report: Callable[[int, int], None] | None = None,
        every_s: float = 60.0,
    ) -> dict[str, Any]:
        """Each table's first segment, read once (in parallel when allowed): its columns or error.

        The segments stay held for a sync in this process, which then does not ask again.
        `report(done, total)` is called every `every_s` while it waits (a large app's discovery
        lasts minutes).
        """
        todo = []
        with self._cond:
            for table_id in table_ids:
                if table_id not in self._reads:
                    cursor = SegmentCursor(table_id)
                    self._reads[table_id] = TableRead(table_id, "", _UNPLANNED, cursor)
                    todo.append(self._reads[table_id])
            self._cond.notify_all()
        if self.parallel:
            self._start()
        if not self.parallel:
            for read in todo:
                self._fetch(read)
        out: dict[str, Any] = {}
        due = time.monotonic() + every_s
        with self._cond:
            for table_id in table_ids:
                read = self._reads[table_id]
                while read.fetched == 0 and read.error is None and not self._stopped:
                    self._cond.wait(timeout=_IDLE_WAIT_S)
                    if report is not None and time.monotonic() >= due:
                        due += every_s
                        report(self._first_read(table_ids), len(table_ids))
                out[table_id] = read.error if read.error is not None else read.columns
        return out

    def _first_read(self, table_ids: list[str]) -> int:
        """How many of these tables have their first segment in (or its error)."""
        reads = (self._reads[table_id] for table_id in table_ids)
        return sum(1 for read in reads if read.fetched or read.error is not None)

    # -- the sync ---------------------------------------------------------------------------------

    def plan(self, plans: list[ReadPlan]) -> None:
        """The tables this sync writes, in the order it writes them, and where each starts.

        A table whose first segment discovery already read continues from it, unless it resumes
        after an earlier run's resume point: then that segment (whose rows were sent by the
        earlier run) is dropped, and its columns stay known.
        """
        with self._cond:
            for rank, plan in enumerate(plans):
                read = self._reads.get(plan.table_id)
                if read is None:
                    cursor = SegmentCursor(plan.table_id, plan.after)
                    read = TableRead(plan.table_id, plan.stream, rank, cursor)
                    self._reads[plan.table_id] = read
                elif plan.after is not None:
                    while read.queue:
                        self._hold.drop(read.queue.pop(0))
                    read.cursor = SegmentCursor(plan.table_id, plan.after)
                    read.fetched = 0
                    read.fetched_all = False
                read.from_start = plan.after is None and not plan.done
                read.stream, read.rank, read.planned = plan.stream, rank, True
                read.columns = None  # discovery has them; the segments carry their own
                read.expected_segments = plan.expected_segments
                if plan.done:
                    while read.queue:
                        self._hold.drop(read.queue.pop(0))
                    read.fetched_all = True
                self._by_stream[plan.stream] = read
            for table_id, read in list(self._reads.items()):
                if not read.planned:
                    read.abandoned = True
                    while read.queue:
                        self._hold.drop(read.queue.pop(0))
                    del self._reads[table_id]
            self._cond.notify_all()
        self._start()

    def work_left(self) -> WorkLeft:
        """The requests the planned reads still have to send, as far as is known."""
        known = unknown = longest = 0
        with self._cond:
            reads = [read for read in self._reads.values() if read.rank != _UNPLANNED]
            sizes = [size for read in reads if (size := _size_known(read))]
            typical = typical_size(sizes, [read.fetched + 1 for read in reads if _being_read(read)])
            at_count = 0  # tables of unknown size being read, counted at their last request
            for read in reads:
                if read.finished:
                    continue
                left = read.remaining()
                if left is None:
                    unknown += 1
                    left = requests_left(read.fetched, read.in_flight, typical)
                    if typical is not None and read.fetched + 1 >= typical and _being_read(read):
                        at_count += 1
                known += left
                longest = max(longest, left)
        return WorkLeft(
            known,
            unknown,
            longest,
            typical if unknown else None,
            typical_from_whole=bool(sizes),
            lower_bound=bool(unknown) and typical is None,
            at_count=at_count,
        )

    def read_of(self, stream: str) -> TableRead | None:
        """The planned read of `stream`, if the sync writes it."""
        return self._by_stream.get(stream)

    def segments(self, read: TableRead) -> Iterator[dict[str, Any]]:
        """The read's segments in order, for the thread that writes them (the main thread).

        A failure of the read is raised here, when its table is reached. A read left before its
        end (the run is stopping, or a dry run took enough) fetches nothing more.
        """
        with self._cond:
            self._current_stream = read.stream
            self._cond.notify_all()
        # With workers, segments answered ahead are written before a stop takes effect.
        draining = stopping.draining() if self.parallel else contextlib.nullcontext()
        finished = False
        try:
            with draining:
                while True:
                    held = self._next_held(read)
                    if held is None:
                        finished = True
                        return
                    yield self._hold.take(held)
        finally:
            if not finished:
                self._abandon(read)

    def _next_held(self, read: TableRead) -> Held | None:
        while True:
            if stopping.requested() is not None:
                return self._drained(read)
            with self._cond:
                idle = not read.queue and not read.finished and self.parallel
                if idle:
                    if self._stopped:
                        raise ReaderClosedError(read.stream)
                    self._cond.wait(timeout=_IDLE_WAIT_S)
            if idle:
                # Outside the lock: the workers go on while the writer uses its idle time.
                self._on_wait()
                continue
            with self._cond:
                if read.queue:
                    held = read.queue.pop(0)
                    self._cond.notify_all()
                    return held
                if read.error is not None:
                    error, read.error = read.error, None
                    read.abandoned = True
                    raise error
                if read.finished:
                    return None
                if self._stopped:
                    raise ReaderClosedError(read.stream)
            self._fetch(read)  # one request at a time: the main thread fetches

    def _drained(self, read: TableRead) -> Held | None:
        """While a stop drains: the read's next segment already answered, None at its end.

        At the first segment not yet answered (or `stopping.DRAIN_S` after the signal) the stop
        takes effect: `StopRequestedError` is raised here, between two segments, and the tap
        writes its STATE.
        """
        if not self._drain_logged:
            self._drain_logged = True
            LOGGER.info(
                "Stopping: writing the segments already answered first (a second signal "
                "stops at once)."
            )
        with self._cond:
            if read.queue and time.monotonic() < stopping.drain_deadline():
                held = read.queue.pop(0)
                self._cond.notify_all()
                return held
            if read.fetched_all and not read.queue and read.error is None:
                return None
        stopping.stop_if_requested()
        raise ReaderClosedError(read.stream)  # the stop was taken by another thread meanwhile

    def _abandon(self, read: TableRead) -> None:
        with self._cond:
            read.abandoned = True
            while read.queue:
                self._hold.drop(read.queue.pop(0))
            self._cond.notify_all()


@dataclass
class _Call:
    """A plain request for a worker (a workspace detail), waited for by its caller."""

    read: Callable[[Any], Any]
    key: Any
    result: Any = None
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        self.result = _outcome(self.read, self.key)
        self.done.set()


def _outcome(read: Callable[[Any], Any], key: Any) -> Any:
    """`read(key)`, or the exception it raised (a BaseException too: raised by `map`)."""
    try:
        return read(key)
    except BaseException as exc:  # noqa: BLE001 - handed back, raised for its key alone
        return exc
