"""A catalog handed to the tap: read as the SDK reads it, kept as one schema dict per table.

At 1,000 tables the input catalog's schemas were a tree of `Schema` objects per table kept for
the whole run, besides the dict every stream is built with: megabytes for nothing, since the SDK
only ever asks an entry for `schema.to_dict()` (`sharing.SchemaDict`).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import pickle
import threading
import tracemalloc
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from singer_sdk import Tap
from singer_sdk.helpers._util import dump_json
from singer_sdk.singerlib import Catalog, CatalogEntry, Metadata

from tap_maptable.catalog_text import catalog_pieces
from tap_maptable.errors import ConfigurationError
from tap_maptable.inputs import check_catalog, load_catalog
from tap_maptable.logs import rows_sent
from tap_maptable.settings import parse_json_file
from tap_maptable.sharing import SchemaDict, catalog_of, compact
from tap_maptable.tap import _CATALOG_TEXT_UNUSED, TapMapTable
from tests.helpers import discover, is_row_stream, run_cli, sync, tap_config

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path


def _deselect(catalog: dict[str, Any], stream: str, prop: str) -> None:
    """Deselect one property of one stream in a discovered catalog."""
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == stream:
            entry["metadata"].append(
                {"breadcrumb": ["properties", prop], "metadata": {"selected": False}}
            )


def _catalog(sandbox: Any) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """A discovered catalog with one table's property deselected and an unknown schema key."""
    config = tap_config(sandbox)
    catalog = discover(config)
    table = next(e for e in catalog["streams"] if is_row_stream(e["tap_stream_id"]))
    name = table["tap_stream_id"]
    prop = next(p for p in table["schema"]["properties"] if not p.startswith("_"))
    _deselect(catalog, name, prop)
    table["schema"]["x-not-json-schema"] = "dropped by the SDK's Schema"
    return config, catalog, name, prop


def test_a_catalog_is_read_as_the_sdk_reads_it_and_left_as_it_was(sandbox: Any) -> None:
    config, catalog, _, _ = _catalog(sandbox)
    handed = copy.deepcopy(catalog)
    tap = TapMapTable(config=config, catalog=handed)
    assert tap.input_catalog is not None
    assert tap.input_catalog.to_dict() == Catalog.from_dict(catalog).to_dict()
    assert handed == catalog, "the caller's catalog was changed"


def test_each_table_keeps_one_schema_dict_for_catalog_stream_and_maps(sandbox: Any) -> None:
    config, catalog, deselected, _ = _catalog(sandbox)
    tap = TapMapTable(config=config, catalog=catalog)
    assert tap.input_catalog is not None
    tables = [s for s in tap.streams.values() if is_row_stream(s.name)]
    assert tables
    for stream in tables:
        entry = tap.input_catalog[stream.name]
        assert isinstance(entry.schema, SchemaDict)
        assert entry.schema.properties is None, "a tree of Schema objects was built and kept"
        assert entry.schema.to_dict() is stream.schema
        maps = tap.mapper.stream_maps[stream.name]
        assert maps
        for stream_map in maps:
            # A map of a stream with a property deselected keeps the selected part, its own.
            shared = stream.name != deselected
            assert (stream_map.raw_schema is stream.schema) is shared, stream.name
    crumbs: dict[tuple[str, ...], tuple[str, ...]] = {}
    for entry in tap.input_catalog.streams:
        for crumb in entry.metadata:  # `("properties", "_row_id")` is in every table's
            assert crumbs.setdefault(crumb, crumb) is crumb, f"{crumb} made again"


def test_a_deselected_property_is_neither_in_the_schema_nor_in_records(sandbox: Any) -> None:
    config, catalog, name, prop = _catalog(sandbox)
    run = sync(config, catalog=catalog)
    schemas = [m["schema"] for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == name]
    records = [m["record"] for m in run.messages if m["type"] == "RECORD" and m["stream"] == name]
    assert schemas
    assert records
    assert all(prop not in s["properties"] for s in schemas)
    assert all(prop not in r for r in records)
    assert run.tap is not None
    kept = run.tap.input_catalog
    assert kept is not None
    assert prop in kept[name].schema.to_dict()["properties"], "the stream's own schema changed"


def _strings(value: Any) -> list[str]:
    """Every string in parsed JSON, dict keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def test_what_the_catalog_keeps_is_copied_out_of_the_parsed_document(sandbox: Any) -> None:
    # Kept in place, a few MB of strings would hold all of the parser's memory for the run.
    _, discovered, _, _ = _catalog(sandbox)
    catalog = json.loads(json.dumps(discovered))  # as the command line has it: parsed text
    parsed = {id(s) for s in _strings(catalog)}
    kept = catalog_of(catalog["streams"]).to_dict()
    assert kept == Catalog.from_dict(catalog).to_dict()
    assert not [s for s in _strings(kept) if id(s) in parsed], "a parsed string is kept"


def test_compact_copies_equal_values_and_leaves_other_values_alone() -> None:
    value = {"a": ["x", "x", 1, 2.5, None, True], "b": {"x": "y"}}
    copied = compact(value, {})
    assert copied == value
    assert copied["a"] is not value["a"]
    assert copied["a"][0] is copied["a"][1]
    assert next(iter(copied["b"])) is copied["a"][0], "a key and an equal value are one string"


def test_a_catalog_object_is_taken_as_it_is(sandbox: Any) -> None:
    config, catalog, name, _ = _catalog(sandbox)
    handed = Catalog.from_dict(catalog)
    tap = TapMapTable(config=config, catalog=handed)
    assert tap.input_catalog is handed
    assert name in tap.streams


def test_the_command_line_reads_a_catalog_as_a_caller_s_dict_is_read(
    sandbox: Any, tmp_path: Path
) -> None:
    config, catalog, name, prop = _catalog(sandbox)
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    cli = run_cli(["--catalog", str(path)], config)
    assert cli.returncode == 0, cli.stderr
    in_process = sync(config, catalog=catalog)

    def schemas(messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {m["stream"]: m["schema"] for m in messages if m["type"] == "SCHEMA"}

    def rows(messages: list[dict[str, Any]]) -> int:
        return sum(m["type"] == "RECORD" and m["stream"] == name for m in messages)

    assert schemas(cli.messages) == schemas(in_process.messages)
    assert prop not in schemas(cli.messages)[name]["properties"]
    assert rows(cli.messages) == rows(in_process.messages) > 0


def _bare(catalog: dict[str, Any]) -> dict[str, Any]:
    """The catalog as written by hand: each entry its `tap_stream_id` and `schema` alone."""
    return {
        "streams": [
            {"tap_stream_id": e["tap_stream_id"], "schema": e["schema"]} for e in catalog["streams"]
        ]
    }


def test_an_entry_without_key_or_bookmark_keeps_the_tap_s(sandbox: Any) -> None:
    # Left with no key, a target appends every run's rows again; with no bookmark, every table
    # is read FULL_TABLE on every run.
    config, catalog, name, _ = _catalog(sandbox)
    run = sync(config, catalog=_bare(catalog))
    schemas = {m["stream"]: m for m in run.messages if m["type"] == "SCHEMA"}
    assert schemas[name]["key_properties"] == ["_row_id"]
    assert schemas[name]["bookmark_properties"] == ["_updated_at"]
    assert schemas["workspaces"]["key_properties"] == ["type", "id"]
    assert schemas["projects"]["key_properties"] == ["id"]
    versions = {m["stream"] for m in run.messages if m["type"] == "ACTIVATE_VERSION"}
    assert not {s for s in versions if is_row_stream(s)}, "a table was read FULL_TABLE"
    final = next(m for m in reversed(run.messages) if m["type"] == "STATE")
    assert final["value"]["bookmarks"][name]["replication_key"] == "_updated_at"


def test_what_an_entry_says_of_key_and_method_is_followed(sandbox: Any) -> None:
    config, catalog, name, _ = _catalog(sandbox)
    bare = _bare(catalog)
    for entry in bare["streams"]:
        if entry["tap_stream_id"] == name:
            entry["key_properties"] = []
            entry["replication_method"] = "FULL_TABLE"
    run = sync(config, catalog=bare)
    schema = next(m for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == name)
    assert schema["key_properties"] == []
    versions = [m for m in run.messages if m["type"] == "ACTIVATE_VERSION"]
    assert [m for m in versions if m["stream"] == name], "FULL_TABLE was not followed"


def test_singer_replication_method_metadata_is_followed(
    sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Singer's non-discoverable `replication-method` (root metadata, as a user or an orchestrator
    # writes it) in a discovered catalog, whose entries say INCREMENTAL at the top: the SDK's
    # metadata model drops the key, so the stream stayed INCREMENTAL.
    config, catalog, name, _ = _catalog(sandbox)
    assert {e.get("replication_method") for e in catalog["streams"]} >= {"INCREMENTAL"}
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == [] and entry["tap_stream_id"] == name:
                item["metadata"]["replication-method"] = "FULL_TABLE"
    with caplog.at_level(logging.INFO):
        run = sync(config, catalog=catalog)
    versions = {m["stream"] for m in run.messages if m["type"] == "ACTIVATE_VERSION"}
    assert name in versions, "replication-method metadata was not followed"
    others = {e["tap_stream_id"] for e in catalog["streams"]} - {name}
    assert not {s for s in versions & others if is_row_stream(s)}  # the others stay INCREMENTAL
    # Each table's last line says which way it was read.
    done = {sent[0]: r.getMessage() for r in caplog.records if (sent := rows_sent(r.getMessage()))}
    assert "(FULL_TABLE: every row)" in done[name], done[name]
    assert "without an update time" not in done[name]  # every row is sent anyway
    assert not [line for line in done.values() if "FULL_TABLE" in line and name not in line]


def test_incremental_asked_of_a_stream_without_a_bookmark_is_full_table_with_a_warning(
    sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # `replication-method: INCREMENTAL` for every stream (a Meltano rule for `*`, or `table_*`,
    # which matches `table_nodes` too): workspaces, projects and table_nodes have no update time
    # to bookmark, and the SDK ended the run with "Could not detect replication key".
    config, catalog, name, _ = _catalog(sandbox)
    for entry in catalog["streams"]:
        entry["replication_method"] = "INCREMENTAL"  # as Meltano writes it, in both places
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["replication-method"] = "INCREMENTAL"
    with caplog.at_level(logging.WARNING):
        run = sync(config, catalog=catalog)
    versions = {m["stream"] for m in run.messages if m["type"] == "ACTIVATE_VERSION"}
    assert versions == {"workspaces", "projects", "table_nodes"}  # read whole, as always
    assert run.rows[name]  # the tables: INCREMENTAL, as asked
    warned = [r.getMessage() for r in caplog.records if "always read FULL_TABLE" in r.getMessage()]
    assert len(warned) == 3, warned


def test_a_config_that_can_be_read_only_once_is_read_once(sandbox: Any, tmp_path: Path) -> None:
    # `--config <(vault read ...)` keeps the secret off the disk: a pipe, read once. The tap's
    # own check read it, then the SDK read it again and found it empty.
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    config = json.dumps(tap_config(sandbox))
    writes: list[int] = []

    def write_once() -> None:
        with fifo.open("w", encoding="utf-8") as pipe:
            writes.append(pipe.write(config))

    writer = threading.Thread(target=write_once, daemon=True)
    writer.start()
    run = run_cli(["--config", str(fifo), "--discover"], timeout=60)
    writer.join(timeout=5)
    assert writes == [len(config)]
    assert run.returncode == 0, run.stderr[-500:]
    assert any(is_row_stream(e["tap_stream_id"]) for e in json.loads(run.stdout)["streams"])


# -- a catalog file parsed one entry at a time (`inputs.load_catalog`) ---------------------------


def _entries_as_built(text: str) -> list[dict[str, Any]]:
    """What `load_catalog` hands `build`, and whether it came as the file's entries in turn."""
    handed: list[Any] = []

    def build(streams: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        handed.append(streams)
        return list(streams)

    built = load_catalog(text, "catalog.json", build)
    assert handed[-1] is not None
    return built


def test_a_catalog_file_is_handed_on_entry_by_entry_as_json_loads_reads_it(sandbox: Any) -> None:
    _, catalog, _, _ = _catalog(sandbox)
    catalog["version"] = {"nested": [1, 2.5, None]}  # another top-level key, read and dropped
    text = json.dumps(catalog, indent=2)
    seen: list[Any] = []

    def build(streams: Iterable[dict[str, Any]]) -> Catalog:
        seen.append(streams)
        return catalog_of(streams)

    built = load_catalog(text, "catalog.json", build)
    assert len(seen) == 1, "the streamed parse fell back to parsing the file whole"
    assert not isinstance(seen[0], list), "the entries were parsed all at once"
    expected = json.loads(text, parse_float=Decimal)
    assert built.to_dict() == Catalog.from_dict(expected).to_dict()


def test_entries_are_parsed_one_at_a_time_so_the_parse_s_peak_is_one_entry() -> None:
    # A 400-table catalog: parsed whole, every entry's dicts are alive at once; streamed, the
    # parse holds one entry and `build` keeps what it keeps (here: nothing).
    entry = {
        "tap_stream_id": "table_tbl",
        "schema": {"properties": {f"c{n}": {"type": ["string", "null"]} for n in range(30)}},
        "metadata": [{"breadcrumb": ["properties", f"c{n}"], "metadata": {}} for n in range(30)],
    }
    text = json.dumps({"streams": [{**entry, "tap_stream_id": f"x{n}"} for n in range(400)]})
    tracemalloc.start()
    try:
        json.loads(text)
        whole = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        count = load_catalog(text, None, lambda streams: sum(1 for _ in streams))
        streamed = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 400
    assert streamed < whole / 10, (streamed, whole)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"streams": [{"tap_stream_id": "a", "schema": {"properties": {}}}] } x', "several"),
        ('{"streams": [{"tap_stream_id": "a", "schema": {"properties": {}}}, {"tap_', "not valid"),
        ('{"streams": [{"tap_stream_id": "a", "schema": {"properties": {}}}, 3]}', "streams[1]"),
        ('{"streams": [{"tap_stream_id": "a", "schema": {"properties": {}}}], "x": [1,]}', "valid"),
        ('{"streams": {}}', "no 'streams' list"),
        ('{"other": 1}', "no 'streams' list"),
        ("[]", "catalog.json: expected a JSON object, got a list"),
        # Read as Python truth by the SDK: "false" selected the stream it meant to leave out.
        (
            (
                '{"streams": [{"tap_stream_id": "a", "schema": {"properties": {}}, "metadata": '
                '[{"breadcrumb": [], "metadata": {"selected": "false"}}]}]}'
            ),
            "stream 'a' has 'selected' set to a string for the stream; expected true or false",
        ),
        (
            (
                '{"streams": [{"tap_stream_id": "a", "schema": {"properties": {"x": {}}}, '
                '"metadata": [{"breadcrumb": ["properties", "x"], "metadata": {"selected": 0}}]}]}'
            ),
            "'selected' set to an integer for property 'x'",
        ),
        (
            (
                '{"streams": [{"tap_stream_id": "a", "schema": {"properties": {}}}, '
                '{"tap_stream_id": "a", "schema": {"properties": {}}}]}'
            ),
            "stream 'a' has two entries (streams[1] again)",
        ),
        (
            (
                '{"streams": [{"tap_stream_id": "a", "schema": {"properties": {}}, '
                '"metadata": [{"breadcrumb": []}]}]}'
            ),
            "has a metadata item that is not",
        ),
        # Entries `check_entry` passes but the catalog cannot be built from, then a worse fault.
        (
            '{"streams": [{"tap_stream_id": "a", "schema": {"properties": {"x": 3}}}, 3]}',
            "streams[1] is not an object",
        ),
        (
            '{"streams": [{"tap_stream_id": "a", "schema": {"properties": {}}, "metadata": [1]}] x',
            "not valid JSON",
        ),
        ("\ufeff{}", "not valid JSON"),
        ("  ", "empty"),
        ('{"streams": [' + "[" * 150 + "]" * 150 + "]}", "nested more than"),
        (
            '{"streams": [{"tap_stream_id": "a", "schema": {"properties": {}}, "x": '
            + "[" * 120
            + "]" * 120
            + "}]}",
            "nested more than",
        ),
    ],
)
def test_a_bad_catalog_file_gets_the_error_of_parsing_it_whole(text: str, error: str) -> None:
    with pytest.raises(ConfigurationError) as streamed:
        load_catalog(text, "catalog.json", catalog_of)  # what the command line builds
    with pytest.raises(ConfigurationError) as whole:
        check_catalog(parse_json_file(text, "catalog", "catalog.json", parse_float=Decimal))
    assert str(streamed.value) == str(whole.value)
    assert error in str(streamed.value)


def test_json_s_own_rules_are_kept_where_the_catalog_is_streamed() -> None:
    # A second `streams` key: json.loads keeps the last; whitespace anywhere JSON allows it.
    first = '{"tap_stream_id": "first", "schema": {"properties": {}}}'
    last = '{"tap_stream_id": "last", "schema": {"properties": {"n": {"type": "number"}}}}'
    text = f' \n{{ "streams" : [ {first} ] ,\t"streams":[{last}]\r\n}} \n'
    built = _entries_as_built(text)
    assert built == json.loads(text, parse_float=Decimal)["streams"]
    assert _entries_as_built('{"streams": []}') == []
    assert _entries_as_built('{"streams": [ ] , "x": {"streams": [1]}}') == []


# -- one object for each equal piece of every table's catalog entry ------------------------------


def test_equal_property_metadata_and_type_lists_are_one_object_and_refuse_changes(
    sandbox: Any,
) -> None:
    _, catalog, _, _ = _catalog(sandbox)
    built = catalog_of(catalog["streams"])
    tables = [e for e in built.streams if is_row_stream(e.tap_stream_id)]
    available = [
        md
        for entry in tables
        for crumb, md in entry.metadata.items()
        if crumb and md == Metadata(inclusion=Metadata.InclusionType.AVAILABLE)
    ]
    assert len(available) > len(tables)
    assert len({id(md) for md in available}) == 1
    assert built.to_dict() == Catalog.from_dict(catalog).to_dict()
    with pytest.raises(TypeError, match="shared property metadata cannot change"):
        available[0].selected = False
    root = tables[0].metadata.root
    root.selected = False  # the stream's own: the SDK changes it when a stream is (de)selected
    assert all(e.metadata.root.selected is not False for e in tables[1:])
    types = [
        prop["type"]
        for entry in tables
        for prop in entry.schema.to_dict()["properties"].values()
        if prop.get("type") == ["string", "null"]
    ]
    assert len(types) > len(tables)
    assert len({id(t) for t in types}) == 1
    assert all(e.key_properties is not tables[0].key_properties for e in tables[1:]), (
        "lists outside the schema are each entry's own"
    )


def test_the_discovered_catalog_is_the_sdk_s_with_one_dict_per_schema(sandbox: Any) -> None:
    config = tap_config(sandbox)
    tap = TapMapTable(config=config)
    sdk = Catalog((s.tap_stream_id, s._singer_catalog_entry) for s in tap.streams.values())
    ours = tap._singer_catalog
    assert json.dumps(ours.to_dict()) == json.dumps(sdk.to_dict()), "--discover output changed"
    assert all(isinstance(e.schema, SchemaDict) for e in ours.streams)
    shared = {
        id(md) for e in ours.streams for crumb, md in e.metadata.items() if crumb and md.inclusion
    }
    assert len(shared) <= len(Metadata.InclusionType), "equal property metadata not shared"
    crumbs: dict[tuple[str, ...], tuple[str, ...]] = {}
    for entry in ours.streams:
        for crumb in entry.metadata:
            assert crumbs.setdefault(crumb, crumb) is crumb, f"{crumb} made again"


def test_only_type_lists_are_shared_and_shared_metadata_copies_as_itself() -> None:
    # The SDK removes a deselected property from a copied schema's `required` in place: two
    # equal `required` lists shared would lose the name together.
    schema = {
        "properties": {
            name: {"type": ["object", "null"], "required": ["lat"], "enum": ["x"]}
            for name in ("a", "b")
        }
    }
    copied = compact(schema, {}, {})
    a, b = copied["properties"]["a"], copied["properties"]["b"]
    assert a["type"] is b["type"]
    assert a["required"] is not b["required"]
    assert a["enum"] is not b["enum"]
    built = catalog_of(
        [
            {
                "tap_stream_id": "s",
                "schema": schema,
                "metadata": [
                    {"breadcrumb": ["properties", "a"], "metadata": {"inclusion": "available"}}
                ],
            }
        ]
    )
    shared = built["s"].metadata[("properties", "a")]
    assert copy.copy(shared) is shared
    assert copy.deepcopy(built)["s"].metadata[("properties", "a")] is shared
    assert pickle.loads(pickle.dumps(shared)) == Metadata(  # noqa: S301 - our own bytes
        inclusion=Metadata.InclusionType.AVAILABLE
    )


def test_without_a_catalog_the_stream_maps_keep_the_stream_s_own_schema(sandbox: Any) -> None:
    # Discovered entries hold their schema as a dict too; the maps must still take the
    # stream's own (its key order is what `--test schema` writes), not the catalog's copy.
    tap = TapMapTable(config=tap_config(sandbox))
    for stream in tap.streams.values():
        for stream_map in tap.mapper.stream_maps[stream.name]:
            assert stream_map.raw_schema is stream.schema, stream.name
    # Registered entry by entry: the SDK's working catalog, a copy of every schema alive until
    # the sync began, is not built for it (`Tap.catalog` still builds it when asked).
    assert tap._catalog is None
    assert [e.tap_stream_id for e in tap.catalog.streams] == list(tap.streams)


def test_a_catalog_file_with_a_byte_order_mark_is_read(sandbox: Any, tmp_path: Path) -> None:
    # Windows editors write one; json.loads refused it ("Unexpected UTF-8 BOM").
    config, catalog, _, _ = _catalog(sandbox)
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog), encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    cli = run_cli(["--catalog", str(path)], config)
    assert cli.returncode == 0, cli.stderr


def test_a_table_s_replication_key_other_than_its_update_time_is_ignored_with_a_warning(
    sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # It was ignored without a word: the user believed the table bookmarked on their column.
    config, catalog, name, prop = _catalog(sandbox)
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == name)
    for item in entry["metadata"]:
        if item["breadcrumb"] == []:
            item["metadata"]["replication-key"] = prop
    with caplog.at_level(logging.WARNING):
        run = sync(config, catalog=catalog)
    warned = [r.getMessage() for r in caplog.records if "always bookmarked on" in r.getMessage()]
    assert warned == [
        (
            f"Stream {name!r} is always bookmarked on '_updated_at'; the catalog's replication key "
            f"{prop!r} is ignored."
        )
    ]
    schema = next(m for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == name)
    assert schema["bookmark_properties"] == ["_updated_at"]


def test_a_catalog_that_selects_nothing_says_so_and_an_empty_file_name_is_named(
    sandbox: Any,
) -> None:
    # `{"streams": []}` exited 0 having read nothing, saying only "Skipping deselected stream"
    # of streams it never named; `--catalog ''` said "cannot read : Is a directory".
    config = tap_config(sandbox)
    run = run_cli(["--catalog", "-"], config, stdin='{"streams": []}')
    assert run.returncode == 0, run.stderr
    assert "The catalog selects no stream: this run reads nothing." in run.stderr
    empty = run_cli(["--catalog", ""], config)
    assert empty.returncode == 1
    assert (
        empty.stderr.strip().splitlines()[-1].endswith("invalid catalog: the file name is empty")
    ), empty.stderr


def test_discover_and_test_say_that_they_do_not_read_a_catalog_or_state(
    sandbox: Any, tmp_path: Path
) -> None:
    # `--discover` and `--test` build every stream from MapTable and read neither file: a user
    # who handed discovery the last catalog (to keep its selection) was not told. Before or after
    # the flag on the line, and an unreadable file is no error: it is never opened.
    config = tap_config(sandbox)
    broken = tmp_path / "catalog.json"
    broken.write_text("not a catalog", encoding="utf-8")
    before = run_cli(["--catalog", str(broken), "--discover"], config)
    after = run_cli(["--discover", "--state", str(tmp_path / "missing.json")], config)
    for run, named in ((before, "--catalog"), (after, "--state")):
        assert run.returncode == 0, run.stderr[-500:]
        assert any(is_row_stream(e["tap_stream_id"]) for e in json.loads(run.stdout)["streams"])
        warnings = [line for line in run.stderr.splitlines() if "not read with" in line]
        assert len(warnings) == 1, run.stderr
        assert f"{named} not read with --discover: discovery reads" in warnings[0]
    schema = run_cli(["--test=schema", "--catalog", "-", "--state", "-"], config, stdin="{}")
    assert schema.returncode == 0, schema.stderr[-500:]
    assert "--catalog and --state not read with --test: the test reads" in schema.stderr
    assert schema.stderr.count("not read with") == 1, schema.stderr
    assert {m["stream"] for m in schema.messages if m["type"] == "SCHEMA"} >= {"workspaces"}
    plain = run_cli(["--discover"], config)
    assert plain.returncode == 0
    assert "not read with" not in plain.stderr
    # Meltano passes its saved state to discovery on every incremental run: not the user's doing.
    meltano = run_cli(
        ["--discover", "--state", str(tmp_path / "missing.json")],
        config,
        env={"MELTANO_EXTRACTOR_NAME": "tap-maptable"},
    )
    assert meltano.returncode == 0, meltano.stderr[-500:]
    assert "not read with" not in meltano.stderr


def test_discover_writes_the_sdk_s_text_one_entry_at_a_time(
    sandbox: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Written entry by entry (a 1,000-table catalog whole, as dicts and then as text, was the
    # peak of `--discover`): the same bytes as the SDK's `dump_json(catalog_dict, indent=2)`.
    tap = TapMapTable(config=tap_config(sandbox))
    expected = Tap.catalog_json_text.fget(tap)  # type: ignore[attr-defined]
    assert "\\u" in expected, "no non-ASCII name: the escapes are not compared"
    capsys.readouterr()
    assert tap.run_discovery() == expected
    assert capsys.readouterr().out == expected + "\n"
    # The command line only writes it: no second copy of the text is kept to be returned.
    cli = run_cli(["--discover"], tap_config(sandbox))
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout == expected + "\n"
    again = TapMapTable(config=tap_config(sandbox))
    assert again.streams  # discovered: what is measured below is the writing alone
    unused = _CATALOG_TEXT_UNUSED.set(True)
    tracemalloc.start()
    try:
        assert again.run_discovery() == ""
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        _CATALOG_TEXT_UNUSED.reset(unused)
    assert capsys.readouterr().out == expected + "\n"
    sdk = TapMapTable(config=tap_config(sandbox))
    assert sdk.streams
    tracemalloc.start()
    try:
        Tap.run_discovery(sdk)  # the SDK's way: every entry's dict, then the whole text
        _, sdk_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert capsys.readouterr().out == expected + "\n"
    assert peak < sdk_peak / 2, (peak, sdk_peak)


def test_catalog_pieces_make_the_sdk_s_text_of_any_catalog() -> None:
    entries = [
        CatalogEntry.from_dict(
            {
                "tap_stream_id": name,
                "schema": {"type": "object", "properties": {"n": {"type": ["number"]}}},
                "metadata": [{"breadcrumb": [], "metadata": {"selected": True}}],
                "key_properties": [],
            }
        )
        for name in ("a", "名称")
    ]
    for some in ([], entries[:1], entries):
        expected = dump_json({"streams": [e.to_dict() for e in some]}, indent=2)
        assert "".join(catalog_pieces(some)) == expected


def test_mapped_schema_messages_are_the_same_bytes_with_and_without_a_catalog(
    sandbox: Any,
) -> None:
    # Without a catalog the maps are registered from entries made one at a time, not from the
    # SDK's working catalog; the schemas a map derives (flattening here) keep the key order
    # they had, the same as with the discovered catalog handed back.
    config = tap_config(sandbox, flattening_enabled=True, flattening_max_depth=2)
    catalog = discover(config)

    def schemas(run: Any) -> list[str]:
        return [json.dumps(m) for m in run.messages if m["type"] == "SCHEMA"]

    alone, with_catalog = schemas(sync(config)), schemas(sync(config, catalog=catalog))
    assert alone
    assert alone == with_catalog
