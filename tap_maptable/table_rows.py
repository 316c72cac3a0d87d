"""One stream per MapTable table: its rows, read segment by segment, incremental on `_updated_at`.

A first segment that discovery read in this process is taken from the tap's `Directory` rather
than asked for again. Later segments are paged by the SDK (`SegmentPaginator`).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, cast

from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_maptable import api, logs
from tap_maptable.client import MapTableStream
from tap_maptable.columns import (
    INVALID_VALUES,
    UPDATED_AT,
    Column,
    ColumnPlan,
    UnmappableColumnsError,
    live_columns,
    parse_timestamp,
    plan_columns,
    row_record,
    sent,
)
from tap_maptable.discovery import segment_path
from tap_maptable.errors import TABLE_ERRORS, ColumnShapeError, one_line
from tap_maptable.pagination import SegmentPaginator, last_row_id

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import requests
    from singer_sdk.helpers.types import Context

    from tap_maptable.discovery import TableRef
    from tap_maptable.tap import TapMapTable

# The SDK's key for a bookmark not yet complete (`singer_sdk.helpers._state.PROGRESS_MARKERS`).
PROGRESS_MARKERS = "progress_markers"
# The bookmark is capped at the run's start (the SDK's signpost, by this host's clock), while
# `_updated_at` is MapTable's clock: the cap is moved back by this much, so that a host clock
# running ahead can never let the bookmark pass a row updated during the run.
SIGNPOST_MARGIN = timedelta(minutes=5)


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
        self._drift_reported = False
        self._emitted = 0
        self._invalid_rows = 0
        self._sent: list[sent.SentColumn] | None = None
        self._missing: tuple[str, ...] = ()
        super().__init__(tap=tap, name=table.stream_name, schema=schema)

    def get_replication_key_signpost(self, context: Context | None = None) -> datetime | Any:
        """The SDK's cap on the bookmark (the run's start), moved back by a clock-skew margin.

        When discovery in this process already read the table's first segment, or a background
        fetch began reading the table before its stream started, the cap is that read's time
        instead: those rows may be minutes older than the stream's start.
        """
        signpost = super().get_replication_key_signpost(context)
        if not isinstance(signpost, datetime):
            return signpost
        read_at = self._tap.directory.first_segment_read_at(self.table.table_id)
        if read_at is not None:
            signpost = min(signpost, read_at)
        fetched_at = self._tap.prefetcher.started_at(self.name)
        if fetched_at is not None:
            signpost = min(signpost, datetime.fromtimestamp(fetched_at, tz=timezone.utc))
        return signpost - SIGNPOST_MARGIN

    def get_url(self, context: Context | None) -> str:  # noqa: ARG002
        """The table's segment endpoint."""
        return self.url_base + segment_path(self.table.table_id)

    def get_new_paginator(self) -> SegmentPaginator:
        """Segments after `_resume_after` (the last row of a segment read during discovery)."""
        self._paginator = SegmentPaginator(self.table.table_id, start_value=self._resume_after)
        return self._paginator

    def get_url_params(self, context: Context | None, next_page_token: Any) -> dict[str, Any]:  # noqa: ARG002
        """`lastSegmentRowID` after the first segment."""
        return {api.LAST_SEGMENT_ROW_PARAM: next_page_token} if next_page_token else {}

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Every row; then, for FULL_TABLE, the held ACTIVATE_VERSION (only after a whole read).

        A table that cannot be read (gone, not this app's to read, columns the tap cannot map)
        is skipped: one WARNING, its bookmark left where it was (its progress markers dropped,
        so the SDK promotes nothing), and the run goes on with the other tables.
        """
        self._tap.warn_tables_not_in_catalog()
        self._tap.start_prefetch()
        self._starting = self.get_starting_timestamp(context)
        self._undated = 0
        self._emitted = 0
        self._invalid_rows = 0
        started, read = time.monotonic(), 0
        segments = self._tap.prefetcher.segments(self.name, partial(self.fetch_segments, context))
        try:
            for segment in segments:
                if read == 0:
                    self._backfill_if_columns_changed()
                read += 1
                yield from segment  # the SDK calls `post_process` on each
        except TABLE_ERRORS as exc:
            self._skip(exc)
            return
        self.activate_version()
        if self._sent is not None:
            self.stream_state[sent.STATE_KEY] = sent.to_state(self._sent)
        self._log_done(self._emitted, read, time.monotonic() - started)

    def _skip(self, exc: Exception) -> None:
        """Leave this table as the last complete run left it, and say why, once."""
        self.stream_state.pop(PROGRESS_MARKERS, None)
        reason = one_line(str(exc))
        self._tap.table_skipped(self.name, reason)
        self.logger.warning(
            "Skipping %s (%s): %s. Its rows read so far were sent; its bookmark is unchanged, "
            "so the next run reads it again.",
            self.name,
            self.table.name or "table " + self.table.table_id,
            reason,
        )

    def _backfill_if_columns_changed(self) -> None:
        """Send every row when the properties carry other columns than the warehouse got last.

        Called once the first segment has mapped the columns, before any row is filtered.
        """
        if self._sent is None or self.replication_method != "INCREMENTAL":
            return
        why = sent.what_changed(sent.from_state(self.stream_state.get(sent.STATE_KEY)), self._sent)
        if why is None or self._starting is None:
            return
        self.logger.info(
            "%s (%s): sending every row, not only those updated since %s: %s.",
            self.name,
            self.table.name or "table " + self.table.table_id,
            self._starting.isoformat(),
            why,
        )
        self._starting = None

    def _log_done(self, emitted: int, segments: int, seconds: float) -> None:
        """One line per table, when it is done: what a person reading the log wants to know."""
        notes = ""
        if self._undated:
            notes += f"; {self._undated} without an update time, sent on every run"
        if self._invalid_rows:
            notes += (
                f"; {self._invalid_rows} with values that do not fit their type "
                f"(null, kept as written in {INVALID_VALUES})"
            )
        since = (
            f", updated since {self._starting.isoformat()}"
            if self._starting is not None and self.replication_method == "INCREMENTAL"
            else ""
        )
        self.logger.info(
            logs.TABLE_DONE_FORMAT,
            self.name,
            self.table.name or "table " + self.table.table_id,
            emitted,
            since,
            segments,
            "" if segments == 1 else "s",
            seconds,
            notes,
        )

    def fetch_segments(self, context: Context | None) -> Iterator[list[dict[str, Any]]]:
        """Every segment, as records, starting with a first segment discovery already read.

        Runs in the main thread or in a background fetch (`prefetch.py`); it only requests and
        parses, and never writes a message. Later segments are paged by the SDK.
        """
        first = self._tap.directory.take_first_segment(self.table.table_id)
        self._resume_after = None
        if first is not None:
            self._paginator = SegmentPaginator(self.table.table_id)
            yield self.segment_records(first)
            if not first.get("more"):
                return
            self._resume_after = last_row_id(first)
        # `parse_response` yields one list per segment, so the SDK's pages are segments here.
        yield from cast("Iterable[list[dict[str, Any]]]", self.request_records(context))

    def parse_response(self, response: requests.Response) -> Iterable[Any]:
        """One item per segment: its records (the SDK pages on; `get_records` flattens)."""
        yield self.segment_records(self.envelope(response).detail)

    def segment_records(self, detail: Any) -> list[dict[str, Any]]:
        """The records of one segment; the first segment also brings the columns."""
        if not isinstance(detail, dict):
            return []
        if self._paginator is not None:
            self._paginator.check(detail)
        if self._columns is None or detail.get("columns") is not None:
            self._map_columns(detail.get("columns"))
        columns = self._columns or []
        return [
            row_record(row, columns, self._missing)
            for row in detail.get("rows") or []
            if isinstance(row, dict)
        ]

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
        elif (
            self.replication_method == "INCREMENTAL"
            and self._starting is not None
            and parse_timestamp(updated) < self._starting
        ):
            return None
        if row.get(INVALID_VALUES) is not None:
            self._invalid_rows += 1
        self._emitted += 1
        return row

    def _map_columns(self, live: Any) -> None:
        """Map the table's live columns onto the schema's properties, by column id.

        The schema is the catalog's (or this run's discovery): a property keeps the column it
        was made from, whatever has been renamed, reordered or retyped since. What changed is
        said once per run, so the user knows what the warehouse holds and how to pick up more.
        """
        try:
            checked = live_columns(live)
        except UnmappableColumnsError as exc:
            msg = f"table {self.table.table_id}: the tap cannot map its columns: {exc}"
            raise ColumnShapeError(msg) from None
        plan = plan_columns(self.schema.get("properties", {}), checked)
        # A deselected column is not read at all: its value must not reach the warehouse by
        # way of `_invalid_values` either (the SDK only drops deselected top-level keys).
        mask = self.mask
        self._columns = [c for c in plan.columns if mask.get(("properties", c.prop_name), True)]
        self._missing = tuple(p for p in plan.missing if mask.get(("properties", p), True))
        self._sent = sent.columns_sent(self._columns, self._missing)
        if plan.drifted and not self._drift_reported:
            self._drift_reported = True
            self._report_drift(plan)

    def _report_drift(self, plan: ColumnPlan) -> None:
        where = f"{self.name} ({self.table.name or 'table ' + self.table.table_id})"
        for renamed in plan.renamed:
            self.logger.warning(
                "%s: column %r was renamed to %r in MapTable; its values still load into "
                "property %r.",
                where,
                renamed.old_name,
                renamed.new_name,
                renamed.prop_name,
            )
        for retyped in plan.retyped:
            self.logger.warning(
                "%s: the column of property %r changed type (%s -> %s) in MapTable; values that "
                "do not fit the property's type are null there and kept in %s. Run discovery "
                "again to load the new type.",
                where,
                retyped.prop_name,
                retyped.old_type or "?",
                retyped.new_type,
                INVALID_VALUES,
            )
        for prop in plan.missing:
            self.logger.warning(
                "%s: property %r has no column in MapTable any more (deleted?); it is null in "
                "every row of this run.",
                where,
                prop,
            )
        if plan.new:
            self.logger.warning(
                "%s: new column(s) %s are not in the catalog and are not extracted; to pick "
                "them up, run discovery again (under Meltano: `meltano run --refresh-catalog` "
                "or `meltano select --list --all` after clearing the cached catalog).",
                where,
                ", ".join(repr(column.prop_name) for column in plan.new),
            )
        if plan.reassigned:
            self.logger.info(
                "%s: a fresh discovery would name the properties %s after other columns; the "
                "catalog's mapping (by column id) is kept for this run.",
                where,
                ", ".join(repr(prop) for prop in plan.reassigned),
            )
