"""HS256 JWTs and the server-side token registry.

The real server's tokens are JWTs (HS256); the tap may read ``exp`` without verifying, so the
sandbox mints genuine JWTs. Validity is nevertheless decided server-side (issue time, rotation,
revocation), so that ``include_exp=False`` tokens still expire and a used refresh token stays dead.
The claims can lie about time (``clock_skew``); the registry's records never do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

BEARER = "Bearer "
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_HEADER = {"alg": "HS256", "typ": "JWT"}


class TokenError(Exception):
    """An auth failure, carrying the envelope code and message the server answers with."""

    def __init__(self, code: int, message: str) -> None:
        """Keep code and message together so the handler can answer 401 directly."""
        super().__init__(message)
        self.code = code
        self.message = message


MISSING = (40100, "missing token")
EXPIRED = (40103, "token expired")
INVALID = (40104, "invalid token")
REFRESH_INVALID = (40102, "refresh token invalid")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint(key: bytes, claims: dict[str, Any]) -> str:
    """Encode and sign ``claims`` as an HS256 JWT."""
    head = _b64(json.dumps(_HEADER, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}".encode("ascii")
    signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def verify(key: bytes, token: str) -> dict[str, Any] | None:
    """Claims of ``token`` if it is a well-formed JWT signed with ``key``, else ``None``.

    Expiry is not checked here: the registry decides that from its own records.
    """
    if not _JWT_SHAPE.fullmatch(token):
        return None
    head, body, signature = token.split(".")
    expected = hmac.new(key, f"{head}.{body}".encode("ascii"), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(expected, _unb64(signature)):
            return None
        header = json.loads(_unb64(head))
        claims = json.loads(_unb64(body))
    except (binascii.Error, ValueError):
        return None
    if header != _HEADER or not isinstance(claims, dict):
        return None
    if not all(isinstance(claims.get(k), str) for k in ("appId", "typ", "jti")):
        return None
    return claims


@dataclass
class _Record:
    app_id: str
    typ: str
    expires_at: float
    dead: bool = False
    sibling: str | None = None  # a refresh token's record: the jti of its pair's access token


class TokenRegistry:
    """Issues, checks, rotates and revokes tokens; thread-safe."""

    def __init__(  # noqa: PLR0913 - every option is a keyword with a default
        self,
        *,
        token_ttl: float,
        refresh_ttl: float,
        include_exp: bool,
        key: bytes | None = None,
        revoke_used_refresh: bool = True,
        revoke_access_on_refresh: bool = False,
        clock_skew: float = 0.0,
    ) -> None:
        """Create a registry with a fresh random signing key unless one is given.

        Args:
            token_ttl: Access-token lifetime in seconds (real time).
            refresh_ttl: Refresh-token lifetime in seconds (real time).
            include_exp: Put an ``exp`` claim in the JWTs.
            key: HS256 signing key; random if ``None``.
            revoke_used_refresh: A refresh token works once (rotation); ``False``: reusable.
            revoke_access_on_refresh: A refresh also kills its pair's access token.
            clock_skew: Seconds added to real time when stamping ``iat`` and ``exp``.
        """
        self._key = key if key is not None else secrets.token_bytes(32)
        self._token_ttl = token_ttl
        self._refresh_ttl = refresh_ttl
        self._include_exp = include_exp
        self._revoke_used_refresh = revoke_used_refresh
        self._revoke_access_on_refresh = revoke_access_on_refresh
        self._clock_skew = clock_skew
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}
        self._issued: set[str] = set()

    @property
    def clock_skew(self) -> float:
        """Seconds the ``iat``/``exp`` claims of newly minted tokens are off real time."""
        return self._clock_skew

    @clock_skew.setter
    def clock_skew(self, seconds: float) -> None:
        self._clock_skew = float(seconds)

    def issue_pair(self, app_id: str) -> tuple[str, str]:
        """A new (access, refresh) pair, each already prefixed with ``Bearer ``."""
        access, access_jti = self._issue(app_id, "access")
        refresh, _ = self._issue(app_id, "refresh", sibling=access_jti)
        return access, refresh

    def _issue(self, app_id: str, typ: str, sibling: str | None = None) -> tuple[str, str]:
        now = time.time()
        stamp = now + self._clock_skew  # what the server's (possibly wrong) clock says
        ttl = self._token_ttl if typ == "access" else self._refresh_ttl
        jti = uuid.uuid4().hex
        claims: dict[str, Any] = {"appId": app_id, "typ": typ, "iat": int(stamp), "jti": jti}
        if self._include_exp:
            claims["exp"] = math.floor(stamp + ttl)
        token = mint(self._key, claims)
        with self._lock:
            self._records[jti] = _Record(app_id, typ, now + ttl, sibling=sibling)
            self._issued.update({token, BEARER + token})
        return BEARER + token, jti

    def app_of(self, header: str | None) -> str | None:
        """App id of a correctly signed token in ``header`` (expired or not): the rate-limit key."""
        if not header or not header.startswith(BEARER):
            return None
        claims = verify(self._key, header[len(BEARER) :])
        return None if claims is None else str(claims["appId"])

    def check_access(self, header: str | None) -> str:
        """App id behind a live access token; raises ``TokenError`` (40100/40103/40104)."""
        if not header:
            raise TokenError(*MISSING)
        record = self._lookup(header)
        if record is None or record.typ != "access" or record.dead:
            raise TokenError(*INVALID)
        if time.time() >= record.expires_at:
            raise TokenError(*EXPIRED)
        return record.app_id

    def rotate(self, header: str | None, body_token: object) -> tuple[str, str]:
        """Exchange a live refresh token for a new pair and kill it (rotation).

        The body's ``refreshtoken`` must name the same token as the header, with or without the
        ``Bearer`` prefix (the vendor page is ambiguous about the body). Without
        ``revoke_used_refresh`` the used token stays alive; with ``revoke_access_on_refresh`` the
        access token issued with it dies.
        """
        if not header:
            raise TokenError(*MISSING)
        if body_token not in (header, header.removeprefix(BEARER)):
            raise TokenError(*REFRESH_INVALID)
        with self._lock:
            record = self._lookup(header)
            if (
                record is None
                or record.typ != "refresh"
                or record.dead
                or time.time() >= record.expires_at
            ):
                raise TokenError(*REFRESH_INVALID)
            if self._revoke_used_refresh:
                record.dead = True
            sibling = self._records.get(record.sibling or "")
            if self._revoke_access_on_refresh and sibling is not None:
                sibling.dead = True
        return self.issue_pair(record.app_id)

    def revoke_access(self) -> None:
        """Kill every access token issued so far (server-side expiry mid-run)."""
        with self._lock:
            for record in self._records.values():
                if record.typ == "access":
                    record.dead = True

    def issued(self) -> set[str]:
        """Every token string ever issued, with and without ``Bearer ``."""
        with self._lock:
            return set(self._issued)

    def _lookup(self, header: str) -> _Record | None:
        if not header.startswith(BEARER):
            return None
        claims = verify(self._key, header[len(BEARER) :])
        if claims is None:
            return None
        return self._records.get(str(claims["jti"]))
