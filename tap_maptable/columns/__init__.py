"""From MapTable columns to Singer properties: names, JSON Schema, identity, drift and values.

The package is layered, each module importing only the ones above it:

- `schema`: the row's own properties, the JSON Schema of each column type, and the column
  identity a property's schema records in its `description` (`column_identity`).
- `values`: what a property's schema asks of its values (`schema_kind`) and the coercers that
  give a cell its property's JSON form; times (`parse_datetime`, `parse_timestamp`).
- `rows`: `Column` (a column and its property), the row schema and the row record; a value that
  does not fit its declared schema is emitted as null and kept in `_invalid_values`.
- `naming`: the naming rule (documented in README): a property's name depends only on the set of
  columns (ids and names), never on column order or types.
- `drift`: `plan_columns` maps a table's live columns onto a catalog's properties and reports
  renamed, retyped, missing, new and reassigned columns.

The full text of each rule (as the README copies it) is in its module's docstring: naming in
`naming`, identity in `description` in `schema`, catalog and drift in `drift`, values in
`values`. Every name is re-exported here, so `from tap_maptable.columns import ...` is the one
import other code needs.
"""

from tap_maptable.columns import sent
from tap_maptable.columns.drift import (
    ColumnPlan,
    Renamed,
    Retyped,
    catalog_columns,
    plan_columns,
)
from tap_maptable.columns.naming import (
    UnmappableColumnsError,
    column_id_key,
    live_columns,
    name_columns,
    property_names,
)
from tap_maptable.columns.rows import Column, row_record, row_schema
from tap_maptable.columns.schema import (
    COLUMN_DESCRIPTION_PREFIX,
    CREATED_AT,
    CREATOR_ID,
    INVALID_VALUES,
    ROW_ID,
    ROW_PROPERTIES,
    TEXT_TYPES,
    UPDATED_AT,
    UPDATER_ID,
    ColumnIdentity,
    column_description,
    column_identity,
    schema_for_type,
)
from tap_maptable.columns.values import (
    GO_ZERO_TIME_YEAR,
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
    Coercer,
    InvalidValueError,
    coerce_value,
    coercer_for,
    coercer_for_column,
    datetime_cell,
    parse_datetime,
    parse_timestamp,
    schema_kind,
)

__all__ = [
    "COLUMN_DESCRIPTION_PREFIX",
    "CREATED_AT",
    "CREATOR_ID",
    "GO_ZERO_TIME_YEAR",
    "INVALID_VALUES",
    "KIND_ANY",
    "KIND_ARRAY",
    "KIND_BOOLEAN",
    "KIND_COORDINATE",
    "KIND_DATE_TIME",
    "KIND_FILES",
    "KIND_HYPERLINK",
    "KIND_INTEGER",
    "KIND_MIXED",
    "KIND_NUMBER",
    "KIND_OBJECT",
    "KIND_STRING",
    "ROW_ID",
    "ROW_PROPERTIES",
    "TEXT_TYPES",
    "UPDATED_AT",
    "UPDATER_ID",
    "Coercer",
    "Column",
    "ColumnIdentity",
    "ColumnPlan",
    "InvalidValueError",
    "Renamed",
    "Retyped",
    "UnmappableColumnsError",
    "catalog_columns",
    "coerce_value",
    "coercer_for",
    "coercer_for_column",
    "column_description",
    "column_id_key",
    "column_identity",
    "datetime_cell",
    "live_columns",
    "name_columns",
    "parse_datetime",
    "parse_timestamp",
    "plan_columns",
    "property_names",
    "row_record",
    "row_schema",
    "schema_for_type",
    "schema_kind",
    "sent",
]
