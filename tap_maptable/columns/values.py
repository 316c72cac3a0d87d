"""Cell values in their property's JSON form: schema kinds, coercers and times.

Kept apart from naming and drift because values answer one question, "does this cell fit the
schema it is emitted under, and in what form", and that is what every record pays for.

Values conform to the schema a property was *declared* with (the catalog's), not to the column's
current type: after a column is retyped, a cell that does not fit the old schema never fails the
record or drops the row. It is emitted as null in its property and kept, as written, in the row's
`_invalid_values` property (a JSON object text mapping property name to the original value), so
no data is lost and a target never receives a value that contradicts the schema it was given.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Final

from tap_maptable.columns.schema import TEXT_TYPES, schema_for_type

GO_ZERO_TIME_YEAR: Final = 1
_EPOCH_MS_THRESHOLD: Final = 100_000_000_000  # larger numbers are epoch milliseconds
_ANY_TYPES: Final = frozenset({"object", "array", "string", "number", "boolean"})

# What a property's schema asks of its values (`schema_kind`).
KIND_STRING: Final = "string"
KIND_NUMBER: Final = "number"
KIND_INTEGER: Final = "integer"
KIND_DATE_TIME: Final = "date-time"
KIND_COORDINATE: Final = "coordinate"
KIND_BOOLEAN: Final = "boolean"
KIND_OBJECT: Final = "object"
KIND_ARRAY: Final = "array"
KIND_ANY: Final = "any"  # no type, or every JSON type: values as they are
KIND_MIXED: Final = "mixed"  # some other set of types: values of one of them, as they are

Coercer = Callable[[Any], Any]
"""Turns a non-null cell value into its property's JSON form, or raises InvalidValueError."""


class InvalidValueError(ValueError):
    """A cell value that does not fit its property's schema."""


def schema_kind(schema: Mapping[str, Any]) -> str:
    """What a property's schema asks of its values: one of the `KIND_...` constants."""
    declared = _declared_types(schema)
    if declared is None:
        return KIND_ANY
    types = declared - {"null"}
    kind = KIND_MIXED
    if types >= _ANY_TYPES:
        kind = KIND_ANY
    elif types == {"string"}:
        kind = KIND_DATE_TIME if schema.get("format") == "date-time" else KIND_STRING
    elif types in ({"number"}, {"number", "integer"}):
        kind = KIND_NUMBER
    elif types == {"integer"}:
        kind = KIND_INTEGER
    elif types == {"object"}:
        inner = schema.get("properties")
        is_coordinate = isinstance(inner, Mapping) and {"lng", "lat"} <= set(inner)
        kind = KIND_COORDINATE if is_coordinate else KIND_OBJECT
    elif types == {"boolean"}:
        kind = KIND_BOOLEAN
    elif types == {"array"}:
        kind = KIND_ARRAY
    return kind


def coercer_for(schema: Mapping[str, Any]) -> Coercer:
    """The function that turns a (non-null) value into one that fits `schema`, once per schema."""
    kind = schema_kind(schema)
    if kind == KIND_MIXED:
        types = _declared_types(schema) or frozenset()
        return lambda value: _of_types(value, types)
    return _COERCERS[kind]


def _declared_types(schema: Mapping[str, Any]) -> frozenset[str] | None:
    """A schema's `type` as a set; None when it declares none (or nothing readable)."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return frozenset({declared})
    if isinstance(declared, (list, tuple)):
        return frozenset(item for item in declared if isinstance(item, str))
    return None


def coercer_for_type(column_type: str) -> Coercer:
    """The coercer of a column type's values (the schema of that type, with shortcuts)."""
    return _TYPE_COERCERS.get(column_type) or coercer_for(schema_for_type(column_type))


def coerce_value(column_type: str, value: Any) -> Any:
    """Return `value` in its column type's JSON form, or raise InvalidValueError."""
    if value is None:
        return None
    return coercer_for_type(column_type)(value)


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


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


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


def _integer(value: Any) -> int:
    number = _number(value)
    if isinstance(number, float):
        if not number.is_integer():
            raise InvalidValueError(value)
        return int(number)
    return number


def _coordinate(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise InvalidValueError(value)
    try:
        lng, lat = float(_number(value["lng"])), float(_number(value["lat"]))
    except (KeyError, InvalidValueError, OverflowError) as exc:
        raise InvalidValueError(value) from exc
    return {"lng": lng, "lat": lat}


def _instance_of(kind: type) -> Coercer:
    def coerce(value: Any) -> Any:
        if not isinstance(value, kind):
            raise InvalidValueError(value)
        return value

    return coerce


def _as_is(value: Any) -> Any:
    return value


def _json_types(value: Any) -> frozenset[str]:
    """The JSON Schema types a Python JSON value is an instance of."""
    found: frozenset[str] = frozenset()
    if isinstance(value, bool):
        found = frozenset({"boolean"})
    elif isinstance(value, int):
        found = frozenset({"integer", "number"})
    elif isinstance(value, float) and math.isfinite(value):
        found = frozenset({"integer", "number"} if value.is_integer() else {"number"})
    elif isinstance(value, str):
        found = frozenset({"string"})
    elif isinstance(value, dict):
        found = frozenset({"object"})
    elif isinstance(value, list):
        found = frozenset({"array"})
    return found


def _of_types(value: Any, types: frozenset[str]) -> Any:
    if not _json_types(value) & types:
        raise InvalidValueError(value)
    return value


_COERCERS: Final[dict[str, Coercer]] = {
    KIND_STRING: _text,
    KIND_NUMBER: _number,
    KIND_INTEGER: _integer,
    KIND_DATE_TIME: parse_datetime,
    KIND_COORDINATE: _coordinate,
    KIND_BOOLEAN: _instance_of(bool),
    KIND_OBJECT: _instance_of(dict),
    KIND_ARRAY: _instance_of(list),
    KIND_ANY: _as_is,
}
_TYPE_COERCERS: Final[dict[str, Coercer]] = {
    **dict.fromkeys(TEXT_TYPES, _text),
    "number": _number,
    "datetime": parse_datetime,
    "coordinate": _coordinate,
}
