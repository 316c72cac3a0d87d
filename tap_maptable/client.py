"""The base stream: MapTable's envelope, its errors, and how requests are retried.

Every stream shares the tap's one authenticator and one throttled session (connection pool and
request budget), so the number of streams never multiplies logins or bypasses the budget.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import backoff
from singer_sdk.streams import RESTStream

from tap_maptable import api
from tap_maptable.auth import is_auth_failure
from tap_maptable.envelope import Envelope, EnvelopeError, read_envelope
from tap_maptable.errors import (
    AuthenticationError,
    MapTableAPIError,
    RateLimitExhaustedError,
    TransientAPIError,
    describe_failure,
)
from tap_maptable.throttle import rate_limit_wait

if TYPE_CHECKING:
    from collections.abc import Generator, Iterable

    import requests
    from backoff.types import Details
    from singer_sdk.helpers.types import Context

    from tap_maptable.tap import TapMapTable

# Retries of a transient failure (5xx, proxy page, dropped connection, timeout, cut-off JSON).
MAX_TRIES = 6
BACKOFF_CAP_S = 60.0


class MapTableStream(RESTStream[Any]):
    """A MapTable endpoint: one envelope, one way to fail, one way to retry."""

    _tap: TapMapTable

    @property
    def url_base(self) -> str:
        """The API root, from the `api_url` setting."""
        return str(self.config["api_url"]).rstrip("/")

    @property
    def authenticator(self) -> Any:
        """The tap's single authenticator (not one per stream: one login per run)."""
        return self._tap.authenticator

    @property
    def requests_session(self) -> requests.Session:
        """The tap's single throttled session: every request pays into one budget."""
        return self._tap.http_session

    @property
    def http_headers(self) -> dict[str, str]:
        """JSON in, JSON out; the user agent identifies the tap (or the user's own string)."""
        return {"Content-Type": "application/json", "User-Agent": self._tap.user_agent}

    @property
    def timeout(self) -> int:
        """Seconds to wait for an answer before the request counts as failed (and is retried)."""
        return int(self.config.get("request_timeout", 60))

    def request_one(self, context: Context | None) -> Any:
        """Send one request outside the paged record flow and return its envelope's detail.

        Discovery needs single answers (a workspace detail, a table's first segment) that are
        not records. They go through the same authenticator, budget, `validate_response` and
        backoff as records do: the SDK's `request_records` only pages, so we call the same
        decorated `_request` it calls.
        """
        prepared = self.build_prepared_request(
            method="GET",
            url=self.get_url(context),
            params=self.get_url_params(context, None),
            headers=self.http_headers,
        )
        response = self.request_decorator(self._request)(prepared, context)
        return self.envelope(response).detail

    def envelope(self, response: requests.Response) -> Envelope:
        """The parsed envelope of a response that `validate_response` has accepted."""
        return read_envelope(response)

    def validate_response(self, response: requests.Response) -> None:
        """Sort a response into success, retriable failure or fatal failure.

        An envelope with a non-zero code is a failure even on HTTP 200. Rate-limit answers get
        here only after the throttle has waited out every one it will, and refused tokens only
        after the authenticator has renewed the token and re-sent once.
        """
        status = response.status_code
        method = response.request.method or "GET"
        path = _path_of(response)
        if rate_limit_wait(response, 0) is not None:
            raise RateLimitExhaustedError(
                describe_failure(
                    method=method,
                    path=path,
                    status=status,
                    message="still rate limited after waiting as told; is another client "
                    "of this app spending its budget?",
                )
            )
        if is_auth_failure(response):
            raise AuthenticationError(
                "authentication failed: " + self._describe(response, method, path)
            )
        try:
            envelope = read_envelope(response)
        except EnvelopeError as exc:
            text = describe_failure(method=method, path=path, status=status, message=str(exc))
            if status >= HTTPStatus.BAD_REQUEST and status < HTTPStatus.INTERNAL_SERVER_ERROR:
                raise MapTableAPIError(text, status=status) from None
            raise TransientAPIError(text, response) from None
        text = self._describe(response, method, path, envelope)
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR or status == HTTPStatus.REQUEST_TIMEOUT:
            raise TransientAPIError(text, response)
        if api.is_transient_code(envelope.code):
            raise TransientAPIError(text, response)
        if status >= HTTPStatus.BAD_REQUEST or not envelope.ok:
            raise MapTableAPIError(text, status=status)

    def _describe(
        self,
        response: requests.Response,
        method: str,
        path: str,
        envelope: Envelope | None = None,
    ) -> str:
        if envelope is None:
            try:
                envelope = read_envelope(response)
            except EnvelopeError as exc:
                return describe_failure(
                    method=method, path=path, status=response.status_code, message=str(exc)
                )
        return describe_failure(
            method=method,
            path=path,
            status=response.status_code,
            code=envelope.code,
            message=envelope.message or HTTPStatus(response.status_code).phrase,
            request_id=envelope.request_id,
        )

    def response_error_message(self, response: requests.Response) -> str:
        """The SDK's default shows the whole body and headers; ours shows neither."""
        return self._describe(response, response.request.method or "GET", _path_of(response))

    def parse_response(self, response: requests.Response) -> Iterable[dict[str, Any]]:
        """Records are the envelope's `detail`; subclasses say how to read it."""
        yield from self.records_from_detail(self.envelope(response).detail)

    def records_from_detail(self, detail: Any) -> Iterable[dict[str, Any]]:
        """Yield records from a successful envelope's detail (a list, by default)."""
        if isinstance(detail, list):
            yield from (item for item in detail if isinstance(item, dict))

    def backoff_wait_generator(self) -> Generator[float, None, None]:
        """Exponential backoff (1, 2, 4, ... s, capped), randomised by `backoff_jitter`."""
        return backoff.expo(base=2, factor=1, max_value=BACKOFF_CAP_S)

    def backoff_jitter(self, value: float) -> float:
        """Full jitter: spread retries so that many taps do not retry in step."""
        return float(backoff.full_jitter(value))

    def backoff_max_tries(self) -> int:
        """A bounded number of tries, then the request's error ends the run."""
        return int(self.config.get("max_tries", MAX_TRIES))

    def backoff_handler(self, details: Details) -> None:
        """Log one line per retry: what failed, and when the next try goes."""
        exc = details.get("exception")
        reason = (
            str(exc)
            if isinstance(exc, TransientAPIError)
            else f"{type(exc).__name__} on {self.name}"
        )
        self.logger.warning(
            "Retrying in %.1f s (try %d of %d) after: %s",
            details.get("wait") or 0.0,
            details.get("tries", 0) + 1,
            self.backoff_max_tries(),
            reason,
        )


def _path_of(response: requests.Response) -> str:
    """The request's path without its query (the query holds no secret, but noise)."""
    url = response.request.path_url if response.request is not None else ""
    return url.split("?", 1)[0]
