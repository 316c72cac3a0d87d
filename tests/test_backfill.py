"""The warehouse stays right after the columns change: a changed table is sent whole, once.

Editing columns changes no row's update time, so an incremental sync alone would leave every row
not edited since the bookmark as the warehouse last got it: NULL in a new column, a deleted
column's values under a new column of the same name. The STATE keeps which column each property
carried (`columns_sent`); a table whose properties carry other columns now is read as a backfill
(every row sent, no extra request), and tables whose columns did not change stay incremental.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tap_maptable.columns import parse_timestamp
from tap_maptable.columns.sent import STATE_KEY
from tests.helpers import Run, discover, kinds, select_only, sync, tap_config

BACKFILL = "sending every row, not only those updated since"


def stream(table_id: str) -> str:
    return f"table_{table_id}"


def column_id(sandbox: Any, table_id: str, name: str) -> str:
    (found,) = [c["id"] for c in sandbox.data.columns(table_id) if c["name"] == name]
    return str(found)


def bookmark(state: dict[str, Any], table_id: str) -> dict[str, Any]:
    value: dict[str, Any] = state["bookmarks"][stream(table_id)]
    return value


def incremental_rows(sandbox: Any, table_id: str, since: str) -> set[str]:
    """The rows an incremental run must send: updated at or after `since`, or with no time."""
    start = parse_timestamp(since)
    out = set()
    for row in sandbox.data.rows(table_id):
        updated = row["meta"]["updateTime"]
        if updated.startswith("0001-") or parse_timestamp(updated) >= start:
            out.add(row["id"])
    return out


def backfill_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if BACKFILL in r.getMessage()]


@pytest.fixture
def two_tables(sandbox: Any) -> tuple[Any, str, str]:
    """The sandbox, the table whose columns will change, and one whose columns will not."""
    tables = [t.table_id for t in sandbox.data.tables()]
    return sandbox, tables[0], tables[2]


def edit_columns_as_in_the_issue(sandbox: Any, table_id: str) -> None:
    """Add a filled "Priority"; delete the text "Notes" and add a number column of that name."""
    sandbox.add_column(table_id, "Priority", "number", fill=7)
    sandbox.delete_column(table_id, column_id(sandbox, table_id, "Notes"))
    sandbox.add_column(table_id, "Notes", "number")  # filled with each row's number


def test_a_changed_table_is_sent_whole_and_an_unchanged_one_stays_incremental(
    two_tables: tuple[Any, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    sandbox, changed, unchanged = two_tables
    config = tap_config(sandbox)
    first = sync(config)
    state = first.last_state
    assert state is not None
    assert bookmark(state, changed)[STATE_KEY]  # what the warehouse was given, per property
    edit_columns_as_in_the_issue(sandbox, changed)
    some_row = next(iter(sandbox.data.rows(unchanged)))["id"]
    sandbox.data.update_row(unchanged, some_row, {})

    caplog.clear()
    with caplog.at_level(logging.INFO):
        second = sync(config, state=state)  # a fresh discovery, as Meltano runs it
    since = bookmark(state, unchanged)["replication_key_value"]

    rows = second.rows[stream(changed)]
    assert {r["_row_id"] for r in rows} == {r["id"] for r in sandbox.data.rows(changed)}
    assert all(r["Priority"] == 7 for r in rows)
    assert all(isinstance(r["Notes"], int) for r in rows)  # the new number column, not old text
    assert second.schema(stream(changed))["properties"]["Notes"]["type"] == ["number", "null"]
    sent = {r["_row_id"] for r in second.rows[stream(unchanged)]}
    assert some_row in sent
    assert sent == incremental_rows(sandbox, unchanged, since)
    (line,) = backfill_lines(caplog)
    assert stream(changed) in line
    assert "'Priority' added" in line
    assert "'Notes' now holds column" in line

    # The next run has nothing to catch up on: the changed table is incremental again.
    caplog.clear()
    with caplog.at_level(logging.INFO):
        third = sync(config, state=second.last_state)
    assert backfill_lines(caplog) == []
    since = bookmark(second.last_state or {}, changed)["replication_key_value"]
    assert {r["_row_id"] for r in third.rows.get(stream(changed), [])} == incremental_rows(
        sandbox, changed, since
    )


def test_a_backfill_costs_no_request(two_tables: tuple[Any, str, str]) -> None:
    sandbox, changed, _ = two_tables
    config = tap_config(sandbox)
    state = sync(config).last_state
    sandbox.reset_log()
    sync(config, state=state)
    unchanged_requests = kinds(sandbox)
    edit_columns_as_in_the_issue(sandbox, changed)
    sandbox.reset_log()
    sync(config, state=state)
    assert kinds(sandbox) == unchanged_requests


def test_with_a_pinned_catalog_a_deleted_column_is_null_in_every_row(
    two_tables: tuple[Any, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    sandbox, changed, _ = two_tables
    config = tap_config(sandbox)
    catalog = discover(config)
    state = sync(config, catalog=catalog).last_state
    edit_columns_as_in_the_issue(sandbox, changed)

    with caplog.at_level(logging.INFO):
        second = sync(config, catalog=catalog, state=state)
    rows = second.rows[stream(changed)]
    assert len(rows) == sandbox.data.row_count(changed)
    # The catalog's "Notes" was the deleted text column: no values from the new number column.
    assert all(r["Notes"] is None for r in rows)
    assert all("Priority" not in r for r in rows)  # not in the catalog: not sent
    messages = [r.getMessage() for r in caplog.records]
    assert any("'Notes' has no column any more" in m for m in messages)
    assert any("new column(s)" in m and "Priority" in m for m in messages)

    # Still pinned, nothing changed since: incremental again.
    caplog.clear()
    with caplog.at_level(logging.INFO):
        sync(config, catalog=catalog, state=second.last_state)
    assert backfill_lines(caplog) == []


def test_a_rename_under_a_pinned_catalog_is_no_backfill_but_after_discovery_it_is(
    two_tables: tuple[Any, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    sandbox, changed, _ = two_tables
    config = tap_config(sandbox)
    catalog = discover(config)
    state = sync(config, catalog=catalog).last_state
    sandbox.rename_column(changed, column_id(sandbox, changed, "Notes"), "Remarks")
    with caplog.at_level(logging.INFO):
        pinned = sync(config, catalog=catalog, state=state)
    assert backfill_lines(caplog) == []  # "Notes" still carries the same column
    caplog.clear()
    with caplog.at_level(logging.INFO):
        fresh = sync(config, state=pinned.last_state)
    (line,) = backfill_lines(caplog)
    assert "'Remarks' added" in line
    assert "'Notes' no longer sent" in line
    rows = fresh.rows[stream(changed)]
    assert len(rows) == sandbox.data.row_count(changed)


def test_a_retyped_column_is_a_backfill(
    two_tables: tuple[Any, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    sandbox, changed, _ = two_tables
    config = tap_config(sandbox)
    state = sync(config).last_state
    sandbox.retype_column(changed, column_id(sandbox, changed, "Notes"), "number")
    with caplog.at_level(logging.INFO):
        second = sync(config, state=state)
    (line,) = backfill_lines(caplog)
    assert "'Notes' changed type (multiLineText -> number)" in line
    assert len(second.rows[stream(changed)]) == sandbox.data.row_count(changed)


def test_selecting_one_more_column_sends_it_for_every_row(
    two_tables: tuple[Any, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    sandbox, changed, _ = two_tables
    config = tap_config(sandbox, table_ids=[changed])
    catalog = select_only(discover(config), {stream(changed)})
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == stream(changed))
    notes = next(m for m in entry["metadata"] if m["breadcrumb"] == ["properties", "Notes"])
    notes["metadata"]["selected"] = False
    first = sync(config, catalog=catalog)
    assert all("Notes" not in r for r in first.rows[stream(changed)])
    notes["metadata"]["selected"] = True
    with caplog.at_level(logging.INFO):
        second = sync(config, catalog=catalog, state=first.last_state)
    (line,) = backfill_lines(caplog)
    assert "'Notes' added" in line
    assert len(second.rows[stream(changed)]) == sandbox.data.row_count(changed)


def test_a_state_from_an_older_version_backfills_once(
    two_tables: tuple[Any, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    sandbox, changed, _ = two_tables
    config = tap_config(sandbox, table_ids=[changed])
    state = sync(config).last_state
    assert state is not None
    del bookmark(state, changed)[STATE_KEY]
    with caplog.at_level(logging.INFO):
        second = sync(config, state=state)
    (line,) = backfill_lines(caplog)
    assert "no record of the columns sent before" in line
    assert len(second.rows[stream(changed)]) == sandbox.data.row_count(changed)


def test_full_table_streams_are_not_reported_as_backfills(
    two_tables: tuple[Any, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    sandbox, changed, _ = two_tables
    config = tap_config(sandbox, table_ids=[changed])
    catalog = discover(config)
    for entry in catalog["streams"]:
        entry["replication_method"] = "FULL_TABLE"
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["forced-replication-method"] = "FULL_TABLE"
    state = sync(config, catalog=catalog).last_state
    edit_columns_as_in_the_issue(sandbox, changed)
    with caplog.at_level(logging.INFO):
        run: Run = sync(config, catalog=catalog, state=state)
    assert backfill_lines(caplog) == []
    assert len(run.rows[stream(changed)]) == sandbox.data.row_count(changed)


def test_start_date_bounds_a_first_run_and_a_backfill(
    two_tables: tuple[Any, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    sandbox, changed, _ = two_tables
    start = "2025-06-01T00:00:00Z"
    config = tap_config(sandbox, table_ids=[changed], start_date=start)
    first = sync(config)
    due = incremental_rows(sandbox, changed, start)
    assert {r["_row_id"] for r in first.rows[stream(changed)]} == due
    assert len(due) < sandbox.data.row_count(changed)  # start_date left rows out
    sandbox.add_column(changed, "Priority", "number", fill=7)
    with caplog.at_level(logging.INFO):
        second = sync(config, state=first.last_state)
    (line,) = backfill_lines(caplog)
    assert "since start_date" in line
    assert {r["_row_id"] for r in second.rows[stream(changed)]} == incremental_rows(
        sandbox, changed, start
    )


def test_a_state_handed_over_in_process_is_no_change(
    sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A finished tap's own `state` (records as tuples, not parsed lists) starts no backfill."""
    config = tap_config(sandbox)
    first = sync(config)
    assert first.tap is not None
    caplog.clear()
    with caplog.at_level(logging.INFO):
        sync(config, state=dict(first.tap.state))
    assert backfill_lines(caplog) == []
