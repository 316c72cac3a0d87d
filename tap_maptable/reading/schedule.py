"""Which table's request may go next: the table being written first, then the next one.

A table's segments come one after another (each asks for the rows after the last one received),
so one table can use at most one request per round trip. On a fast link that alone can spend the
whole budget; on a slow link it leaves most of it idle. The rule here lets later tables use only
what the earlier ones cannot:

- the first unfinished table (the one being written, or about to be) may always send;
- a later table may send only if, over the coming window, every earlier table still reading
  finds a slot whenever it asks: each asks once per round trip (`latency`), for as many
  requests as it has left (`claim`), and slots come back as the requests already in the window
  leave it.

So on a budget-bound run the first table gets every slot it can use and its STATE comes as soon
as its own segments are in; on a slow link the later tables fill what latency leaves idle, from
the first window on.

On a slow link (`slow_link`: one table alone, one request per answer, can use at most half the
window) two things change, both for the run's end rather than the first table's STATE:

- the table being written, its size unknown, is counted on like a later table (the largest size
  known) once some size is known: guarding it for a request every round trip, over a window,
  held back every later table while it read, one table after another (bench figure 8, 2 s);
- near the end (`holds_up_the_end`), a table whose segments left take longer, one after another,
  than the budget's time for its own requests at the end of the line may send whatever the
  earlier tables claim: the last tables' chains, started last, were the run's tail (figure 8, 4 s).

The functions here are pure: `reader.py` feeds them the window's state, and `tests/` check them
on runs they describe.
"""

from __future__ import annotations

import bisect
import math
import threading
from dataclasses import dataclass

# Weight of the newest answer time in the latency estimate.
_ALPHA = 0.3


@dataclass(frozen=True)
class Claim:
    """What an earlier, unfinished table may still ask for."""

    remaining: int | None  # requests it has left to send, when its size is known


@dataclass(frozen=True)
class Window:
    """The budget as this process sees it: free slots now, and when the taken ones free."""

    free: int
    frees_in: tuple[float, ...]  # seconds from now until each taken slot frees, ascending
    window_s: float


def claim(
    remaining: int | None,
    fetched: int,
    *,
    first: bool,
    largest: int | None,
    slow: bool = False,
) -> Claim:
    """How many requests an earlier table is counted on to ask for.

    Its size known (from the previous run's STATE): what it has left. Unknown, the table being
    written: any number, since its STATE is the one the run waits for and it may be larger than
    every table before it. Unknown, a later table: what the largest table whose size is known
    (`largest`: read whole in this run, or named by the STATE) would have left after the segments
    this one fetched, at least its next request; with no size known, its next request.
    Guarding every table of unknown size against a table of any size left most of a slow link's
    budget idle (bench figure 8): four such tables claim a whole window at one answer per 4 s.
    On a `slow` link the table being written is counted on like a later one once a size is known:
    it can use at most half the window anyway, and guarding it for a request every round trip
    made the run read one table after another (figure 8 at 2 s: 30 asks claimed, 18 slots free).
    With no size known it stays unbounded (a budget-bound run's first table, figure 11).
    """
    if remaining is not None:
        return Claim(remaining)
    if first and (largest is None or not slow):
        return Claim(None)
    return Claim(max(1, (largest or 0) - fetched))


def slow_link(window: Window, latency_s: float | None) -> bool:
    """Whether one table alone, one request per answer, can use at most half the window's slots.

    Then the later tables' requests are what fills the budget, and the run's end, not the first
    table's slots, is what the order of requests decides. Half, not all: at one answer a second
    and 60 a minute one table can still use the whole window, and at 0.5 s per answer and 30 per
    15 s (figure 11) it can too, with little to spare.
    """
    if latency_s is None or latency_s <= 0:
        return False
    limit = window.free + len(window.frees_in)
    return window.window_s / latency_s <= limit / 2


def holds_up_the_end(own: int, left: int, window: Window, latency_s: float | None) -> bool:
    """Whether a later table should send now, whatever the earlier ones claim: the run's tail.

    `own`: the requests this table has left (counted like `claim` counts a later table), `left`:
    those of every unfinished table, this one's included. On a slow link, when the rest of the
    run fits in the window, a table held back until the others' requests are in would finish its
    own, one per round trip, after the budget's own bound (the window admitting the last
    request, plus its answer): so it starts now, while a slot is free. Holding back the last
    tables of figure 8 (4 s) until the earlier ones were read left their 4 segments each for the
    slots freed one at a time at the window's end: 9 s past the budget's bound.
    """
    if latency_s is None or own < 2 or window.free < 1 or not slow_link(window, latency_s):  # noqa: PLR2004 - one request is no chain
        return False
    end = _admitted_in(left, window)
    if end is None:
        return False  # more than a window of work left: the end is not near yet
    others = _admitted_in(left - own, window) or 0.0
    return others + own * latency_s > end + latency_s


def _admitted_in(n: int, window: Window) -> float | None:
    """Seconds from now until the window admits the `n`-th request from now; None beyond it."""
    if n <= window.free:
        return 0.0
    k = n - window.free
    if k > len(window.frees_in):
        return None
    return window.frees_in[k - 1]


def may_send(claims: list[Claim], window: Window, latency_s: float | None) -> bool:
    """Whether the table after these earlier ones (`claims`, first table first) may send now.

    Checked at each of the earlier tables' coming asks (now, then every `latency_s`, over one
    window, the first ask being now: one slot kept for each earlier table at once): the free
    slots, less the one this request takes, plus those freed by then, must cover every ask.
    """
    if not claims:
        return True
    if latency_s is None or latency_s <= 0:
        # No answer measured yet: an earlier table may be able to use the whole budget.
        known = [c.remaining for c in claims]
        if any(left is None for left in known):
            return False
        return window.free - 1 >= sum(left for left in known if left is not None)
    asks = math.ceil(window.window_s / latency_s)
    for step in range(asks + 1):
        freed = bisect.bisect_right(window.frees_in, step * latency_s)
        wanted = sum(
            step + 1 if claim.remaining is None else min(claim.remaining, step + 1)
            for claim in claims
        )
        if window.free - 1 + freed - wanted < 0:
            return False
    return True


# The answer time below which the first workers are all a run gets. They already send several
# requests a second, far beyond MapTable's one; what is left to wait for is the tap itself, and
# more threads only contend for the interpreter: an unthrottled 1,000-table sync on loopback
# (bench figure 12) grew to 16 and took 51 s and 126 MiB at peak, against 40 s and 106 MiB.
SLOW_ANSWER_S = 1.0


def workers_wanted(
    limit: int, window_s: float, latency_s: float | None, *, first: int, most: int
) -> int:
    """How many request workers a reader should have by now: `first`, more on a slow link only.

    More (up to `most`) when answers take `SLOW_ANSWER_S` or longer and the budget would need
    more requests in flight than `first` to stay busy (`in_flight_needed`).
    """
    floor = min(first, most)
    if latency_s is None or latency_s < SLOW_ANSWER_S:
        return floor
    return max(floor, min(most, in_flight_needed(limit, window_s, latency_s)))


def in_flight_needed(limit: int, window_s: float, latency_s: float | None) -> int:
    """Requests in flight at once that keep the budget busy at this answer time.

    One request in flight sends one request per answer, so the budget's rate times the answer
    time keeps it busy on average; twice that, because a window's slots come back in bursts
    (those taken together at its start free together a window later) and a table's segments
    cannot be asked for before the one before them is in. At 60 per 30 s and 4 s an answer
    (bench figure 13) 8 in flight took 1.23 times the run's minimum; growing to this, 1.097.
    """
    if latency_s is None or latency_s <= 0 or window_s <= 0:
        return 1
    return max(1, math.ceil(2 * latency_s * limit / window_s))


class Latency:
    """How long MapTable takes to answer (from sending to the whole answer), smoothed."""

    def __init__(self) -> None:
        """No estimate until the first answer."""
        self._lock = threading.Lock()
        self._estimate: float | None = None

    @property
    def estimate_s(self) -> float | None:
        """The smoothed answer time, None before any answer."""
        return self._estimate

    def observe(self, seconds: float) -> None:
        """Fold in one answer's time."""
        if not math.isfinite(seconds) or seconds < 0:
            return
        with self._lock:
            if self._estimate is None:
                self._estimate = seconds
            else:
                self._estimate += _ALPHA * (seconds - self._estimate)
