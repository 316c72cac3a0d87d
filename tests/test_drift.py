"""Columns keep their meaning when people edit their tables (README: "When tables change").

Every test runs the tap over real HTTP against a sandbox whose table is edited between discovery
and sync (the catalog from before, no state) and compares each record with the sandbox's cells
*by column id*: a property is bound to the MapTable column recorded in the catalog, whatever the
column is called, where it stands or what type it has now.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
from datetime import datetime
from typing import Any

import pytest

from tap_maptable.columns import InvalidValueError, coercer_for
from tests.helpers import Run, discover, sync, tap_config

# The documented form of a column property's `description` (README, "What it extracts").
DESCRIPTION_PREFIX = "MapTable column "
TEXT = "singleLineText"


# -- the sandbox's table and the catalog -------------------------------------------------------


def two_amount_table(sandbox: Any) -> tuple[str, str, str]:
    """The table with a number and a text "Amount": (table id, number column, text column)."""
    for table in sandbox.data.tables():
        amounts = {
            c["type"]: c["id"]
            for c in sandbox.data.columns(table.table_id)
            if c["name"] == "Amount"
        }
        if set(amounts) == {"number", TEXT}:
            return table.table_id, amounts["number"], amounts[TEXT]
    pytest.fail("the sandbox has no table with a number and a text 'Amount'")


def column_id(sandbox: Any, table_id: str, name: str) -> str:
    """The id of the one column called `name`."""
    (found,) = [c["id"] for c in sandbox.data.columns(table_id) if c["name"] == name]
    return str(found)


def stream(table_id: str) -> str:
    return f"table_{table_id}"


def entry(catalog: dict[str, Any], table_id: str) -> dict[str, Any]:
    return next(e for e in catalog["streams"] if e["tap_stream_id"] == stream(table_id))


def properties(catalog: dict[str, Any], table_id: str) -> dict[str, Any]:
    props: dict[str, Any] = entry(catalog, table_id)["schema"]["properties"]
    return props


def ids_by_property(props: dict[str, Any]) -> dict[str, str]:
    """Property -> the column id its schema records (column properties only)."""
    out = {}
    for prop, schema in props.items():
        text = schema.get("description")
        if isinstance(text, str) and text.startswith(DESCRIPTION_PREFIX):
            out[prop] = json.loads(text.removeprefix(DESCRIPTION_PREFIX))["id"]
    return out


def discovered_ids(sandbox: Any, table_id: str) -> dict[str, str]:
    """Property -> column id, from a fresh discovery of one table."""
    catalog = discover(tap_config(sandbox, table_ids=[table_id]))
    return ids_by_property(properties(catalog, table_id))


def sandbox_rows(sandbox: Any, table_id: str) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in sandbox.data.rows(table_id)}


# -- checks ------------------------------------------------------------------------------------


def expected(schema: dict[str, Any], cell: Any) -> tuple[Any, bool]:
    """The value a cell has under a property's schema, and whether it does not fit it."""
    if cell is None:
        return None, False
    try:
        return coercer_for(schema)(cell), False
    except InvalidValueError:
        return None, True


def invalid_values(record: dict[str, Any]) -> dict[str, Any]:
    text = record.get("_invalid_values")
    if text is None:
        return {}
    found = json.loads(text)
    assert isinstance(found, dict), text
    assert found, "_invalid_values is null rather than an empty object"
    return found


def assert_values_by_column_id(
    records: list[dict[str, Any]],
    props: dict[str, Any],
    rows: dict[str, dict[str, Any]],
    ids: dict[str, str] | None = None,
) -> None:
    """Each record's value of each property is the cell of that property's column (by id).

    `ids` maps property -> column id (default: the ids the catalog's schemas record); a cell that
    does not fit the catalog's schema is null and kept, as it was, in `_invalid_values`.
    """
    ids = ids_by_property(props) if ids is None else ids
    assert ids, "no column property to compare"
    assert sorted(r["_row_id"] for r in records) == sorted(rows), "each row exactly once"
    for record in records:
        cells = rows[record["_row_id"]]["cells"]
        invalid = invalid_values(record)
        for prop, col in ids.items():
            want, bad = expected(props[prop], cells.get(col))
            where = f"row {record['_row_id']} property {prop!r} (column {col})"
            assert record.get(prop) == want, f"{where}: {record.get(prop)!r} != {want!r}"
            if bad:
                assert invalid.get(prop) == cells[col], where
            else:
                assert prop not in invalid, where


def json_types(value: Any) -> set[str]:
    """The JSON Schema types a record value is an instance of."""
    found: set[str] = set()
    if value is None:
        found = {"null"}
    elif isinstance(value, bool):
        found = {"boolean"}
    elif isinstance(value, int):
        found = {"integer", "number"}
    elif isinstance(value, float) and math.isfinite(value):
        found = {"integer", "number"} if value.is_integer() else {"number"}
    elif isinstance(value, str):
        found = {"string"}
    elif isinstance(value, dict):
        found = {"object"}
    elif isinstance(value, list):
        found = {"array"}
    return found


def is_date_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def conforms(value: Any, schema: dict[str, Any]) -> bool:
    """Whether a record value is an instance of its JSON Schema (the subset the tap emits)."""
    declared = schema.get("type")
    types = {declared} if isinstance(declared, str) else set(declared or ())
    ok = bool(json_types(value) & types)
    if ok and isinstance(value, str) and schema.get("format") == "date-time":
        ok = is_date_time(value)
    if ok and isinstance(value, dict):
        inner = schema.get("properties") or {}
        ok = all(k not in inner or conforms(v, inner[k]) for k, v in value.items())
    return ok


def assert_records_fit_their_schema(run: Run, name: str) -> None:
    """No record carries a key or a value that contradicts the SCHEMA the target received."""
    schemas = [m for m in run.of_type("SCHEMA") if m["stream"] == name]
    assert schemas, f"no SCHEMA for {name}"
    props = schemas[-1]["schema"]["properties"]
    assert all(m["schema"]["properties"] == props for m in schemas), "the schema changed mid-run"
    records = run.records.get(name, [])
    assert records
    for record in records:
        assert set(record) <= set(props), f"undeclared keys {set(record) - set(props)}"
        for prop, value in record.items():
            assert conforms(value, props[prop]), f"{prop}={value!r} is no {props[prop]['type']}"


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    """The WARNING lines that mention `text` (a table id, a stream name)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and text in r.getMessage()
    ]


def config_for(sandbox: Any, table_id: str) -> dict[str, Any]:
    return tap_config(sandbox, table_ids=[table_id])


@pytest.fixture
def multi_segment(make_sandbox: Any) -> Any:
    """A sandbox whose tables come in 5 segments, each with the columns: the tap sees them 5x."""
    return make_sandbox(segment_size=10, columns_every_segment=True)


def sync_twice(
    sandbox: Any,
    table_id: str,
    catalog: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> list[tuple[Run, list[str]]]:
    """Two syncs with the same catalog and no state; each run's warnings about the table."""
    runs = []
    for _ in range(2):
        caplog.clear()
        run = sync(config_for(sandbox, table_id), catalog=copy.deepcopy(catalog))
        runs.append((run, warnings_about(caplog, table_id)))
    return runs


# -- 1. with the catalog from before -----------------------------------------------------------


def test_reordered_columns_keep_every_value_in_its_property(sandbox, caplog) -> None:
    table_id, _, _ = two_amount_table(sandbox)
    catalog = discover(config_for(sandbox, table_id))
    order = [c["id"] for c in sandbox.data.columns(table_id)]
    random.Random(3).shuffle(order)
    sandbox.reorder_columns(table_id, order)
    assert [c["id"] for c in sandbox.data.columns(table_id)] == order

    run = sync(config_for(sandbox, table_id), catalog=copy.deepcopy(catalog))

    props = properties(catalog, table_id)
    records = run.records[stream(table_id)]
    assert len(records) == 50
    assert_values_by_column_id(records, props, sandbox_rows(sandbox, table_id))
    assert_records_fit_their_schema(run, stream(table_id))
    assert list(run.schema(stream(table_id))["properties"]) == list(props), "catalog order kept"
    assert warnings_about(caplog, table_id) == [], "a reorder is no drift"


def test_renamed_column_keeps_loading_into_its_property_with_one_warning_per_run(
    multi_segment, caplog
) -> None:
    sandbox = multi_segment
    table_id, _, _ = two_amount_table(sandbox)
    table = sandbox.data.table_info(table_id)
    catalog = discover(config_for(sandbox, table_id))
    due = column_id(sandbox, table_id, "Due date")
    sandbox.rename_column(table_id, due, "Fällig am")

    props = properties(catalog, table_id)
    for run, warnings in sync_twice(sandbox, table_id, catalog, caplog):
        records = run.records[stream(table_id)]
        assert_values_by_column_id(records, props, sandbox_rows(sandbox, table_id))
        assert sum(r["Due date"] is not None for r in records) > 25, "the column still fills"
        assert all("Fällig am" not in r for r in records)
        assert_records_fit_their_schema(run, stream(table_id))
        assert len(warnings) == 1, warnings
        (warning,) = warnings
        assert table.name in warning
        assert "'Due date'" in warning
        assert "'Fällig am'" in warning
        assert "renamed" in warning


def test_deleted_column_is_null_in_every_row_with_one_warning_per_run(
    multi_segment, caplog
) -> None:
    sandbox = multi_segment
    table_id, _, _ = two_amount_table(sandbox)
    catalog = discover(config_for(sandbox, table_id))
    price = column_id(sandbox, table_id, "单价")
    assert sum(price in r["cells"] for r in sandbox.data.rows(table_id)) > 25, "it had values"
    sandbox.delete_column(table_id, price)

    props = properties(catalog, table_id)
    for run, warnings in sync_twice(sandbox, table_id, catalog, caplog):
        records = run.records[stream(table_id)]
        assert len(records) == 50
        assert all(r.get("单价") is None for r in records)
        assert all("单价" not in invalid_values(r) for r in records)
        assert "单价" in run.schema(stream(table_id))["properties"], "still declared"
        assert_values_by_column_id(records, props, sandbox_rows(sandbox, table_id))
        assert_records_fit_their_schema(run, stream(table_id))
        assert len(warnings) == 1, warnings
        assert "'单价'" in warnings[0]


def test_retyped_column_never_sends_a_value_against_the_schema(multi_segment, caplog) -> None:
    sandbox = multi_segment
    table_id, number_id, _ = two_amount_table(sandbox)
    catalog = discover(config_for(sandbox, table_id))
    props = properties(catalog, table_id)
    assert ids_by_property(props)["Amount"] == number_id
    sandbox.retype_column(table_id, number_id, TEXT)
    rows = list(sandbox.data.rows(table_id))
    assert all(isinstance(r["cells"].get(number_id, ""), str) for r in rows), "cells are text"
    words = ["about 12", "twelve", "12,5 €"]
    for row, word in zip(rows[:: len(rows) // len(words)], words, strict=False):
        sandbox.data.update_row(table_id, row["id"], {number_id: word})

    for run, warnings in sync_twice(sandbox, table_id, catalog, caplog):
        name = stream(table_id)
        assert "number" in run.schema(name)["properties"]["Amount"]["type"]
        assert "string" not in run.schema(name)["properties"]["Amount"]["type"]
        assert_records_fit_their_schema(run, name)
        records = run.records[name]
        truth = sandbox_rows(sandbox, table_id)
        assert_values_by_column_id(records, props, truth)
        invalid = {
            r["_row_id"]: invalid_values(r)["Amount"]
            for r in records
            if "Amount" in invalid_values(r)
        }
        assert set(words) <= set(invalid.values())
        for record in records:
            amount = record["Amount"]
            assert amount is None or (
                isinstance(amount, (int, float)) and not isinstance(amount, bool)
            )
            cell = truth[record["_row_id"]]["cells"].get(number_id)
            if record["_row_id"] in invalid:
                assert amount is None
                assert invalid[record["_row_id"]] == cell
            elif cell is not None:
                assert amount == float(cell), "numeric text still loads as its number"
        assert sum(r["Amount"] is not None for r in records) > 25
        assert len(warnings) == 1, warnings
        assert "'Amount'" in warnings[0]
        assert f"number -> {TEXT}" in warnings[0]
        assert "_invalid_values" in warnings[0]


def test_new_columns_are_not_extracted_and_named_in_one_warning_per_run(
    multi_segment, caplog
) -> None:
    sandbox = multi_segment
    table_id, number_id, text_id = two_amount_table(sandbox)
    catalog = discover(config_for(sandbox, table_id))
    props = properties(catalog, table_id)
    added_amount = sandbox.add_column(table_id, "Amount", "number", fill=987654321, position=0)
    added_fresh = sandbox.add_column(table_id, "Fresh", TEXT, fill="fresh value")
    new_ids = {added_amount["id"], added_fresh["id"]}
    fresh_names = {v: k for k, v in discovered_ids(sandbox, table_id).items()}

    for run, warnings in sync_twice(sandbox, table_id, catalog, caplog):
        name = stream(table_id)
        records = run.records[name]
        assert set(run.schema(name)["properties"]) == set(props)
        for record in records:
            assert set(record) <= set(props)
            assert not any(col in key for key in record for col in new_ids)
            assert 987654321 not in record.values()
            assert "fresh value" not in record.values()
        assert_values_by_column_id(records, props, sandbox_rows(sandbox, table_id))
        assert ids_by_property(props)["Amount"] == number_id
        assert ids_by_property(props)[f"Amount__{text_id}"] == text_id
        assert_records_fit_their_schema(run, name)
        assert len(warnings) == 1, warnings
        (warning,) = warnings
        assert repr(fresh_names[added_amount["id"]]) in warning
        assert repr(fresh_names[added_fresh["id"]]) in warning
        assert "--refresh-catalog" in warning
        assert "discovery again" in warning


def test_a_table_missing_from_the_catalog_is_one_warning_per_run(sandbox, caplog) -> None:
    catalog = discover(tap_config(sandbox))
    tables = [t.table_id for t in sandbox.data.tables()]
    left_out = tables[3]
    catalog["streams"] = [e for e in catalog["streams"] if e["tap_stream_id"] != stream(left_out)]
    for item in (m for e in catalog["streams"] for m in e["metadata"] if m["breadcrumb"] == []):
        assert item["metadata"].get("selected", True), "projects and table_nodes selected"

    for _ in range(2):
        caplog.clear()
        run = sync(tap_config(sandbox), catalog=copy.deepcopy(catalog))
        assert stream(left_out) not in run.records
        assert set(run.rows) == {stream(t) for t in tables if t != left_out}
        assert run.records["table_nodes"], "the workspace details were read"
        warnings = warnings_about(caplog, stream(left_out))
        assert len(warnings) == 1, "a table the catalog lacks is never skipped silently"
        assert "discovery again" in warnings[0]
        assert "--refresh-catalog" in warnings[0]
        for other in tables:
            if other != left_out:
                assert warnings_about(caplog, stream(other)) == []


# -- 2. a catalog without column ids -----------------------------------------------------------


def test_a_catalog_without_column_ids_maps_by_name_as_before(sandbox, caplog) -> None:
    table_id, number_id, text_id = two_amount_table(sandbox)
    catalog = discover(config_for(sandbox, table_id))
    props = properties(catalog, table_id)
    by_name = ids_by_property(props)  # what the names meant when the catalog was written
    assert by_name["Amount"] == number_id
    assert by_name[f"Amount__{text_id}"] == text_id
    assert any(p.startswith("_column_") for p in by_name)
    old = copy.deepcopy(catalog)
    for prop in by_name:
        del properties(old, table_id)[prop]["description"]
    assert ids_by_property(properties(old, table_id)) == {}
    sandbox.reorder_columns(table_id, reverse=True)  # order never mattered to names

    run = sync(config_for(sandbox, table_id), catalog=old)

    name = stream(table_id)
    records = run.records[name]
    assert set(run.schema(name)["properties"]) == set(props)
    assert_values_by_column_id(records, props, sandbox_rows(sandbox, table_id), ids=by_name)
    assert_records_fit_their_schema(run, name)
    assert any(isinstance(r[f"Amount__{text_id}"], str) for r in records)
    assert warnings_about(caplog, table_id) == [], "nothing drifted"


# -- 3. names do not depend on column order or types -------------------------------------------


def test_fresh_discovery_names_every_column_as_before_after_reorder_and_retype(sandbox) -> None:
    table_id, number_id, text_id = two_amount_table(sandbox)
    before = discovered_ids(sandbox, table_id)
    assert before["Amount"] == number_id
    assert before[f"Amount__{text_id}"] == text_id
    assert len(before) == len(sandbox.data.columns(table_id))

    sandbox.reorder_columns(table_id, reverse=True)
    assert discovered_ids(sandbox, table_id) == before
    order = [c["id"] for c in sandbox.data.columns(table_id)]
    random.Random(11).shuffle(order)
    sandbox.reorder_columns(table_id, order)
    assert discovered_ids(sandbox, table_id) == before

    sandbox.retype_column(table_id, number_id, TEXT)
    sandbox.retype_column(table_id, text_id, "number")
    catalog = discover(config_for(sandbox, table_id))
    props = properties(catalog, table_id)
    assert ids_by_property(props) == before
    assert props["Amount"]["type"] == ["string", "null"], "the property takes the new type"
    assert props[f"Amount__{text_id}"]["type"] == ["number", "null"]


# -- 4. the scenario -------------------------------------------------------------------


def test_reverse_rename_and_retype_between_two_syncs_keep_every_value_in_place(
    multi_segment, caplog
) -> None:
    sandbox = multi_segment
    table_id, number_id, text_id = two_amount_table(sandbox)
    name = stream(table_id)
    catalog = discover(config_for(sandbox, table_id))
    props = properties(catalog, table_id)
    due = column_id(sandbox, table_id, "Due date")

    first = sync(config_for(sandbox, table_id), catalog=copy.deepcopy(catalog))
    assert_values_by_column_id(first.records[name], props, sandbox_rows(sandbox, table_id))
    before = {r["_row_id"]: r for r in first.records[name]}

    sandbox.reorder_columns(table_id, reverse=True)
    sandbox.rename_column(table_id, due, "Due")
    sandbox.retype_column(table_id, number_id, TEXT)
    edited = next(r for r in sandbox.data.rows(table_id) if number_id in r["cells"])
    sandbox.data.update_row(table_id, edited["id"], {number_id: "ask Li"})
    caplog.clear()
    second = sync(config_for(sandbox, table_id), catalog=copy.deepcopy(catalog))

    truth = sandbox_rows(sandbox, table_id)
    records = second.records[name]
    assert len(records) == len(truth) == 50
    assert_values_by_column_id(records, props, truth)
    assert_records_fit_their_schema(second, name)
    assert list(second.schema(name)["properties"]) == list(props)
    by_id = {r["_row_id"]: r for r in records}
    # The renamed column still loads into its old property.
    assert all("Due" not in r for r in records)
    assert sum(r["Due date"] is not None for r in records) > 25
    assert all(r["Due date"] == before[i]["Due date"] for i, r in by_id.items())
    # The number property holds numbers only; text that is no number is kept aside.
    assert all(
        r["Amount"] is None
        or (isinstance(r["Amount"], (int, float)) and not isinstance(r["Amount"], bool))
        for r in records
    )
    assert by_id[edited["id"]]["Amount"] is None
    assert invalid_values(by_id[edited["id"]])["Amount"] == "ask Li"
    for row_id, record in by_id.items():
        if row_id != edited["id"]:
            assert record["Amount"] == before[row_id]["Amount"], row_id
    # The text "Amount" property holds the text column's values.
    texts = [r[f"Amount__{text_id}"] for r in records]
    assert all(v is None or isinstance(v, str) for v in texts)
    assert [truth[r["_row_id"]]["cells"].get(text_id) for r in records] == texts
    assert sum(v is not None for v in texts) > 25
    warnings = warnings_about(caplog, table_id)
    assert len(warnings) == 2, warnings
    assert sum("'Due date'" in w and "'Due'" in w for w in warnings) == 1
    assert sum("'Amount'" in w and f"number -> {TEXT}" in w for w in warnings) == 1
