"""Every bad setting, catalog or state is answered in one line that names it, before any request.

Each case runs the command against a live sandbox and checks: a non-zero exit, no traceback, a
last stderr line `tap-maptable: error: invalid config|catalog|state: ...` that names the problem,
and not one request logged by the sandbox. An unknown `table_ids` entry is not an error: a
warning, and the tables that exist are extracted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tap_maptable.errors import ConfigurationError
from tap_maptable.settings import SETTINGS_SCHEMA, check_config
from tests.hardening.support import assert_one_clear_line, stream_of
from tests.helpers import Run, discover, is_row_stream, run_cli, select_only, tap_config

CONFIG_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("app_id-not-a-string", {"app_id": 123}, ["app_id must be a string, not an integer"]),
    ("rpm-as-string", {"requests_per_minute": "60"}, ["requests_per_minute must be an integer"]),
    ("page_size-zero", {"page_size": 0}, ["page_size", "minimum of 1"]),
    ("max_tries-too-many", {"max_tries": 50}, ["max_tries", "maximum of 20"]),
    ("insecure-not-bool", {"allow_insecure_http": "yes"}, ["allow_insecure_http must be true"]),
    ("table_ids-not-a-list", {"table_ids": "tbl1"}, ["table_ids must be a list"]),
    ("table_ids-empty-id", {"table_ids": [""]}, ["table_ids.0"]),
    ("window-zero", {"rate_limit_window_seconds": 0}, ["rate_limit_window_seconds"]),
    ("api_url-not-a-url", {"api_url": "not a url"}, ["api_url", "not an http(s) URL"]),
    ("api_url-ftp", {"api_url": "ftp://maptable.com"}, ["api_url", "not an http(s) URL"]),
    (
        "api_url-with-the-api-path",  # copied from an endpoint: its login was a 404
        {"api_url": "http://127.0.0.1:8765/open/api/v1/"},
        ["api_url: give the API's root, 'http://127.0.0.1:8765', without '/open/api/v1'"],
    ),
    (
        "api_url-an-endpoint-with-credentials",  # the whole endpoint; the password not echoed
        {"api_url": "https://u:pw-in-url@maptable.example:8443/open/api/v1/auth/"},
        ["api_url: give the API's root, 'https://maptable.example:8443', without"],
    ),
    ("start_date-words", {"start_date": "yesterday"}, ["start_date", "RFC 3339"]),
    ("start_date-bad-day", {"start_date": "2024-13-45T00:00:00Z"}, ["start_date", "RFC 3339"]),
    ("start_date-number", {"start_date": 2024}, ["start_date must be a string"]),
    (
        "unknown-setting",
        {"page_sise": 10},
        ["unknown setting 'page_sise'", "did you mean 'page_size'?"],
    ),
    (
        "unknown-settings",
        {"pagesize": 1, "tables": []},
        [
            "unknown settings 'pagesize', 'tables'",
            "did you mean 'page_size' for 'pagesize', 'table_ids' for 'tables'?",
        ],
    ),
    ("unknown-and-unlike", {"colour": "blue"}, ["unknown setting 'colour'"]),
    (
        "timeout-fractional",
        {"request_timeout": 2.5},
        ["request_timeout must be an integer, not a number"],
    ),
]


def _config_file(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content)
    return path


def _assert_refused(run: Run, sandbox, prefix: str, *names: str) -> str:
    last = assert_one_clear_line(run)
    assert last.startswith(f"tap-maptable: error: invalid {prefix}: "), last
    for name in names:
        assert name in last, f"{name!r} not in {last!r}"
    assert not sandbox.requests, f"{len(sandbox.requests)} request(s) reached the sandbox"
    return last


# -- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"), [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES]
)
def test_a_bad_setting_is_refused_in_one_line_before_any_request(sandbox, change, named) -> None:
    run = run_cli(["--discover"], {**tap_config(sandbox), **change})
    last = _assert_refused(run, sandbox, "config", *named)
    assert "pw-in-url" not in run.stderr + run.stdout  # a password in api_url is never echoed
    assert "Decimal" not in last  # the SDK reads numbers as Decimal; users wrote plain numbers


@pytest.mark.parametrize("missing", ["app_id", "app_secret"])
def test_a_missing_required_setting_is_named(sandbox, missing, monkeypatch) -> None:
    """Standalone, the hint is the tap's own command line: a --config file, or --config ENV."""
    monkeypatch.delenv("MELTANO_EXTRACTOR_NAME", raising=False)
    config = tap_config(sandbox)
    del config[missing]
    run = run_cli(["--discover"], config)
    variable = f"TAP_MAPTABLE_{missing.upper()}"
    hint = f"(give --config FILE, or --config ENV with {variable} set)"
    _assert_refused(run, sandbox, "config", f"missing required setting {missing!r} {hint}")
    assert "meltano" not in run.stderr


# Meltano 4.4.1 sets these for the extractor it invokes (`meltano invoke --print-var ...`).
UNDER_MELTANO = {"MELTANO_EXTRACTOR_NAME": "tap-maptable", "MELTANO_ENVIRONMENT": "prod"}


def test_under_meltano_a_missing_setting_is_set_with_meltano_config(sandbox) -> None:
    config = tap_config(sandbox)
    del config["app_id"]
    run = run_cli(["--discover"], config, env=UNDER_MELTANO)
    hint = (
        "missing required setting 'app_id' (export TAP_MAPTABLE_APP_ID=<value>, or "
        "`meltano --environment=prod config set tap-maptable app_id <value>`, which rewrites "
        "meltano.yml)"
    )
    last = _assert_refused(run, sandbox, "config", hint)
    assert "--config" not in last, "under Meltano, --config is Meltano's file, not the user's"


def test_under_meltano_a_missing_secret_comes_from_the_environment(sandbox) -> None:
    config = tap_config(sandbox)
    del config["app_secret"]
    env = {**UNDER_MELTANO, "MELTANO_EXTRACTOR_NAME": "tap-maptable--eu"}  # an inheriting plugin
    run = run_cli(["--discover"], config, env=env)
    hint = (
        "missing required setting 'app_secret' (export TAP_MAPTABLE__EU_APP_SECRET=<secret>, "
        "or `meltano --environment=prod config set tap-maptable--eu app_secret <secret>`, which "
        "keeps it in the project's .env)"
    )
    last = _assert_refused(run, sandbox, "config", hint)
    assert "--config " not in last


def test_under_meltano_wrong_and_unknown_settings_name_the_meltano_command(sandbox) -> None:
    config = {**tap_config(sandbox), "page_size": 0, "page_sise": 10}
    env = {"MELTANO_EXTRACTOR_NAME": "tap-maptable"}  # no active environment
    run = run_cli(["--discover"], config, env=env)
    _assert_refused(
        run,
        sandbox,
        "config",
        "page_size: 0 is less than the minimum of 1 (export TAP_MAPTABLE_PAGE_SIZE=<value>, "
        "or `meltano config set tap-maptable page_size <value>`, which rewrites meltano.yml)",
        "unknown setting 'page_sise' (remove with `meltano config unset tap-maptable page_sise`)",
    )


@pytest.mark.parametrize("content", ["not json", "{", ""], ids=["words", "cut-off", "empty"])
def test_a_config_file_that_is_not_json_is_named(sandbox, tmp_path, content) -> None:
    path = _config_file(tmp_path, "config.json", content)
    run = run_cli(["--discover", "--config", str(path)])
    _assert_refused(run, sandbox, "config")


# -- catalog ------------------------------------------------------------------------------------

_SCHEMA = {"type": "object", "properties": {"_row_id": {"type": ["string"]}}}
_LOWER_CASE_METHOD = {"replication_method": "full_table"}
CATALOG_CASES: list[tuple[str, str, list[str]]] = [
    ("not-json", "{not json", ["not valid JSON"]),
    ("empty-file", "", ["expected a JSON object"]),
    ("a-list", json.dumps([{"streams": []}]), ["expected a JSON object, got a list"]),
    ("no-streams", json.dumps({}), ["no 'streams' list"]),
    ("streams-not-a-list", json.dumps({"streams": {"a": 1}}), ["no 'streams' list"]),
    ("entry-not-object", json.dumps({"streams": [1]}), ["streams[0] is not an object"]),
    (
        "entry-without-id",
        json.dumps({"streams": [{"schema": _SCHEMA}]}),
        ["streams[0] has no tap_stream_id"],
    ),
    (
        "entry-without-schema",
        json.dumps({"streams": [{"tap_stream_id": "table_tblX", "metadata": []}]}),
        ["'table_tblX' has no schema"],
    ),
    (
        "schema-without-properties",
        json.dumps({"streams": [{"tap_stream_id": "table_tblX", "schema": {"type": "object"}}]}),
        ["'table_tblX' has no schema properties"],
    ),
    (
        "metadata-not-a-list",
        json.dumps({"streams": [{"tap_stream_id": "t", "schema": _SCHEMA, "metadata": {}}]}),
        ["metadata that is not a list"],
    ),
    # A method the tap does not have was read, silently, as INCREMENTAL.
    (
        "method-in-lower-case",
        json.dumps({"streams": [{"tap_stream_id": "t", "schema": _SCHEMA} | _LOWER_CASE_METHOD]}),
        ["stream 't' asks for replication method 'full_table'", "FULL_TABLE or INCREMENTAL"],
    ),
    (
        "log-based-in-metadata",
        json.dumps(
            {
                "streams": [
                    {
                        "tap_stream_id": "t",
                        "schema": _SCHEMA,
                        "metadata": [
                            {"breadcrumb": [], "metadata": {"replication-method": "LOG_BASED"}}
                        ],
                    }
                ]
            }
        ),
        ["stream 't' asks for replication method 'LOG_BASED'"],
    ),
]


@pytest.mark.parametrize(
    ("content", "named"), [c[1:] for c in CATALOG_CASES], ids=[c[0] for c in CATALOG_CASES]
)
def test_a_malformed_catalog_is_refused_in_one_line(sandbox, tmp_path, content, named) -> None:
    path = _config_file(tmp_path, "catalog.json", content)
    run = run_cli(["--catalog", str(path)], tap_config(sandbox))
    _assert_refused(run, sandbox, "catalog", *named)


# -- state --------------------------------------------------------------------------------------


@pytest.fixture
def catalog_path(sandbox, tmp_path) -> Path:
    """A good catalog of the sandbox (discovered now; the sandbox's log is then cleared)."""
    catalog = discover(tap_config(sandbox))
    sandbox.reset_log()
    return _config_file(tmp_path, "catalog.json", json.dumps(catalog))


def _row_stream(sandbox) -> str:
    return stream_of(sandbox.data.tables()[0].table_id)


def _state_cases(stream: str) -> list[tuple[str, str, list[str]]]:
    old = {"replication_key": "updateTime", "replication_key_value": "2024-05-01 10:00:00"}
    unreadable = {"replication_key": "_updated_at", "replication_key_value": "soon"}
    return [
        ("not-json", "{'bookmarks': {}}", ["not valid JSON"]),
        ("a-list", "[]", ["expected a JSON object, got a list"]),
        ("bookmarks-not-object", json.dumps({"bookmarks": []}), ["'bookmarks' is not an object"]),
        (
            "bookmark-not-object",
            json.dumps({"bookmarks": {stream: "2024-01-01"}}),
            [f"the bookmark of stream {stream!r} is not an object"],
        ),
        (
            "older-version-key",
            json.dumps({"bookmarks": {stream: old}}),
            [stream, "'updateTime'", "'_updated_at'", "clear that stream's state"],
        ),
        (
            "older-version-in-a-state-message",
            json.dumps({"type": "STATE", "value": {"bookmarks": {stream: old}}}),
            [stream, "'updateTime'"],
        ),
        (
            "unreadable-bookmark",
            json.dumps({"bookmarks": {stream: unreadable}}),
            [stream, "unreadable bookmark 'soon'"],
        ),
    ]


STATE_CASE_IDS = [c[0] for c in _state_cases("s")]


@pytest.mark.parametrize("case", STATE_CASE_IDS)
def test_a_malformed_or_foreign_state_is_refused_in_one_line(
    sandbox, tmp_path, catalog_path, case
) -> None:
    _, content, named = next(c for c in _state_cases(_row_stream(sandbox)) if c[0] == case)
    state = _config_file(tmp_path, "state.json", content)
    run = run_cli(["--catalog", str(catalog_path), "--state", str(state)], tap_config(sandbox))
    _assert_refused(run, sandbox, "state", *named)
    assert not run.of_type("RECORD")


def test_a_foreign_bookmark_of_a_stream_not_read_is_kept_not_refused(sandbox, tmp_path) -> None:
    """Only the bookmarks of the streams a run reads must be readable: the others pass through."""
    stream = _row_stream(sandbox)
    others = {s["tap_stream_id"] for s in discover(tap_config(sandbox))["streams"]} - {stream}
    catalog = select_only(discover(tap_config(sandbox)), others)
    sandbox.reset_log()
    old = {"replication_key": "updateTime", "replication_key_value": "2024-05-01 10:00:00"}
    state = {"bookmarks": {stream: old, "table_tblGone": old}}
    run = run_cli(
        [
            "--catalog",
            str(_config_file(tmp_path, "catalog.json", json.dumps(catalog))),
            "--state",
            str(_config_file(tmp_path, "state.json", json.dumps(state))),
        ],
        tap_config(sandbox),
    )
    assert run.returncode == 0, run.stderr[-500:]
    assert stream not in run.records
    assert {s for s in run.records if is_row_stream(s)} == {s for s in others if is_row_stream(s)}
    last = run.of_type("STATE")[-1]["value"]["bookmarks"]
    assert last[stream] == old
    assert last["table_tblGone"] == old


# -- table_ids naming a table that does not exist ---------------------------------------------


def test_an_unknown_table_id_warns_and_the_known_tables_are_extracted(sandbox) -> None:
    known = sandbox.data.tables()[1].table_id
    config = tap_config(sandbox, table_ids=[known, "tblDoesNotExist"])
    run = run_cli([], config)
    assert run.returncode == 0, run.stderr[-500:]
    warnings = [line for line in run.stderr.splitlines() if "tblDoesNotExist" in line]
    assert warnings
    assert all("WARNING" in line for line in warnings)
    assert {s for s in run.records if is_row_stream(s)} == {stream_of(known)}
    rows = {r["_row_id"] for r in run.records[stream_of(known)]}
    assert rows == {r["id"] for r in sandbox.data.rows(known)}
    assert all(known in e.path for e in sandbox.requests if e.kind == "rows")


def test_an_unknown_table_id_with_a_catalog_warns_and_the_rest_is_extracted(
    sandbox, catalog_path
) -> None:
    known = sandbox.data.tables()[0].table_id
    config = tap_config(sandbox, table_ids=["tblDoesNotExist", known])
    run = run_cli(["--catalog", str(catalog_path)], config)
    assert run.returncode == 0, run.stderr[-500:]
    assert any("tblDoesNotExist" in line and "WARNING" in line for line in run.stderr.splitlines())
    assert {s for s in run.records if is_row_stream(s)} == {stream_of(known)}
    assert run.records["workspaces"]


@pytest.mark.parametrize("with_catalog", [False, True], ids=["discovery", "catalog"])
def test_table_ids_naming_no_table_at_all_is_an_error_not_an_empty_load(
    sandbox, catalog_path, with_catalog
) -> None:
    config = tap_config(sandbox, table_ids=["tblDoesNotExist", "tblNorThis"])
    args = ["--catalog", str(catalog_path)] if with_catalog else []
    run = run_cli(args, config)
    last = assert_one_clear_line(run)
    assert "table_ids names no table" in last
    assert "tblDoesNotExist" in last
    assert not [s for s in run.records if is_row_stream(s)]


def test_a_name_like_no_setting_gets_no_guess() -> None:
    config = {"app_id": "a", "app_secret": "s", "colour": "blue"}
    with pytest.raises(ConfigurationError) as refused:
        check_config(config, SETTINGS_SCHEMA)
    assert "unknown setting 'colour'" in str(refused.value)
    assert "did you mean" not in str(refused.value)
