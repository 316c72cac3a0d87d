"""MapTable tokens: one authenticator per tap run, shared by every stream and every thread.

The authenticator is the only code that touches tokens. It logs in with the app id and secret,
sends tokens exactly as MapTable returns them (`Bearer eyJ...`), refreshes them shortly before they
expire, keeps the rotated refresh token, falls back to a fresh login when a refresh is refused,
and, when a request is still answered "token not accepted", renews the token once and re-sends
that request once (the way `requests`' own digest auth re-sends after a 401). One lock: while one
thread renews, the others wait for the new token instead of sending with the dead one.

Token requests go through their own session, which shares the run's request budget but carries no
authenticator (renewing a token can never recurse into itself), and are judged by `classify` and
retried by the run's one `RetryPolicy`, like every other request.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import requests
from requests.auth import AuthBase

from tap_maptable import api
from tap_maptable.budget.limiter import urgent
from tap_maptable.classify import Outcome, Verdict, classify, network_failure, path_of
from tap_maptable.errors import (
    AuthenticationError,
    NetworkError,
    RateLimitExhaustedError,
    TransientAPIError,
    describe_failure,
    never_show,
    one_line,
)
from tap_maptable.retry import log_retry
from tap_maptable.tokens import TokenCache, TokenPair, as_bearer, token_expiry

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_maptable.retry import RetryPolicy

LOGGER = logging.getLogger("tap_maptable.auth")
_RETRIED_MARK = "_maptable_auth_retried"
_OURS_MARK = "_maptable_auth_applied"


class MapTableAuthenticator(AuthBase):
    """Holds the run's token pair and applies it to every request of every stream."""

    def __init__(  # noqa: PLR0913 - all keyword-only settings of one object
        self,
        *,
        api_url: str,
        app_id: str,
        app_secret: str,
        session: requests.Session,
        policy: RetryPolicy,
        timeout: float = 60.0,
        clock: Callable[[], float] = time.time,
        cache: TokenCache | None = None,
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
        self._pair: TokenPair | None = None
        never_show(app_secret)
        self._post = policy.decorate(self._post_once, log_retry(LOGGER, policy, "a token call"))

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

        The budget's adapter calls this after waiting for a slot, so that a wait never sends a
        token that expired (or was renewed) in the meantime.
        """
        if getattr(request, _OURS_MARK, False):
            request.headers["Authorization"] = self.token()

    def token(self) -> str:
        """Return a valid access token, logging in or refreshing first when needed."""
        with self._lock:
            if self._pair is None and self._cache is not None:
                self._pair = self._cache.load()
                if self._pair is not None:
                    never_show(self._pair.token, self._pair.refresh_token)
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
        if getattr(request, _RETRIED_MARK, False):
            return response
        if classify(response).outcome is not Outcome.TOKEN_REFUSED:
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
        newer = self._newer_cached(pair)
        if newer is not None:
            # Another process of this app renewed the pair: its refresh rotated ours away, so
            # refreshing would cost a request only to be refused.
            return newer
        try:
            refreshed = self._token_call(
                api.REFRESH_PATH,
                body={api.REFRESH_BODY_FIELD: pair.refresh_token},
                headers={"Authorization": as_bearer(pair.refresh_token)},
            )
        except AuthenticationError as exc:
            newer = self._newer_cached(pair)
            if newer is not None:  # renewed by another process while we asked
                LOGGER.info("Token refresh was refused; using the pair another run renewed.")
                return newer
            reason = str(exc).removeprefix("authentication failed: ")  # not a failure: we go on
            LOGGER.info("Token refresh was refused (%s); logging in again.", reason)
            return self._login()
        self._remember(refreshed)
        return refreshed

    def _newer_cached(self, pair: TokenPair) -> TokenPair | None:
        """A valid pair another process of this app cached since `pair`, if there is one."""
        newer = self._cache.load() if self._cache is not None else None
        if newer is None or newer == pair or newer.needs_renewal(self._clock()):
            return None
        never_show(newer.token, newer.refresh_token)
        return newer

    def _login(self) -> TokenPair:
        pair = self._token_call(
            api.AUTH_PATH,
            body={api.AUTH_APP_ID: self._app_id, api.AUTH_APP_SECRET: self._app_secret},
            headers={},
        )
        self._remember(pair)
        return pair

    def _remember(self, pair: TokenPair) -> None:
        if self._cache is not None:
            self._cache.save(pair)

    def _token_call(self, path: str, *, body: dict[str, str], headers: dict[str, str]) -> TokenPair:
        """POST to a token endpoint (retried by the run's policy) and read the pair it returns."""
        try:
            # Before every table's request: the requests waiting for it hold slots meanwhile.
            with urgent():
                return self._post(path, body, headers)
        except TransientAPIError as exc:
            msg = f"authentication failed: POST {path} kept failing: {exc}"
            raise AuthenticationError(msg) from None
        except requests.RequestException as exc:
            # Tried as often as the policy allows: fatal now, so that the request this token
            # was for is not retried around it (max_tries x max_tries tries).
            raise NetworkError(network_failure(exc).final) from None

    def _post_once(self, path: str, body: dict[str, str], headers: dict[str, str]) -> TokenPair:
        received_at = self._clock()
        response = self._session.post(
            self._api_url + path,
            json=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=self._timeout,
        )
        verdict = classify(response)
        if verdict.outcome is Outcome.OK:
            assert verdict.envelope is not None  # noqa: S101 - an OK verdict always has one
            return self._pair_from(verdict.envelope.detail, received_at, path)
        if verdict.outcome is Outcome.TRANSIENT:
            raise TransientAPIError(verdict.message, response)
        if verdict.outcome is Outcome.RATE_LIMITED:
            # The budget has already waited out every 429 it will: not a refused credential.
            msg = describe_failure(
                method="POST", path=path, status=verdict.status, message="still rate limited"
            )
            raise RateLimitExhaustedError(msg)
        raise AuthenticationError(_refusal(verdict, response))

    def _pair_from(self, detail: Any, received_at: float, path: str) -> TokenPair:
        token = detail.get(api.TOKEN_FIELD) if isinstance(detail, dict) else None
        refresh = detail.get(api.REFRESH_TOKEN_FIELD) if isinstance(detail, dict) else None
        if not isinstance(token, str) or not isinstance(refresh, str) or not token or not refresh:
            msg = f"authentication failed: POST {path} returned no token pair"
            raise AuthenticationError(msg)
        never_show(token, refresh, token.rsplit(" ", 1)[-1], refresh.rsplit(" ", 1)[-1])
        return TokenPair(
            token=token,
            refresh_token=refresh,
            expires_at=token_expiry(token, received_at),
            issued_at=received_at,
        )


def _refusal(verdict: Verdict, response: requests.Response) -> str:
    """The one line for credentials or a refresh token MapTable will not take."""
    envelope = verdict.envelope
    if envelope is None:
        return (
            f"authentication failed: POST {path_of(response)} answered HTTP {verdict.status} "
            f"({verdict.message.rsplit(': ', 1)[-1]})"
        )
    msg = f"authentication failed: {envelope.message or f'HTTP {verdict.status}'}"
    if envelope.request_id:
        msg += f" (requestID {envelope.request_id})"
    return one_line(msg)
