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

import math
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Final

from tap_maptable.columns.schema import (
    HYPERLINK_LINK,
    HYPERLINK_TEXT,
    TEXT_TYPES,
    schema_for_type,
)
from tap_maptable.exact import (
    NotANumberError,
    OutOfRangeError,
    exact_number,
    json_text,
    number_from_text,
)

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
KIND_HYPERLINK: Final = "hyperlink"  # {"link", "text"}
KIND_FILES: Final = "files"  # a list of file records (objects)
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
        kind = _object_kind(schema.get("properties"))
    elif types == {"boolean"}:
        kind = KIND_BOOLEAN
    elif types == {"array"}:
        items = schema.get("items")
        of_objects = isinstance(items, Mapping) and _declared_types(items) == frozenset({"object"})
        kind = KIND_FILES if of_objects else KIND_ARRAY
    return kind


def _object_kind(inner: Any) -> str:
    keys = set(inner) if isinstance(inner, Mapping) else set()
    if {"lng", "lat"} <= keys:
        return KIND_COORDINATE
    if {HYPERLINK_LINK, HYPERLINK_TEXT} <= keys:
        return KIND_HYPERLINK
    return KIND_OBJECT


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


def coercer_for_column(column_type: str, schema: Mapping[str, Any] | None) -> Coercer:
    """The coercer of a column emitted under `schema` (None: its type's own schema).

    When the schema asks for the same kind of value as the column's type gives (the usual
    case), the type's own coercer reads the cells: it knows the type's cell shapes (a datetime
    column's epoch milliseconds, a choice's option object). Otherwise (a column retyped since
    the catalog was written) the schema's coercer conforms whatever the cells now hold.
    """
    if schema is None or schema_kind(schema) == schema_kind(schema_for_type(column_type)):
        return coercer_for_type(column_type)
    return coercer_for(schema)


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
    return value if isinstance(value, str) else json_text(value)


def _choice(value: Any) -> str:
    """A singleChoice cell holds its option's name; an option object is read for its name."""
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return str(value["name"])
    return _text(value)


def _number(value: Any) -> int | float | Decimal:
    """Any number exactly (see `tap_maptable.exact`); text only in ASCII decimal notation."""
    if isinstance(value, bool):
        raise InvalidValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValueError(value)
        return value
    try:
        if isinstance(value, Decimal):
            return exact_number(value)
        if isinstance(value, str):
            return number_from_text(value)
    except (NotANumberError, OutOfRangeError) as exc:
        raise InvalidValueError(value) from exc
    raise InvalidValueError(value)


def _integer(value: Any) -> int:
    number = _number(value)
    if isinstance(number, int):
        return number
    if number != int(number):
        raise InvalidValueError(value)
    return int(number)


def _boolean(value: Any) -> bool:
    """true/false; the words "true" and "false" (any case) too, as a CSV import may leave."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOLEAN_WORDS:
        return _BOOLEAN_WORDS[value.strip().lower()]
    raise InvalidValueError(value)


def _hyperlink(value: Any) -> dict[str, str | None]:
    """One shape for both forms MapTable stores: a URL, or a link with its display text.

    `{"link": url, "text": display text or null}`; `url` and `name` are the aliases MapTable
    accepts on write, read here too.
    """
    if isinstance(value, str):
        return {HYPERLINK_LINK: value, HYPERLINK_TEXT: None}
    if not isinstance(value, dict):
        raise InvalidValueError(value)
    link = _first_text(value, (HYPERLINK_LINK, "url"))
    text = _first_text(value, (HYPERLINK_TEXT, "name"))
    if link is None:
        raise InvalidValueError(value)
    return {HYPERLINK_LINK: link, HYPERLINK_TEXT: text}


def _first_text(value: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        item = value.get(key)
        if isinstance(item, str):
            return item
    return None


def _files(value: Any) -> list[dict[str, Any]]:
    """A list of file records; a bare file id (the write form) becomes `{"fileID": id}`."""
    if not isinstance(value, list):
        raise InvalidValueError(value)
    files: list[dict[str, Any]] = []
    for item in value:
        if isinstance(item, dict):
            files.append(item)
        elif isinstance(item, str):
            files.append({"fileID": item})
        else:
            raise InvalidValueError(value)
    return files


def datetime_cell(value: Any) -> str | None:
    """A datetime cell: epoch milliseconds (as MapTable stores them), or text."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        try:
            seconds = float(value) / 1000
        except OverflowError as exc:
            raise InvalidValueError(value) from exc
        return parse_datetime(seconds)
    return parse_datetime(value)


def _coordinate(value: Any) -> dict[str, int | float | Decimal]:
    if not isinstance(value, dict):
        raise InvalidValueError(value)
    try:
        return {"lng": _number(value["lng"]), "lat": _number(value["lat"])}
    except KeyError as exc:
        raise InvalidValueError(value) from exc


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
    elif isinstance(value, Decimal) and value.is_finite():
        found = frozenset({"integer", "number"} if value == value.to_integral() else {"number"})
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


_BOOLEAN_WORDS: Final = {"true": True, "false": False}
_COERCERS: Final[dict[str, Coercer]] = {
    KIND_STRING: _text,
    KIND_NUMBER: _number,
    KIND_INTEGER: _integer,
    KIND_DATE_TIME: parse_datetime,
    KIND_COORDINATE: _coordinate,
    KIND_BOOLEAN: _boolean,
    KIND_HYPERLINK: _hyperlink,
    KIND_FILES: _files,
    KIND_OBJECT: _instance_of(dict),
    KIND_ARRAY: _instance_of(list),
    KIND_ANY: _as_is,
}
_TYPE_COERCERS: Final[dict[str, Coercer]] = {
    **dict.fromkeys(TEXT_TYPES, _text),
    "singleChoice": _choice,
    "number": _number,
    "datetime": datetime_cell,
    "boolean": _boolean,
    "hyperlink": _hyperlink,
    "attachment": _files,
    "coordinate": _coordinate,
}
