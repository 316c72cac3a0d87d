"""Checking the catalog and state a user hands the tap, before any request is sent.

A malformed file, a row stream without the properties the tap needs, or a bookmark on another
key each end the run at once with one line that names the stream: guessing would silently skip
rows or waste requests.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import IO, Any

from tap_maptable.columns import ROW_ID, UPDATED_AT
from tap_maptable.errors import ConfigurationError
from tap_maptable.settings import is_datetime, parse_json_file


def check_catalog(catalog: dict[str, Any]) -> None:
    """Raise one line if the catalog lacks what the tap needs from every entry."""
    streams = catalog.get("streams")
    if not isinstance(streams, list):
        msg = "invalid catalog: no 'streams' list"
        raise ConfigurationError(msg)
    for index, entry in enumerate(streams):
        if not isinstance(entry, dict):
            msg = f"invalid catalog: streams[{index}] is not an object"
            raise ConfigurationError(msg)
        name = entry.get("tap_stream_id")
        if not isinstance(name, str) or not name:
            msg = f"invalid catalog: streams[{index}] has no tap_stream_id"
            raise ConfigurationError(msg)
        schema = entry.get("schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
            msg = f"invalid catalog: stream {name!r} has no schema properties"
            raise ConfigurationError(msg)
        if not isinstance(entry.get("metadata", []), list):
            msg = f"invalid catalog: stream {name!r} has metadata that is not a list"
            raise ConfigurationError(msg)
        if (
            name.startswith("table_")
            and name != "table_nodes"
            and (UPDATED_AT not in schema["properties"] or ROW_ID not in schema["properties"])
        ):
            msg = (
                f"invalid catalog: stream {name!r} lacks '_row_id' or {UPDATED_AT!r}; "
                "run discovery again"
            )
            raise ConfigurationError(msg)


def normalise_state(state: dict[str, Any]) -> dict[str, Any]:
    """Accept a tap state (or a STATE message wrapping one); raise one line for anything else.

    A row stream's bookmark must be on `_updated_at` with a readable time: a bookmark on
    another key (written by another version or another tap) is refused rather than guessed at,
    because guessing wrong would silently skip rows.
    """
    if state.get("type") == "STATE" and isinstance(state.get("value"), dict):
        state = state["value"]
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        msg = "invalid state: 'bookmarks' is not an object"
        raise ConfigurationError(msg)
    for stream, bookmark in bookmarks.items():
        if not isinstance(bookmark, dict):
            msg = f"invalid state: the bookmark of stream {stream!r} is not an object"
            raise ConfigurationError(msg)
        _check_row_bookmark(stream, bookmark)
    return state


def _check_row_bookmark(stream: str, bookmark: dict[str, Any]) -> None:
    key = bookmark.get("replication_key")
    value = bookmark.get("replication_key_value")
    if key is None and value is None:
        return
    if key != UPDATED_AT:
        msg = (
            f"invalid state: stream {stream!r} is bookmarked on {key!r}, but this version of "
            f"tap-maptable bookmarks {UPDATED_AT!r}; clear that stream's state (for example "
            "`meltano state clear`) to re-read it from start_date"
        )
        raise ConfigurationError(msg)
    if value is not None and not is_datetime(value):
        msg = f"invalid state: stream {stream!r} has an unreadable bookmark {value!r:.60}"
        raise ConfigurationError(msg)


def read_input_files(
    catalog: IO[str] | None, state: IO[str] | None
) -> tuple[IO[str] | None, IO[str] | None]:
    """Read and check `--catalog` and `--state`, closing both on every path, errors included.

    Returns them again as checked JSON in memory, for the SDK to read as it would the files.
    """
    with contextlib.ExitStack() as files:
        for file in (catalog, state):
            if file is not None:
                files.enter_context(file)
        catalog_text = _read(catalog, "catalog") if catalog is not None else None
        state_text = _read(state, "state") if state is not None else None
    if catalog_text is not None:
        parsed = parse_json_file(catalog_text, "catalog")
        check_catalog(parsed)
        catalog = io.StringIO(json.dumps(parsed))
    if state_text is not None:
        state = io.StringIO(json.dumps(parse_json_file(state_text, "state")))
    return catalog, state


def _read(file: IO[str], what: str) -> str:
    """Read a file, or say in one line that it is not text."""
    try:
        return file.read()
    except UnicodeDecodeError:
        msg = f"invalid {what}: {getattr(file, 'name', 'the file')} is not UTF-8 text"
        raise ConfigurationError(msg) from None
