"""Per-app sliding-window-log rate limiter.

The vendor page only says "60 requests per minute per application"; a sliding log is the strictest
reading, so a client that survives it survives fixed windows and buckets too.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque


class SlidingWindowLimiter:
    """Admit at most ``limit`` requests per key in any window of ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        """``limit`` 0 disables limiting."""
        self._limit = limit
        self._window = window
        self._lock = threading.Lock()
        self._log: dict[str, deque[float]] = {}

    def admit(self, key: str, now: float | None = None) -> int:
        """Record and admit a request, or return the Retry-After seconds (>= 1) if over the limit.

        Returns:
            0 when admitted; otherwise the whole seconds until the oldest admitted request leaves
            the window. Rejected requests are not recorded.
        """
        if self._limit <= 0:
            return 0
        now = time.monotonic() if now is None else now
        with self._lock:
            log = self._log.setdefault(key, deque())
            while log and log[0] <= now - self._window:
                log.popleft()
            if len(log) >= self._limit:
                return max(1, math.ceil(log[0] + self._window - now))
            log.append(now)
            return 0
