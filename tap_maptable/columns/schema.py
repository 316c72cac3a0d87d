"""The JSON Schema of a column's property, and the column identity it records.

Kept apart from values and naming because every other part of the package (naming, rows, drift,
values) builds on these: the row's own properties, the schema of each column type, and the
identity a property's schema carries.

Column identity: each column property's schema records the MapTable column it was made from, as
`"description": "MapTable column {"id": ..., "name": ..., "type": ...}"` (the JSON object after
`COLUMN_DESCRIPTION_PREFIX`). Not an `x-...` keyword: singer-sdk's catalog model
(`singer_sdk.singerlib.Schema`) keeps only the JSON Schema keywords it knows, so an unknown
keyword is dropped both from the tap's `--discover` output and from an input `--catalog`, while
`description` survives both (and is harmless to targets).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
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

# Types whose cells are text. `singleChoice` cells hold the option's name (option id = name).
TEXT_TYPES: Final = frozenset(
    {"singleLineText", "multiLineText", "singleChoice", "email", "url", "phone", "text"}
)
# A hyperlink cell, in one shape whatever MapTable stored (a URL, or a link with display text).
HYPERLINK_LINK: Final = "link"
HYPERLINK_TEXT: Final = "text"

NULLABLE_STRING: Final[dict[str, Any]] = {"type": ["string", "null"]}
DATE_TIME: Final[dict[str, Any]] = {"type": ["string", "null"], "format": "date-time"}
_NUMBER: Final[dict[str, Any]] = {"type": ["number", "null"]}
_BOOLEAN: Final[dict[str, Any]] = {"type": ["boolean", "null"]}
_COORDINATE: Final[dict[str, Any]] = {
    "type": ["object", "null"],
    "properties": {"lng": {"type": ["number", "null"]}, "lat": {"type": ["number", "null"]}},
}
_HYPERLINK: Final[dict[str, Any]] = {
    "type": ["object", "null"],
    "properties": {
        HYPERLINK_LINK: {"type": ["string", "null"]},
        HYPERLINK_TEXT: {"type": ["string", "null"]},
    },
}
# File records (objects): MapTable documents no fields of its own, so each is kept whole. No
# `items`: SQL targets then store the list as one JSON value (PostgreSQL JSONB, DuckDB JSON)
# rather than an SQL array of JSON (`jsonb[]`), which is awkward to query.
_ATTACHMENTS: Final[dict[str, Any]] = {"type": ["array", "null"]}
# A type the tap has not seen yet: accept any JSON value, so a new column type never fails a sync.
# (Not `{}`: the SDK's record conformance and most targets need a `type` to pick a column type;
# with `object` and `array` listed, SQL targets store such a column as JSON.)
_ANY: Final[dict[str, Any]] = {
    "type": ["object", "array", "string", "number", "boolean", "null"],
}
# The schema of each documented column type (MapTable's column-type reference); `number` covers
# every number format (currency, percentage as the stored fraction, commaNumber).
_BY_TYPE: Final[dict[str, dict[str, Any]]] = {
    "number": _NUMBER,
    "datetime": DATE_TIME,
    "boolean": _BOOLEAN,
    "hyperlink": _HYPERLINK,
    "attachment": _ATTACHMENTS,
    "coordinate": _COORDINATE,
}


class ColumnIdentity(NamedTuple):
    """The MapTable column a property was made from, as recorded in its schema."""

    id: str
    name: str
    type: str


def schema_for_type(column_type: str) -> dict[str, Any]:
    """Map a MapTable column type to JSON Schema (a copy); unknown types get a permissive one."""
    if column_type in TEXT_TYPES:
        return copy.deepcopy(NULLABLE_STRING)
    return copy.deepcopy(_BY_TYPE.get(column_type, _ANY))


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
