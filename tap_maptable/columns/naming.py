"""The naming rule: which Singer property each MapTable column becomes.

Kept apart because the rule is a contract with the warehouse (README): a property's name must not
change under a reordering or a retyping of columns.

Naming rule (documented in README). A column's property is its name, kept as it is (Chinese,
spaces and punctuation included). The names depend only on the *set* of columns (their ids and
names), never on the table's column order or on the column types:

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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from tap_maptable.columns.rows import Column
from tap_maptable.columns.schema import ROW_PROPERTIES

if TYPE_CHECKING:
    from collections.abc import Mapping

_ROW_PROPERTIES_FOLDED: Final = frozenset(name.casefold() for name in ROW_PROPERTIES)
READ_FIELDS: Final = ("id", "name", "type")  # all the tap reads of an API column


def column_id_key(column_id: str) -> tuple[int, str]:
    """The order of column ids in the naming rule: by length, then by code point."""
    return (len(column_id), column_id)


def base_name(name: str, column_id: str) -> str:
    """A column's name in the naming rule: `_column_<columnId>` when it is blank."""
    return name if name.strip() else f"_column_{column_id}"


class UnmappableColumnsError(ValueError):
    """A table's columns, as the API sent them, cannot be mapped to properties."""


def live_columns(raw: Any) -> list[dict[str, Any]]:
    """The API's `columns` of a first segment, checked: a non-empty list of objects with ids.

    Anything else would map every property to nothing: a sync would send NULL in every column
    of every row (and, read as a change of columns, send it for the whole table).

    Raises:
        UnmappableColumnsError: the columns cannot be mapped, with a line that says why.
    """
    if not isinstance(raw, list) or not raw:
        msg = f"its first segment has no column list (columns: {type(raw).__name__})"
        raise UnmappableColumnsError(msg)
    for index, column in enumerate(raw):
        if not isinstance(column, dict):
            msg = f"column {index} is not an object ({type(column).__name__})"
            raise UnmappableColumnsError(msg)
        column_id = column.get("id")
        if not isinstance(column_id, (str, int)) or isinstance(column_id, bool) or column_id == "":
            msg = f"column {index} ({str(column.get('name'))!r:.40}) has no id"
            raise UnmappableColumnsError(msg)
    return raw


def _raw_fields(raw: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(raw.get("id", "")), str(raw.get("name") or ""), str(raw.get("type", ""))


def column_essentials(raw: Any) -> Any:
    """What the tap reads of an API column list: each column's id, name and type (`_raw_fields`).

    Discovery keeps every table's columns until the sync plans the table; the rest of a column
    (`typeOptions`: a choice column lists every option) was most of what a 1,000-table run held
    then. A value that is not a list is kept as it came, and so is an item that is not an
    object, for `live_columns` to refuse.
    """
    if not isinstance(raw, list):
        return raw
    return [
        {key: column[key] for key in READ_FIELDS if key in column}
        if isinstance(column, dict)
        else column
        for column in raw
    ]


def property_names(ids_and_names: list[tuple[str, str]]) -> list[str]:
    """The property name of each `(column id, column name)`, in the given order (see rules)."""
    bases = [base_name(name, column_id) for column_id, name in ids_and_names]
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
