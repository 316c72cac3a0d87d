"""Token pairs: what MapTable returns, when it expires, and the cache that keeps it between runs."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tap_maptable import api

if TYPE_CHECKING:
    from pathlib import Path

LOGGER = logging.getLogger("tap_maptable.auth")

# Refresh this long before expiry (capped at a tenth of the token's life for short-lived tokens).
REFRESH_MARGIN_S = 300.0


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


def token_expiry(token: str, received_at: float) -> float:
    """When a token expires by this host's clock (no signature check: we only schedule a refresh).

    The token's lifetime (`exp - iat`) counts from the local time it was received, so a host clock
    hours ahead of or behind MapTable's neither refreshes on every request nor sends expired
    tokens. Without `iat`, the `exp` claim is taken as it is; without `exp`, 8 hours (the
    vendor's documented lifetime).
    """
    claims = _jwt_claims(token)
    exp, iat = _number(claims.get("exp")), _number(claims.get("iat"))
    if exp is not None and iat is not None and exp > iat:
        return received_at + (exp - iat)
    if exp is not None:
        return exp
    return received_at + api.DEFAULT_TOKEN_LIFETIME_S


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


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


class TokenCache:
    """A token pair kept between runs, as other command-line tools keep theirs.

    A `meltano run` is two processes (discovery, then sync) and a schedule runs the tap every
    day: a valid token from the last process saves a login each time. The file lives in the
    user's cache directory, readable by its owner only (0600 in a 0700 directory), one file per
    API host and app, named by a hash that includes the secret (so a new secret never picks up
    an old token). It is never part of the Singer state.

    Every process of the same app run by the same user on the host shares the file. A refresh
    rotates the refresh token, so a process due for renewal first looks here for a newer valid
    pair another process got, and takes it without a request; only when two renew at the same
    moment is one refresh refused (one request, through the budget), after which the loser
    takes the winner's pair from this file (`MapTableAuthenticator._refresh_or_login`).
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
