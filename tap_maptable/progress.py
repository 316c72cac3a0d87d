"""How far a run is, and how long it has left: one line per budget window, one at the end.

At 60 requests a minute a large app's run lasts hours. Whoever watches its log (Meltano's, an
orchestrator's) wants to know it is alive and when it will end. The tap can say, because its
pace is set by a known budget: the requests left (each table's size from its last complete read,
in the STATE) at the budget's rate, or at the rate answers come when MapTable is the slower.
A table of unknown size (a first run) counts as the mean size of the tables read whole so far
(in this run, or named by the STATE): the estimate says so. Before any is read whole, as the
most segments a table being read is known to have so far: at 60 a minute a first table of 300
segments is read for five minutes, during which a run of 1,000 tables could only say "at least
17 min" (one request a table) with hours left. Before any size is guessed, each counts as one
more request: the time left is then a lower bound, and the line says "at least". A table being
read that has reached the count it is counted at is counted at one more request, and may need
many more: the line says how many such tables there are. The budget's part follows the window
as it is: the slots taken in it free at known times, and a run's requests go out in bursts as
they do.

A run shorter than one window logs no progress line, only the summary: small runs stay short.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

LOGGER = logging.getLogger("tap_maptable.progress")


@dataclass(frozen=True)
class WorkLeft:
    """The requests a run still has to send, as far as it knows."""

    requests: int  # known, plus each table of unknown size at `typical_size` (else one)
    unknown_tables: int  # tables whose size is not known (each may need more)
    longest_table: int  # requests of the table with the most left (its segments are serial)
    typical_size: int | None = None  # segments a table of unknown size is counted at
    typical_from_whole: bool = True  # that count is the mean of tables read whole, or else the
    # most segments a table being read has so far
    lower_bound: bool = False  # every table is counted at its fewest requests: "at least"
    at_count: int = 0  # tables being read that reached the count: each may need more than one


def typical_size(sizes: list[int], reading: Iterable[int] = ()) -> int | None:
    """The segments a table of unknown size is counted at: the mean of the sizes known.

    `reading`: the segments each table still being read is known to have (those fetched and
    one more), counted too where that is above the mean. Tables are read in the order they
    are written, not by size: when the first read whole are small ones, a large table half
    read already shows the mean is more (below the mean, a part read says nothing). None read
    whole yet: the largest part read, the best guess there is (None before any): each part is
    less than its table, and most tables being read then have only their first segment.
    """
    if not sizes:
        return max(reading, default=None)
    mean = sum(sizes) / len(sizes)
    counted = [*sizes, *(size for size in reading if size > mean)]
    return math.ceil(sum(counted) / len(counted))


def requests_left(fetched: int, in_flight: bool, typical: int | None) -> int:  # noqa: FBT001
    """What a table of unknown size has left, counted at `typical` segments: at least one."""
    if typical is None:
        return 1
    return max(1, typical - fetched - (1 if in_flight else 0))


@dataclass(frozen=True)
class Pace:
    """What sets the pace: the budget, and how fast MapTable answers."""

    limit: int
    window_s: float
    latency_s: float | None
    parallel: int


def seconds_left(
    work: WorkLeft, pace: Pace, free_slots: int, frees_in: tuple[float, ...] | None = None
) -> float:
    """The time the requests left take: at the budget's rate, or as fast as answers come.

    `frees_in`: when each slot this process took in the window frees (the budget's view). The
    last request goes when its slot frees: slots free again a window after they are taken, so
    requests leave in the bursts the window allows. Counting a steady rate instead was up to a
    window wrong: 1 min 43 s said, 62 s taken, at 60 a minute. Slots other processes sharing
    the budget hold are not in the view: the estimate is this process's alone, as before.
    """
    if work.requests <= 0:
        return 0.0
    if frees_in is not None and free_slots + len(frees_in) == pace.limit:
        starts = sorted([0.0] * free_slots + list(frees_in))
        cycles, index = divmod(work.requests - 1, pace.limit)
        budget_bound = starts[index] + cycles * pace.window_s
    else:  # the shared limit fell below the slots this process holds: no schedule to follow
        budget_bound = max(0, work.requests - free_slots) * pace.window_s / pace.limit
    latency = pace.latency_s or 0.0
    latency_bound = max(
        work.longest_table * latency, work.requests * latency / max(1, pace.parallel)
    )
    # The last request, once its slot frees, still waits for its answer: at 2 s an answer the
    # budget's bound alone said 14 s with 21 s left.
    return max(budget_bound + latency, latency_bound)


def discovery_line(  # noqa: PLR0913 - keyword-only, each a count the tap has
    *,
    done: int,
    total: int,
    requests: tuple[int, int],
    elapsed: float,
    pace: Pace,
    window: tuple[int, tuple[float, ...]],
) -> str:
    """`Discovery: 230 of 1,000 tables' columns read, ...; about 12 min left.`.

    Discovery reads each table's first segment: at 1,000 tables and 60 a minute, 17 minutes
    that said nothing. One request per table left, at the budget's pace or the answers'.
    """
    left = total - done
    free, frees_in = window
    seconds = seconds_left(WorkLeft(left, 0, 1), pace, free, frees_in) if left else 0.0
    estimate = f"about {duration(max(1.0, seconds))} left"
    tail = _counts_and_time_left(requests, elapsed, estimate, f"{left:,}", pace)
    return f"Discovery: {done:,} of {total:,} tables' columns read, {tail}"


def _counts_and_time_left(
    requests: tuple[int, int], elapsed: float, estimate: str, to_go: str, pace: Pace
) -> str:
    """The part a progress line and a discovery line share (README's examples parse it).

    `to_go`: the requests left, as said (`1,234`, or `at least 12` when that is a bound).
    """
    sent, limited = requests
    return (
        f"{sent:,} requests ({limited} x 429) in {duration(elapsed)}; {estimate}: "
        f"{to_go} request(s) to go at {pace.limit} per {pace.window_s:g} s."
    )


def duration(seconds: float) -> str:
    """`2 h 05 min`, `4 min 10 s`, `12 s`: as a person reads a time."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


class Progress:
    """A run's counts, its progress lines while it lasts and its summary when it ends."""

    def __init__(  # noqa: PLR0913 - keyword-only, each a source the tap wires in
        self,
        *,
        tables: int,
        pace: Callable[[], Pace],
        work_left: Callable[[], WorkLeft],
        requests: Callable[[], tuple[int, int]],
        window: Callable[[], tuple[int, tuple[float, ...]]],
        clock: Callable[[], float] = time.monotonic,
        elapsed: float = 0.0,
    ) -> None:
        """Where the counts come from.

        `requests()` gives (requests sent, 429 answers); `window()` the budget's free slots now
        and in how many seconds each taken one frees. `elapsed`: how long the run has already
        lasted (its discovery's requests are counted too, so its time must be).
        """
        self.tables = tables
        self._pace = pace
        self._work_left = work_left
        self._requests = requests
        self._window = window
        self._clock = clock
        self._started = clock() - max(0.0, elapsed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.done = 0
        self.skipped = 0
        self.rows = 0

    def rows_sent(self, count: int) -> None:
        """Rows the main thread has written."""
        with self._lock:
            self.rows += count

    def table_done(self, *, skipped: bool = False) -> None:
        """A table's read ended (complete, or skipped)."""
        with self._lock:
            self.done += 1
            self.skipped += skipped

    def start(self) -> None:
        """Log a progress line once per budget window until `stop`."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="tap-maptable-progress", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """No progress line after this one."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._pace().window_s):
            if self.done >= self.tables:
                return
            LOGGER.info("%s", self.line())

    def line(self) -> str:
        """`Progress: 3 of 6 tables, 12,345 rows sent, 187 requests ...; about 4 min left.`."""
        free, frees_in = self._window()
        pace = self._pace()
        work = self._work_left()
        left = max(1.0, seconds_left(work, pace, free, frees_in)) if work.requests else 0.0
        bound = "at least" if work.lower_bound else "about"
        estimate = f"{bound} {duration(left)} left"
        if work.unknown_tables:
            estimate += f" ({work.unknown_tables} table(s) of unknown size"
            if work.typical_size is not None:
                basis = (
                    "the mean of those read"
                    if work.typical_from_whole
                    else "the most a table being read has so far"
                )
                estimate += f" counted at {work.typical_size} segment(s), {basis}"
                if work.at_count:
                    estimate += f"; {work.at_count} being read reached that and may need more"
            estimate += ")"
        elapsed = self._clock() - self._started
        to_go = f"{bound} {work.requests:,}" if work.lower_bound else f"{work.requests:,}"
        tail = _counts_and_time_left(self._requests(), elapsed, estimate, to_go, pace)
        return f"Progress: {self._tables_text()}, {self.rows:,} rows sent, {tail}"

    def summary(self) -> str:
        """The run's last line: tables, rows, requests, 429s, skipped tables, elapsed time."""
        sent, limited = self._requests()
        return (
            f"Run complete: {self._tables_text()}, {self.rows:,} rows sent, {sent:,} requests, "
            f"{limited} x 429, in {duration(self._clock() - self._started)}."
        )

    def _tables_text(self) -> str:
        skipped = f" ({self.skipped} skipped)" if self.skipped else ""
        return f"{self.done} of {self.tables} tables{skipped}"
