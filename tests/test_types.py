"""Every documented MapTable column type gets a typed property, and numbers arrive exactly.

MapTable documents the cell shapes of its column types (`boolean`, `hyperlink`, `attachment`,
`datetime` as epoch milliseconds, `number` with its formats, `singleChoice`); a warehouse should
get a BOOLEAN, a TIMESTAMP, a number or one JSON shape for each, not "anything". Numbers are
never rounded through a float without a word.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import requests
from singer_sdk.singerlib import RecordMessage

from tap_maptable.columns import (
    INVALID_VALUES,
    coerce_value,
    name_columns,
    row_record,
    row_schema,
    schema_for_type,
)
from tap_maptable.envelope import read_envelope
from tap_maptable.exact import json_text
from tap_maptable.output import SingerOutput


def record_of(cells: dict[str, Any], columns: list[dict[str, Any]]) -> dict[str, Any]:
    return row_record({"id": "r1", "meta": {}, "cells": cells}, name_columns(columns))


def invalid_of(record: dict[str, Any]) -> dict[str, Any]:
    text = record[INVALID_VALUES]
    return json.loads(text) if text else {}


@pytest.mark.parametrize(
    ("column_type", "schema"),
    [
        ("boolean", {"type": ["boolean", "null"]}),
        ("datetime", {"type": ["string", "null"], "format": "date-time"}),
        ("number", {"type": ["number", "null"]}),
        ("singleChoice", {"type": ["string", "null"]}),
        ("multiLineText", {"type": ["string", "null"]}),
        (
            "hyperlink",
            {
                "type": ["object", "null"],
                "properties": {
                    "link": {"type": ["string", "null"]},
                    "text": {"type": ["string", "null"]},
                },
            },
        ),
        ("attachment", {"type": ["array", "null"]}),
        ("someNewType", {"type": ["object", "array", "string", "number", "boolean", "null"]}),
    ],
)
def test_each_documented_type_has_its_schema(column_type: str, schema: dict[str, Any]) -> None:
    assert schema_for_type(column_type) == schema


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("TRUE", True), (" false ", False)],
)
def test_boolean_cells(value: Any, expected: bool) -> None:
    assert coerce_value("boolean", value) is expected


@pytest.mark.parametrize("value", [1, 0, "yes", "", [True], {"v": True}])
def test_boolean_cells_that_are_not_booleans_are_kept_aside(value: Any) -> None:
    columns = [{"id": "c1", "name": "Done", "type": "boolean"}]
    record = record_of({"c1": value}, columns)
    assert record["Done"] is None
    assert invalid_of(record) == {"Done": value}


def test_hyperlinks_have_one_shape_whatever_maptable_stored() -> None:
    assert coerce_value("hyperlink", "https://a.example/x") == {
        "link": "https://a.example/x",
        "text": None,
    }
    assert coerce_value("hyperlink", {"link": "https://b.example", "text": "B"}) == {
        "link": "https://b.example",
        "text": "B",
    }
    # The aliases MapTable accepts on write.
    assert coerce_value("hyperlink", {"url": "https://c.example", "name": "C"}) == {
        "link": "https://c.example",
        "text": "C",
    }
    assert coerce_value("hyperlink", {"link": "https://d.example"}) == {
        "link": "https://d.example",
        "text": None,
    }


@pytest.mark.parametrize("value", [5, True, {"text": "no link"}, {"link": 5}, ["https://x"]])
def test_hyperlinks_without_a_link_are_kept_aside(value: Any) -> None:
    record = record_of({"c1": value}, [{"id": "c1", "name": "Web", "type": "hyperlink"}])
    assert record["Web"] is None
    assert invalid_of(record) == {"Web": value}


def test_attachments_are_lists_of_file_records() -> None:
    files = [{"id": "f1", "name": "a.pdf", "size": 3, "url": "https://f.example/1"}]
    assert coerce_value("attachment", files) == files
    assert coerce_value("attachment", []) == []
    # The write form (file ids) read back as records.
    assert coerce_value("attachment", ["f1", {"fileID": "f2"}]) == [
        {"fileID": "f1"},
        {"fileID": "f2"},
    ]


@pytest.mark.parametrize("value", ["a.pdf", {"id": "f1"}, [1], [["f1"]]])
def test_attachments_that_are_not_lists_of_records_are_kept_aside(value: Any) -> None:
    record = record_of({"c1": value}, [{"id": "c1", "name": "Files", "type": "attachment"}])
    assert record["Files"] is None
    assert invalid_of(record) == {"Files": value}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_700_000_000_000, "2023-11-14T22:13:20Z"),
        (1_700_000_000_500, "2023-11-14T22:13:20.500000Z"),
        # Epoch milliseconds even when small: MapTable's datetime cells are never seconds.
        (86_400_000, "1970-01-02T00:00:00Z"),
        (-86_400_000, "1969-12-31T00:00:00Z"),
        ("2024-05-01T08:00:00+08:00", "2024-05-01T00:00:00Z"),
        ("0001-01-01T00:00:00Z", None),
    ],
)
def test_datetime_cells_are_epoch_milliseconds_or_text(value: Any, expected: str | None) -> None:
    assert coerce_value("datetime", value) == expected


def test_number_formats_keep_the_stored_number() -> None:
    columns = [
        {"id": "c1", "name": "Discount", "type": "number", "typeOptions": {"format": "percentage"}},
        {"id": "c2", "name": "Price", "type": "number", "typeOptions": {"format": "currency"}},
        {"id": "c3", "name": "Count", "type": "number", "typeOptions": {"format": "commaNumber"}},
    ]
    record = record_of({"c1": 0.15, "c2": 12.5, "c3": 1234567}, columns)
    # A percentage is stored as the fraction: 0.15 shows as 15 % in MapTable.
    assert (record["Discount"], record["Price"], record["Count"]) == (0.15, 12.5, 1234567)


def test_a_choice_is_its_option_name() -> None:
    assert coerce_value("singleChoice", "已完成 Done") == "已完成 Done"
    assert coerce_value("singleChoice", {"id": "cho1", "name": "Done"}) == "Done"


# -- numbers exactly ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12345678901234567890", 12345678901234567890),
        ("9007199254740993", 9007199254740993),
        ("-9007199254740993", -9007199254740993),
        (" 12 ", 12),
        ("12.5", 12.5),
        ("0.1", 0.1),
        ("1e3", 1000.0),
        ("0.1000000000000000055", Decimal("0.1000000000000000055")),
        ("12345678901234567890.5", Decimal("12345678901234567890.5")),
    ],
)
def test_numeric_text_is_read_exactly(text: str, expected: Any) -> None:
    value = coerce_value("number", text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    "text", ["1_000", "١٢٣", "NaN", "nan", "inf", "Infinity", "0x10", "1e400", "1e-400", "12,5", ""]
)
def test_only_ascii_decimal_notation_in_range_is_a_number(text: str) -> None:
    record = record_of({"c1": text}, [{"id": "c1", "name": "Amount", "type": "number"}])
    assert record["Amount"] is None
    assert invalid_of(record) == {"Amount": text}


def _segment_response(body: str) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = body.encode()
    response.headers["Content-Type"] = "application/json"
    return response


def test_numbers_in_a_segment_reach_the_singer_output_with_every_digit(capsysbinary) -> None:
    body = (
        '{"code": 0, "message": "OK", "detail": {"rows": [{"id": "r1", "cells": '
        '{"c1": 12345678901234567890, "c2": 0.1000000000000000055, "c3": 9007199254740993, '
        '"c4": 0.1}}]}}'
    )
    detail = read_envelope(_segment_response(body)).detail
    columns = [{"id": f"c{n}", "name": f"N{n}", "type": "number"} for n in range(1, 5)]
    record = row_record(detail["rows"][0], name_columns(columns))
    SingerOutput().write_message(RecordMessage(stream="t", record=record))
    line = capsysbinary.readouterr().out.decode()
    assert '"N1":12345678901234567890' in line
    assert '"N2":0.1000000000000000055' in line
    assert '"N3":9007199254740993' in line
    assert '"N4":0.1' in line


def test_invalid_values_are_always_json_with_the_property_names() -> None:
    columns = [
        {"id": "c1", "name": "Amount", "type": "number"},
        {"id": "c2", "name": "Amount", "type": "number"},  # named Amount__c2
        {"id": "c3", "name": "Done", "type": "boolean"},
    ]
    record = record_of({"c1": float("nan"), "c2": "n/a", "c3": Decimal("1.5")}, columns)
    text = record[INVALID_VALUES]
    assert text is not None
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON")) == {
        "Amount": "nan",
        "Amount__c2": "n/a",
        "Done": 1.5,
    }
    assert set(json.loads(text)) <= set(row_schema(name_columns(columns))["properties"])


def test_json_text_keeps_digits_and_never_writes_nan() -> None:
    assert json_text({"a": Decimal("0.1000000000000000055"), "b": float("inf")}) == (
        '{"a":0.1000000000000000055,"b":"inf"}'
    )
