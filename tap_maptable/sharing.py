"""Fewer copies of each table's schema: what keeps a run of 1,000 tables small.

singer-sdk keeps several copies of every stream's JSON Schema: the input catalog's `Schema`
objects, the stream's own schema and the catalog's copy of it (`apply_catalog`), and the stream
map's `raw_schema` and `transformed_schema` (two deep copies). With one stream per MapTable table
that is about 0.1 MB per table, most of a 1,000-table run's memory. Nothing mutates these
schemas (what changes one copies it first), so equal copies can be one object; the messages
written from them (SCHEMA, the catalog of `--discover`) are the same.

- `catalog_of`: the input catalog as the SDK's `Catalog`, each entry's schema held as one dict
  (`SchemaDict`) rather than as a tree of `Schema` objects, and what it keeps of the parsed
  document copied out of the parser's memory (`compact`), equal strings as one object.
- `share_schemas`: once the streams are built, each stream's copies that are equal to its schema
  are replaced by that schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from singer_sdk.singerlib import Catalog, CatalogEntry, Schema

from tap_maptable.inputs import stated_method

if TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.mapper import PluginMapper, StreamMap
    from singer_sdk.streams import Stream


def compact(value: Any, strings: dict[str, str]) -> Any:
    """A deep copy of parsed JSON in new memory, each distinct string one object (`strings`).

    What a run keeps of a parsed catalog (its strings, lists and dicts: a few MB at 1,000
    tables) lies scattered among the parser's other objects (tens of MB), and Python returns a
    block of memory to the system only when nothing in it is alive: kept in place, it would
    hold all of the parser's memory for the whole run. Copied, it sits together and the parsed
    document is let go whole. Strings are copied too (`str()` would return the same object);
    equal ones become one object, where the parser made one per place (`"null"`, property
    names repeated in metadata breadcrumbs, ...).
    """
    if isinstance(value, str):
        kept = strings.get(value)
        if kept is None:
            kept = strings[value] = value.encode("utf-8", "surrogatepass").decode(
                "utf-8", "surrogatepass"
            )
        return kept
    if isinstance(value, dict):
        return {compact(key, strings): compact(item, strings) for key, item in value.items()}
    if isinstance(value, list):
        return [compact(item, strings) for item in value]
    return value


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


def catalog_of(parsed: dict[str, Any]) -> Catalog:
    """The SDK's `Catalog` of a parsed (and checked) catalog, each schema one dict.

    What `Catalog.from_dict` makes, entry by entry through `CatalogEntry.from_dict`, except
    the schema (`SchemaDict`) and the replication method (`stated_method`); all it keeps is a
    `compact` copy, so `parsed` can be let go whole, and is left as it was (the caller may use
    it again).
    """
    strings: dict[str, str] = {}
    catalog = Catalog()
    for raw in parsed.get("streams", []):
        schema = Schema.from_dict(raw.get("schema", {})).to_dict()
        entry = CatalogEntry.from_dict(compact({**raw, "schema": {}}, strings))
        entry.schema = SchemaDict(held=compact(schema, strings))
        entry.replication_method = compact(stated_method(raw), strings)
        catalog[entry.tap_stream_id] = entry
    return catalog


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
