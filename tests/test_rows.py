"""Table rows: schemas, each row once, incremental, FULL_TABLE, segment loops, request cost."""

from __future__ import annotations

import json
import logging

import pytest

from maptable_sandbox import FaultPlan
from tap_maptable.columns import name_columns, parse_datetime
from tap_maptable.logs import rows_sent
from tests.helpers import (
    discover,
    is_row_stream,
    kinds,
    select_only,
    set_replication,
    sync,
    tap_config,
)


def _row_streams(catalog):
    return [e for e in catalog["streams"] if is_row_stream(e["tap_stream_id"])]


def _expected_property_values(sandbox, table_id):
    """The truth, converted by hand from the sandbox's rows, by row id."""
    columns = name_columns(sandbox.data.columns(table_id))
    return {row["id"]: row for row in sandbox.data.rows(table_id)}, columns


def test_discovery_builds_one_typed_stream_per_table(sandbox) -> None:
    catalog = discover(tap_config(sandbox))
    tables = {t.table_id: t for t in sandbox.data.tables()}
    entries = _row_streams(catalog)
    assert {e["tap_stream_id"] for e in entries} == {f"table_{t}" for t in tables}
    for entry in entries:
        table = tables[entry["tap_stream_id"].removeprefix("table_")]
        props = entry["schema"]["properties"]
        assert table.name in entry["schema"]["description"]
        assert table.project_name in entry["schema"]["description"]
        assert entry["key_properties"] == ["_row_id"]
        assert entry["replication_key"] == "_updated_at"
        assert props["_updated_at"]["format"] == "date-time"
        assert props["Amount"]["type"] == ["number", "null"]
        assert props["单价"]["type"] == ["number", "null"]
        assert props["Due date"]["format"] == "date-time"
        assert props["Location"]["properties"]["lng"]["type"] == ["number", "null"]
        named = {c.name: c.prop_name for c in name_columns(sandbox.data.columns(table.table_id))}
        assert props[named["Status"]]["type"] == ["string", "null"]
        assert props["Files"] == {
            "type": ["array", "null"],
            "description": props["Files"]["description"],
        }
        dup = [p for p in props if p.startswith("Amount__")]
        assert len(dup) == 1
        assert any(p.startswith("_column_") for p in props)  # the empty name
        suffixed = [p for p in props if p.casefold().startswith("status__")]
        column_names = [c["name"] for c in sandbox.data.columns(table.table_id)]
        assert len(suffixed) == ("status" in column_names)


def test_every_row_exactly_once_with_typed_values(sandbox) -> None:
    run = sync(tap_config(sandbox))
    for table in sandbox.data.tables():
        records = run.records[f"table_{table.table_id}"]
        ids = [r["_row_id"] for r in records]
        assert len(ids) == len(set(ids)), "duplicate rows"
        truth, columns = _expected_property_values(sandbox, table.table_id)
        assert set(ids) == set(truth)
        by_prop = {c.prop_name: c for c in columns}
        for record in records:
            row = truth[record["_row_id"]]
            amount = row["cells"].get(by_prop["Amount"].id)
            if isinstance(amount, (int, float)) and not isinstance(amount, bool):
                assert record["Amount"] == amount
            elif amount is not None:  # a wrong-typed value: null, and kept in _invalid_values
                assert record["Amount"] is None
                assert json.loads(record["_invalid_values"])["Amount"] == amount
            meta_updated = row["meta"]["updateTime"]
            assert record["_updated_at"] == parse_datetime(meta_updated)
            if meta_updated.startswith("0001-01-01"):
                assert record["_updated_at"] is None


def test_incremental_second_run_emits_exactly_the_changed_rows(sandbox) -> None:
    config = tap_config(sandbox)
    first = sync(config)
    table = sandbox.data.tables()[0]
    stream = f"table_{table.table_id}"
    rows = list(sandbox.data.rows(table.table_id))
    amount_id = next(c["id"] for c in sandbox.data.columns(table.table_id) if c["name"] == "单价")
    changed = {rows[1]["id"], rows[7]["id"]}
    for row_id in changed:
        sandbox.data.update_row(table.table_id, row_id, {amount_id: 42.5})
    state = first.last_state
    assert state is not None
    second = sync(config, state=state)
    emitted = {r["_row_id"]: r for r in second.records.get(stream, [])}
    bookmark = state["bookmarks"][stream]["replication_key_value"]
    always = {
        r["_row_id"]
        for r in first.records[stream]
        if r["_updated_at"] is None or r["_updated_at"] == bookmark
    }
    assert set(emitted) == changed | always
    assert all(emitted[r]["单价"] == 42.5 for r in changed)


def test_full_table_emits_activate_version(sandbox) -> None:
    config = tap_config(sandbox)
    catalog = discover(config)
    stream = _row_streams(catalog)[0]["tap_stream_id"]
    catalog = set_replication(select_only(catalog, {stream}), stream, "FULL_TABLE")
    run = sync(config, catalog=catalog)
    versions = [m for m in run.of_type("ACTIVATE_VERSION") if m["stream"] == stream]
    assert versions
    records = [m for m in run.of_type("RECORD") if m["stream"] == stream]
    assert records
    assert all(m.get("version") == versions[0]["version"] for m in records)
    # sent once, after the last row: a run that fails half-way never empties the warehouse table
    assert len(versions) == 1
    assert run.messages.index(versions[0]) > run.messages.index(records[-1])


@pytest.mark.parametrize("mode", ["repeat", "cycle"])
def test_segment_loops_fail_clearly(make_sandbox, mode) -> None:
    sandbox = make_sandbox(
        workspaces=1,
        projects_per_workspace=1,
        tables_per_project=1,
        rows_per_table=100,
        segment_size=10,
        faults=FaultPlan(segment_loop=mode),
    )
    with pytest.raises(Exception, match=r"segment loop|again") as info:
        sync(tap_config(sandbox))
    assert "table" in str(info.value)
    assert kinds(sandbox)["rows"] <= 6


def test_selecting_one_table_sends_no_request_for_the_others(sandbox) -> None:
    config = tap_config(sandbox)
    catalog = discover(config)
    target = sandbox.data.tables()[1]
    catalog = select_only(catalog, {f"table_{target.table_id}"})
    sandbox.reset_log()
    run = sync(config, catalog=catalog)
    assert set(run.records) == {f"table_{target.table_id}"}
    rows = [e for e in sandbox.requests if e.kind == "rows"]
    assert rows
    assert all(target.table_id in e.path for e in rows)
    assert kinds(sandbox) == {"auth": 1, "rows": len(rows)}


def test_discover_and_sync_in_one_process_reads_each_first_segment_once(make_sandbox) -> None:
    sandbox = make_sandbox(rows_per_table=30, segment_size=20)
    sync(tap_config(sandbox))
    tables = sandbox.data.tables()
    segments = sum(-(-sandbox.data.row_count(t.table_id) // 20) for t in tables)
    counts = kinds(sandbox)
    workspaces = len(sandbox.data.workspaces())
    assert counts == {
        "auth": 1,
        "workspaces": 2,  # the page with the workspaces, and the empty one that ends the list
        "workspace": workspaces,
        "rows": segments,
    }


def test_table_ids_limits_discovery_and_warns_about_unknown_ids(sandbox, caplog) -> None:
    target = sandbox.data.tables()[2].table_id
    catalog = discover(tap_config(sandbox, table_ids=[target, "tblDoesNotExist"]))
    assert [e["tap_stream_id"] for e in _row_streams(catalog)] == [f"table_{target}"]
    assert "tblDoesNotExist" in caplog.text


def test_the_bookmark_never_passes_the_start_of_the_run_that_read_the_rows(make_sandbox) -> None:
    # Rows read by discovery (or by a run continuing a table an earlier run began) are as old
    # as that read: the bookmark is capped at the tap's start (before discovery read anything),
    # or at the start of the earlier run, minus the clock-skew margin.
    from datetime import datetime, timedelta, timezone  # noqa: PLC0415

    sandbox = make_sandbox(segment_size=10)
    table = sandbox.data.tables()[0].table_id
    stream = f"table_{table}"
    rows = [row["id"] for row in sandbox.data.rows(table)]
    sandbox.data.update_row(table, rows[25], {})  # updated now: past every run's cap
    run = sync(tap_config(sandbox, table_ids=[table]))
    assert run.tap is not None
    assert run.last_state is not None
    started = datetime.fromtimestamp(run.tap.initialized_at / 1000, tz=timezone.utc)
    capped = datetime.fromisoformat(run.last_state["bookmarks"][stream]["replication_key_value"])
    assert capped == started - timedelta(minutes=5)
    # A run continuing a read that began long ago caps the bookmark at that earlier start.
    long_ago = datetime(2024, 6, 1, tzinfo=timezone.utc)
    state = run.last_state
    state["bookmarks"][stream]["resume"] = {
        "run": state["run"]["started_at"],
        "after_row": rows[9],
        "segments": 1,
        "version": None,
        "max_updated": None,
        "started_at": long_ago.isoformat(),
        "backfill": False,
        "columns": state["bookmarks"][stream]["columns_sent"],
        "full_table": False,
    }
    state["run"]["complete"] = False  # as a stopped run leaves it, mid-table
    del state["bookmarks"][stream]["read_in_run"]
    again = sync(tap_config(sandbox, table_ids=[table]), state=state)
    assert again.last_state is not None
    assert rows[25] in {r["_row_id"] for r in again.records[stream]}
    assert rows[5] not in {r["_row_id"] for r in again.records[stream]}  # before the resume
    capped = datetime.fromisoformat(again.last_state["bookmarks"][stream]["replication_key_value"])
    assert capped == long_ago - timedelta(minutes=5)


def test_a_table_s_last_line_says_one_row_and_one_segment_in_the_singular(
    make_sandbox, caplog
) -> None:
    sandbox = make_sandbox(
        workspaces=1, projects_per_workspace=1, tables_per_project=1, rows_per_table=1
    )
    with caplog.at_level(logging.INFO):
        run = sync(tap_config(sandbox))
    (stream,) = [s for s in run.records if is_row_stream(s)]
    assert len(run.records[stream]) == 1
    (line,) = [r.getMessage() for r in caplog.records if rows_sent(r.getMessage())]
    assert ": 1 row sent, from 1 segment in " in line, line
    assert rows_sent(line) == (stream, 1)  # what the demo and the e2e tests count from
