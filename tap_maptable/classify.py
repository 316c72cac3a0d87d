"""The one judge of a MapTable response: ok, rate limited, token refused, transient or fatal.

Every layer that looks at a response (the budget's adapter for 429s, the authenticator for a
refused token, streams and the connection for records and errors) asks `classify`, so that a
status code or envelope code means the same thing wherever it is read. `check` turns a verdict
into the tap's exception for it; nothing else in the tap reads status codes to decide.

A request that got no response at all is judged here too (`network_failure`): which failures a
later try may fix (refused, reset, timed out) and which it cannot (a name that does not resolve,
a certificate that does not verify), and the one line that names the host and the cause.
"""

from __future__ import annotations

import email.utils
import enum
import socket
import ssl
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NameResolutionError, ReadTimeoutError

from tap_maptable import api
from tap_maptable.envelope import Envelope, EnvelopeError, read_envelope, signal_code
from tap_maptable.errors import (
    AuthenticationError,
    MapTableAPIError,
    RateLimitExhaustedError,
    TransientAPIError,
    describe_failure,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping


class Outcome(enum.Enum):
    """What a response means for the request that got it."""

    OK = "ok"
    RATE_LIMITED = "rate limited"
    TOKEN_REFUSED = "token refused"  # noqa: S105 - a label, not a secret
    TRANSIENT = "transient"
    FATAL = "fatal"


@dataclass(frozen=True)
class Verdict:
    """A response, judged. `message` is one safe line; `retry_after_s` is the server's word."""

    outcome: Outcome
    status: int
    message: str = ""
    retry_after_s: float | None = None
    envelope: Envelope | None = None


def classify(response: requests.Response) -> Verdict:
    """Judge `response` by its HTTP status, envelope code, headers and body shape.

    Rate limiting and refused tokens are read from small bodies only (`signal_code`), so the
    adapter and the authenticator can ask on every response without decoding a large segment.
    """
    status = response.status_code
    code = signal_code(response)
    if status == HTTPStatus.TOO_MANY_REQUESTS or (
        status == HTTPStatus.OK and code in api.RATE_LIMIT_CODES
    ):
        return Verdict(
            Outcome.RATE_LIMITED,
            status,
            _describe(response, "rate limited"),
            retry_after_seconds(response.headers),
        )
    if status == HTTPStatus.UNAUTHORIZED or code in api.AUTH_FAILURE_CODES:
        return Verdict(
            Outcome.TOKEN_REFUSED, status, _describe(response), envelope=_envelope_of(response)
        )
    try:
        envelope = read_envelope(response)
    except EnvelopeError as exc:
        outcome = Outcome.FATAL if _is_client_error(status) else Outcome.TRANSIENT
        return Verdict(outcome, status, _line(response, str(exc)))
    message = _line(response, envelope.message or _phrase(status), envelope)
    if (
        status >= HTTPStatus.INTERNAL_SERVER_ERROR
        or status == HTTPStatus.REQUEST_TIMEOUT
        or api.is_transient_code(envelope.code)
    ):
        return Verdict(Outcome.TRANSIENT, status, message, envelope=envelope)
    if status >= HTTPStatus.BAD_REQUEST or not envelope.ok:
        return Verdict(Outcome.FATAL, status, message, envelope=envelope)
    return Verdict(Outcome.OK, status, envelope=envelope)


def check(response: requests.Response) -> Envelope:
    """Return the envelope of a successful response, or raise the tap's error for it.

    Rate-limit answers reach this point only after the budget has waited out every one it will,
    and refused tokens only after the authenticator has renewed the token and re-sent once.
    """
    verdict = classify(response)
    if verdict.outcome is Outcome.OK:
        assert verdict.envelope is not None  # noqa: S101 - an OK verdict always has one
        return verdict.envelope
    if verdict.outcome is Outcome.RATE_LIMITED:
        raise RateLimitExhaustedError(
            _line(
                response,
                "still rate limited after waiting as told; is another client of this app "
                "spending its budget?",
            )
        )
    if verdict.outcome is Outcome.TOKEN_REFUSED:
        raise AuthenticationError("authentication failed: " + verdict.message)
    if verdict.outcome is Outcome.TRANSIENT:
        raise TransientAPIError(verdict.message, response)
    raise MapTableAPIError(verdict.message, status=verdict.status)


@dataclass(frozen=True)
class NetworkFailure:
    """A request that got no response: whether a later try may help, and the line for a user."""

    retriable: bool
    message: str
    hint: str = ""  # what to check, when the cause is most likely the settings

    @property
    def final(self) -> str:
        """The run's last line, once no try is left: the message and what to check."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


def network_failure(exc: BaseException) -> NetworkFailure:
    """Judge a request that failed before MapTable answered (DNS, TLS, connect, read)."""
    causes = tuple(_causes(exc))

    def has(*kinds: type[BaseException]) -> bool:
        return any(isinstance(cause, kinds) for cause in causes)

    # (matched, retriable, reason, what to check): the first that matches, in this order.
    # Most often a mistyped api_url (or a sandbox not started); through a proxy, the proxy.
    proxied = has(requests.exceptions.ProxyError)
    check_url = "is the proxy right?" if proxied else "is api_url right?"
    rules: tuple[tuple[bool, bool, str, str], ...] = (
        (has(NameResolutionError, socket.gaierror), False, "the name does not resolve", check_url),
        (has(ssl.SSLCertVerificationError), False, "its TLS certificate does not verify", ""),
        (has(requests.exceptions.SSLError, ssl.SSLError), False, "the TLS handshake failed", ""),
        (has(requests.exceptions.ProxyError), True, "the proxy refused or failed", ""),
        (has(ConnectionRefusedError), True, "the connection was refused", check_url),
        (has(requests.exceptions.ConnectTimeout), True, "connecting timed out", ""),
        # A timeout in the middle of a body comes as a ConnectionError around urllib3's.
        (
            has(requests.exceptions.Timeout, ReadTimeoutError),
            True,
            "no answer in time (read timeout)",
            "",
        ),
    )
    retriable, reason, hint = next(
        ((retry, text, hint) for matched, retry, text, hint in rules if matched),
        (True, "the connection was dropped", ""),
    )
    via = f" through the proxy {_proxy_of(exc)}" if proxied else ""
    message = f"cannot reach {_host_of(exc)}{via}: {reason}"
    return NetworkFailure(retriable=retriable, message=message, hint=hint)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything it wraps (requests and urllib3 nest the real cause a few levels)."""
    todo, seen = [exc], set()
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        linked = (getattr(current, "reason", None), current.__cause__, current.__context__)
        todo.extend(link for link in linked if isinstance(link, BaseException))


def _proxy_of(exc: BaseException) -> str:
    """The proxy the environment names for the failed request's URL: host and port only.

    Never its user or password (`http://user:secret@proxy:3128`).
    """
    request = getattr(exc, "request", None)
    url = getattr(request, "url", None)
    if not isinstance(url, str):
        return "(from the environment)"
    proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
    return _host_port(proxy) if proxy else "(from the environment)"


def _host_of(exc: BaseException) -> str:
    request = getattr(exc, "request", None)
    url = getattr(request, "url", None)
    return _host_port(url) if isinstance(url, str) else "MapTable"


def _host_port(url: str) -> str:
    """`host` or `host:port` (when not the scheme's default) of `url`; nothing else of it."""
    parts = urlsplit(url if "//" in url else f"http://{url}")
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or "MapTable"
    return host if port in {None, default} else f"{host}:{port}"


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The server's `Retry-After` (seconds or an HTTP date) as read, None when absent or unreadable.

    Not bounded here: whether a wait is sane is the retry policy's call (`retry.py`).
    """
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when.timestamp() - time.time()


def path_of(response: requests.Response) -> str:
    """The request's path without its query (the query holds no secret, but noise)."""
    url = response.request.path_url if response.request is not None else ""
    return url.split("?", 1)[0]


def _envelope_of(response: requests.Response) -> Envelope | None:
    try:
        return read_envelope(response)
    except EnvelopeError:
        return None


def _describe(response: requests.Response, fallback: str = "") -> str:
    try:
        envelope = read_envelope(response)
    except EnvelopeError:
        return _line(response, fallback or _phrase(response.status_code))
    return _line(response, envelope.message or fallback or _phrase(response.status_code), envelope)


def _line(response: requests.Response, message: str, envelope: Envelope | None = None) -> str:
    method = (response.request.method if response.request is not None else None) or "GET"
    return describe_failure(
        method=method,
        path=path_of(response),
        status=response.status_code,
        code=envelope.code if envelope is not None else None,
        message=message,
        request_id=envelope.request_id if envelope is not None else None,
    )


def _is_client_error(status: int) -> bool:
    return HTTPStatus.BAD_REQUEST <= status < HTTPStatus.INTERNAL_SERVER_ERROR


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
