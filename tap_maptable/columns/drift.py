"""Catalog and drift: a table's live columns mapped onto a catalog's properties.

Kept apart from naming because a catalog keeps its names regardless of the naming rule: only
re-discovery renames, and `plan_columns` reports the catalog properties that re-discovery would
give to a different column.

Catalog and drift (`plan_columns`): a sync maps the table's live columns onto the catalog's
properties by column id (names from a catalog without ids: by the embedded `__<columnId>` of
suffixed names, then by the naming rule), and reports what changed since discovery: renamed and
retyped columns, properties whose column is gone, and columns the catalog does not know yet.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from tap_maptable.columns.naming import base_name, column_id_key, name_columns
from tap_maptable.columns.rows import Column
from tap_maptable.columns.schema import (
    ROW_PROPERTIES,
    ColumnIdentity,
    column_identity,
    schema_for_type,
)
from tap_maptable.columns.values import schema_kind

_COUNTED_SUFFIX: Final = re.compile(r"(.*)_[0-9]+", re.DOTALL)


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


def catalog_columns(schema_properties: Mapping[str, Any] | None) -> list[Column] | None:
    """The columns a catalog's properties record, without asking MapTable (None: not all do).

    What a read that continues a table after an earlier run's resume point maps cells with: it
    does not read the table's first segment again, so the catalog's record of each property's
    column id is all it has. A catalog without ids (older, or hand-written) maps by name, which
    needs the live columns.
    """
    columns = []
    for prop, schema in (schema_properties or {}).items():
        if prop in ROW_PROPERTIES:
            continue
        identity = column_identity(schema)
        if identity is None:
            return None
        declared = copy.deepcopy(dict(schema)) if isinstance(schema, Mapping) else {}
        columns.append(
            Column(identity.id, identity.name, identity.type, prop, property_schema=declared)
        )
    return columns


class _Mapper:
    """Which live column each catalog property maps to (a helper of `plan_columns`)."""

    def __init__(self, discovered: list[Column]) -> None:
        self.by_id: dict[str, Column] = {}
        self.by_base: dict[str, list[Column]] = {}
        self.suffixed: dict[str, Column] = {}
        for column in discovered:
            self.by_id.setdefault(column.id, column)
            base = base_name(column.name, column.id)
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
