"""Fewer copies of each table's schema: what keeps a run of 1,000 tables small.

singer-sdk keeps several copies of every stream's JSON Schema: the input catalog's `Schema`
objects, the stream's own schema and the catalog's copy of it (`apply_catalog`), and the stream
map's `raw_schema` and `transformed_schema` (two deep copies). With one stream per MapTable table
that is about 0.1 MB per table, most of a 1,000-table run's memory. Nothing mutates these
schemas (what changes one copies it first), so equal copies can be one object; the messages
written from them (SCHEMA, the catalog of `--discover`) are the same.

- `catalog_of`: the input catalog as the SDK's `Catalog`, each entry's schema held as one dict
  (`SchemaDict`) rather than as a tree of `Schema` objects, and what it keeps of the parsed
  document copied out of the parser's memory (`compact`), equal strings as one object and, in
  schemas, equal lists of strings (`"type": ["string", "null"]`) as one list.
- `discovered_catalog`: the catalog made from the tap's own streams (without an input catalog),
  built one entry at a time, each schema one dict: the SDK builds every entry's `Schema` tree
  at once, a peak of megabytes at 1,000 tables.
- `share_metadata`: a property's metadata (`Metadata(inclusion="available")`, about 30 per
  table) is one object for every equal one (`SharedMetadata`, which refuses changes).
- `share_schemas`: once the streams are built, each stream's copies that are equal to its schema
  are replaced by that schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from singer_sdk.singerlib import Catalog, CatalogEntry, Metadata, MetadataMapping, Schema

from tap_maptable.inputs import stated_method

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from singer_sdk.mapper import PluginMapper, StreamMap
    from singer_sdk.streams import Stream


def compact(
    value: Any, strings: dict[str, str], lists: dict[tuple[str, ...], list[str]] | None = None
) -> Any:
    """A deep copy of parsed JSON in new memory, each distinct string one object (`strings`).

    What a run keeps of a parsed catalog (its strings, lists and dicts: a few MB at 1,000
    tables) lies scattered among the parser's other objects (tens of MB), and Python returns a
    block of memory to the system only when nothing in it is alive: kept in place, it would
    hold all of the parser's memory for the whole run. Copied, it sits together and the parsed
    document is let go whole. Strings are copied too (`str()` would return the same object);
    equal ones become one object, where the parser made one per place (`"null"`, property
    names repeated in metadata breadcrumbs, ...). With `lists`, each distinct `type` list (of
    strings) is one list too: for schemas only, where every property repeats one, and which
    nothing changes in place (`SchemaDict`). Only `type`: the SDK changes a copied schema's
    `required` in place when a property is deselected (and a deep copy keeps what it shares
    within itself), so equal `required` lists of one entry must stay apart.
    """
    if isinstance(value, str):
        kept = strings.get(value)
        if kept is None:
            kept = strings[value] = value.encode("utf-8", "surrogatepass").decode(
                "utf-8", "surrogatepass"
            )
        return kept
    if isinstance(value, dict):
        return {
            compact(key, strings): (
                _one_type_list(item, strings, lists)
                if lists is not None and key == "type" and _strings_only(item)
                else compact(item, strings, lists)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [compact(item, strings, lists) for item in value]
    return value


def _strings_only(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _one_type_list(
    value: list[str], strings: dict[str, str], lists: dict[tuple[str, ...], list[str]]
) -> list[str]:
    key = tuple(value)
    kept = lists.get(key)
    if kept is None:
        kept = lists[key] = [compact(item, strings) for item in value]
    return kept


class SharedMetadata(Metadata):
    """A property's metadata held once for every entry with the same values; it refuses changes.

    Shared, a change made through one table's catalog would change every table's: what the
    SDK changes is the stream's own metadata (`Stream.selected` sets the root's, never shared),
    and a caller that would change a property's (the SDK's test helper
    `set_catalog_stream_selected`) gets a TypeError rather than a wrong catalog.
    """

    __slots__ = ()

    def __init__(
        self,
        *,
        inclusion: Metadata.InclusionType | None = None,
        selected: bool | None = None,
        selected_by_default: bool | None = None,
    ) -> None:
        """Set the values once (`__setattr__` refuses any later change)."""
        object.__setattr__(self, "inclusion", inclusion)
        object.__setattr__(self, "selected", selected)
        object.__setattr__(self, "selected_by_default", selected_by_default)

    def __setattr__(self, name: str, value: object) -> None:
        """Refuse: the object is every equal property's metadata."""
        msg = (
            f"shared property metadata cannot change ({name}); "
            "set the entry's breadcrumb to a new Metadata instead"
        )
        raise TypeError(msg)

    def __eq__(self, other: object) -> bool:
        """Equal to a `Metadata` (or a shared one) with the same values, as before sharing."""
        if type(other) not in {Metadata, SharedMetadata}:
            return NotImplemented
        return _values(self) == _values(other)  # type: ignore[arg-type]

    __hash__ = None  # type: ignore[assignment]  # as `Metadata`'s: mutable, so unhashable

    def __copy__(self) -> SharedMetadata:
        """Itself: it never changes (copying would set its slots, which it refuses)."""
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedMetadata:
        """Itself, as `__copy__`."""
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled by its values, rebuilt through `__init__`."""
        return (_shared_metadata, _values(self))


def _shared_metadata(
    inclusion: Metadata.InclusionType | None,
    selected: bool | None,  # noqa: FBT001 - by position, as pickle and `_values` give them
    selected_by_default: bool | None,  # noqa: FBT001
) -> SharedMetadata:
    return SharedMetadata(
        inclusion=inclusion, selected=selected, selected_by_default=selected_by_default
    )


def _values(metadata: Metadata) -> tuple[Any, Any, Any]:
    return (metadata.inclusion, metadata.selected, metadata.selected_by_default)


@dataclass
class SharedParts:
    """What the entries of one catalog share: property metadata by its values, breadcrumbs."""

    metadata: dict[tuple[Any, Any, Any], SharedMetadata] = field(default_factory=dict)
    breadcrumbs: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict)


def share_metadata(mapping: MetadataMapping, shared: SharedParts) -> None:
    """Make each property's plain `Metadata` in `mapping` the one shared object of its values.

    Only plain `Metadata` (a property's); the root (`StreamMetadata`, which the SDK changes
    when a stream is selected) stays the entry's own. Each breadcrumb becomes the one tuple of
    its value too (`("properties", "_row_id")` is in every table's), in the same order: the
    SDK makes a tuple per breadcrumb, about 1.5 MB at 1,000 tables.
    """
    items = list(mapping.items())
    mapping.clear()
    for breadcrumb, metadata in items:
        kept: Metadata = metadata
        if type(metadata) is Metadata:
            values = _values(metadata)
            found = shared.metadata.get(values)
            if found is None:
                found = shared.metadata[values] = _shared_metadata(*values)
            kept = found
        mapping[shared.breadcrumbs.setdefault(breadcrumb, breadcrumb)] = kept


@dataclass(slots=True)
class SchemaDict(Schema):
    """A catalog entry's JSON Schema held as the one dict `Schema.to_dict` gives for it.

    The SDK reads an input catalog's schemas only through `to_dict()` (the stream's input
    schema, its stream maps, the catalog's own `to_dict`). A `Schema` built by `from_dict` is a
    tree of dataclass objects, one per property (about 30 per table, kept for the whole run),
    and builds a new dict on every call. `catalog_of` builds that dict once, when the catalog
    is read; every caller gets the same dict, so the output is unchanged. The dict is the
    stream's schema too (`share_schemas`): a caller must not change it, as nothing in the tap
    or the SDK does (each copies before changing: `get_selected_schema`, stream maps,
    flattening).
    """

    held: dict[str, Any] = field(default_factory=dict, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        """The schema, the same dict on every call."""
        return self.held


def catalog_of(streams: Iterable[dict[str, Any]]) -> Catalog:
    """The SDK's `Catalog` of a parsed (and checked) catalog's `streams`, each schema one dict.

    What `Catalog.from_dict` makes, entry by entry through `CatalogEntry.from_dict`, except
    the schema (`SchemaDict`), the replication method (`stated_method`) and the properties'
    metadata (`share_metadata`); all it keeps is a `compact` copy, so each parsed entry can be
    let go as soon as it is read (`inputs.load_catalog` parses them one at a time), and is
    left as it was (the caller may use it again).
    """
    strings: dict[str, str] = {}
    lists: dict[tuple[str, ...], list[str]] = {}
    shared = SharedParts()
    catalog = Catalog()
    for raw in streams:
        schema = Schema.from_dict(raw.get("schema", {})).to_dict()
        entry = CatalogEntry.from_dict(compact({**raw, "schema": {}}, strings))
        entry.schema = SchemaDict(held=compact(schema, strings, lists))
        entry.replication_method = compact(stated_method(raw), strings)
        share_metadata(entry.metadata, shared)
        catalog[entry.tap_stream_id] = entry
    return catalog


def discovered_catalog(streams: Iterable[Stream]) -> Catalog:
    """The catalog of the tap's own streams, as the SDK makes it, each schema one dict.

    The SDK's `Tap._singer_catalog` makes every stream's entry (`Stream._singer_catalog_entry`,
    whose schema is a tree of `Schema` objects, one per property) in one generator that
    `Catalog` takes whole: at 1,000 tables all the trees are alive at once. Each entry's tree
    here becomes its dict (`SchemaDict`) before the next entry is made: the same entries, the
    same `to_dict()`, and the same `--discover` output.
    """
    return Catalog(discovered_entries(streams))


def discovered_entries(streams: Iterable[Stream]) -> Iterator[tuple[str, CatalogEntry]]:
    """Each stream's catalog entry (`discovered_catalog`), made as the previous one is let go.

    An entry's `metadata` is its stream's own `MetadataMapping`: refilled in place, in the same
    order, with the shared parts (`share_metadata`).
    """
    shared = SharedParts()
    for stream in streams:
        # The SDK's own entry (no public equivalent): what it would hold, built as it builds it.
        entry = stream._singer_catalog_entry  # noqa: SLF001
        entry.schema = SchemaDict(held=entry.schema.to_dict())
        share_metadata(entry.metadata, shared)
        yield stream.tap_stream_id, entry


def share_map_schemas(stream_maps: Iterable[StreamMap], schema: dict[str, Any] | None) -> int:
    """Make a stream's maps keep one schema, the stream's own when equal; how many were copies.

    `raw_schema` and `transformed_schema` are public attributes of the SDK's `StreamMap`; for
    the default map without flattening they are two equal deep copies of the selected schema.
    A copy that differs (properties deselected in the catalog, a map that renames or flattens)
    is left alone.
    """
    shared = 0
    for stream_map in stream_maps:
        raw = stream_map.raw_schema
        if schema is not None and raw is not schema and raw == schema:
            stream_map.raw_schema = schema
            shared += 1
        target = stream_map.transformed_schema
        if target is stream_map.raw_schema or target is schema:
            continue
        if schema is not None and target == schema:
            stream_map.transformed_schema = schema
            shared += 1
        elif target == stream_map.raw_schema:
            stream_map.transformed_schema = stream_map.raw_schema
            shared += 1
    return shared


def share_schemas(streams: Iterable[Stream], mapper: PluginMapper | None) -> int:
    """Replace each stream's equal schema copies by the stream's own schema; how many were.

    The copies are the catalog's (`Stream.apply_catalog` sets the stream's input schema from its
    catalog entry, a second dict equal to the one the tap built the stream with) and the
    stream maps' (`share_map_schemas`).
    """
    shared = 0
    for stream in streams:
        schema = stream.schema
        # The SDK keeps the catalog's schema in a private attribute, with no public setter:
        # `effective_schema` reads it. Replaced only by an equal dict, so every reader of it
        # sees the same schema as before.
        if stream._input_schema is not schema and stream._input_schema == schema:  # noqa: SLF001
            stream._input_schema = schema  # noqa: SLF001
            shared += 1
        if mapper is not None:
            shared += share_map_schemas(mapper.stream_maps.get(stream.name, []), schema)
    return shared
