"""The base stream: every MapTable stream sends through the run's one connection.

The SDK's stream machinery (paginators, `validate_response`, `request_decorator`) serves the
record flow; this class only points it at the connection's parts: its session (the budget), its
authenticator, its retry policy and the one response judge, `classify.check`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from singer_sdk.streams import RESTStream

from tap_maptable.classify import check
from tap_maptable.envelope import Envelope, read_envelope
from tap_maptable.retry import log_retry

if TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk.helpers.types import RequestFunc

    from tap_maptable.connection import MapTableConnection
    from tap_maptable.tap import TapMapTable


class MapTableStream(RESTStream[Any]):
    """A MapTable endpoint: one envelope, one way to fail, one way to retry."""

    _tap: TapMapTable
    _pending_version: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """The SDK's stream, without the `requests.Session` of its own it would never use.

        `RESTStream.__init__` makes a session per stream, while every MapTable stream sends
        through the run's one session (`requests_session`): at 1,000 tables those idle sessions
        (adapters, pools, cookie jars) are megabytes. The SDK keeps it in a private attribute
        typed `Session | None` and has no hook to not make it; None is what it starts from.
        """
        super().__init__(*args, **kwargs)
        if self._requests_session is not None:
            self._requests_session.close()
            self._requests_session = None

    @property
    def emit_activate_version_messages(self) -> bool:
        """FULL_TABLE syncs announce a table version, so targets can drop deleted rows."""
        return True

    def _write_activate_version_message(self, full_table_version: int) -> None:
        """Hold ACTIVATE_VERSION until the stream has been read completely (`activate_version`).

        The SDK sends it before the first record, and SQL targets then drop every older row
        at once: a run that failed half-way would leave the warehouse with half a table. Sent
        after the last record, it removes exactly the rows MapTable no longer has. (A private
        SDK method: there is no public hook for when the message is written.)
        """
        self._pending_version = full_table_version

    def activate_version(self) -> None:
        """After a complete read: send the held ACTIVATE_VERSION (FULL_TABLE syncs only)."""
        version, self._pending_version = self._pending_version, None
        if version is not None:
            super()._write_activate_version_message(version)

    @property
    def connection(self) -> MapTableConnection:
        """The run's one connection."""
        return self._tap.connection

    @property
    def url_base(self) -> str:
        """The API root, from the `api_url` setting."""
        return self.connection.api_url

    @property
    def authenticator(self) -> Any:
        """The run's single authenticator (not one per stream: one login per run)."""
        return self.connection.authenticator

    @property
    def requests_session(self) -> requests.Session:
        """The run's single throttled session: every request pays into one budget."""
        return self.connection.session

    @property
    def http_headers(self) -> dict[str, str]:
        """The connection's headers (JSON, the user agent)."""
        return self.connection.headers

    @property
    def timeout(self) -> int:
        """Seconds to wait for an answer before the request counts as failed (and is retried)."""
        return int(self.connection.timeout)

    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        """Retry by the run's one policy (the SDK's hook; the same decorator it would build)."""
        return self.connection.policy.decorate(
            func, log_retry(self.logger, self.connection.policy, self.name)
        )

    def validate_response(self, response: requests.Response) -> None:
        """Judge the response with `classify.check`: success, retriable or fatal failure.

        Replaces the SDK's check entirely, and with it the only caller of the SDK's
        `response_error_message` (whose message holds the whole body and headers): no message
        of ours is built from it.
        """
        check(response)

    def envelope(self, response: requests.Response) -> Envelope:
        """The parsed envelope of a response that `validate_response` has accepted."""
        return read_envelope(response)

    def parse_response(self, response: requests.Response) -> Iterable[dict[str, Any]]:
        """Records are the envelope's `detail`; subclasses say how to read it."""
        yield from self.records_from_detail(self.envelope(response).detail)

    def records_from_detail(self, detail: Any) -> Iterable[dict[str, Any]]:
        """Yield records from a successful envelope's detail (a list, by default)."""
        if isinstance(detail, list):
            yield from (item for item in detail if isinstance(item, dict))
