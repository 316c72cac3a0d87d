"""How far a run is, and how long it has left: one line per budget window, one at the end.

At 60 requests a minute a large app's run lasts hours. Whoever watches its log (Meltano's, an
orchestrator's) wants to know it is alive and when it will end. The tap can say, because its
pace is set by a known budget: the requests left (each table's size from its last complete read,
in the STATE) at the budget's rate, or at the rate answers come when MapTable is the slower.
A table of unknown size (a first run) counts as one more request: the estimate then says "at
least".

A run shorter than one window logs no progress line, only the summary: small runs stay short.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

LOGGER = logging.getLogger("tap_maptable.progress")


@dataclass(frozen=True)
class WorkLeft:
    """The requests a run still has to send, as far as it knows."""

    requests: int  # known, plus one for each table of unknown size
    unknown_tables: int  # tables whose size is not known (each may need more)
    longest_table: int  # requests of the table with the most left (its segments are serial)


@dataclass(frozen=True)
class Pace:
    """What sets the pace: the budget, and how fast MapTable answers."""

    limit: int
    window_s: float
    latency_s: float | None
    parallel: int


def seconds_left(work: WorkLeft, pace: Pace, free_slots: int) -> float:
    """The time the requests left take: at the budget's rate, or as fast as answers come."""
    if work.requests <= 0:
        return 0.0
    budget_bound = max(0, work.requests - free_slots) * pace.window_s / pace.limit
    latency = pace.latency_s or 0.0
    latency_bound = max(
        work.longest_table * latency, work.requests * latency / max(1, pace.parallel)
    )
    return max(budget_bound, latency_bound)


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

    def __init__(
        self,
        *,
        tables: int,
        pace: Callable[[], Pace],
        work_left: Callable[[], WorkLeft],
        requests: Callable[[], tuple[int, int, int]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`requests()` gives (requests sent, 429 answers, free slots in the window now)."""
        self.tables = tables
        self._pace = pace
        self._work_left = work_left
        self._requests = requests
        self._clock = clock
        self._started = clock()
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
        sent, limited, free = self._requests()
        pace = self._pace()
        work = self._work_left()
        left = max(1.0, seconds_left(work, pace, free)) if work.requests else 0.0
        estimate = (
            f"at least {duration(left)} left ({work.unknown_tables} table(s) of unknown size)"
            if work.unknown_tables
            else f"about {duration(left)} left"
        )
        return (
            f"Progress: {self._tables_text()}, {self.rows:,} rows sent, {sent:,} requests "
            f"({limited} x 429) in {duration(self._clock() - self._started)}; {estimate}: "
            f"{work.requests:,} request(s) to go at {pace.limit} per {pace.window_s:g} s."
        )

    def summary(self) -> str:
        """The run's last line: tables, rows, requests, 429s, skipped tables, elapsed time."""
        sent, limited, _ = self._requests()
        return (
            f"Run complete: {self._tables_text()}, {self.rows:,} rows sent, {sent:,} requests, "
            f"{limited} x 429, in {duration(self._clock() - self._started)}."
        )

    def _tables_text(self) -> str:
        skipped = f" ({self.skipped} skipped)" if self.skipped else ""
        return f"{self.done} of {self.tables} tables{skipped}"
