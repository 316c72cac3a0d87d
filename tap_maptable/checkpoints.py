"""When a STATE goes out: after every segment while STATE is small, rarely once it is large.

Every STATE holds every table's bookmark (about 1 KB a table: where it continues and which
column each property carried), so at 1,000 tables each is about 1 MB. Written after every
segment, at MapTable's pace of a request a second, that is a megabyte a second for the target to
read and Meltano to store, for hours. So STATE output is paced by its bytes, as a bucket: it
refills at `STATE_BYTES_PER_S` up to `STATE_BURST_BYTES`, each STATE written takes its size out,
and a STATE is due when the bucket holds the last one's size (a STATE larger than the bucket:
when it is full). A small app gets a STATE after every segment, bursts included (the budget
frees its slots in bursts: a STATE a second let a killed run redo five segments answered in its
last half second, bench figure 10); at 1,000 tables, one every half minute, which a killed run
pays with at most that much reading again. The last STATE of a run, and the one written when it
is stopped or fails, always go out (`force`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

# The STATE output a run may produce per second, on average...
STATE_BYTES_PER_S = 32 * 1024
# ...and at once, above that average: a STATE per segment for apps of up to ~100 tables.
STATE_BURST_BYTES = 128 * 1024


class StateBucket:
    """The STATE bytes a run may write now (may go below zero: a large STATE is a debt)."""

    def __init__(self, now: float) -> None:
        """A full bucket: the first STATEs of a run go out at once."""
        self.tokens = float(STATE_BURST_BYTES)
        self._at = now

    def refill(self, now: float) -> None:
        """Add what the time since the last refill earned, up to the burst."""
        earned = max(0.0, now - self._at) * STATE_BYTES_PER_S
        self.tokens = min(float(STATE_BURST_BYTES), self.tokens + earned)
        self._at = now

    def pay(self, state_bytes: int) -> None:
        """Take a STATE written out of the bucket."""
        self.tokens -= state_bytes

    def allows(self, state_bytes: int) -> bool:
        """Whether a STATE of about this size may go out now."""
        return self.tokens >= min(state_bytes, STATE_BURST_BYTES)


class PacedStateWriter:
    """The SDK's state writer, called when the bucket allows it, or when forced.

    Skipping a STATE never loses data: a STATE vouches for the records before it, and the next
    one (at the latest the forced one when the run ends, is stopped or fails) holds every
    bookmark the skipped one had.
    """

    def __init__(
        self,
        writer: Any,
        state_output: Callable[[], tuple[int, int]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`writer`: the SDK's `StateWriter`.

        `state_output`: the STATE bytes the output wrote so far and the last STATE's size, so
        a STATE the SDK wrote around this writer is paid for too.
        """
        self._writer = writer
        self._state_output = state_output
        self._clock = clock
        self._bucket = StateBucket(clock())
        self._paid = 0  # STATE bytes written and paid for
        self._held_back: Any = None

    def write_state(self, state: Any, *, force: bool = False) -> None:
        """Write `state` if forced or if the bucket allows it; else hold it back."""
        if not force and not self._due():
            self._held_back = state
            return
        self._held_back = None
        self._writer.write_state(state)
        self._pay_for_last()

    def write_held_back(self) -> None:
        """Write the STATE last held back, once it is due (the writing thread is idle).

        Without it, a table's last STATE could wait for the next table's first segment: on a
        budget-bound run, most of a window (bench figure 11).
        """
        if self._held_back is not None and self._due():
            self.write_state(self._held_back)

    def _pay_for_last(self) -> None:
        written, _ = self._state_output()
        self._bucket.pay(written - self._paid)
        self._paid = written

    def _due(self) -> bool:
        self._bucket.refill(self._clock())
        self._pay_for_last()  # a STATE written around this writer
        return self._bucket.allows(self._state_output()[1])
