"""From MapTable columns to Singer properties: names, JSON Schema types, and cell values.

Naming rule (documented in README): a column's property is its name, kept as it is (Chinese,
spaces and punctuation included). Names are compared case-insensitively, because most warehouses
fold case: when several columns share a name, the first in the table's column order keeps it and
each later one becomes `<name>__<columnId>`; an empty name becomes `_column_<columnId>`; a name that
would shadow one of the row's own properties (`_row_id`, ...) also gets `__<columnId>`. Column ids
are stable, so a property keeps its name for as long as its column exists.

Values: a cell that does not fit its column's type never fails the record or drops the row. It is
emitted as null in its column and kept, as written, in the row's `_invalid_values` property
(a JSON object text mapping property name to the original value), so no data is lost.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

ROW_ID: Final = "_row_id"
CREATED_AT: Final = "_created_at"
UPDATED_AT: Final = "_updated_at"
CREATOR_ID: Final = "_creator_id"
UPDATER_ID: Final = "_updater_id"
INVALID_VALUES: Final = "_invalid_values"
ROW_PROPERTIES: Final = (ROW_ID, CREATED_AT, UPDATED_AT, CREATOR_ID, UPDATER_ID, INVALID_VALUES)

GO_ZERO_TIME_YEAR: Final = 1
TEXT_TYPES: Final = frozenset(
    {"singleLineText", "multiLineText", "singleChoice", "email", "url", "phone", "text"}
)
_EPOCH_MS_THRESHOLD: Final = 100_000_000_000  # larger numbers are epoch milliseconds

_NULLABLE_STRING: Final[dict[str, Any]] = {"type": ["string", "null"]}
_DATE_TIME: Final[dict[str, Any]] = {"type": ["string", "null"], "format": "date-time"}
_NUMBER: Final[dict[str, Any]] = {"type": ["number", "null"]}
_COORDINATE: Final[dict[str, Any]] = {
    "type": ["object", "null"],
    "properties": {"lng": {"type": ["number", "null"]}, "lat": {"type": ["number", "null"]}},
}
# A type the tap has not seen yet: accept any JSON value, so a new column type never fails a sync.
# (Not `{}`: the SDK's record conformance and most targets need a `type` to pick a column type;
# with `object` and `array` listed, SQL targets store such a column as JSON.)
_ANY: Final[dict[str, Any]] = {
    "type": ["object", "array", "string", "number", "boolean", "null"],
}

_MISSING: Final = object()


class InvalidValueError(ValueError):
    """A cell value that does not fit its column's type."""


@dataclass(frozen=True)
class Column:
    """One MapTable column and the property it becomes."""

    id: str
    name: str
    type: str
    prop_name: str

    @property
    def schema(self) -> dict[str, Any]:
        """The JSON Schema of this column's property."""
        return dict(schema_for_type(self.type))


def schema_for_type(column_type: str) -> dict[str, Any]:
    """Map a MapTable column type to JSON Schema; unknown types get a permissive schema."""
    if column_type in TEXT_TYPES:
        return _NULLABLE_STRING
    by_type: dict[str, dict[str, Any]] = {
        "number": _NUMBER,
        "datetime": _DATE_TIME,
        "coordinate": _COORDINATE,
    }
    return by_type.get(column_type, _ANY)


def name_columns(raw_columns: list[dict[str, Any]]) -> list[Column]:
    """Give every column a unique, deterministic property name (see the module docstring)."""
    taken = {name.casefold() for name in ROW_PROPERTIES}
    columns = []
    for raw in raw_columns:
        column_id = str(raw.get("id", ""))
        name = str(raw.get("name") or "")
        base = name if name.strip() else f"_column_{column_id}"
        candidate = base
        if candidate.casefold() in taken:
            candidate = f"{base}__{column_id}"
        # A suffixed name can itself be taken (a column may be *named* "Amount__fld3"):
        # count up until it is free, so that properties stay unique case-insensitively.
        n = 2
        while candidate.casefold() in taken:
            candidate = f"{base}__{column_id}_{n}"
            n += 1
        taken.add(candidate.casefold())
        columns.append(
            Column(id=column_id, name=name, type=str(raw.get("type", "")), prop_name=candidate)
        )
    return columns


def row_schema(columns: list[Column]) -> dict[str, Any]:
    """The JSON Schema of a table's rows: the row's own properties, then one per column."""
    properties: dict[str, Any] = {
        ROW_ID: {"type": ["string"]},
        CREATED_AT: dict(_DATE_TIME),
        UPDATED_AT: dict(_DATE_TIME),
        CREATOR_ID: dict(_NULLABLE_STRING),
        UPDATER_ID: dict(_NULLABLE_STRING),
    }
    for column in columns:
        properties[column.prop_name] = column.schema
    properties[INVALID_VALUES] = dict(_NULLABLE_STRING)
    return {"type": "object", "properties": properties}


def row_record(row: dict[str, Any], columns: list[Column]) -> dict[str, Any]:
    """Turn an API row into a record of the row schema; never raises on odd values."""
    meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
    cells = row.get("cells") if isinstance(row.get("cells"), dict) else {}
    assert isinstance(meta, dict)  # noqa: S101 - narrowed above, for the type checker
    assert isinstance(cells, dict)  # noqa: S101
    invalid: dict[str, Any] = {}
    record: dict[str, Any] = {
        ROW_ID: str(row.get("id")),
        CREATED_AT: _meta_time(meta.get("createTime"), CREATED_AT, invalid),
        UPDATED_AT: _meta_time(meta.get("updateTime"), UPDATED_AT, invalid),
        CREATOR_ID: _optional_text(meta.get("creatorID")),
        UPDATER_ID: _optional_text(meta.get("updaterID")),
    }
    for column in columns:
        raw = cells.get(column.id, _MISSING)
        if raw is _MISSING or raw is None:
            record[column.prop_name] = None
            continue
        try:
            record[column.prop_name] = coerce_value(column.type, raw)
        except InvalidValueError:
            record[column.prop_name] = None
            invalid[column.prop_name] = raw
    record[INVALID_VALUES] = json.dumps(invalid, ensure_ascii=False) if invalid else None
    return record


def coerce_value(column_type: str, value: Any) -> Any:
    """Return `value` in its column type's JSON form, or raise InvalidValueError."""
    if value is None:
        return None
    if column_type in TEXT_TYPES:
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if column_type == "number":
        return _number(value)
    if column_type == "datetime":
        return parse_datetime(value)
    if column_type == "coordinate":
        return _coordinate(value)
    return value


def parse_datetime(value: Any) -> str | None:
    """Normalise an API time to RFC 3339 UTC; Go's zero time (year 1) means "no time": None."""
    if isinstance(value, str):
        if not value.strip():
            return None
        moment = _moment_from_text(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        moment = _moment_from_epoch(value)
    else:
        raise InvalidValueError(value)
    if moment.year <= GO_ZERO_TIME_YEAR:
        return None
    try:
        utc = moment.astimezone(timezone.utc)
    except (OverflowError, ValueError) as exc:  # e.g. 9999-12-31T23:59:59-01:00
        raise InvalidValueError(value) from exc
    return utc.isoformat().replace("+00:00", "Z")


def _moment_from_text(value: str) -> datetime:
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise InvalidValueError(value) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _moment_from_epoch(value: float) -> datetime:
    """Epoch seconds, or milliseconds for numbers too large to be seconds."""
    try:
        if not math.isfinite(value):
            raise InvalidValueError(value)
        seconds = value / 1000 if abs(value) >= _EPOCH_MS_THRESHOLD else value
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidValueError(value) from exc


def parse_timestamp(value: str) -> datetime:
    """Read back a time this module wrote (RFC 3339), for bookmark comparisons."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise InvalidValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValueError(value)
        return value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError as exc:
            raise InvalidValueError(value) from exc
        if not math.isfinite(number):
            raise InvalidValueError(value)
        return int(number) if number.is_integer() and "." not in value else number
    raise InvalidValueError(value)


def _coordinate(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise InvalidValueError(value)
    try:
        lng, lat = float(_number(value["lng"])), float(_number(value["lat"]))
    except (KeyError, InvalidValueError, OverflowError) as exc:
        raise InvalidValueError(value) from exc
    return {"lng": lng, "lat": lat}


def _meta_time(value: Any, name: str, invalid: dict[str, Any]) -> str | None:
    if value is None:
        return None
    try:
        return parse_datetime(value)
    except InvalidValueError:
        invalid[name] = value
        return None


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)
