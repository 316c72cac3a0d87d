"""A table edited between two `meltano run tap-maptable target-duckdb` runs, with a pinned catalog.

Under Meltano an editable install (`pip_url: -e .`) is discovered again on every run, so the
catalog is pinned with Meltano's `catalog` extra (`TAP_MAPTABLE__CATALOG`): both runs use the
catalog written before the table was edited, as a packaged install's cached catalog would be.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.support import (
    bookmarks,
    meltano,
    meltano_env,
    sent_again,
    state_of,
    stream_of,
    truth_rows,
    unique,
)
from tests.e2e.warehouse import Warehouse, as_json, as_number, as_utc, expected_time
from tests.e2e.warehouse import opened_duckdb as opened
from tests.helpers import discover, select_only, tap_config
from tests.test_drift import TEXT, expected, ids_by_property, invalid_values, two_amount_table

pytestmark = [pytest.mark.xdist_group("meltano"), pytest.mark.slow]

PIPELINE = ["tap-maptable", "target-duckdb"]


def landed_form(schema: dict[str, Any]) -> tuple[Any, Any]:
    """How a property's value is read back from DuckDB, and how its record value compares."""
    types = set(schema["type"]) - {"null"}
    if types == {"string"} and schema.get("format") == "date-time":
        return as_utc, expected_time
    if types == {"string"}:
        return (lambda v: v), (lambda v: None if v == "" else v)
    if types == {"number"}:
        return as_number, (lambda v: None if v is None else float(v))
    return as_json, (lambda v: v)  # objects and unknown types are JSON columns


def check_by_column_id(
    wh: Warehouse, table_id: str, props: dict[str, Any], rows: dict[str, dict[str, Any]]
) -> None:
    """Every warehouse column of the catalog holds its MapTable column's cells, row by row."""
    ids = ids_by_property(props)
    names = list(ids)
    landed = wh.keyed(stream_of(table_id), "_row_id", *names, "_invalid_values")
    assert set(landed) == set(rows), f"{table_id}: rows differ from the sandbox's"
    for row_id, values in landed.items():
        cells = rows[row_id]["cells"]
        invalid = invalid_values({"_invalid_values": values[-1]})
        for prop, value in zip(names, values, strict=False):
            read, want_form = landed_form(props[prop])
            want, bad = expected(props[prop], cells.get(ids[prop]))
            where = f"{table_id} row {row_id} column {prop!r} (MapTable column {ids[prop]})"
            assert read(value) == want_form(want), f"{where}: {value!r} != {want!r}"
            assert (invalid.get(prop) == cells[ids[prop]]) if bad else prop not in invalid, where


def test_edited_table_keeps_every_warehouse_column_on_its_maptable_column(
    meltano_project, make_sandbox, tmp_path
):
    sandbox = make_sandbox()
    db = tmp_path / "warehouse.duckdb"
    table_id, number_id, text_id = two_amount_table(sandbox)
    table = stream_of(table_id)
    catalog = discover(tap_config(sandbox))
    select_only(catalog, {e["tap_stream_id"] for e in catalog["streams"]})
    pinned = tmp_path / "catalog.json"
    pinned.write_text(json.dumps(catalog))
    props = next(e for e in catalog["streams"] if e["tap_stream_id"] == table)["schema"][
        "properties"
    ]
    ids = ids_by_property(props)
    assert ids["Amount"] == number_id
    assert ids[f"Amount__{text_id}"] == text_id
    env = meltano_env(sandbox, TARGET_DUCKDB_PATH=str(db), TAP_MAPTABLE__CATALOG=str(pinned))

    first = meltano(["run", "--state-id-suffix", unique("drift-before"), *PIPELINE], env)
    assert "Using custom catalog" in first.output, "the catalog is pinned"
    rows = {row["id"]: row for row in sandbox.data.rows(table_id)}
    with opened(db) as wh:
        check_by_column_id(wh, table_id, props, rows)
        columns_before = wh.column_types(table)

    due = ids["Due date"]
    sandbox.reorder_columns(table_id, reverse=True)
    sandbox.rename_column(table_id, due, "Due (renamed)")
    sandbox.retype_column(table_id, number_id, TEXT)
    edited = next(r["id"] for r in sandbox.data.rows(table_id) if number_id in r["cells"])
    sandbox.data.update_row(table_id, edited, {number_id: "ask Li"})
    # A new state id: no bookmark, so every row is sent again (the drift moved no update time).
    second = meltano(["run", "--state-id-suffix", unique("drift-after"), *PIPELINE], env)

    assert "Using custom catalog" in second.output
    assert "'Due date' was renamed to 'Due (renamed)'" in second.output
    assert f"number -> {TEXT}" in second.output
    rows = {row["id"]: row for row in sandbox.data.rows(table_id)}
    with opened(db) as wh:
        assert wh.column_types(table) == columns_before, "no column added, none retyped"
        check_by_column_id(wh, table_id, props, rows)
        (amount, invalid), *_ = wh.values(
            table, "Amount", "_invalid_values", where=f"WHERE _row_id = '{edited}'"
        )
        due_values = [v for (v,) in wh.values(table, "Due date") if v is not None]
        text_values = [v for (v,) in wh.values(table, f"Amount__{text_id}") if v is not None]
    assert columns_before["amount"] == "DOUBLE"
    assert amount is None
    assert json.loads(invalid) == {"Amount": "ask Li"}
    assert len(due_values) > 25, "the renamed column still fills its old warehouse column"
    assert len(text_values) > 25
    assert all(isinstance(v, str) for v in text_values)


def batched(wh: Warehouse, table: str) -> dict[str, Any]:
    """Row id -> when the target last loaded it (changes exactly when a row is sent again)."""
    return {row_id: at for row_id, (at,) in wh.keyed(table, "_row_id", "_sdc_batched_at").items()}


def test_a_table_whose_columns_changed_is_sent_whole_on_the_next_run(
    meltano_project, make_sandbox, tmp_path
):
    """The issue's scenario, as Meltano runs it: a fresh discovery, the previous run's state."""
    sandbox = make_sandbox()
    db = tmp_path / "warehouse.duckdb"
    changed, unchanged = (sandbox.data.tables()[i].table_id for i in (0, 2))
    suffix = unique("backfill")
    env = meltano_env(sandbox, TARGET_DUCKDB_PATH=str(db))
    meltano(["run", "--state-id-suffix", suffix, *PIPELINE], env)
    marks = bookmarks(state_of(f"dev:tap-maptable-to-target-duckdb:{suffix}", env))
    with opened(db) as wh:
        before = batched(wh, stream_of(unchanged))

    notes = next(c["id"] for c in sandbox.data.columns(changed) if c["name"] == "Notes")
    sandbox.add_column(changed, "Priority", "number", fill=7)
    sandbox.delete_column(changed, notes)
    sandbox.add_column(changed, "Notes", "number")  # each row's number
    edited = next(iter(sandbox.data.rows(unchanged)))["id"]
    sandbox.data.update_row(unchanged, edited, {})
    second = meltano(["run", "--state-id-suffix", suffix, *PIPELINE], env)

    assert f"{stream_of(changed)} (" in second.output
    assert "sending every row, not only those updated since" in second.output
    counts = second.record_counts()
    assert counts[stream_of(changed)] == sandbox.data.row_count(changed)
    rows = {row["id"]: row for row in sandbox.data.rows(changed)}
    with opened(db) as wh:
        landed = wh.keyed(stream_of(changed), "_row_id", "Priority", "Notes")
        after = batched(wh, stream_of(unchanged))
    assert set(landed) == set(rows)
    assert all(priority == 7 for priority, _ in landed.values())
    # Every row holds the new number column's value, none the deleted text column's.
    notes_now = next(c["id"] for c in sandbox.data.columns(changed) if c["name"] == "Notes")
    assert all(float(landed[r][1]) == rows[r]["cells"][notes_now] for r in rows)
    # The unchanged table received only what changed (and what is always re-sent).
    truth = truth_rows(sandbox)[stream_of(unchanged)]
    resent = {r for r, at in after.items() if before.get(r) != at}
    assert resent == sent_again(truth, marks[stream_of(unchanged)])
    assert edited in resent
