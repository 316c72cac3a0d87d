"""The one retry policy: how often a failed request is tried again, and how long every wait is.

Two kinds of "try again" exist, and both are described here:
- A transient failure (5xx, proxy page, dropped connection, timeout, cut-off JSON) is retried with
  exponential backoff and full jitter, `max_tries` times in all. The policy produces the same
  `backoff.on_exception` decorator the SDK builds for streams, and streams, token calls and
  discovery all use it (the streams through the SDK's `request_decorator` hook).
- A rate-limit answer (429) is a signal to wait, not a failure: the budget's adapter waits as the
  server says, within a bound, and never counts it as a try; after `max_rate_limit_waits` waits
  in a row for one request the run ends with one line.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import backoff
import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_maptable.classify import network_failure

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from backoff.types import Details

LOGGER = logging.getLogger("tap_maptable.retry")
F = TypeVar("F", bound="Callable[..., Any]")

MAX_TRIES = 6
BACKOFF_CAP_S = 60.0
MAX_RATE_LIMIT_WAITS = 8

# What a later try may fix: the SDK's own list for streams, used by every request of the tap.
RETRIABLE_ERRORS: tuple[type[Exception], ...] = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


@dataclass(eq=False)
class RetryPolicy:
    """Tries, backoff with jitter, and rate-limit waits, for every request of a run.

    One per run (the connection's), shared by every thread: besides its settings it holds the
    run's "logged once" state for its own warnings, so it is a plain object compared by
    identity, not a frozen value (it was frozen, and mutated that state all the same).
    """

    max_tries: int = MAX_TRIES
    backoff_cap_s: float = BACKOFF_CAP_S
    max_rate_limit_waits: int = MAX_RATE_LIMIT_WAITS
    window_s: float = 60.0
    _warned: set[str] = field(default_factory=set, init=False, repr=False)
    _warned_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def wait_generator(self) -> Generator[float, None, None]:
        """Exponential backoff (1, 2, 4, ... s, capped), randomised by `jitter`."""
        return backoff.expo(base=2, factor=1, max_value=self.backoff_cap_s)

    @staticmethod
    def jitter(value: float) -> float:
        """Full jitter: spread retries so that many taps do not retry in step."""
        return float(backoff.full_jitter(value))

    def decorate(self, func: F, on_backoff: Callable[[Details], None]) -> F:
        """Wrap `func` so that transient failures are retried by this policy."""
        decorated: F = backoff.on_exception(
            self.wait_generator,
            RETRIABLE_ERRORS,
            max_tries=self.max_tries,
            on_backoff=on_backoff,
            giveup=_cannot_be_fixed_by_retrying,
            jitter=self.jitter,
            logger=None,
        )(func)
        return decorated

    def rate_limit_wait(self, told_s: float | None) -> float:
        """How long to wait after a 429: the server's `Retry-After` when it is sane, else a window.

        A whole window is the one wait sure to free the server's count. No header can make the
        tap wait longer than that: a huge, infinite, NaN or negative value (a date far ahead or
        already past) is replaced by a window and logged once per run; an unreadable one counts
        as no header (a window). So a bad header can never hang a run or the runs after it.
        """
        if told_s is None:
            return self.window_s
        if math.isfinite(told_s) and 0 <= told_s <= self.window_s:
            return told_s
        key = "huge" if not math.isfinite(told_s) or told_s > 0 else "negative"
        if self._first_time(key):
            LOGGER.warning(
                "MapTable sent a Retry-After of %s s; waiting one rate-limit window (%g s) "
                "instead.",
                f"{told_s:.3g}",
                self.window_s,
            )
        return self.window_s

    def _first_time(self, warning: str) -> bool:
        """Whether this run has not logged `warning` yet (and now counts it as logged).

        Threads fetching tables in the background wait out 429s too: the check and the mark
        are one step, so that two of them never both log the same warning.
        """
        with self._warned_lock:
            if warning in self._warned:
                return False
            self._warned.add(warning)
            return True


def _cannot_be_fixed_by_retrying(exc: Exception) -> bool:
    """A name that does not resolve or a certificate that does not verify: fail at once."""
    return isinstance(exc, requests.RequestException) and not network_failure(exc).retriable


def log_retry(logger: logging.Logger, policy: RetryPolicy, what: str) -> Callable[[Details], None]:
    """An `on_backoff` handler: one line per retry, naming the failure and the next try."""

    def handler(details: Details) -> None:
        # python-backoff leaves `exception` out of the details it hands on_backoff: the
        # exception being handled is the one this try failed with.
        exc = details.get("exception") or sys.exc_info()[1]
        if isinstance(exc, requests.RequestException):
            reason = f"{network_failure(exc).message} ({what})"
        else:
            reason = str(exc) if isinstance(exc, RetriableAPIError) else f"{exc!r:.200} on {what}"
        logger.warning(
            "Retrying in %.1f s (try %d of %d) after: %s",
            details.get("wait") or 0.0,
            details.get("tries", 0) + 1,
            policy.max_tries,
            reason,
        )

    return handler
