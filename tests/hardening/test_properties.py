"""Properties of the tap's pure parts, over inputs no fixture would think of (hypothesis).

- envelope parsing: any bytes, status and content type give an Envelope or an EnvelopeError;
- column naming: unique case-insensitively, deterministic, never shadowing row properties,
  independent of the column order, stable when columns with larger ids are added;
- value coercion: never raises on any JSON value (except the documented InvalidValueError from
  `coerce_value`), the output fits the property's schema, and a dropped value is kept in
  `_invalid_values`;
- the segment cursor: against a server that keeps answering, paging ends or raises
  SegmentLoopError within one pass over the answers; it never loops forever.

Each known-bad input found while writing these is pinned with @example, so a regression (or the
bug) shows on every run, not only when the search happens to find it.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator
from requests.structures import CaseInsensitiveDict

from tap_maptable.columns import (
    INVALID_VALUES,
    ROW_PROPERTIES,
    TEXT_TYPES,
    Column,
    InvalidValueError,
    coerce_value,
    column_id_key,
    name_columns,
    row_record,
    row_schema,
    schema_for_type,
)
from tap_maptable.envelope import Envelope, EnvelopeError, read_envelope, signal_code
from tap_maptable.errors import SegmentLoopError
from tap_maptable.exact import json_safe
from tap_maptable.reading.segments import ResumeRefusedError, SegmentCursor

EXAMPLES = 200
PROPERTY = settings(
    max_examples=EXAMPLES,
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
RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
)
HUGE_INTS = st.sampled_from([10**400, -(10**400), 2**63, 2**1023 * 3, 10**20])

# -- JSON values, as `json.loads` can produce them (NaN and infinities included) ---------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | HUGE_INTS
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
offsets = st.sampled_from(["Z", "z", "+00:00", "-01:00", "+14:00", "-12:00", "+05:30", ""])
iso_times = st.builds(
    lambda moment, offset, sep: moment.isoformat(sep=sep) + offset,
    st.datetimes(),  # naive, years 1 to 9999
    offsets,
    st.sampled_from(["T", " "]),
)
epochs = st.integers(min_value=-(10**15), max_value=10**15) | st.floats(-1e15, 1e15)
cell_values = (
    json_values
    | iso_times
    | epochs
    | st.fixed_dictionaries({"lng": json_values, "lat": json_values})
    | st.integers().map(str)
    | st.floats().map(repr)
)


def _fits(value: Any, schema: dict[str, Any]) -> bool:
    if not Draft7Validator(schema).is_valid(value):
        return False
    if schema.get("format") == "date-time" and value is not None:
        return bool(RFC3339.fullmatch(value)) and _parses(value)
    return True


def _parses(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _strict_json(text: str) -> Any:
    """JSON as the standard defines it: `NaN` and `Infinity` are not JSON."""

    def refuse(constant: str) -> Any:
        msg = f"_invalid_values holds {constant}, which is not JSON"
        raise AssertionError(msg)

    return json.loads(text, parse_constant=refuse)


def _same_json(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# -- envelope -----------------------------------------------------------------------------------


def _response(body: bytes, status: int = 200, content_type: str = "application/json") -> Any:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers = CaseInsensitiveDict({"Content-Type": content_type})
    response.encoding = None
    return response


envelope_like = st.builds(
    lambda code, message, detail, request_id, extra: json.dumps(
        {"code": code, "message": message, "detail": detail, "requestID": request_id, **extra}
    ).encode(),
    json_values,
    json_values,
    json_values,
    json_values,
    st.dictionaries(st.text(max_size=5), json_values, max_size=2),
)
bodies = (
    st.binary(max_size=300)
    | envelope_like
    | envelope_like.flatmap(lambda b: st.integers(0, len(b)).map(lambda n: b[:n]))
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.text(max_size=100).map(lambda t: t.encode("utf-16"))
    | st.sampled_from([b"<html>502</html>", b"  <!doctype html>", b"", b"null", b"[]"])
    | st.integers(1, 200).map(lambda n: b"[" * n + b"]" * n)  # deeper: see the test below
)
content_types = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/html", "TEXT/HTML", "", "x/y"]
)


@PROPERTY
@given(body=bodies, status=st.integers(100, 599), content_type=content_types)
def test_envelope_parsing_answers_an_envelope_or_an_envelope_error(
    body: bytes, status: int, content_type: str
) -> None:
    response = _response(body, status, content_type)
    try:
        envelope = read_envelope(response)
    except EnvelopeError as exc:
        message = str(exc)
        assert "\n" not in message
    else:
        assert isinstance(envelope, Envelope)
        assert type(envelope.code) is int
        assert isinstance(envelope.message, str)
        assert envelope.request_id is None or isinstance(envelope.request_id, str)
        assert read_envelope(response) is envelope  # parsed once, cached
    code = signal_code(_response(body, status, content_type))
    assert code is None or type(code) is int


def _outcome(parse: Any, body: bytes) -> str:
    try:
        parse(_response(body))
    except EnvelopeError:
        return "EnvelopeError"
    except Exception as exc:  # noqa: BLE001 - the point is to name what escapes
        return type(exc).__name__
    return "ok"


@pytest.mark.parametrize(
    "body",
    [b"[" * 1024, b'{"code":0,"detail":' + b"[" * 3000 + b"]" * 3000 + b"}"],
    ids=["small-deep-array", "deep-detail"],
)
def test_deeply_nested_json_is_an_envelope_error_not_a_crash(body: bytes) -> None:
    # A proxy or a broken server can send this; json.loads raises RecursionError on it, and the
    # small one also reaches `signal_code`, which the throttle calls on every response.
    outcome = [_outcome(read_envelope, body), _outcome(signal_code, body)]
    assert outcome[0] == "EnvelopeError", f"read_envelope raised {outcome[0]}"
    assert outcome[1] == "ok", f"signal_code raised {outcome[1]}"


# -- column naming ------------------------------------------------------------------------------

NAMES = ["Amount", "amount", "AMOUNT", "Status", "名称", "", "  ", "_row_id", "_ROW_ID",
         "_invalid_values", "_Updated_At", "_column_c1", "Amount__c2"]  # fmt: skip


@st.composite
def raw_columns(draw: st.DrawFn, max_size: int = 8) -> list[dict[str, Any]]:
    ids = draw(
        st.lists(
            st.sampled_from([f"c{i}" for i in range(1, 10)]) | st.text(min_size=1, max_size=6),
            unique=True,
            max_size=max_size,
        )
    )
    columns: list[dict[str, Any]] = []
    for column_id in ids:
        choice = draw(st.integers(0, 3))
        if choice == 0:
            name: Any = draw(st.sampled_from(NAMES))
        elif choice == 1:
            name = draw(st.text(max_size=8))
        elif choice == 2 and columns:  # a name built like the tap's own suffixes
            other = draw(st.sampled_from(columns))
            suffix_id = draw(st.sampled_from(ids))
            name = f"{draw(st.sampled_from([str(other['name']), str(other['name']).upper()]))}"
            name += f"__{suffix_id}"
        else:
            name = draw(st.sampled_from([None, 0, "_column_" + draw(st.sampled_from(ids))]))
        columns.append({"id": column_id, "name": name, "type": draw(st.sampled_from(COLUMN_TYPES))})
    return columns


@PROPERTY
@given(columns=raw_columns(), more=raw_columns(max_size=4))
@example(
    columns=[
        {"id": "c2", "name": "Amount", "type": "number"},
        {"id": "c9", "name": "Amount__c3", "type": "number"},
        {"id": "c3", "name": "amount", "type": "number"},
    ],
    more=[],
)
def test_column_names_are_unique_deterministic_unshadowing_and_stable(
    columns: list[dict[str, Any]], more: list[dict[str, Any]]
) -> None:
    # Added columns get larger ids than the existing ones (ids that count up, or of one width):
    # adding them never renames an existing column's property.
    largest = max((column_id_key(str(c["id"])) for c in columns), default=(0, ""))
    more = [c for c in more if column_id_key(str(c["id"])) > largest]
    named = name_columns(columns)
    names = [c.prop_name for c in named]
    folded = [n.casefold() for n in names]
    assert len(set(folded)) == len(folded), f"two columns share a property: {names}"
    assert not set(folded) & {p.casefold() for p in ROW_PROPERTIES}
    assert name_columns(columns) == named  # deterministic
    assert name_columns(columns + more)[: len(named)] == named  # stable when added to
    reordered = name_columns(columns[::-1])[::-1]
    assert [c.prop_name for c in reordered] == names  # independent of the column order
    for raw, column in zip(columns, named, strict=True):
        assert column.id == str(raw["id"])
        assert column.prop_name  # never empty


# -- value coercion -----------------------------------------------------------------------------


@PROPERTY
@given(column_type=st.sampled_from(COLUMN_TYPES), value=cell_values)
@example(column_type="datetime", value="9999-12-31T23:59:59-01:00")
@example(column_type="coordinate", value={"lng": 10**400, "lat": 1})
def test_coercion_fits_the_schema_or_says_invalid(column_type: str, value: Any) -> None:
    try:
        coerced = coerce_value(column_type, value)
    except InvalidValueError:
        return
    assert _fits(coerced, schema_for_type(column_type)), f"{coerced!r} does not fit"
    if isinstance(coerced, float):
        assert math.isfinite(coerced)


meta_values = st.one_of(
    json_values, iso_times, epochs, st.just("0001-01-01T00:00:00Z"), st.just(None)
)


@st.composite
def rows_and_columns(draw: st.DrawFn) -> tuple[dict[str, Any], list[Column]]:
    columns = name_columns(draw(raw_columns()))
    cells = {c.id: draw(cell_values) for c in columns if draw(st.booleans())}
    if draw(st.booleans()):
        cells["not-a-column"] = draw(json_values)
    meta = {
        key: draw(meta_values)
        for key in ("createTime", "updateTime", "creatorID", "updaterID")
        if draw(st.integers(0, 4))
    }
    row: dict[str, Any] = {
        "id": draw(json_values),
        "meta": draw(st.sampled_from([meta, meta, None, [], "x"])),
        "cells": draw(st.sampled_from([cells, cells, cells, None, [1], "x"])),
    }
    return row, columns


@PROPERTY
@given(case=rows_and_columns())
@example(
    case=(
        {"id": 1, "meta": {"updateTime": "9999-12-31T23:59:59-01:00"}, "cells": {}},
        [],
    )
)
@example(
    case=(
        {"id": 1, "meta": {}, "cells": {"c1": {"lng": 10**400, "lat": 0}}},
        name_columns([{"id": "c1", "name": "Where", "type": "coordinate"}]),
    )
)
def test_row_records_never_raise_fit_the_schema_and_keep_dropped_values(
    case: tuple[dict[str, Any], list[Column]],
) -> None:
    row, columns = case
    record = row_record(row, columns)
    schema = row_schema(columns)
    assert set(record) == set(schema["properties"])
    for prop, value in record.items():
        assert _fits(value, schema["properties"][prop]), f"{prop}: {value!r}"
    invalid = _strict_json(record[INVALID_VALUES]) if record[INVALID_VALUES] else {}
    cells = row["cells"] if isinstance(row["cells"], dict) else {}
    for column in columns:
        raw = cells.get(column.id)
        if raw is not None and record[column.prop_name] is None:
            if _means_no_time(column, raw):  # documented: blank or Go's zero time is "no time"
                continue
            assert column.prop_name in invalid, f"{column.prop_name}: {raw!r} was dropped"
            assert _same_json(invalid[column.prop_name], json_safe(raw))


def _means_no_time(column: Column, raw: Any) -> bool:
    if column.schema.get("format") != "date-time":
        return False
    try:
        return column.coerce(raw) is None
    except InvalidValueError:
        return False


@PROPERTY
@given(case=rows_and_columns())
@example(case=({"id": 1, "meta": {}, "cells": {}}, []))
def test_invalid_values_hold_only_values_that_were_dropped(
    case: tuple[dict[str, Any], list[Column]],
) -> None:
    """`_invalid_values` is for values the tap could not keep, not for absent ones."""
    row, columns = case
    try:
        record = row_record(row, columns)
    except (OverflowError, ValueError):  # reported by the test above
        return
    invalid = json.loads(record[INVALID_VALUES]) if record[INVALID_VALUES] else {}
    for prop, original in invalid.items():
        assert original is not None, f"{prop}: an absent/null value is listed as invalid"


# -- segment paginator --------------------------------------------------------------------------

row_ids = st.sampled_from([f"r{i}" for i in range(8)])
honest_segment = st.fixed_dictionaries(
    {"rows": st.lists(st.fixed_dictionaries({"id": row_ids}), max_size=3), "more": st.booleans()}
)
odd_segment = st.fixed_dictionaries(
    {"rows": json_values, "more": json_values | st.booleans()},
    optional={"columns": json_values},
)
answers_strategy = st.lists(
    st.one_of(honest_segment, honest_segment, odd_segment, json_values), min_size=1, max_size=8
)


@PROPERTY
@given(answers=answers_strategy, start=st.none() | row_ids)
@example(answers=[{"rows": {"a": 1}, "more": True}], start=None)
@example(answers=[{"rows": 5, "more": True}], start=None)
def test_segment_paging_ends_or_raises_within_one_pass(answers: list[Any], start: Any) -> None:
    cursor = SegmentCursor("tbl", after=start)
    for step in range(len(answers) + 1):
        detail = answers[step % len(answers)]  # a server that keeps answering, in a cycle
        try:
            cursor.accept(detail)
        except ResumeRefusedError:
            cursor.restart()  # as the reader does: the table again from its first segment
            continue
        except SegmentLoopError:
            return
        if cursor.done:
            return
    msg = f"still paging after {len(answers) + 1} answers"
    raise AssertionError(msg)


def test_the_go_zero_time_is_no_time_and_epoch_milliseconds_are_read() -> None:
    assert coerce_value("datetime", "0001-01-01T00:00:00Z") is None
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    millis = (datetime(2024, 1, 1, tzinfo=timezone.utc) - epoch) // timedelta(milliseconds=1)
    assert coerce_value("datetime", millis) == "2024-01-01T00:00:00Z"
