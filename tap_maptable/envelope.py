"""Reading MapTable's response envelope `{code, message, detail, extra, requestID}`.

Every response is parsed once, here, and the result cached on the response, because three layers
look at it (the throttle for rate-limit answers, the authenticator for rejected tokens and the
stream for records and errors) and a 1,000-row segment is too large to decode three times.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tap_maptable import api
from tap_maptable.exact import json_float

if TYPE_CHECKING:
    import requests

# A rate-limit or token-rejection envelope is tiny; a larger HTTP 200 body is data, not a signal.
_SIGNAL_BODY_LIMIT = 2048

_CACHE: weakref.WeakKeyDictionary[requests.Response, Envelope] = weakref.WeakKeyDictionary()


class EnvelopeError(ValueError):
    """The body is not a MapTable envelope: an HTML page, cut-off JSON, or another shape."""


@dataclass(frozen=True)
class Envelope:
    """The parts of a MapTable response the tap acts on."""

    code: int
    message: str
    detail: Any
    request_id: str | None

    @property
    def ok(self) -> bool:
        """Whether the API reports success (code 0), whatever the HTTP status."""
        return self.code == api.SUCCESS_CODE


def read_envelope(response: requests.Response) -> Envelope:
    """Parse (once) and return the envelope of `response`.

    Raises:
        EnvelopeError: the body is HTML, invalid or truncated JSON, or not an envelope.
    """
    cached = _CACHE.get(response)
    if cached is not None:
        return cached
    envelope = _parse(response)
    _CACHE[response] = envelope
    return envelope


def signal_code(response: requests.Response) -> int | None:
    """Return the envelope code of a small body, or None for data-sized or unparsable bodies.

    Used by the throttle and the authenticator on every response, so it never decodes a large
    segment: an error envelope is always small.
    """
    if len(response.content) > _SIGNAL_BODY_LIMIT:
        return None
    try:
        return read_envelope(response).code
    except EnvelopeError:
        return None


def parse_detail(body: bytes) -> Any:
    """The `detail` of an answer already judged a success, from its bytes (a held segment)."""
    return _parse_body(body, "").detail


def _parse(response: requests.Response) -> Envelope:
    return _parse_body(response.content, response.headers.get("Content-Type", ""))


def _parse_body(body: bytes, content_type: str) -> Envelope:
    if "html" in content_type.lower() or body.lstrip()[:1] == b"<":
        msg = "the server answered with an HTML page (a proxy or gateway error), not JSON"
        raise EnvelopeError(msg)
    try:
        # Number literals with a fraction stay exact (`exact.json_float`): no digit is lost.
        payload = json.loads(body, parse_float=json_float)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        msg = f"the response body is not valid JSON ({len(body)} bytes; truncated?)"
        raise EnvelopeError(msg) from exc
    if not isinstance(payload, dict) or api.ENVELOPE_CODE not in payload:
        msg = "the response is JSON but not a MapTable envelope (no 'code')"
        raise EnvelopeError(msg)
    code = payload.get(api.ENVELOPE_CODE)
    if isinstance(code, bool) or not isinstance(code, int):
        msg = f"the envelope's 'code' is not an integer: {code!r:.40}"
        raise EnvelopeError(msg)
    request_id = payload.get(api.ENVELOPE_REQUEST_ID)
    return Envelope(
        code=code,
        message=str(payload.get(api.ENVELOPE_MESSAGE) or ""),
        detail=payload.get(api.ENVELOPE_DETAIL),
        request_id=str(request_id) if request_id else None,
    )
