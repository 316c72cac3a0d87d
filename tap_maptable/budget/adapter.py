"""The HTTP adapter that makes every request of a run pay into the budget and wait out 429s.

Mounted on every session of the run (the streams' and the authenticator's), so that no request can
bypass the budget, however it is made. A 429 is waited out here, not retried by the backoff that
handles failures: it is a signal to wait, and must not use up a request's tries. How long to wait,
and how often, is the retry policy's word (`retry.py`); what a response means is `classify`'s.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter

from tap_maptable.classify import Outcome, classify

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_maptable.budget.limiter import RequestBudget
    from tap_maptable.retry import RetryPolicy

LOGGER = logging.getLogger("tap_maptable.budget")


class ThrottledAdapter(HTTPAdapter):
    """An `HTTPAdapter` that takes a budget slot before every send and waits out 429s."""

    def __init__(
        self,
        budget: RequestBudget,
        policy: RetryPolicy,
        before_send: Callable[[requests.PreparedRequest], None] | None = None,
        on_answer: Callable[[float], None] | None = None,
        **kwargs: Any,
    ) -> None:
        """Wrap `budget`.

        `before_send` runs after each wait (the authenticator's last look); `on_answer` is told
        how long each answer took to arrive, from sending to its last byte.
        """
        super().__init__(**kwargs)
        self.budget = budget
        self.policy = policy
        self.before_send = before_send
        self.on_answer = on_answer

    def send(
        self,
        request: requests.PreparedRequest,
        *args: Any,
        **kwargs: Any,
    ) -> requests.Response:
        """Send once the budget allows; on a rate-limit answer, wait as told and send again."""
        waits = 0
        while True:
            self._take_slot(request)
            sent = time.monotonic()
            response = super().send(request, *args, **kwargs)
            # urllib3 returns at the headers, and `classify` reads the body just below: read
            # it first, so the time told is the whole answer's (on a slow download the body,
            # not the headers, is what keeps a request in flight).
            _read_body(response, request)
            if self.on_answer is not None:
                self.on_answer(time.monotonic() - sent)
            verdict = classify(response)
            if (
                verdict.outcome is not Outcome.RATE_LIMITED
                or waits >= self.policy.max_rate_limit_waits
            ):
                return response
            wait = self.policy.rate_limit_wait(verdict.retry_after_s)
            waits += 1
            LOGGER.warning(
                "MapTable answered 429 (rate limited) for %s %s; waiting %.1f s before "
                "retrying. Another client of the same app may be using its budget.",
                request.method,
                request.path_url.split("?", 1)[0],
                wait,
            )
            response.close()
            self.budget.pause(wait)

    def _take_slot(self, request: requests.PreparedRequest) -> None:
        """Take a slot just before the request leaves, with its token applied.

        A token due for renewal is renewed before taking a slot (a renewal takes its own). If
        the token had to be renewed after the wait (a wait can outlast a short-lived token), the
        slot taken before the renewal is stale: the request would leave a round trip after its
        stamp, and the window the tap keeps would differ from the server's. So it takes another
        (the stale one is spent, never overspent).
        """
        while True:
            if self.before_send is not None:
                self.before_send(request)
            self.budget.acquire()
            granted = time.monotonic()
            if self.before_send is not None:
                self.before_send(request)
            if time.monotonic() - granted <= self.budget.spec.margin_s / 4:
                return
            LOGGER.debug("A request's slot went stale before it left; taking another.")


def _read_body(response: requests.Response, request: requests.PreparedRequest) -> None:
    """Read the answer's body; a failure names the request (requests leaves it out there).

    Without it, a read timeout in the middle of a body said "cannot reach MapTable" with no
    host.
    """
    try:
        _ = response.content
    except requests.RequestException as exc:
        if exc.request is None:
            exc.request = request
        raise


def throttled_session(
    budget: RequestBudget,
    policy: RetryPolicy,
    before_send: Callable[[requests.PreparedRequest], None] | None = None,
    connections: int = 10,
    on_answer: Callable[[float], None] | None = None,
) -> requests.Session:
    """A session whose every request pays into `budget` (both http and https).

    `connections` kept open per host: at least the requests in flight at once, or urllib3
    discards (and reopens) connections under parallel requests.
    """
    session = requests.Session()
    adapter = ThrottledAdapter(
        budget, policy, before_send, on_answer=on_answer, pool_maxsize=connections
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
