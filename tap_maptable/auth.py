"""MapTable tokens: one authenticator per tap run, shared by every stream.

The authenticator is the only code that touches tokens. It logs in with the app id and secret,
sends tokens exactly as MapTable returns them (`Bearer eyJ...`), refreshes them shortly before they
expire, keeps the rotated refresh token, falls back to a fresh login when a refresh is refused,
and, when a request is still answered "token not accepted", renews the token once and re-sends
that request once (the way `requests`' own digest auth re-sends after a 401).

Token requests go through the authenticator's own session, which shares the run's request budget
but carries no authenticator, so that renewing a token can never recurse into itself.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import requests
from requests.auth import AuthBase

from tap_maptable import api
from tap_maptable.envelope import EnvelopeError, read_envelope, signal_code
from tap_maptable.errors import (
    AuthenticationError,
    RateLimitExhaustedError,
    TransientAPIError,
    describe_failure,
)
from tap_maptable.throttle import rate_limit_wait

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

LOGGER = logging.getLogger("tap_maptable.auth")

# Refresh this long before expiry (capped at a tenth of the token's life for short-lived tokens).
REFRESH_MARGIN_S = 300.0
# Token requests retry transient failures (5xx, dropped connections) this many times in all,
# unless the `max_tries` setting says otherwise.
TOKEN_REQUEST_TRIES = 5
_RETRIED_MARK = "_maptable_auth_retried"
_OURS_MARK = "_maptable_auth_applied"


@dataclass(frozen=True)
class TokenPair:
    """An access token and its refresh token, both as the API returned them, and the expiry."""

    token: str
    refresh_token: str
    expires_at: float
    issued_at: float

    def needs_renewal(self, now: float) -> bool:
        """Whether the access token is expired or inside the refresh margin."""
        margin = min(REFRESH_MARGIN_S, 0.1 * max(self.expires_at - self.issued_at, 0.0))
        return now >= self.expires_at - margin

    def __repr__(self) -> str:
        """Never show the tokens themselves."""
        return f"TokenPair(expires_at={self.expires_at:.0f})"


def as_bearer(token: str) -> str:
    """Send a token as returned; add `Bearer ` only when the API returned a bare token."""
    return token if token[:7].lower() == "bearer " else api.BEARER_PREFIX + token


def token_expiry(token: str, issued_at: float) -> float:
    """Read the JWT `exp` claim (no signature check: we only schedule a refresh), else 8 hours."""
    exp = _jwt_claims(token).get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        return float(exp)
    return issued_at + api.DEFAULT_TOKEN_LIFETIME_S


def _jwt_claims(token: str) -> dict[str, Any]:
    parts = token.rsplit(" ", maxsplit=1)[-1].split(".")
    if len(parts) != 3:  # noqa: PLR2004 - header.payload.signature
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def is_auth_failure(response: requests.Response) -> bool:
    """Whether MapTable refused the request's token (HTTP 401, or a 401xx envelope code)."""
    if response.status_code == HTTPStatus.UNAUTHORIZED:
        return True
    return signal_code(response) in api.AUTH_FAILURE_CODES


class TokenCache:
    """A token pair kept between runs, as other command-line tools keep theirs.

    A `meltano run` is two processes (discovery, then sync) and a schedule runs the tap every
    day: a valid token from the last process saves a login each time. The file lives in the
    user's cache directory, readable by its owner only (0600 in a 0700 directory), one file per
    API host and app, named by a hash that includes the secret (so a new secret never picks up
    an old token). It is never part of the Singer state. If another process rotated the refresh
    token meanwhile, the refresh is refused and the tap logs in again, as it would anyway.
    """

    def __init__(self, directory: Path, api_url: str, app_id: str, app_secret: str) -> None:
        """Name the file for this API host, app and secret."""
        name = hashlib.sha256(f"{api_url}\n{app_id}\n{app_secret}".encode()).hexdigest()[:32]
        self.path = directory / f"{name}.json"

    def load(self) -> TokenPair | None:
        """The cached pair, or None if there is none or it cannot be read."""
        try:
            data = json.loads(self.path.read_text())
            return TokenPair(
                token=str(data["token"]),
                refresh_token=str(data["refresh_token"]),
                expires_at=float(data["expires_at"]),
                issued_at=float(data["issued_at"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, pair: TokenPair) -> None:
        """Write the pair atomically, owner-only; a failure only costs a login next time."""
        data = {
            "token": pair.token,
            "refresh_token": pair.refresh_token,
            "expires_at": pair.expires_at,
            "issued_at": pair.issued_at,
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle)
            tmp.replace(self.path)
        except OSError as exc:
            LOGGER.debug("could not cache the token pair: %s", type(exc).__name__)

    def clear(self) -> None:
        """Forget the pair (it was refused)."""
        with contextlib.suppress(OSError):
            self.path.unlink()


class MapTableAuthenticator(AuthBase):
    """Holds the run's token pair and applies it to every request of every stream."""

    def __init__(  # noqa: PLR0913 - all keyword-only settings of one object
        self,
        *,
        api_url: str,
        app_id: str,
        app_secret: str,
        session: requests.Session,
        timeout: float = 60.0,
        clock: Callable[[], float] = time.time,
        cache: TokenCache | None = None,
        tries: int = TOKEN_REQUEST_TRIES,
    ) -> None:
        """Create the authenticator; `session` must share the budget and carry no auth."""
        self._api_url = api_url.rstrip("/")
        self._app_id = app_id
        self._app_secret = app_secret
        self._session = session
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.RLock()
        self._cache = cache
        self._tries = max(tries, 1)
        self._pair: TokenPair | None = None
        self.logins = 0
        self.refreshes = 0

    def __repr__(self) -> str:
        """Never show the secret or the tokens."""
        return f"MapTableAuthenticator(app_id={self._app_id!r})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Put a valid token on `request` and watch its answer for a refused token."""
        request.headers["Authorization"] = self.token()
        setattr(request, _OURS_MARK, True)
        hooks = request.hooks.setdefault("response", [])
        if self._retry_refused_token not in hooks:
            hooks.append(self._retry_refused_token)
        return request

    def refresh_header(self, request: requests.PreparedRequest) -> None:
        """Re-apply a valid token just before sending, if this authenticator set the header.

        The throttle calls this after waiting for the budget, so that a wait never sends a
        token that expired (or was renewed) in the meantime.
        """
        if getattr(request, _OURS_MARK, False):
            request.headers["Authorization"] = self.token()

    def token(self) -> str:
        """Return a valid access token, logging in or refreshing first when needed."""
        with self._lock:
            if self._pair is None and self._cache is not None:
                self._pair = self._cache.load()
            if self._pair is None:
                self._pair = self._login()
            elif self._pair.needs_renewal(self._clock()):
                self._pair = self._refresh_or_login(self._pair)
            return as_bearer(self._pair.token)

    def renew(self, refused_token: str | None = None) -> None:
        """Replace a refused token, unless another caller has already replaced it."""
        with self._lock:
            if self._pair is None:
                return
            if refused_token is not None and as_bearer(self._pair.token) != refused_token:
                return
            self._pair = self._refresh_or_login(self._pair)

    def _retry_refused_token(
        self, response: requests.Response, *_args: Any, **kwargs: Any
    ) -> requests.Response:
        request = response.request
        if getattr(request, _RETRIED_MARK, False) or not is_auth_failure(response):
            return response
        if response.connection is None:  # not sent through an adapter; nothing to resend with
            return response
        LOGGER.info("MapTable did not accept the access token; renewing it and retrying once.")
        self.renew(refused_token=request.headers.get("Authorization"))
        retry = request.copy()
        retry.headers["Authorization"] = self.token()
        setattr(retry, _RETRIED_MARK, True)
        setattr(retry, _OURS_MARK, True)
        response.close()
        kwargs.pop("hooks", None)
        new_response: requests.Response = response.connection.send(retry, **kwargs)
        new_response.history.append(response)
        new_response.request = retry
        return new_response

    def _refresh_or_login(self, pair: TokenPair) -> TokenPair:
        try:
            refreshed = self._token_call(
                api.REFRESH_PATH,
                body={api.REFRESH_BODY_FIELD: pair.refresh_token},
                headers={"Authorization": as_bearer(pair.refresh_token)},
            )
        except AuthenticationError as exc:
            newer = self._cache.load() if self._cache is not None else None
            if newer is not None and newer != pair and not newer.needs_renewal(self._clock()):
                # Another process of this app rotated the pair and cached the new one.
                LOGGER.info("Token refresh was refused; using the pair another run renewed.")
                return newer
            LOGGER.info("Token refresh was refused (%s); logging in again.", exc)
            return self._login()
        self.refreshes += 1
        self._remember(refreshed)
        return refreshed

    def _login(self) -> TokenPair:
        pair = self._token_call(
            api.AUTH_PATH,
            body={api.AUTH_APP_ID: self._app_id, api.AUTH_APP_SECRET: self._app_secret},
            headers={},
        )
        self.logins += 1
        self._remember(pair)
        return pair

    def _remember(self, pair: TokenPair) -> None:
        if self._cache is not None:
            self._cache.save(pair)

    def _token_call(self, path: str, *, body: dict[str, str], headers: dict[str, str]) -> TokenPair:
        """POST to a token endpoint, retrying transient failures a bounded number of times."""
        last_error: Exception | None = None
        for attempt in range(1, self._tries + 1):
            try:
                return self._token_call_once(path, body=body, headers=headers)
            except (TransientAPIError, requests.ConnectionError, requests.Timeout) as exc:  # noqa: PERF203
                last_error = exc
                if attempt < self._tries:
                    delay = min(2.0**attempt, 30.0) * (0.5 + 0.5 * _jitter())
                    LOGGER.warning(
                        "Token request %s failed (%s); retry %d of %d in %.1f s.",
                        path,
                        _safe_reason(exc),
                        attempt,
                        self._tries - 1,
                        delay,
                    )
                    time.sleep(delay)
        msg = f"authentication failed: POST {path} kept failing: {_safe_reason(last_error)}"
        raise AuthenticationError(msg)

    def _token_call_once(
        self, path: str, *, body: dict[str, str], headers: dict[str, str]
    ) -> TokenPair:
        issued_at = self._clock()
        response = self._session.post(
            self._api_url + path,
            json=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=self._timeout,
        )
        status = response.status_code
        if rate_limit_wait(response, 0) is not None:
            # The throttle has already waited out every 429 it will: not a refused credential.
            msg = describe_failure(
                method="POST", path=path, status=status, message="still rate limited"
            )
            raise RateLimitExhaustedError(msg)
        try:
            envelope = read_envelope(response)
        except EnvelopeError as exc:
            if status >= HTTPStatus.INTERNAL_SERVER_ERROR or status == HTTPStatus.OK:
                raise TransientAPIError(
                    describe_failure(method="POST", path=path, status=status, message=str(exc))
                ) from None
            msg = f"authentication failed: POST {path} answered HTTP {status} ({exc})"
            raise AuthenticationError(msg) from None
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR or api.is_transient_code(envelope.code):
            raise TransientAPIError(
                describe_failure(
                    method="POST",
                    path=path,
                    status=status,
                    code=envelope.code,
                    message=envelope.message,
                    request_id=envelope.request_id,
                )
            )
        if not envelope.ok or status != HTTPStatus.OK:
            reason = envelope.message or f"HTTP {status}"
            msg = f"authentication failed: {reason}"
            if envelope.request_id:
                msg += f" (requestID {envelope.request_id})"
            raise AuthenticationError(msg)
        return self._pair_from(envelope.detail, issued_at, path)

    def _pair_from(self, detail: Any, issued_at: float, path: str) -> TokenPair:
        token = detail.get(api.TOKEN_FIELD) if isinstance(detail, dict) else None
        refresh = detail.get(api.REFRESH_TOKEN_FIELD) if isinstance(detail, dict) else None
        if not isinstance(token, str) or not isinstance(refresh, str) or not token or not refresh:
            msg = f"authentication failed: POST {path} returned no token pair"
            raise AuthenticationError(msg)
        return TokenPair(
            token=token,
            refresh_token=refresh,
            expires_at=token_expiry(token, issued_at),
            issued_at=issued_at,
        )


def _jitter() -> float:
    """A number in [0, 1) for backoff jitter (not security-sensitive)."""
    return (time.perf_counter_ns() % 1000) / 1000


def _safe_reason(exc: Exception | None) -> str:
    """Describe a failure by its type and our own message, never by a library's full text."""
    if exc is None:
        return "no answer"
    if isinstance(exc, (TransientAPIError, AuthenticationError)):
        return str(exc)
    return type(exc).__name__
