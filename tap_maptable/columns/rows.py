"""A column and the row it belongs to: `Column`, the row schema and the row record.

Kept together because a `Column` exists to be emitted: it carries its property's name, schema and
coercer, and `row_schema` / `row_record` turn a table's columns and API rows into what the tap
emits. Values that do not fit their property's schema are kept in `_invalid_values` (see
`values`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tap_maptable.columns.schema import (
    CREATED_AT,
    CREATOR_ID,
    DATE_TIME,
    INVALID_VALUES,
    NULLABLE_STRING,
    ROW_ID,
    UPDATED_AT,
    UPDATER_ID,
    ColumnIdentity,
    column_description,
    schema_for_type,
)
from tap_maptable.columns.values import (
    Coercer,
    InvalidValueError,
    coercer_for_column,
    parse_datetime,
)
from tap_maptable.exact import json_text

if TYPE_CHECKING:
    from collections.abc import Mapping


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
        coerce = coercer_for_column(self.type, self.property_schema)
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


def row_schema(columns: list[Column]) -> dict[str, Any]:
    """The JSON Schema of a table's rows: the row's own properties, then one per column.

    Each column's property schema gets the column's identity as its `description`, unless it
    already has a description (a catalog's schema keeps its own).
    """
    properties: dict[str, Any] = {
        ROW_ID: {"type": ["string"]},
        CREATED_AT: dict(DATE_TIME),
        UPDATED_AT: dict(DATE_TIME),
        CREATOR_ID: dict(NULLABLE_STRING),
        UPDATER_ID: dict(NULLABLE_STRING),
    }
    for column in columns:
        schema = column.schema
        schema.setdefault("description", column_description(column.identity))
        properties[column.prop_name] = schema
    properties[INVALID_VALUES] = dict(NULLABLE_STRING)
    return {"type": "object", "properties": properties}


def row_record(
    row: dict[str, Any], columns: list[Column], missing: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Turn an API row into a record of the row schema; never raises on odd values.

    `missing` properties (their column is gone) are sent as null, not left out: a target then
    clears them in the rows it upserts, whatever it does with absent keys.
    """
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
    for prop in missing:
        record[prop] = None
    record[INVALID_VALUES] = json_text(invalid) if invalid else None
    return record


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
