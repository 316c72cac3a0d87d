"""Which table's request may go next: the table being written first, then the next one.

A table's segments come one after another (each asks for the rows after the last one received),
so one table can use at most one request per round trip. On a fast link that alone can spend the
whole budget; on a slow link it leaves most of it idle. The rule here lets later tables use only
what the earlier ones cannot:

- the first unfinished table (the one being written, or about to be) may always send;
- a later table may send only while the window keeps enough free slots for every earlier table
  still reading: each earlier table is owed the requests it can still make within one window
  (one per round trip, `window / latency`), less the ones it already made in the current
  window (those slots come back to it as they expire), and never more than it has left when its
  size is known (from the previous run's STATE), plus one spare slot for the first table.

So on a budget-bound run the first table gets every slot it can use and its STATE comes as soon
as its own segments are in; on a slow link the later tables fill what latency leaves idle. The
functions here are pure: `reader.py` feeds them the window's counts, and `tests/` simulate runs.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

# Weight of the newest answer time in the latency estimate.
_ALPHA = 0.3


@dataclass(frozen=True)
class Claim:
    """What an earlier, unfinished table may still need of the window."""

    sent_in_window: int  # its requests sent within the last window
    remaining: int | None  # requests it has left to send, when its size is known


def owed(claim: Claim, per_window: int) -> int:
    """Slots an earlier table is owed: its requests still to come within one window."""
    want = max(0, per_window - claim.sent_in_window)
    if claim.remaining is not None:
        want = min(want, claim.remaining)
    return want


def may_send(claims: list[Claim], free_slots: int, per_window: int) -> bool:
    """Whether the table after these earlier ones (`claims`, first table first) may send now.

    The first unfinished table always may (it has no earlier ones); a later one only while the
    free slots, less the one it would take, cover what every earlier one is owed, plus a spare
    for the first.
    """
    if not claims:
        return True
    reserved = 1 + sum(owed(claim, per_window) for claim in claims)
    return free_slots - 1 >= reserved


def per_window(limit: int, window_s: float, latency_s: float | None) -> int:
    """Requests one table can send in a window, one round trip each (never above `limit`).

    Without a measured latency, assume one table can use the whole budget: later tables then
    wait for the first answer before they start, rather than crowd out the first table.
    """
    if latency_s is None or latency_s <= 0:
        return limit
    return min(limit, math.ceil(window_s / latency_s))


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
