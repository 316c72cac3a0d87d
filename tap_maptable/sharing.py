"""Fewer copies of each table's schema: what keeps a run of 1,000 tables small.

singer-sdk keeps several copies of every stream's JSON Schema: the input catalog's `Schema`
objects, the stream's own schema and the catalog's copy of it (`apply_catalog`), and the stream
map's `raw_schema` and `transformed_schema` (two deep copies). With one stream per MapTable table
that is about 0.1 MB per table, most of a 1,000-table run's memory. Nothing mutates these
schemas once the streams are built, so equal copies can be one object; the messages written
from them (SCHEMA, the catalog of `--discover`) are the same.

- `intern_strings`: the leaf strings of a parsed catalog (`"string"`, `"null"`, property names
  in metadata breadcrumbs, ...) become one object each, as the JSON parser makes one per place.
- `share_schemas`: once the streams are built, each stream's copies that are equal to its schema
  are replaced by that schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.mapper import PluginMapper
    from singer_sdk.streams import Stream


def intern_strings(value: Any, memo: dict[str, str] | None = None) -> Any:
    """Make every equal string in a parsed JSON document one object, in place; returns it.

    Dict keys are left as they are (the JSON parser already shares them within a document).
    Only values are replaced: strings are immutable, so sharing them changes nothing but memory.
    """
    if memo is None:
        memo = {}
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, item in node.items():
                if isinstance(item, str):
                    node[key] = memo.setdefault(item, item)
                elif isinstance(item, (dict, list)):
                    stack.append(item)
        elif isinstance(node, list):
            for index, item in enumerate(node):
                if isinstance(item, str):
                    node[index] = memo.setdefault(item, item)
                elif isinstance(item, (dict, list)):
                    stack.append(item)
    return value


def share_schemas(streams: Iterable[Stream], mapper: PluginMapper | None) -> int:
    """Replace each stream's equal schema copies by the stream's own schema; how many were.

    The copies are the catalog's (`Stream.apply_catalog` sets the stream's input schema from its
    catalog entry, a second dict equal to the one the tap built the stream with) and the
    stream maps' `raw_schema` and `transformed_schema` (public attributes of the SDK's
    `StreamMap`). A copy that differs (properties deselected in the catalog, a stream map that
    renames or flattens) is left alone.
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
        for stream_map in [] if mapper is None else mapper.stream_maps.get(stream.name, []):
            if stream_map.raw_schema is not schema and stream_map.raw_schema == schema:
                stream_map.raw_schema = schema
                shared += 1
            target = stream_map.transformed_schema
            if target is schema or target is stream_map.raw_schema:
                continue
            if target == schema:
                stream_map.transformed_schema = schema
                shared += 1
            elif target == stream_map.raw_schema:
                stream_map.transformed_schema = stream_map.raw_schema
                shared += 1
    return shared
