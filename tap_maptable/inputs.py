"""Checking the catalog and state a user hands the tap, before any request is sent.

A malformed file, a row stream without the properties the tap needs, or a bookmark on another
key each end the run at once with one line that names the stream: guessing would silently skip
rows or waste requests.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, TypeVar, cast

import click

from tap_maptable.columns import ROW_ID, UPDATED_AT
from tap_maptable.errors import ConfigurationError
from tap_maptable.settings import is_datetime, json_type, parse_json_file, too_deep

if TYPE_CHECKING:
    from collections.abc import Callable, Container, Generator, Iterable, Iterator, Sequence

    from singer_sdk.singerlib import Catalog, CatalogEntry

LOGGER = logging.getLogger("tap_maptable")

Built = TypeVar("Built")  # what `read_input_files` makes of a catalog's entries
_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")  # JSON's (RFC 8259), as `json.decoder` skips


def check_catalog(catalog: dict[str, Any]) -> None:
    """Raise one line if the catalog lacks what the tap needs from every entry."""
    streams = catalog.get("streams")
    if not isinstance(streams, list):
        msg = "invalid catalog: no 'streams' list"
        raise ConfigurationError(msg)
    for _ in checked_entries(streams):
        pass


def checked_entries(entries: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """The entries, each checked (`check_entry`), and no `tap_stream_id` twice.

    Two entries for one stream were taken silently, the later one winning: a table deselected
    in one and selected in the other was read or not depending on the order.
    """
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        check_entry(index, entry)
        name = entry["tap_stream_id"]
        if name in seen:
            msg = f"invalid catalog: stream {name!r} has two entries (streams[{index}] again)"
            raise ConfigurationError(msg)
        seen.add(name)
        yield entry


def check_entry(index: int, entry: Any) -> None:
    """Raise one line if one catalog entry (`streams[index]`) lacks what the tap needs."""
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
    metadata = entry.get("metadata", [])
    if not isinstance(metadata, list):
        msg = f"invalid catalog: stream {name!r} has metadata that is not a list"
        raise ConfigurationError(msg)
    for item in metadata:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("breadcrumb"), list)
            and isinstance(item.get("metadata"), dict)
        ):
            msg = (
                f"invalid catalog: stream {name!r} has a metadata item that is not "
                '{"breadcrumb": [...], "metadata": {...}}'
            )
            raise ConfigurationError(msg)
        _check_flags(name, item)
    _check_methods(name, entry)
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


def _check_flags(name: str, item: dict[str, Any]) -> None:
    """Refuse a `selected` (or `selected-by-default`) that is not true or false.

    The SDK reads it as Python truth: `"selected": "false"` selected the stream, and the user
    who meant to leave a table out had it read and loaded.
    """
    for flag in ("selected", "selected-by-default"):
        value = item["metadata"].get(flag)
        if value is not None and not isinstance(value, bool):
            path = ".".join(str(part) for part in item["breadcrumb"][1::2])
            where = f"property {path!r}" if path else "the stream"
            msg = (
                f"invalid catalog: stream {name!r} has {flag!r} set to {json_type(value)} for "
                f"{where}; expected true or false"
            )
            raise ConfigurationError(msg)


# The replication methods the tap reads a stream with (Singer's spelling).
METHODS: Final = ("FULL_TABLE", "INCREMENTAL")


def _check_methods(name: str, entry: dict[str, Any]) -> None:
    """Refuse a method the tap does not have, in the entry or in its Singer metadata.

    The SDK read `full_table` or LOG_BASED as INCREMENTAL, silently: a table meant to be read
    whole never had its deleted rows deleted in the warehouse.
    """
    for method in (entry.get("replication_method"), _root_method(entry)):
        if method not in {None, ""} and method not in METHODS:
            msg = (
                f"invalid catalog: stream {name!r} asks for replication method {method!r}; "
                f"tap-maptable reads {' or '.join(METHODS)}"
            )
            raise ConfigurationError(msg)


def _root_method(raw_entry: dict[str, Any]) -> Any:
    """Singer's `replication-method` root metadata of a parsed entry, as written (None: none)."""
    for item in raw_entry.get("metadata") or []:
        if isinstance(item, dict) and item.get("breadcrumb") == []:
            values = item.get("metadata")
            if isinstance(values, dict) and values.get("replication-method") is not None:
                return values["replication-method"]
    return None


def stated_method(raw_entry: dict[str, Any]) -> str | None:
    """The replication method a parsed catalog entry states, Singer's metadata first.

    Singer's `replication-method` root metadata is what a user or an orchestrator writes to
    choose the method (Meltano's `metadata` extra writes it, and the entry's
    `replication_method` beside it); the entry's `replication_method` is the older place,
    which a discovered catalog fills with INCREMENTAL. The SDK reads only the latter (and the
    `forced-replication-method` metadata): its metadata model drops `replication-method`, so a
    table set FULL_TABLE in its metadata, as Singer documents it, stayed INCREMENTAL.
    """
    for method in (_root_method(raw_entry), raw_entry.get("replication_method")):
        if isinstance(method, str) and method:
            return method
    return None


def keep_identity(entry: CatalogEntry, keys: Sequence[str], bookmark: str | None) -> None:
    """Give a catalog entry the stream's key and bookmark where the entry leaves them out.

    An entry written by hand may hold only `tap_stream_id` and `schema`. The SDK then took no
    key (a target appends every run's rows again: duplicates) and no replication key (a table
    read FULL_TABLE on every run); and its stream maps, which make the SCHEMA message, read
    the key from `key_properties` alone, not from the `table-key-properties` metadata. What an
    entry states is kept: `key_properties: []`, a key in its metadata, `FULL_TABLE`.
    """
    root = entry.metadata.get(())
    if entry.key_properties is None:
        stated = getattr(root, "table_key_properties", None)
        entry.key_properties = list(keys if stated is None else stated)
    method = entry.replication_method or getattr(root, "forced_replication_method", None)
    stated_keys = [k for k in (entry.replication_key, getattr(root, "replication_key", None)) if k]
    others = [key for key in stated_keys if key != bookmark]
    if bookmark is not None and not stated_keys and method in {None, "INCREMENTAL"}:
        entry.replication_key = bookmark
    elif bookmark is not None and others:
        # A table's rows are bookmarked on MapTable's update time, the only time it keeps for
        # every row; another column (in the entry or in Singer's `replication-key` metadata)
        # was ignored without a word: the run kept `_updated_at`.
        LOGGER.warning(
            "Stream %r is always bookmarked on %r; the catalog's replication key %r is ignored.",
            entry.tap_stream_id,
            bookmark,
            others[0],
        )
        entry.replication_key = bookmark
    elif bookmark is None and not stated_keys and method == "INCREMENTAL":
        # workspaces, projects, table_nodes: nothing to bookmark (a Meltano rule for `*`, or for
        # `table_*`, which matches `table_nodes`, asks it anyway); the SDK failed the run.
        LOGGER.warning(
            "Stream %r is always read FULL_TABLE (it has no update time to bookmark); the "
            "catalog's INCREMENTAL is ignored.",
            entry.tap_stream_id,
        )
        entry.replication_method = "FULL_TABLE"


def normalise_state(state: dict[str, Any], read: Container[str] | None = None) -> dict[str, Any]:
    """Accept a tap state (or a STATE message wrapping one); raise one line for anything else.

    A row stream's bookmark must be on `_updated_at` with a readable time: a bookmark on
    another key (written by another version or another tap) is refused rather than guessed at,
    because guessing wrong would silently skip rows. That holds for the streams the run reads
    (`read`; None: every stream); the bookmarks of the others pass through as they are.
    """
    if state.get("type") == "STATE":
        value = state.get("value")
        if not isinstance(value, dict):
            msg = f"invalid state: a STATE message whose value is {json_type(value)}, not an object"
            raise ConfigurationError(msg)
        state = value
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        msg = "invalid state: 'bookmarks' is not an object"
        raise ConfigurationError(msg)
    for stream, bookmark in bookmarks.items():
        if not isinstance(bookmark, dict):
            msg = f"invalid state: the bookmark of stream {stream!r} is not an object"
            raise ConfigurationError(msg)
        if read is None or stream in read:
            _check_row_bookmark(stream, bookmark)
    return state


def streams_read(catalog: Catalog | None) -> set[str] | None:
    """The streams a catalog selects, as the SDK's streams decide it (None: no catalog, all)."""
    if catalog is None:
        return None
    return {
        entry.tap_stream_id
        for entry in catalog.streams
        if entry.metadata.resolve_selection().get((), True)
    }


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


if TYPE_CHECKING:  # click 8.2+ types its ParamType generically; older click is not generic
    _FileParam = click.ParamType[IO[str], Any]
else:
    _FileParam = click.ParamType


class InputFile(_FileParam):
    """`--catalog` and `--state`: a file named on the command line, read when the run needs it.

    The SDK declares both as `click.File()`, which opens the file while the command line is
    parsed and leaves closing it to the click context's end. When a later option's callback
    fails (`--discover` with a bad config) click never ends that context, and the open file
    surfaced at exit as `ResourceWarning: unclosed file` (printed on every failed run under
    Meltano, which sets PYTHONWARNINGS). Here nothing is opened while the command line is
    parsed (`NamedFile`): the run reads each file whole when it starts, so nothing is left open
    on any path, and `--about` reads neither (nor waits for standard input). A file that cannot
    be read is a one-line `invalid catalog|state` error with exit code 1, like an unreadable
    `--config` file, rather than click's usage error (exit 2).
    """

    name = "file"

    def __init__(self, what: str) -> None:
        """Name the input (`catalog` or `state`) in its errors."""
        self.what = what

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> IO[str]:
        """The named file (`-`: standard input), to be read by the run."""
        del param, ctx  # the error names the input itself
        if not isinstance(value, str):  # already converted (click converts defaults again)
            return cast("IO[str]", value)
        return cast("IO[str]", NamedFile(value, self.what))


def read_input_files(
    catalog: IO[str] | None,
    state: IO[str] | None,
    build: Callable[[Iterable[dict[str, Any]]], Built],
) -> tuple[Built | None, dict[str, Any] | None]:
    """Read and parse the `--catalog` and `--state` files, each once; check the catalog.

    Both come from `InputFile` (already read, nothing to close); a file object handed in by a
    caller of `TapMapTable.invoke` is closed on every path, errors included. Numbers with a
    fraction are parsed as `Decimal`, as the SDK parses these files. The catalog's entries go
    to `build` as they are parsed (`load_catalog`), and what it returns is the catalog.
    """
    with contextlib.ExitStack() as files:
        for file in (catalog, state):
            if file is not None:
                files.enter_context(file)
        if _source(catalog) == _source(state) == STDIN:
            msg = "invalid state: standard input is the catalog already (`--catalog -`)"
            raise ConfigurationError(msg)
        catalog_text = _read(catalog, "catalog") if catalog is not None else None
        state_text = _read(state, "state") if state is not None else None
    built = None
    if catalog_text is not None:
        built = load_catalog(catalog_text, _source(catalog), build)
        del catalog_text  # about 10 MB at 1,000 tables: not kept while the state is read
    parsed_state = None
    if state_text is not None:
        parsed_state = parse_json_file(state_text, "state", _source(state), parse_float=Decimal)
    return built, parsed_state


def load_catalog(
    text: str, source: str | None, build: Callable[[Iterable[dict[str, Any]]], Built]
) -> Built:
    """What `build` makes of a catalog file's `streams`, each entry parsed and checked in turn.

    Parsed whole (`parse_json_file`), a 1,000-table catalog's 10 MB of text became some 40 MB
    of dicts and lists, all alive at once beside the catalog being built from them: the run's
    peak memory. Here each entry is parsed by the same decoder (`JSONDecoder.raw_decode`),
    checked (`check_entry`) and handed to `build` before the next is parsed, so only what
    `build` keeps of it stays. A file that is not plainly an object with a `streams` list of
    valid entries (bad JSON, extra data, nesting too deep, a bad entry, `streams` twice), or
    whose entries `build` fails on, is parsed again whole and checked by `check_catalog`, for
    the same one-line error as before, and `build` starts over from that parse if it raised
    none.
    """
    decoder = json.JSONDecoder(parse_float=Decimal)
    # Any failure: an entry `check_entry` passes may still fail `build` (a metadata item that
    # is not an object) while a later part of the file is what the whole parse reports first.
    with contextlib.suppress(Exception):
        return build(_checked(_streamed_entries(text, decoder)))
    parsed = parse_json_file(text, "catalog", source, parse_float=Decimal)
    check_catalog(parsed)
    return build(parsed["streams"])


class _NotStreamedError(Exception):
    """The catalog text is not plainly `{..., "streams": [...], ...}`: parse it whole."""


def _checked(entries: Iterator[Any]) -> Iterator[dict[str, Any]]:
    for entry in checked_entries(entries):
        if too_deep({"streams": [entry]}):
            raise _NotStreamedError
        yield entry


def _streamed_entries(text: str, decoder: json.JSONDecoder) -> Iterator[Any]:
    """The values of a JSON object's one `streams` list, parsed one at a time, in order.

    The other keys' values are parsed and dropped (the tap reads only `streams`). Raises
    `_NotStreamedError` (or the decoder's ValueError) at anything else, including more text after
    the object; the caller then parses the whole text as `json.loads` does.
    """
    index = _expect(text, 0, "{")
    seen = False
    while True:
        index = _skip(text, index)
        if text[index : index + 1] != '"':
            raise _NotStreamedError
        key, index = decoder.raw_decode(text, index)
        index = _skip(text, _expect(text, index, ":"))
        if key == "streams":
            if seen or text[index : index + 1] != "[":
                raise _NotStreamedError
            seen = True
            index = yield from _list_items(text, index + 1, decoder)
        else:
            value, index = decoder.raw_decode(text, index)
            if too_deep({key: value}):
                raise _NotStreamedError
        index = _skip(text, index)
        if text[index : index + 1] == ",":
            index += 1
            continue
        index = _expect(text, index, "}")
        break
    if not seen or _skip(text, index) != len(text):
        raise _NotStreamedError


def _list_items(text: str, index: int, decoder: json.JSONDecoder) -> Generator[Any, None, int]:
    """Yield the items of a JSON list whose `[` ends before `index`; return the index after `]`."""
    index = _skip(text, index)
    if text[index : index + 1] == "]":
        return index + 1
    while True:
        item, index = decoder.raw_decode(text, index)
        yield item
        index = _skip(text, index)
        if text[index : index + 1] == ",":
            index = _skip(text, index + 1)
            continue
        return _expect(text, index, "]")


def _skip(text: str, index: int) -> int:
    match = _WHITESPACE.match(text, index)
    return match.end() if match else index


def _expect(text: str, index: int, char: str) -> int:
    """The index after `char`, found after any whitespace from `index`; else `_NotStreamedError`."""
    index = _skip(text, index)
    if text[index : index + 1] != char:
        raise _NotStreamedError
    return index + 1


STDIN: Final = "standard input"


def _source(file: IO[str] | None) -> str | None:
    """How errors name a file: its path, `standard input` for `-`; None for a caller's object."""
    path = getattr(file, "path", None)
    if not isinstance(path, str):
        return None
    return STDIN if path == "-" else path


class NamedFile(io.TextIOBase):
    """A file named on the command line, opened and read whole by `read()`, and closed at once.

    Holds the name only: nothing is open, and no text is kept, between the command line and
    the run (a 1,000-table catalog is about 10 MB of text).
    """

    def __init__(self, path: str, what: str) -> None:
        """`path` (`-`: standard input); `what` (`catalog` or `state`) names it in errors."""
        super().__init__()
        self.path = path
        self.what = what

    def readable(self) -> bool:
        """A file to read."""
        return True

    def read(self, size: int | None = -1) -> str:
        """The whole text, once (the file is closed by it); reading in parts is not offered."""
        if size is not None and size >= 0:
            msg = "NamedFile is read whole"
            raise io.UnsupportedOperation(msg)
        self.close()
        if not self.path:
            msg = f"invalid {self.what}: the file name is empty"
            raise ConfigurationError(msg)
        try:
            if self.path == "-":
                return sys.stdin.read()
            # utf-8-sig: a byte order mark (Windows editors write one) is not part of the JSON.
            with Path(self.path).open(encoding="utf-8-sig") as file:
                return file.read()
        except UnicodeDecodeError:
            msg = f"invalid {self.what}: {self.path} is not UTF-8 text"
            raise ConfigurationError(msg) from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            msg = f"invalid {self.what}: cannot read {self.path}: {reason}"
            raise ConfigurationError(msg) from None


def _read(file: IO[str], what: str) -> str:
    """Read a file, or say in one line that it is not text."""
    try:
        return file.read()
    except UnicodeDecodeError:
        msg = f"invalid {what}: {getattr(file, 'name', 'the file')} is not UTF-8 text"
        raise ConfigurationError(msg) from None
