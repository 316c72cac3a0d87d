"""When a STATE goes out: often enough that a stopped run redoes little, rarely enough for a target.

Every STATE holds every table's bookmark (about 1 KB a table: where it continues and which
column each property carried), so at 1,000 tables each is about 1 MB. Written after every
segment, at MapTable's pace of a request a second, that is a megabyte a second for the target to
read and Meltano to store, for hours. So a STATE waits at least a request's worth of budget (at
most a second) and at least as long as writing its own size at `STATE_BYTES_PER_S` takes: small
apps still get a STATE per segment; at 1,000 tables one every half minute, which a killed run
pays with at most that much reading again. The last STATE of a run, and the one written when it
is stopped or fails, always go out (`force`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

# The STATE output a run may produce per second, on average.
STATE_BYTES_PER_S = 32 * 1024


def interval_s(base_s: float, state_bytes: int) -> float:
    """Seconds between two STATE messages of this size."""
    return max(base_s, state_bytes / STATE_BYTES_PER_S)


class PacedStateWriter:
    """The SDK's state writer, called at most once per `interval_s` unless forced.

    Skipping a STATE never loses data: a STATE vouches for the records before it, and the next
    one (at the latest the forced one when the run ends, is stopped or fails) holds every
    bookmark the skipped one had.
    """

    def __init__(
        self,
        writer: Any,
        base_s: Callable[[], float],
        last_state: Callable[[], tuple[float, int]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`writer`: the SDK's `StateWriter`; `base_s`: a request's worth of budget, at most 1 s.

        `last_state`: when the last STATE line went out (`time.monotonic()`) and its size, as
        the output saw it, so a STATE the SDK wrote around this writer counts too.
        """
        self._writer = writer
        self._base_s = base_s
        self._last_state = last_state
        self._clock = clock
        self._held_back: Any = None

    def write_state(self, state: Any, *, force: bool = False) -> None:
        """Write `state` if forced or if the last STATE went out long enough ago."""
        if not force and not self._due():
            self._held_back = state
            return
        self._held_back = None
        self._writer.write_state(state)

    def write_held_back(self) -> None:
        """Write the STATE last held back, once it is due (the writing thread is idle).

        Without it, a table's last STATE could wait for the next table's first segment: on a
        budget-bound run, most of a window (bench figure 11).
        """
        if self._held_back is not None and self._due():
            self.write_state(self._held_back)

    def _due(self) -> bool:
        last_at, last_bytes = self._last_state()
        return self._clock() - last_at >= interval_s(self._base_s(), last_bytes)
