"""Stopping on SIGTERM or Ctrl-C: within seconds, with no half-written message, nothing lost.

Meltano stops a pipeline with SIGTERM; a person presses Ctrl-C. Either way the tap abandons the
request in flight (the signal interrupts a socket read or a wait at once) and unwinds, unless it
is writing a Singer message: a message is written whole, and the stop takes effect right after
it. The command line then flushes what was emitted and exits non-zero with one line; the next run
resumes from the last STATE the target received.

While a table's segments are being written by a reader with workers (`draining`), segments
already answered wait in memory for their turn; dropped, they would be asked for again by the
next run. So there a stop is drained: the signal only notes it, the writer sends the segments
already held, in order, until `DRAIN_S` after the signal, and the stop takes effect at the first
segment not yet answered (`stop_if_requested`); no worker starts a new request meanwhile. A stop
still noted when the table's writing ends (its last segment was held) takes effect after the next
message, as one that came while a message was written: the table is completed first. Anywhere
else, and at a second signal, a stop takes effect at once.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C (SIGINT)"}
# The longest a stop waits for the writer to send the segments already answered.
DRAIN_S = 5.0


class StopRequestedError(BaseException):
    """The run was asked to stop (a BaseException, so no `except Exception` swallows it)."""

    def __init__(self, signum: int) -> None:
        """Remember which signal asked."""
        super().__init__(f"stopped by {_NAMES.get(signal.Signals(signum), f'signal {signum}')}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as shells report a process ended by a signal."""
        return 128 + self.signum


class _Guard:
    """Whether a message is being written, and a stop that waits for it to finish."""

    def __init__(self) -> None:
        self.writing = 0
        self.deferred: int | None = None  # takes effect after the message being written
        self.drain = False  # a table's segments are being written: a stop is only noted
        self.requested: int | None = None  # noted, for the writer to drain
        self.requested_at = 0.0  # time.monotonic() of the signal that was noted


_GUARD = _Guard()


def install() -> None:
    """Handle SIGTERM and SIGINT in the main thread (the only thread Python signals reach)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    if _GUARD.drain and _GUARD.requested is None:
        _GUARD.requested, _GUARD.requested_at = signum, time.monotonic()
        return
    if _GUARD.writing:
        _GUARD.deferred = signum
        return
    raise StopRequestedError(signum)


@contextmanager
def draining() -> Iterator[None]:
    """While a table's segments are written: a stop is noted, for the writer to drain.

    A stop still noted at the end (the table was written to its end, or left) takes effect
    after the next message written, or when the run ends (`take_requested`).
    """
    _GUARD.drain = True
    try:
        yield
    finally:
        _GUARD.drain = False
        if _GUARD.requested is not None:
            _GUARD.deferred, _GUARD.requested = _GUARD.requested, None


def stopping() -> bool:
    """Whether a stop was noted and has not yet taken effect (no new request should start)."""
    return _GUARD.requested is not None or _GUARD.deferred is not None


def requested() -> int | None:
    """The signal of a stop noted while draining, not yet taken effect."""
    return _GUARD.requested


def drain_deadline() -> float:
    """Until when (`time.monotonic()`) a noted stop may drain the segments held."""
    return _GUARD.requested_at + DRAIN_S


def take_requested() -> int | None:
    """A stop noted that never took effect (the run or the dry run ended first), forgotten."""
    signum = _GUARD.requested if _GUARD.requested is not None else _GUARD.deferred
    _GUARD.requested = _GUARD.deferred = None
    _GUARD.drain = False
    return signum


def stop_if_requested() -> None:
    """Take a stop noted while draining into effect: raise it here."""
    signum = take_requested()
    if signum is not None:
        raise StopRequestedError(signum)


@contextmanager
def whole_message() -> Iterator[None]:
    """Write a message without a stop cutting it in half; a stop meanwhile takes effect after."""
    _GUARD.writing += 1
    try:
        yield
    finally:
        _GUARD.writing -= 1
    if not _GUARD.writing and _GUARD.deferred is not None:
        signum, _GUARD.deferred = _GUARD.deferred, None
        raise StopRequestedError(signum)
