"""One stream per MapTable table: its rows, incremental on `_updated_at`, resumable mid-table.

The run's reader (`reading/`) fetches every segment; this stream, in the main thread, maps each
segment's cells onto its properties, filters rows by the bookmark, and records after each
segment where its read continues (`reading/resume.py`), so a stopped run's table is continued,
not started again. It holds no per-read state the reader's threads touch.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_maptable import api, logs
from tap_maptable.client import MapTableStream
from tap_maptable.columns import (
    INVALID_VALUES,
    UPDATED_AT,
    Column,
    ColumnPlan,
    UnmappableColumnsError,
    catalog_columns,
    live_columns,
    parse_timestamp,
    plan_columns,
    row_record,
    sent,
)
from tap_maptable.errors import TABLE_ERRORS, ColumnShapeError, one_line
from tap_maptable.reading import ReadPlan, Resume, read_resume, write_resume
from tap_maptable.reading.resume import SIZE_KEY, done_in_run, last_size, mark_done
from tap_maptable.reading.segments import last_row_id
from tap_maptable.sharing import share_schemas

if TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.helpers.types import Context
    from singer_sdk.singerlib import Catalog

    from tap_maptable.discovery import TableRef
    from tap_maptable.reading import TableRead
    from tap_maptable.tap import TapMapTable

# The bookmark is capped at the run's start (the SDK's signpost, by this host's clock), while
# `_updated_at` is MapTable's clock: the cap is moved back by this much, so that a host clock
# running ahead can never let the bookmark pass a row updated during the run.
SIGNPOST_MARGIN = timedelta(minutes=5)
# The SDK's key for a bookmark not yet complete (`singer_sdk.helpers._state.PROGRESS_MARKERS`).
PROGRESS_MARKERS = "progress_markers"


class TableRowsStream(MapTableStream):
    """The rows of one MapTable table, incremental on `_updated_at`."""

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
        columns: Any = None,
        unreadable: str | None = None,
    ) -> None:
        """A stream for `table`; `columns`: the live columns discovery read, if it did.

        `unreadable`: why discovery could not read the table (then it is never synced, but
        reported as skipped).
        """
        self.table = table
        self.unreadable = unreadable
        self._live = columns
        self._columns: list[Column] | None = None
        self._missing: tuple[str, ...] = ()
        self._sent: list[sent.SentColumn] | None = None
        self._drift_reported = False
        self._resume: Resume | None = None
        self._done_earlier = False
        self._backfill = False  # this read sends every row: its columns changed
        self._starting: datetime | None = None
        self._undated = 0
        self._emitted = 0
        self._invalid_rows = 0
        super().__init__(tap=tap, name=table.stream_name, schema=schema)

    def apply_catalog(self, catalog: Catalog) -> None:
        """The SDK's, then the catalog's copy of the schema is the stream's own when equal.

        Done per stream as it is built, so that a run of 1,000 tables never holds two copies of
        every schema at once (`sharing.py`).
        """
        super().apply_catalog(catalog)
        share_schemas([self], self._tap.mapper)

    @property
    def selected(self) -> bool:
        """A table discovery could not read is never synced (`report_unreadable` says so)."""
        return self.unreadable is None and self.wanted

    @selected.setter
    def selected(self, value: bool | None) -> None:
        MapTableStream.selected.fset(self, value)  # type: ignore[attr-defined]

    @property
    def wanted(self) -> bool:
        """Whether the catalog selects this table."""
        return bool(MapTableStream.selected.fget(self))  # type: ignore[attr-defined]

    def report_unreadable(self) -> None:
        """Count a table discovery could not read as skipped by this run, with one WARNING."""
        reason = f"{self.unreadable}; run discovery again once the app can read it"
        self._tap.table_skipped(self.name, reason)
        self._tap.progress.table_done(skipped=True)
        self.logger.warning(
            "Skipping %s: not readable when the catalog was written (%s). Run discovery again "
            "once the app can read it (under Meltano: `meltano run --refresh-catalog ...`).",
            self.label,
            self.unreadable,
        )

    @property
    def label(self) -> str:
        """How log lines name this table: `table_tbl1 (Orders)`."""
        return f"{self.name} ({self.table.name or 'table ' + self.table.table_id})"

    # -- where the read starts (main thread, before the sync writes anything) ---------------------

    def read_plan(self, *, continuing: bool = False) -> ReadPlan:
        """Where this table's read starts: after an earlier run's resume point, when it may.

        A read continues only if its properties still carry the columns they carried when it
        began (else the rows it sent would mean something else than the rest) and it is read
        with the same replication method; otherwise the table starts again at its first
        segment. When this run `continuing` a stopped one, a table that run finished is not
        read at all.
        """
        bookmark = self.stream_state
        self._done_earlier = continuing and done_in_run(bookmark, self._tap.run_started)
        if self._done_earlier:  # its size still tells the time left how large tables are
            return ReadPlan(
                stream=self.name,
                table_id=self.table.table_id,
                expected_segments=last_size(bookmark),
                done=True,
            )
        # A resume point belongs to the run that wrote it: only that run's continuation uses it.
        resume = read_resume(bookmark) if continuing else None
        if resume is not None and resume.run != self._tap.run_started:
            resume = None
        self._resume = None
        if resume is not None:
            full_table = self.replication_method == "FULL_TABLE"
            if resume.full_table == full_table and self._columns_as_then(resume):
                self._resume = resume
            else:
                self.logger.info(
                    "%s: its last run stopped after segment %d, but its columns or replication "
                    "method changed since: reading it again from its first segment.",
                    self.label,
                    resume.segments,
                )
        self._live = None  # the read's first segment brings them again: not kept per table
        return ReadPlan(
            stream=self.name,
            table_id=self.table.table_id,
            after=self._resume.after_row if self._resume else None,
            expected_segments=last_size(bookmark),
        )

    def _columns_as_then(self, resume: Resume) -> bool:
        """Whether the properties carry what they carried when the stopped read began.

        With the live columns (discovery read them in this process): exactly the same columns.
        Without (a catalog): the same properties, each with the column id the catalog records,
        or none where the read found its column gone; a retype shows only in the live columns
        (the values follow the catalog's schema either way). Then the read continues with
        what it sent before, so the warehouse gets one mapping for the whole table.
        """
        if resume.columns is None:
            return False
        if self._live is not None:
            try:
                self._map_columns(self._live)
            except ColumnShapeError:
                return False
            return self._sent == resume.columns
        columns = catalog_columns(self.schema.get("properties", {}))
        if columns is None:
            return False
        mask = self.mask
        by_prop = {c.prop_name: c for c in columns if mask.get(("properties", c.prop_name), True)}
        then = {prop: column_id for prop, column_id, _ in resume.columns}
        if set(then) != set(by_prop) or any(
            column_id is not None and column_id != by_prop[prop].id
            for prop, column_id in then.items()
        ):
            return False
        self._columns = [c for p, c in by_prop.items() if then[p] is not None]
        self._missing = tuple(p for p, column_id in then.items() if column_id is None)
        self._sent = resume.columns
        return True

    def get_replication_key_signpost(self, context: Context | None = None) -> datetime | Any:
        """The bookmark's cap: the run's start (the SDK's), or a continued read's earlier start.

        Moved back by a clock-skew margin: see `SIGNPOST_MARGIN`.
        """
        signpost = super().get_replication_key_signpost(context)
        if not isinstance(signpost, datetime):
            return signpost
        resume = self._resume  # planned before the sync began
        if resume is not None and resume.started_at is not None:
            signpost = min(signpost, parse_timestamp(resume.started_at))
        return signpost - SIGNPOST_MARGIN

    # -- the rows ---------------------------------------------------------------------------------

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Every row, segment by segment; after each segment, where the read continues.

        A table that cannot be read (gone, not this app's to read, columns the tap cannot map)
        is skipped: one WARNING, its bookmark left where it was (its progress markers dropped,
        so the SDK promotes nothing), and the run goes on with the other tables.
        """
        read = self._tap.read_of(self)
        if self._done_earlier:
            self.logger.info(
                "%s: read to its end by the run this one continues; not read again.", self.label
            )
            self._tap.progress.table_done()
            return
        self._starting = self.get_starting_timestamp(context)
        self._undated = self._emitted = self._invalid_rows = 0
        self._backfill = False
        started, segments = time.monotonic(), self._begin()
        continued_after = segments
        try:
            for detail in self._tap.reader.segments(read):
                if read.restarted is not None:
                    segments = self._restart(read)
                if isinstance(detail.get("columns"), list) or self._columns is None:
                    self._map_columns(detail.get("columns"))
                if segments == 0 and self._resume is None:
                    self._backfill_if_columns_changed()
                before = self._emitted
                yield from self._records(detail)  # the SDK calls `post_process` on each
                segments += 1
                self._tap.progress.rows_sent(self._emitted - before)
                self._checkpoint(detail, segments)
        except TABLE_ERRORS as exc:
            self._skip(exc)
            return
        self._complete(segments)
        self._log_done(segments - continued_after, time.monotonic() - started, continued_after)

    def _begin(self) -> int:
        """Set up a continued read (its version, bookmark so far, backfill); segments sent."""
        resume = self._resume
        if resume is None:
            return 0
        self.logger.info(
            "%s: continuing after segment %d (row %s), where the last run stopped.",
            self.label,
            resume.segments,
            resume.after_row,
        )
        if resume.version is not None and self._pending_version is not None:
            # The version the read's first rows carried: ACTIVATE_VERSION may remove only
            # rows of older versions.
            self._stream_version = self._pending_version = resume.version
        if resume.max_updated is not None and self.replication_method == "INCREMENTAL":
            self.stream_state[PROGRESS_MARKERS] = {
                "Note": "Progress is not resumable if interrupted.",
                "replication_key": UPDATED_AT,
                "replication_key_value": resume.max_updated,
            }
        if resume.backfill:
            self._backfill, self._starting = True, self._backfill_floor()
        return resume.segments

    def _restart(self, read: TableRead) -> int:
        """MapTable would not continue after the resume point: the table starts again."""
        self.logger.warning(
            "%s: MapTable would not continue after row %s (%s); reading the table again from "
            "its first segment (the rows the last run sent are sent again).",
            self.label,
            self._resume.after_row if self._resume else "?",
            read.restarted,
        )
        read.restarted = None
        resumed, self._resume = self._resume, None
        self.stream_state.pop(PROGRESS_MARKERS, None)
        if resumed is not None and resumed.version is not None and self._pending_version:
            # Read again from the start, the table is a new version: ACTIVATE_VERSION then
            # removes the rows the stopped run sent that MapTable no longer has (the refused
            # resume row, most likely).
            self._stream_version = self._pending_version = self._tap.initialized_at // 1000
        if resumed is not None and resumed.backfill:
            self._backfill, self._starting = True, self._backfill_floor()
        return 0

    def _records(self, detail: dict[str, Any]) -> list[dict[str, Any]]:
        columns = self._columns or []
        return [
            row_record(row, columns, self._missing)
            for row in detail.get("rows") or []
            if isinstance(row, dict)
        ]

    def _checkpoint(self, detail: dict[str, Any], segments: int) -> None:
        """Record where the read continues, now that a segment's rows are all sent."""
        last = last_row_id(detail)
        previous = read_resume(self.stream_state)
        after = last or (previous.after_row if previous else None)
        if after is None:
            return
        markers = self.stream_state.get(PROGRESS_MARKERS) or {}
        max_updated = markers.get("replication_key_value")
        started = self._resume.started_at if self._resume else None
        write_resume(
            self.stream_state,
            Resume(
                run=self._tap.run_started,
                after_row=after,
                segments=segments,
                version=self._stream_version if self._pending_version is not None else None,
                max_updated=max_updated if isinstance(max_updated, str) else None,
                started_at=started or self._tap.process_started,
                backfill=self._backfill,
                columns=self._sent,
                full_table=self.replication_method == "FULL_TABLE",
            ),
        )
        self._tap.checkpoint()

    def _complete(self, segments: int) -> None:
        """The table was read end to end: what the warehouse now has, and its size."""
        self.activate_version()
        write_resume(self.stream_state, None)
        mark_done(self.stream_state, self._tap.run_started)
        if self._sent is not None:
            self.stream_state[sent.STATE_KEY] = sent.to_state(self._sent)
        self.stream_state[SIZE_KEY] = max(1, segments)
        self._tap.progress.table_done()
        self._release()

    def _release(self) -> None:
        """Forget the read's column mapping once the table is done (a next read maps anew).

        A run holds every table's stream to its end: at 1,000 tables the mappings of tables
        already sent would otherwise grow the run's memory table by table.
        """
        self._columns, self._missing, self._sent = None, (), None

    def _skip(self, exc: Exception) -> None:
        """Leave this table where its last segment sent left it, and say why, once."""
        self.stream_state.pop(PROGRESS_MARKERS, None)
        reason = one_line(str(exc))
        self._tap.table_skipped(self.name, reason)
        self._tap.progress.table_done(skipped=True)
        self._release()
        self.logger.warning(
            "Skipping %s: %s. Its rows read so far were sent; its bookmark is unchanged, "
            "so the next run reads it again.",
            self.label,
            reason,
        )

    def _backfill_if_columns_changed(self) -> None:
        """Send every row when the properties carry other columns than the warehouse got last.

        Called once the first segment has mapped the columns, before any row is filtered. A
        table without a bookmark sends every row (from `start_date`) anyway: no backfill.
        """
        if self._sent is None or self.replication_method != "INCREMENTAL":
            return
        if self.stream_state.get("replication_key_value") is None:
            return
        why = sent.what_changed(sent.from_state(self.stream_state.get(sent.STATE_KEY)), self._sent)
        if why is None or self._starting is None:
            return
        floor = self._backfill_floor()
        self.logger.info(
            "%s: sending every row, not only those updated since %s%s: %s.",
            self.label,
            self._starting.isoformat(),
            f" (every row updated since start_date {floor.isoformat()})" if floor else "",
            why,
        )
        self._backfill, self._starting = True, floor

    def _backfill_floor(self) -> datetime | None:
        """The lower bound of a backfill: `start_date`, as on a first run."""
        start = self.config.get("start_date")
        return parse_timestamp(str(start)) if start else None

    def _log_done(self, segments: int, seconds: float, continued_after: int = 0) -> None:
        """One line per table, when it is done: what a person reading the log wants to know.

        `segments`: read by this run (a continued read's earlier ones were the stopped run's).
        """
        notes = f"; continued after segment {continued_after}" if continued_after else ""
        if self._undated and self.replication_method == "INCREMENTAL":
            # (A FULL_TABLE read sends every row anyway: the note would say nothing.)
            notes += f"; {self._undated} without an update time, sent on every run"
        if self._invalid_rows:
            notes += (
                f"; {self._invalid_rows} with values that do not fit their type "
                f"(null, kept as written in {INVALID_VALUES})"
            )
        if self.replication_method != "INCREMENTAL":
            since = " (FULL_TABLE)" if continued_after else " (FULL_TABLE: every row)"
        elif self._starting is not None:
            since = f", updated since {self._starting.isoformat()}"
        else:
            since = ""
        self.logger.info(
            logs.TABLE_DONE_FORMAT,
            self.name,
            self.table.name or "table " + self.table.table_id,
            self._emitted,
            "" if self._emitted == 1 else "s",
            since,
            segments,
            "" if segments == 1 else "s",
            seconds,
            notes,
        )

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

    # -- columns ----------------------------------------------------------------------------------

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
        where = self.label
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
