"""Column naming, column identity in the schema, catalog mapping (drift), and value conformance.

A warehouse column never silently changes meaning: names depend only on the set of columns (not
their order or types), the catalog records which MapTable column each property was made from
(and that survives singer-sdk's catalog round trip), a sync maps live columns onto the catalog by
that id, and values follow the catalog's schema even after a column is retyped.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator
from singer_sdk.singerlib import Catalog, Schema

from tap_maptable.columns import (
    COLUMN_DESCRIPTION_PREFIX,
    INVALID_VALUES,
    KIND_ANY,
    KIND_ARRAY,
    KIND_BOOLEAN,
    KIND_COORDINATE,
    KIND_DATE_TIME,
    KIND_FILES,
    KIND_HYPERLINK,
    KIND_INTEGER,
    KIND_MIXED,
    KIND_NUMBER,
    KIND_OBJECT,
    KIND_STRING,
    ROW_PROPERTIES,
    TEXT_TYPES,
    Column,
    ColumnIdentity,
    Renamed,
    Retyped,
    coerce_value,
    coercer_for_column,
    column_description,
    column_id_key,
    column_identity,
    name_columns,
    plan_columns,
    row_record,
    row_schema,
    schema_for_type,
    schema_kind,
)
from tap_maptable.exact import json_safe

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
COLUMN_TYPES = [
    *sorted(TEXT_TYPES),
    "number",
    "datetime",
    "coordinate",
    "attachment",
    "boolean",
    "hyperlink",
    "",
]
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def col(column_id: str, name: str, column_type: str = "singleLineText") -> dict[str, Any]:
    return {"id": column_id, "name": name, "type": column_type}


def names_by_id(raw: list[dict[str, Any]]) -> dict[str, str]:
    return {c.id: c.prop_name for c in name_columns(raw)}


def catalog_properties(raw: list[dict[str, Any]]) -> dict[str, Any]:
    """The properties a discovery of these columns writes into the catalog."""
    properties: dict[str, Any] = row_schema(name_columns(raw))["properties"]
    return properties


def fits(value: Any, schema: dict[str, Any]) -> bool:
    if not Draft7Validator(schema).is_valid(value):
        return False
    if schema.get("format") == "date-time" and value is not None:
        if not RFC3339.fullmatch(value):
            return False
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def record_of(cells: dict[str, Any], columns: list[Column]) -> dict[str, Any]:
    return row_record({"id": "r1", "meta": {}, "cells": cells}, columns)


def invalid_of(record: dict[str, Any]) -> dict[str, Any]:
    text = record[INVALID_VALUES]
    return json.loads(text) if text else {}


# -- naming -------------------------------------------------------------------------------------


def test_the_smallest_id_keeps_a_shared_name_whatever_the_column_order() -> None:
    raw = [col("fld2", "Amount"), col("fld1", "amount"), col("fld3", "AMOUNT")]
    expected = {"fld1": "amount", "fld2": "Amount__fld2", "fld3": "AMOUNT__fld3"}
    assert names_by_id(raw) == expected
    assert names_by_id(raw[::-1]) == expected
    assert names_by_id([raw[1], raw[2], raw[0]]) == expected


def test_names_do_not_depend_on_column_types() -> None:
    raw = [col("fld1", "Amount", "number"), col("fld2", "Amount", "number")]
    retyped = [col("fld1", "Amount", "singleLineText"), col("fld2", "Amount", "weirdNewType")]
    assert names_by_id(raw) == names_by_id(retyped) == {"fld1": "Amount", "fld2": "Amount__fld2"}


def test_ids_compare_by_length_then_code_point() -> None:
    # Counting ids: creation order, so the older column keeps the name.
    assert names_by_id([col("10", "A"), col("9", "A")]) == {"9": "A", "10": "A__10"}
    assert names_by_id([col("fld10", "A"), col("fld9", "A")]) == {"fld9": "A", "fld10": "A__fld10"}
    # Ids of one width: plain code point order (upper case before lower case).
    assert names_by_id([col("fldb", "A"), col("fldB", "A")]) == {"fldB": "A", "fldb": "A__fldb"}
    assert sorted(["fld10", "fld9", "fldA", "fld0"], key=column_id_key) == [
        "fld0",
        "fld9",
        "fldA",
        "fld10",
    ]


def test_empty_names_and_row_property_shadows_get_the_column_id() -> None:
    raw = [col("c1", ""), col("c2", "   "), col("c3", "_ROW_ID"), col("c4", "_invalid_values")]
    raw.append({"id": "c5", "name": None, "type": "number"})
    assert names_by_id(raw) == {
        "c1": "_column_c1",
        "c2": "_column_c2",
        "c3": "_ROW_ID__c3",
        "c4": "_invalid_values__c4",
        "c5": "_column_c5",
    }


def test_suffixed_names_count_up_in_id_order() -> None:
    # c3's suffixed name is taken by a column *named* so, with a smaller id: c3 counts up.
    raw = [col("c3", "Amount"), col("c1", "amount__c3"), col("c2", "Amount")]
    assert names_by_id(raw) == {"c1": "amount__c3", "c2": "Amount", "c3": "Amount__c3_2"}
    # The literal name comes after (larger id): the suffixed column keeps its name, always.
    raw = [col("c1", "Amount"), col("c2", "Amount"), col("c9", "Amount__c2")]
    assert names_by_id(raw) == {"c1": "Amount", "c2": "Amount__c2", "c9": "Amount__c2__c9"}
    assert names_by_id(raw[::-1]) == names_by_id(raw)


ids = st.sampled_from([f"c{i}" for i in range(1, 13)]) | st.text(min_size=1, max_size=5)
names = st.sampled_from(["Amount", "amount", "AMOUNT", "", " ", "_row_id", "Straße", "STRASSE"])


@st.composite
def column_sets(draw: st.DrawFn, max_size: int = 8) -> list[dict[str, Any]]:
    column_ids = draw(st.lists(ids, unique=True, max_size=max_size))
    raw: list[dict[str, Any]] = []
    for column_id in column_ids:
        if draw(st.booleans()) and raw:  # a name built like the tap's own suffixes
            other = draw(st.sampled_from(raw))
            name = (
                f"{other['name'] or '_column_' + other['id']}__{draw(st.sampled_from(column_ids))}"
            )
            name += draw(st.sampled_from(["", "_2"]))
        else:
            name = draw(names | st.text(max_size=6))
        raw.append(col(column_id, name, draw(st.sampled_from(COLUMN_TYPES))))
    return raw


@PROPERTY
@given(raw=column_sets(), data=st.data())
def test_each_id_gets_the_same_name_under_any_permutation_and_retyping(
    raw: list[dict[str, Any]], data: st.DataObject
) -> None:
    expected = names_by_id(raw)
    shuffled = data.draw(st.permutations(raw))
    retyped = [{**c, "type": data.draw(st.sampled_from(COLUMN_TYPES))} for c in shuffled]
    assert names_by_id(retyped) == expected
    folded = [name.casefold() for name in expected.values()]
    assert len(set(folded)) == len(folded)
    assert not set(folded) & {p.casefold() for p in ROW_PROPERTIES}


@PROPERTY
@given(raw=column_sets(), data=st.data())
def test_adding_columns_with_larger_ids_renames_no_existing_column(
    raw: list[dict[str, Any]], data: st.DataObject
) -> None:
    before = names_by_id(raw)
    largest = max((column_id_key(c["id"]) for c in raw), default=(0, ""))
    taken = [*before.values(), *(c["name"] for c in raw)]
    added = [
        col(
            f"z{'9' * (largest[0] + 1)}{i}",
            data.draw(st.sampled_from(taken) | names if taken else names),
        )
        for i in range(data.draw(st.integers(0, 3)))
    ]
    assert all(column_id_key(c["id"]) > largest for c in added)
    after = names_by_id(data.draw(st.permutations(raw + added)))
    assert {k: after[k] for k in before} == before


def test_existing_callers_keep_working() -> None:
    column = Column(id="c1", name="Amount", type="number", prop_name="Amount")
    assert column.schema == {"type": ["number", "null"]}
    assert column.property_schema is None
    assert column.identity == ColumnIdentity("c1", "Amount", "number")
    assert coerce_value("number", "12") == 12
    assert coerce_value("number", None) is None
    assert name_columns([col("c1", "Amount", "number")]) == [column]


# -- column identity in the schema -------------------------------------------------------------


def test_row_schema_records_each_columns_id_name_and_type() -> None:
    raw = [col("fld1", "单价", "number"), col("fld2", "单价", "datetime"), col("fld3", "", "x")]
    properties = catalog_properties(raw)
    assert column_identity(properties["单价"]) == ColumnIdentity("fld1", "单价", "number")
    assert column_identity(properties["单价__fld2"]) == ColumnIdentity("fld2", "单价", "datetime")
    assert column_identity(properties["_column_fld3"]) == ColumnIdentity("fld3", "", "x")
    assert properties["单价"]["description"] == (
        'MapTable column {"id": "fld1", "name": "单价", "type": "number"}'
    )
    assert properties["单价__fld2"]["format"] == "date-time"
    for prop in ROW_PROPERTIES:
        assert column_identity(properties[prop]) is None
    # The schema's JSON types are untouched: a description is an annotation, never a constraint.
    for prop, schema in properties.items():
        if prop not in ROW_PROPERTIES:
            assert {k: v for k, v in schema.items() if k != "description"} == schema_for_type(
                column_identity(schema).type  # type: ignore[union-attr]
            )


@pytest.mark.parametrize(
    "schema",
    [
        {},
        {"description": "Amount in EUR"},
        {"description": COLUMN_DESCRIPTION_PREFIX + "not json"},
        {"description": COLUMN_DESCRIPTION_PREFIX + '{"name": "no id"}'},
        {"description": COLUMN_DESCRIPTION_PREFIX + '{"id": ""}'},
        {"description": COLUMN_DESCRIPTION_PREFIX + "[1]"},
        {"description": 5},
        "not a schema",
    ],
)
def test_a_schema_without_a_readable_identity_records_none(schema: Any) -> None:
    assert column_identity(schema) is None


def test_identity_text_round_trips_odd_names() -> None:
    identity = ColumnIdentity("fld1", 'A "quoted"\nname} {', "number")
    assert column_identity({"description": column_description(identity)}) == identity


def _catalog(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "streams": [
            {
                "tap_stream_id": "table_tbl1",
                "stream": "table_tbl1",
                "key_properties": ["_row_id"],
                "schema": {"type": "object", "description": "Table", "properties": properties},
                "metadata": [
                    {"breadcrumb": [], "metadata": {"selected": True}},
                    *(
                        {"breadcrumb": ["properties", p], "metadata": {"inclusion": "available"}}
                        for p in properties
                    ),
                ],
            }
        ]
    }


def test_identity_survives_the_sdk_catalog_round_trip() -> None:
    """Both ways a tap's catalog goes through singer-sdk's model.

    `--discover` writes `Stream._singer_catalog_entry` (`Schema.from_dict(stream.schema)`);
    `--catalog` is read by `Catalog.from_dict` (each stream's `Schema.from_dict`) and the stream
    gets `entry.schema.to_dict()`. Plus JSON text in between, as a file.
    """
    raw = [col("fld2", "Amount", "number"), col("fld1", "amount", "datetime"), col("fld3", "")]
    properties = catalog_properties(raw)
    discovered = Schema.from_dict({"type": "object", "properties": properties}).to_dict()
    assert discovered["properties"] == properties
    text = json.dumps(Catalog.from_dict(_catalog(discovered["properties"])).to_dict())
    read = Catalog.from_dict(json.loads(text))["table_tbl1"].schema.to_dict()
    assert read["properties"] == properties
    identities = {p: column_identity(s) for p, s in read["properties"].items()}
    assert identities["amount"] == ColumnIdentity("fld1", "amount", "datetime")
    assert identities["Amount__fld2"] == ColumnIdentity("fld2", "Amount", "number")
    assert identities["_column_fld3"] == ColumnIdentity("fld3", "", "singleLineText")
    # ...and a sync maps the round-tripped catalog by id, whatever the column order now is.
    plan = plan_columns(read["properties"], raw[::-1])
    assert {c.prop_name: c.id for c in plan.columns} == {
        "Amount__fld2": "fld2",
        "amount": "fld1",
        "_column_fld3": "fld3",
    }
    assert not plan.drifted


def test_sdk_drops_unknown_keywords_and_metadata_keys() -> None:
    """Why the identity is in `description`: singer-sdk 0.54's catalog model keeps only the
    keywords it knows (`singerlib.schema.STANDARD_KEYS`, `$id`, `$schema`, `properties`,
    `items`) and only the metadata fields it knows (`Metadata`/`StreamMetadata` dataclasses).
    If this test fails, the SDK now keeps extra keywords, and an `x-...` keyword would do.
    """
    properties = {"Amount": {"type": ["number", "null"], "x-maptable-column": {"id": "fld1"}}}
    catalog = _catalog(properties)
    catalog["streams"][0]["metadata"][1]["metadata"]["x-maptable-column-id"] = "fld1"
    entry = Catalog.from_dict(catalog).to_dict()["streams"][0]
    assert entry["schema"]["properties"]["Amount"] == {"type": ["number", "null"]}
    assert entry["metadata"][1]["metadata"] == {"inclusion": "available"}
    assert "x-maptable-column" not in Schema.from_dict(properties["Amount"]).to_dict()


# -- mapping a live table onto a catalog ---------------------------------------------------------

TABLE = [
    col("fld1", "Amount", "number"),
    col("fld2", "Amount", "number"),
    col("fld3", "Due", "datetime"),
    col("fld4", "", "singleLineText"),
    col("fld5", "Where", "coordinate"),
]


def props_of(plan: Any) -> dict[str, str]:
    return {c.prop_name: c.id for c in plan.columns}


@pytest.mark.parametrize("properties", [None, {}])
def test_without_a_catalog_every_live_column_maps_to_its_own_property(
    properties: dict[str, Any] | None,
) -> None:
    plan = plan_columns(properties, TABLE)
    assert plan.columns == name_columns(TABLE)
    assert not plan.drifted
    assert plan.reassigned == []


def test_reordered_columns_map_by_id_without_drift() -> None:
    catalog = catalog_properties(TABLE)
    plan = plan_columns(catalog, [TABLE[i] for i in (4, 2, 1, 3, 0)])
    assert props_of(plan) == {
        "Amount": "fld1",
        "Amount__fld2": "fld2",
        "Due": "fld3",
        "_column_fld4": "fld4",
        "Where": "fld5",
    }
    assert [c.prop_name for c in plan.columns] == [p for p in catalog if p not in ROW_PROPERTIES]
    assert not plan.drifted
    assert plan.reassigned == []


def test_a_renamed_column_keeps_its_property() -> None:
    live = [*TABLE[:2], col("fld3", "Deadline", "datetime"), col("fld4", "Note"), TABLE[4]]
    plan = plan_columns(catalog_properties(TABLE), live)
    assert props_of(plan)["Due"] == "fld3"
    assert props_of(plan)["_column_fld4"] == "fld4"
    assert plan.renamed == [
        Renamed("Due", "Due", "Deadline"),
        Renamed("_column_fld4", "", "Note"),
    ]
    assert plan.new == []
    assert plan.missing == []


def test_a_retyped_column_keeps_its_property_and_schema() -> None:
    live = [col("fld1", "Amount", "singleLineText"), *TABLE[1:]]
    catalog = catalog_properties(TABLE)
    plan = plan_columns(catalog, live)
    amount = next(c for c in plan.columns if c.prop_name == "Amount")
    assert amount.type == "singleLineText"
    assert amount.schema == catalog["Amount"]
    assert amount.schema["type"] == ["number", "null"]
    assert plan.retyped == [Retyped("Amount", "number", "singleLineText")]


def test_a_deleted_column_is_missing_and_its_name_goes_to_no_other_column() -> None:
    live = [TABLE[1], *TABLE[2:]]  # fld1 "Amount" deleted: fld2 is now the only "Amount"
    plan = plan_columns(catalog_properties(TABLE), live)
    assert plan.missing == ["Amount"]
    assert props_of(plan)["Amount__fld2"] == "fld2"
    assert "Amount" not in props_of(plan)
    assert plan.new == []
    # Re-discovery would now call fld2 "Amount": the old fld1 warehouse column would change
    # meaning. The plan says so.
    assert plan.reassigned == ["Amount"]


def test_a_new_same_named_column_is_new_and_takes_no_existing_property() -> None:
    catalog = catalog_properties(TABLE)
    added_later = plan_columns(catalog, [*TABLE, col("fld9", "Amount", "singleLineText")])
    assert props_of(added_later) == props_of(plan_columns(catalog, TABLE))
    assert [(c.id, c.prop_name) for c in added_later.new] == [("fld9", "Amount__fld9")]
    assert added_later.reassigned == []
    # A column with a smaller id: the catalog still maps "Amount" to fld1; re-discovery would not.
    smaller = plan_columns(catalog, [*TABLE, col("fld0", "amount", "number")])
    assert props_of(smaller)["Amount"] == "fld1"
    assert [(c.id, c.prop_name) for c in smaller.new] == [("fld0", "amount")]
    assert smaller.reassigned == ["Amount"]
    # Deleted, then a new column of the same name: the catalog's "Amount" is missing, not reused.
    replaced = plan_columns(catalog, [*TABLE[1:], col("fld9", "Amount", "singleLineText")])
    assert replaced.missing == ["Amount"]
    assert "fld9" not in props_of(replaced).values()
    assert [c.id for c in replaced.new] == ["fld9"]


def test_a_catalog_without_ids_maps_by_name() -> None:
    """An older catalog: no identities, and named by the old order-dependent rule (the first
    column in table order kept the name), here the opposite of the id order.
    """
    old = {
        "_row_id": {"type": ["string"]},
        "Amount": {"type": ["number", "null"]},  # fld2, first in the old table order
        "Amount__fld1": {"type": ["number", "null"]},
        "_column_fld4": {"type": ["string", "null"]},
        "due": {"type": ["string", "null"], "format": "date-time"},
        "Where": {"type": ["object", "null"], "properties": {"lng": {}, "lat": {}}},
        "Gone": {"type": ["string", "null"]},
    }
    plan = plan_columns(old, TABLE)
    assert props_of(plan) == {
        "Amount": "fld2",
        "Amount__fld1": "fld1",
        "_column_fld4": "fld4",
        "due": "fld3",
        "Where": "fld5",
    }
    assert plan.missing == ["Gone"]
    assert plan.renamed == [Renamed("due", "due", "Due")]  # only a change of case can show
    assert plan.retyped == []
    assert plan.new == []
    # Re-discovery (by the id rule) would swap the two: the plan warns about both.
    assert plan.reassigned == ["Amount"]
    # Without its twin, a suffixed name still goes to its own column, never to the plain one.
    alone = plan_columns(old, [TABLE[1], *TABLE[2:]])
    assert "Amount__fld1" in alone.missing
    assert props_of(alone)["Amount"] == "fld2"


def test_a_catalog_without_ids_reports_schema_changes_as_retyped() -> None:
    old = {"Amount": {"type": ["number", "null"]}, "Due": {"type": ["string", "null"]}}
    live = [col("fld1", "Amount", "singleChoice"), col("fld3", "Due", "email")]
    plan = plan_columns(old, live)
    assert plan.retyped == [Retyped("Amount", None, "singleChoice")]


def test_a_catalog_with_some_ids_maps_the_rest_by_name() -> None:
    catalog = catalog_properties(TABLE[:3])
    catalog["Where"] = {"type": ["object", "null"]}  # hand-written, no identity
    catalog["Due"]["description"] = "hand-edited"  # identity lost: by name
    plan = plan_columns(catalog, TABLE[::-1])
    assert props_of(plan) == {
        "Amount": "fld1",
        "Amount__fld2": "fld2",
        "Due": "fld3",
        "Where": "fld5",
    }
    assert [c.id for c in plan.new] == ["fld4"]


def test_a_column_recorded_twice_maps_once() -> None:
    catalog = catalog_properties(TABLE[:1])
    catalog["Copy"] = dict(catalog["Amount"])
    plan = plan_columns(catalog, TABLE[:1])
    assert props_of(plan) == {"Amount": "fld1"}
    assert plan.missing == ["Copy"]


@PROPERTY
@given(raw=column_sets(), data=st.data())
def test_a_discovered_catalog_maps_its_own_table_in_any_order(
    raw: list[dict[str, Any]], data: st.DataObject
) -> None:
    catalog = Catalog.from_dict(_catalog(catalog_properties(raw)))
    properties = catalog["table_tbl1"].schema.to_dict()["properties"]
    plan = plan_columns(properties, data.draw(st.permutations(raw)))
    assert props_of(plan) == {c.prop_name: c.id for c in name_columns(raw)}
    assert not plan.drifted
    assert plan.reassigned == []


# -- values follow the catalog's schema ----------------------------------------------------------


def test_number_to_text_text_cells_land_as_null_with_originals_kept() -> None:
    catalog = catalog_properties([col("fld1", "Amount", "number")])
    plan = plan_columns(catalog, [col("fld1", "Amount", "singleLineText")])
    record = record_of({"fld1": "twelve"}, plan.columns)
    assert record["Amount"] is None
    assert invalid_of(record) == {"Amount": "twelve"}
    record = record_of({"fld1": " 12 "}, plan.columns)  # text that is a number still fits
    assert record["Amount"] == 12
    assert record[INVALID_VALUES] is None


def test_text_to_number_numbers_land_as_text() -> None:
    catalog = catalog_properties([col("fld1", "Code", "singleLineText")])
    plan = plan_columns(catalog, [col("fld1", "Code", "number")])
    assert record_of({"fld1": 12.5}, plan.columns)["Code"] == "12.5"
    assert record_of({"fld1": 7}, plan.columns)["Code"] == "7"
    assert record_of({"fld1": {"a": "中"}}, plan.columns)["Code"] == '{"a":"中"}'


def test_date_time_and_coordinate_properties_keep_their_form() -> None:
    raw = [col("fld1", "Due", "datetime"), col("fld2", "Where", "coordinate")]
    live = [col("fld1", "Due", "singleLineText"), col("fld2", "Where", "singleLineText")]
    plan = plan_columns(catalog_properties(raw), live)
    ok = record_of(
        {"fld1": "2024-05-01 08:00:00+08:00", "fld2": {"lng": "1", "lat": 2}}, plan.columns
    )
    assert ok["Due"] == "2024-05-01T00:00:00Z"
    assert ok["Where"] == {"lng": 1.0, "lat": 2.0}
    bad = record_of({"fld1": "next Tuesday", "fld2": "Berlin"}, plan.columns)
    assert bad["Due"] is None
    assert bad["Where"] is None
    assert invalid_of(bad) == {"Due": "next Tuesday", "Where": "Berlin"}


def test_the_permissive_property_takes_values_as_they_are() -> None:
    plan = plan_columns(
        catalog_properties([col("fld1", "Files", "lookup")]), [col("fld1", "Files", "number")]
    )
    value = [{"name": "a.pdf", "size": 3}]
    assert record_of({"fld1": value}, plan.columns)["Files"] == value
    assert record_of({"fld1": 3}, plan.columns)["Files"] == 3


@pytest.mark.parametrize(
    ("schema", "kind"),
    [
        ({"type": ["string", "null"]}, KIND_STRING),
        ({"type": "string", "format": "date-time"}, KIND_DATE_TIME),
        ({"type": "string", "format": "date"}, KIND_STRING),
        ({"type": ["number", "null"]}, KIND_NUMBER),
        ({"type": ["integer", "number"]}, KIND_NUMBER),
        ({"type": ["integer", "null"]}, KIND_INTEGER),
        (schema_for_type("coordinate"), KIND_COORDINATE),
        ({"type": "object"}, KIND_OBJECT),
        ({"type": ["boolean", "null"]}, KIND_BOOLEAN),
        ({"type": "array"}, KIND_ARRAY),
        (schema_for_type("attachment"), KIND_ARRAY),
        ({"type": "array", "items": {"type": "object"}}, KIND_FILES),
        (schema_for_type("hyperlink"), KIND_HYPERLINK),
        (schema_for_type("boolean"), KIND_BOOLEAN),
        (schema_for_type("lookup"), KIND_ANY),
        ({"type": "array", "items": {"type": "string"}}, KIND_ARRAY),
        ({}, KIND_ANY),
        ({"type": 5}, KIND_ANY),
        ({"type": ["string", "number", "null"]}, KIND_MIXED),
        ({"type": "null"}, KIND_MIXED),
    ],
)
def test_schema_kinds(schema: dict[str, Any], kind: str) -> None:
    assert schema_kind(schema) == kind


@pytest.mark.parametrize(
    ("schema", "good", "bad"),
    [
        ({"type": ["integer", "null"]}, [(3, 3), ("4", 4), (5.0, 5)], [5.5, "x", True]),
        ({"type": ["boolean", "null"]}, [(True, True), (" FALSE", False)], [1, "yes"]),
        ({"type": ["object", "null"]}, [({"a": 1}, {"a": 1})], [[1], "x"]),
        ({"type": ["array", "null"]}, [([1], [1])], [{"a": 1}, "x"]),
        ({"type": ["string", "number", "null"]}, [("x", "x"), (2, 2)], [True, [1], float("nan")]),
        ({"type": ["null"]}, [], [0, "x"]),
    ],
)
def test_hand_written_schemas_are_conformed_too(
    schema: dict[str, Any], good: list[tuple[Any, Any]], bad: list[Any]
) -> None:
    column = Column("c1", "X", "singleLineText", "X", property_schema=schema)
    for value, expected in good:
        record = record_of({"c1": value}, [column])
        assert record["X"] == expected
        assert record[INVALID_VALUES] is None
    for value in bad:
        record = record_of({"c1": value}, [column])
        assert record["X"] is None
        assert "X" in invalid_of(record)


def test_the_coercer_is_chosen_once_per_column(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_columns(catalog_properties(TABLE), TABLE)
    assert all(c.coerce is coercer_for_column(c.type, c.schema) for c in plan.columns)

    def fail(*_: Any) -> Any:
        raise AssertionError

    from tap_maptable.columns import rows, values  # noqa: PLC0415 - where the calls happen

    for module in (rows, values):
        for name in ("schema_kind", "coercer_for", "coercer_for_type", "coercer_for_column"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, fail)
    record = record_of({"fld1": "1", "fld3": 0, "fld5": {"lng": 1, "lat": 2}}, plan.columns)
    assert record["Amount"] == 1
    assert record["Due"] == "1970-01-01T00:00:00Z"


cell_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**15), 10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["12", "1.5", "2024-05-01T08:00:00Z", "0001-01-01T00:00:00Z", " ", "NaN"]),
    st.fixed_dictionaries({"lng": st.integers(-180, 180), "lat": st.floats(-90, 90)}),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@PROPERTY
@given(
    catalog_type=st.sampled_from(COLUMN_TYPES),
    live_type=st.sampled_from(COLUMN_TYPES),
    value=cell_values,
)
def test_values_fit_the_catalog_schema_whatever_the_column_type_now(
    catalog_type: str, live_type: str, value: Any
) -> None:
    catalog = catalog_properties([col("fld1", "X", catalog_type)])
    plan = plan_columns(catalog, [col("fld1", "X", live_type)])
    record = record_of({"fld1": value}, plan.columns)
    assert fits(record["X"], catalog["X"]), f"{record['X']!r} does not fit {catalog['X']}"
    invalid = invalid_of(record)
    if value is not None and record["X"] is None:
        if "X" in invalid:  # dropped, and kept as written (NaN, not JSON, as its text)
            assert invalid["X"] == json_safe(value)
        else:  # "no time" (Go's zero time, blank text) is a null date-time, not a dropped value
            assert catalog_type == "datetime"
    else:
        assert "X" not in invalid
