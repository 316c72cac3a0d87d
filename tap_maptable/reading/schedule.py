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
the first window on. The functions here are pure: `reader.py` feeds them the window's state, and
`tests/` check them on runs they describe.
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


def claim(remaining: int | None, fetched: int, *, first: bool, largest: int | None) -> Claim:
    """How many requests an earlier table is counted on to ask for.

    Its size known (from the previous run's STATE): what it has left. Unknown, the table being
    written: any number, since its STATE is the one the run waits for and it may be larger than
    every table before it. Unknown, a later table: what the largest table whose size is known
    (`largest`: read whole in this run, or named by the STATE) would have left after the segments
    this one fetched, at least its next request; with no size known, its next request.
    Guarding every table of unknown size against a table of any size left most of a slow link's
    budget idle (bench figure 8): four such tables claim a whole window at one answer per 4 s.
    """
    if remaining is not None:
        return Claim(remaining)
    if first:
        return Claim(None)
    return Claim(max(1, (largest or 0) - fetched))


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
