"""One stream per MapTable table: its rows, read segment by segment, incremental on `_updated_at`.

A first segment that discovery read in this process is taken from the tap's `Directory` rather
than asked for again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_maptable import api
from tap_maptable.client import MapTableStream
from tap_maptable.columns import (
    UPDATED_AT,
    Column,
    name_columns,
    parse_timestamp,
    row_record,
)
from tap_maptable.errors import MapTableAPIError
from tap_maptable.pagination import SegmentPaginator, last_row_id

if TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk.helpers.types import Context

    from tap_maptable.discovery import TableRef
    from tap_maptable.tap import TapMapTable

LAST_SEGMENT_ROW_PARAM_QUERY = api.LAST_SEGMENT_ROW_PARAM + "="
# The bookmark is capped at the run's start (the SDK's signpost, by this host's clock), while
# `_updated_at` is MapTable's clock: the cap is moved back by this much, so that a host clock
# running ahead can never let the bookmark pass a row updated during the run.
SIGNPOST_MARGIN = timedelta(minutes=5)


class _DropNullBookmarkWarnings(logging.Filter):
    """singer-sdk warns once per record whose replication key is null.

    MapTable rows with no update time (Go's zero time) are expected, documented, and always
    emitted; a 1,000,000-row table would log thousands of identical warnings. Each table's
    stream logs one summary line instead.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop the SDK's per-record "null replication value" warning only."""
        return record.getMessage() != "New replication value is null"


logging.getLogger("singer_sdk").addFilter(_DropNullBookmarkWarnings())


class TableGoneError(MapTableAPIError):
    """A table named by the catalog no longer exists (HTTP 404 on its first segment)."""


class TableRowsStream(MapTableStream):
    """The rows of one MapTable table, read segment by segment, incremental on `_updated_at`."""

    primary_keys: ClassVar[list[str]] = ["_row_id"]
    replication_key = UPDATED_AT
    is_sorted = False  # segments come in row-id order, not update order
    # `columns.row_record` already gives every value its schema's JSON type; the SDK's generic
    # per-value conformance pass would only cost time (a third of a large sync's CPU).
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    path = api.TABLE_SEGMENT_PATH

    def __init__(
        self,
        tap: TapMapTable,
        table: TableRef,
        schema: dict[str, Any],
        columns: list[Column] | None = None,
    ) -> None:
        """A stream for `table`, with the schema from discovery or from the input catalog."""
        self.table = table
        self._columns = columns
        self._resume_after: str | None = None
        self._paginator: SegmentPaginator | None = None
        self._starting: datetime | None = None
        self._undated = 0
        self._pending_version: int | None = None
        super().__init__(tap=tap, name=table.stream_name, schema=schema)

    @property
    def emit_activate_version_messages(self) -> bool:
        """FULL_TABLE syncs announce a table version, so targets can drop deleted rows."""
        return True

    def _write_activate_version_message(self, full_table_version: int) -> None:
        """Hold ACTIVATE_VERSION until the whole table has been read.

        The SDK sends it before the first record, and SQL targets then drop every older row
        at once: a run that failed half-way would leave the warehouse with half a table. Sent
        after the last record, it removes exactly the rows MapTable no longer has. (A private
        SDK method: there is no public hook for when the message is written.)
        """
        self._pending_version = full_table_version

    def get_replication_key_signpost(self, context: Context | None = None) -> datetime | Any:
        """The SDK's cap on the bookmark (the run's start), moved back by a clock-skew margin.

        When discovery in this process already read the table's first segment, the cap is that
        read's time instead: those rows may be minutes older than the stream's start.
        """
        signpost = super().get_replication_key_signpost(context)
        if not isinstance(signpost, datetime):
            return signpost
        read_at = self._tap.directory.first_segment_read_at(self.table.table_id)
        if read_at is not None:
            signpost = min(signpost, read_at)
        return signpost - SIGNPOST_MARGIN

    def get_url(self, context: Context | None) -> str:  # noqa: ARG002
        """The table's segment endpoint."""
        return self.url_base + self.path.format(tableId=self.table.table_id)

    def get_new_paginator(self) -> SegmentPaginator:
        """Segments after `_resume_after` (the last row of a segment read during discovery)."""
        self._paginator = SegmentPaginator(self.table.table_id, start_value=self._resume_after)
        return self._paginator

    def get_url_params(self, context: Context | None, next_page_token: Any) -> dict[str, Any]:  # noqa: ARG002
        """`lastSegmentRowID` after the first segment."""
        return {api.LAST_SEGMENT_ROW_PARAM: next_page_token} if next_page_token else {}

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Every row; then, for FULL_TABLE, the held ACTIVATE_VERSION (only after a whole read)."""
        self._starting = self.get_starting_timestamp(context)
        self._undated = 0
        version, self._pending_version = self._pending_version, None
        try:
            yield from self._read_segments(context)
        except TableGoneError as exc:
            self.logger.warning("Skipping %s: %s", self.name, exc)
            return
        if version is not None:
            super()._write_activate_version_message(version)
        if self._undated:
            self.logger.info(
                "%s: %d rows have no update time; they are emitted on every run.",
                self.name,
                self._undated,
            )

    def _read_segments(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Every row, starting with a first segment discovery already read, if any."""
        first = self._tap.directory.take_first_segment(self.table.table_id)
        self._resume_after = None
        if first is not None:
            self._paginator = SegmentPaginator(self.table.table_id)
            yield from self.records_from_detail(first)
            if not first.get("more"):
                return
            self._resume_after = last_row_id(first)
        yield from super().get_records(context)

    def validate_response(self, response: requests.Response) -> None:
        """A table deleted since discovery is a warning for this stream, not a failed run.

        Only on the first segment: a 404 after rows were read is an error, because ending the
        table there would move the bookmark past the rows never read.
        """
        first = LAST_SEGMENT_ROW_PARAM_QUERY not in (response.request.path_url or "")
        if response.status_code == HTTPStatus.NOT_FOUND and first:
            msg = f"table {self.table.table_id} ({self.table.name!r}) no longer exists (HTTP 404)"
            raise TableGoneError(msg, status=HTTPStatus.NOT_FOUND)
        super().validate_response(response)

    def records_from_detail(self, detail: Any) -> Iterable[dict[str, Any]]:
        """Rows of one segment; the first segment also brings the columns."""
        if not isinstance(detail, dict):
            return
        if self._paginator is not None:
            self._paginator.check(detail)
        if isinstance(detail.get("columns"), list):
            self._set_columns(name_columns(detail["columns"]))
        columns = self._columns or []
        for row in detail.get("rows") or []:
            if isinstance(row, dict):
                yield row_record(row, columns)

    def post_process(
        self,
        row: dict[str, Any],
        context: Context | None = None,  # noqa: ARG002
    ) -> dict[str, Any] | None:
        """Emit rows updated at or after the bookmark; a row with no update time, always.

        The API cannot filter by time, so every segment is read and the filter is applied here.
        """
        updated = row.get(UPDATED_AT)
        if updated is None:
            self._undated += 1
            return row
        if self.replication_method != "INCREMENTAL" or self._starting is None:
            return row
        return row if parse_timestamp(updated) >= self._starting else None

    def first_segment(self) -> dict[str, Any]:
        """The table's first segment from the API (used by the Directory during discovery)."""
        detail = self.request_one(None)
        return detail if isinstance(detail, dict) else {}

    def _set_columns(self, columns: list[Column]) -> None:
        """Use the table's columns, limited to the properties the catalog's schema has."""
        known = set(self.schema.get("properties", {}))
        if not known:  # a discovery probe: no schema yet
            self._columns = columns
            return
        new = [column.prop_name for column in columns if column.prop_name not in known]
        if new and self._columns is None:
            self.logger.warning(
                "%s: columns %s are not in the catalog (added or renamed since discovery); "
                "run discovery again to extract them.",
                self.name,
                ", ".join(repr(name) for name in new),
            )
        self._columns = [column for column in columns if column.prop_name in known]
