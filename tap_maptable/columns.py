"""From MapTable columns to Singer properties: names, JSON Schema, identity, drift and values.

Naming rule (documented in README). A column's property is its name, kept as it is (Chinese,
spaces and punctuation included). The names depend only on the *set* of columns (their ids and
names), never on the table's column order or on the column types:

1. Names are compared case-insensitively (`str.casefold`), because most warehouses fold case.
2. An empty (or all-blank) name counts as `_column_<columnId>`.
3. Columns are named one by one in order of their ids, compared by length, then by code point
   (`(len(id), id)`): for ids of one width (MapTable's `fld...`) that is plain string order, and
   for ids that count up (`7`, `10`, `fld9`, `fld10`) it is creation order.
4. A column keeps its name when no column before it (in that order) has taken it; so among the
   columns that share a name, the one with the smallest id keeps the plain name. Otherwise it
   becomes `<name>__<columnId>`, and so does a name that would shadow one of the row's own
   properties (`_row_id`, `_created_at`, `_updated_at`, `_creator_id`, `_updater_id`,
   `_invalid_values`).
5. A suffixed name that is already taken (a column may be *named* `Amount__fld3`) counts up:
   `<name>__<columnId>_2`, `_3`, ... until it is free.

So a column's property depends only on its own id and name and on the columns with smaller ids.
Reordering and retyping columns never renames a property; adding or renaming a column renames
another one's property only when it has a smaller id and takes that property's name. (A catalog
keeps its names regardless: only re-discovery renames, and `plan_columns` reports the catalog
properties that re-discovery would give to a different column.)

Column identity: each column property's schema records the MapTable column it was made from, as
`"description": "MapTable column {"id": ..., "name": ..., "type": ...}"` (the JSON object after
`COLUMN_DESCRIPTION_PREFIX`). Not an `x-...` keyword: singer-sdk's catalog model
(`singer_sdk.singerlib.Schema`) keeps only the JSON Schema keywords it knows, so an unknown
keyword is dropped both from the tap's `--discover` output and from an input `--catalog`, while
`description` survives both (and is harmless to targets).

Catalog and drift (`plan_columns`): a sync maps the table's live columns onto the catalog's
properties by column id (names from a catalog without ids: by the embedded `__<columnId>` of
suffixed names, then by the naming rule), and reports what changed since discovery: renamed and
retyped columns, properties whose column is gone, and columns the catalog does not know yet.

Values conform to the schema a property was *declared* with (the catalog's), not to the column's
current type: after a column is retyped, a cell that does not fit the old schema never fails the
record or drops the row. It is emitted as null in its property and kept, as written, in the row's
`_invalid_values` property (a JSON object text mapping property name to the original value), so
no data is lost and a target never receives a value that contradicts the schema it was given.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final, NamedTuple

ROW_ID: Final = "_row_id"
CREATED_AT: Final = "_created_at"
UPDATED_AT: Final = "_updated_at"
CREATOR_ID: Final = "_creator_id"
UPDATER_ID: Final = "_updater_id"
INVALID_VALUES: Final = "_invalid_values"
ROW_PROPERTIES: Final = (ROW_ID, CREATED_AT, UPDATED_AT, CREATOR_ID, UPDATER_ID, INVALID_VALUES)

# A column property's `description` is this prefix and a JSON object: {"id", "name", "type"}.
COLUMN_DESCRIPTION_PREFIX: Final = "MapTable column "

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
_ANY_TYPES: Final = frozenset({"object", "array", "string", "number", "boolean"})
_ROW_PROPERTIES_FOLDED: Final = frozenset(name.casefold() for name in ROW_PROPERTIES)
_COUNTED_SUFFIX: Final = re.compile(r"(.*)_[0-9]+", re.DOTALL)

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


class ColumnIdentity(NamedTuple):
    """The MapTable column a property was made from, as recorded in its schema."""

    id: str
    name: str
    type: str


class Renamed(NamedTuple):
    """A column renamed since the catalog was made; its property keeps the catalog's name."""

    prop_name: str
    old_name: str
    new_name: str


class Retyped(NamedTuple):
    """A column retyped since the catalog was made; its values still follow the catalog's schema.

    `old_type` is None when the catalog did not record the column's type (a catalog without ids)
    and the property's schema no longer matches the column's type.
    """

    prop_name: str
    old_type: str | None
    new_type: str


@dataclass(frozen=True, slots=True)
class Column:
    """One MapTable column and the property it becomes.

    `property_schema` is the JSON Schema the property is emitted under: the catalog's, when the
    column was mapped onto a catalog (`plan_columns`); None means the schema of the column's
    (current) type. Values are coerced to that schema (`coerce`, chosen once per column).
    """

    id: str
    name: str
    type: str
    prop_name: str
    property_schema: Mapping[str, Any] | None = field(default=None, hash=False)
    coerce: Coercer = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        """Choose the coercer of this column's values, once."""
        if self.property_schema is None:
            coerce = _coercer_for_type(self.type)
        else:
            coerce = coercer_for(self.property_schema)
        object.__setattr__(self, "coerce", coerce)

    @property
    def schema(self) -> dict[str, Any]:
        """The JSON Schema of this column's property (a copy)."""
        if self.property_schema is None:
            return schema_for_type(self.type)
        return copy.deepcopy(dict(self.property_schema))

    @property
    def identity(self) -> ColumnIdentity:
        """This column's id, name and type."""
        return ColumnIdentity(self.id, self.name, self.type)


@dataclass(frozen=True)
class ColumnPlan:
    """A table's live columns mapped onto a catalog's properties, and how they drifted.

    Attributes:
        columns: The live columns that have a catalog property, in the catalog's order, each
            with the property's name and schema: the columns to emit.
        renamed: Columns whose name changed since the catalog was made.
        retyped: Columns whose type changed since the catalog was made.
        missing: Catalog properties whose column is no longer in the table (emitted as nothing:
            a target keeps them as null).
        new: Live columns the catalog does not know, named as discovery would name them now.
        reassigned: Catalog properties that discovery would now give to a *different* column
            (the catalog's column was deleted, or a same-named column with a smaller id was
            added): re-discovering would silently change what such a warehouse column means.
    """

    columns: list[Column]
    renamed: list[Renamed] = field(default_factory=list)
    retyped: list[Retyped] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    new: list[Column] = field(default_factory=list)
    reassigned: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        """Whether the table's columns changed since the catalog was made."""
        return bool(self.renamed or self.retyped or self.missing or self.new)


# -- schemas ------------------------------------------------------------------------------------


def schema_for_type(column_type: str) -> dict[str, Any]:
    """Map a MapTable column type to JSON Schema (a copy); unknown types get a permissive one."""
    if column_type in TEXT_TYPES:
        return copy.deepcopy(_NULLABLE_STRING)
    by_type: dict[str, dict[str, Any]] = {
        "number": _NUMBER,
        "datetime": _DATE_TIME,
        "coordinate": _COORDINATE,
    }
    return copy.deepcopy(by_type.get(column_type, _ANY))


def column_description(identity: ColumnIdentity) -> str:
    """The `description` that records a column's identity in its property's schema."""
    payload = {"id": identity.id, "name": identity.name, "type": identity.type}
    return COLUMN_DESCRIPTION_PREFIX + json.dumps(payload, ensure_ascii=False)


def column_identity(property_schema: Any) -> ColumnIdentity | None:
    """The column recorded in a property's schema; None when it records none (or is garbled)."""
    if not isinstance(property_schema, Mapping):
        return None
    text = property_schema.get("description")
    if not isinstance(text, str) or not text.startswith(COLUMN_DESCRIPTION_PREFIX):
        return None
    try:
        data = json.loads(text[len(COLUMN_DESCRIPTION_PREFIX) :])
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        return None
    name, column_type = data.get("name"), data.get("type")
    return ColumnIdentity(
        id=data["id"],
        name=name if isinstance(name, str) else "",
        type=column_type if isinstance(column_type, str) else "",
    )


def row_schema(columns: list[Column]) -> dict[str, Any]:
    """The JSON Schema of a table's rows: the row's own properties, then one per column.

    Each column's property schema gets the column's identity as its `description`, unless it
    already has a description (a catalog's schema keeps its own).
    """
    properties: dict[str, Any] = {
        ROW_ID: {"type": ["string"]},
        CREATED_AT: dict(_DATE_TIME),
        UPDATED_AT: dict(_DATE_TIME),
        CREATOR_ID: dict(_NULLABLE_STRING),
        UPDATER_ID: dict(_NULLABLE_STRING),
    }
    for column in columns:
        schema = column.schema
        schema.setdefault("description", column_description(column.identity))
        properties[column.prop_name] = schema
    properties[INVALID_VALUES] = dict(_NULLABLE_STRING)
    return {"type": "object", "properties": properties}


# -- names --------------------------------------------------------------------------------------


def column_id_key(column_id: str) -> tuple[int, str]:
    """The order of column ids in the naming rule: by length, then by code point."""
    return (len(column_id), column_id)


def _base_name(name: str, column_id: str) -> str:
    return name if name.strip() else f"_column_{column_id}"


def _raw_fields(raw: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(raw.get("id", "")), str(raw.get("name") or ""), str(raw.get("type", ""))


def property_names(ids_and_names: list[tuple[str, str]]) -> list[str]:
    """The property name of each `(column id, column name)`, in the given order (see rules)."""
    bases = [_base_name(name, column_id) for column_id, name in ids_and_names]
    order = sorted(
        range(len(ids_and_names)),
        key=lambda i: (column_id_key(ids_and_names[i][0]), ids_and_names[i][1]),
    )
    names = [""] * len(ids_and_names)
    taken = set(_ROW_PROPERTIES_FOLDED)
    for i in order:  # by id: a column's name depends only on the columns with smaller ids
        stem = f"{bases[i]}__{ids_and_names[i][0]}"
        candidate = bases[i] if bases[i].casefold() not in taken else stem
        n = 2
        # A suffixed name can itself be taken (a column may be *named* "Amount__fld3"):
        # count up until it is free, so that properties stay unique case-insensitively.
        while candidate.casefold() in taken:
            candidate = f"{stem}_{n}"
            n += 1
        names[i] = candidate
        taken.add(candidate.casefold())
    return names


def name_columns(raw_columns: list[dict[str, Any]]) -> list[Column]:
    """Give every column a unique, deterministic property name (see the module docstring).

    The columns come back in the given order, each emitted under the schema of its type.
    """
    fields = [_raw_fields(raw) for raw in raw_columns]
    names = property_names([(column_id, name) for column_id, name, _ in fields])
    return [
        Column(id=column_id, name=name, type=column_type, prop_name=prop_name)
        for (column_id, name, column_type), prop_name in zip(fields, names, strict=True)
    ]


# -- catalog mapping ----------------------------------------------------------------------------


def plan_columns(
    schema_properties: Mapping[str, Any] | None,
    live: list[dict[str, Any]],
) -> ColumnPlan:
    """Map a table's live columns (from its first segment) onto a catalog's properties.

    `schema_properties` is the catalog stream schema's `properties`; None or empty means no
    catalog (discovery): every live column maps to its own property, under its type's schema.
    A property that records a column id (see `column_identity`) maps to that column, whatever
    the column is called now. A property that records none (a catalog from an older version, or
    hand-written) maps by name: a suffixed name (`<name>__<columnId>`, `..._2`,
    `_column_<columnId>`) to the column with that id and name, any other name to the column of
    that name (the smallest id, if several of that name are left).
    """
    discovered = name_columns(live)
    if not schema_properties:
        return ColumnPlan(columns=discovered)
    column_props = [
        (prop, schema if isinstance(schema, Mapping) else {})
        for prop, schema in schema_properties.items()
        if prop not in ROW_PROPERTIES
    ]
    recorded = {
        prop: identity
        for prop, schema in column_props
        if (identity := column_identity(schema)) is not None
    }
    mapper = _Mapper(discovered)
    mapper.map([prop for prop, _ in column_props], recorded)
    plan = ColumnPlan(columns=[])
    claimed_by = {prop: column.id for prop, column in mapper.mapped.items()}
    discovered_by_name = {column.prop_name.casefold(): column.id for column in discovered}
    for prop, schema in column_props:
        column = mapper.mapped.get(prop)
        identity = recorded.get(prop)
        if column is None:
            plan.missing.append(prop)
        else:
            declared = copy.deepcopy(dict(schema))
            plan.columns.append(
                Column(column.id, column.name, column.type, prop, property_schema=declared)
            )
            _drift(plan, prop, schema, identity, column)
        catalog_id = identity.id if identity is not None else claimed_by.get(prop)
        now = discovered_by_name.get(prop.casefold())
        if catalog_id is not None and now is not None and now != catalog_id:
            plan.reassigned.append(prop)
    plan.new.extend(column for column in discovered if column.id not in mapper.claimed_ids)
    return plan


class _Mapper:
    """Which live column each catalog property maps to (a helper of `plan_columns`)."""

    def __init__(self, discovered: list[Column]) -> None:
        self.by_id: dict[str, Column] = {}
        self.by_base: dict[str, list[Column]] = {}
        self.suffixed: dict[str, Column] = {}
        for column in discovered:
            self.by_id.setdefault(column.id, column)
            base = _base_name(column.name, column.id)
            self.by_base.setdefault(base.casefold(), []).append(column)
            self.suffixed.setdefault(f"{base}__{column.id}".casefold(), column)
        self.mapped: dict[str, Column] = {}
        self.claimed_ids: set[str] = set()

    def map(self, props: list[str], recorded: dict[str, ColumnIdentity]) -> None:
        """By recorded id; then by suffixed name; then by plain name."""
        for prop, identity in recorded.items():
            self.claim(prop, self.by_id.get(identity.id))
        unrecorded = [prop for prop in props if prop not in recorded]
        for prop in unrecorded:
            if not self.unclaimed_named(prop):  # a column literally named so wins the name
                self.claim(prop, self.by_suffix(prop))
        for prop in unrecorded:
            if prop not in self.mapped:
                candidates = self.unclaimed_named(prop)
                self.claim(prop, min(candidates, key=lambda c: column_id_key(c.id), default=None))

    def claim(self, prop: str, column: Column | None) -> None:
        if column is not None and column.id not in self.claimed_ids:
            self.mapped[prop] = column
            self.claimed_ids.add(column.id)

    def unclaimed_named(self, prop: str) -> list[Column]:
        return [c for c in self.by_base.get(prop.casefold(), []) if c.id not in self.claimed_ids]

    def by_suffix(self, prop: str) -> Column | None:
        folded = prop.casefold()
        column = self.suffixed.get(folded)
        if column is None and (counted := _COUNTED_SUFFIX.fullmatch(folded)):
            column = self.suffixed.get(counted.group(1))
        return column


def _drift(
    plan: ColumnPlan,
    prop: str,
    schema: Mapping[str, Any],
    identity: ColumnIdentity | None,
    column: Column,
) -> None:
    if identity is not None:
        if identity.name != column.name:
            plan.renamed.append(Renamed(prop, identity.name, column.name))
        if identity.type != column.type:
            plan.retyped.append(Retyped(prop, identity.type, column.type))
        return
    old_name = _name_in_property(prop, column)
    if old_name is not None and old_name != column.name:
        plan.renamed.append(Renamed(prop, old_name, column.name))
    if schema_kind(schema) != schema_kind(schema_for_type(column.type)):
        plan.retyped.append(Retyped(prop, None, column.type))


def _name_in_property(prop: str, column: Column) -> str | None:
    """The column name a property without a recorded identity was made from, when it shows.

    Such a property maps to a column of the same name (case-insensitively), so only a change of
    case can show; a blank name shows as `_column_<columnId>` and shows nothing.
    """
    if not column.name.strip():
        return column.name
    prop_base = prop
    if prop.casefold() != column.name.casefold():
        suffix = rf"(.*)__{re.escape(column.id)}(?:_[0-9]+)?"
        match = re.fullmatch(suffix, prop, re.DOTALL | re.IGNORECASE)
        if match is None:
            return None
        prop_base = match.group(1)
    return prop_base


# -- values -------------------------------------------------------------------------------------


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


def _coercer_for_type(column_type: str) -> Coercer:
    return _TYPE_COERCERS.get(column_type) or coercer_for(schema_for_type(column_type))


def coerce_value(column_type: str, value: Any) -> Any:
    """Return `value` in its column type's JSON form, or raise InvalidValueError."""
    if value is None:
        return None
    return _coercer_for_type(column_type)(value)


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
        raw = cells.get(column.id)
        if raw is None:
            record[column.prop_name] = None
            continue
        try:
            record[column.prop_name] = column.coerce(raw)
        except InvalidValueError:
            record[column.prop_name] = None
            invalid[column.prop_name] = raw
    record[INVALID_VALUES] = json.dumps(invalid, ensure_ascii=False) if invalid else None
    return record


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
