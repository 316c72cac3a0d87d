"""How a run ends: the exit code README's table gives, and nothing on stderr but the tap's lines.

Exit codes: 1 for every failure of the run, a missing or unreadable `--state`/`--catalog` file
included (it was click's usage error, 2, which a scheduler could not tell from a typo in the
command); 2 only for a command line that is itself wrong. README's table lists every code.

No stray output: a failed run's stderr ends with the tap's one line, with no ResourceWarning
and no tracemalloc hint.

Meltano runs plugins with PYTHONWARNINGS set, so a file the tap (or the SDK's click options)
left open printed `sys:1: ResourceWarning: unclosed file <... name='state.json'>` and "Enable
tracemalloc to get the object allocation traceback" after every failed run. Each case runs the
command as a scheduler would, with Python's warnings shown (`PYTHONWARNINGS=default`), and checks
the exit code, the last line, and that nothing else was printed. None sends a request: the
config points at a port nothing listens on, and every case fails (or ends) before the first one.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import APP_ID, APP_SECRET, VENV_BIN

# (arguments, exit code, the last stderr line's start); `{dir}` is the test's folder (no spaces).
CASES = {
    "bad-config-state-discover": (
        "--config {dir}/bad.json --state {dir}/state.json --discover",
        1,
        "tap-maptable: error: invalid config: missing required setting 'app_id'",
    ),
    "bad-config-state-catalog": (
        "--config {dir}/bad.json --state {dir}/state.json --catalog {dir}/catalog.json",
        1,
        "tap-maptable: error: invalid config: missing required setting 'app_id'",
    ),
    "missing-state-file": (
        "--config {dir}/good.json --catalog {dir}/catalog.json --state {dir}/missing.json",
        1,
        "tap-maptable: error: invalid state: cannot read {dir}/missing.json: No such file",
    ),
    "catalog-is-a-directory": (
        "--config {dir}/good.json --state {dir}/state.json --catalog {dir}",
        1,
        "tap-maptable: error: invalid catalog: cannot read {dir}: Is a directory",
    ),
    "catalog-not-utf8": (
        "--config {dir}/good.json --state {dir}/state.json --catalog {dir}/not-utf8.json",
        1,
        "tap-maptable: error: invalid catalog: {dir}/not-utf8.json is not UTF-8 text",
    ),
    "state-not-json": (
        "--config {dir}/good.json --catalog {dir}/catalog.json --state {dir}/not-json.json",
        1,
        "tap-maptable: error: invalid state: {dir}/not-json.json is not valid JSON",
    ),
    "state-not-json-discover": (
        "--config {dir}/bad.json --state {dir}/not-json.json --discover",
        1,
        "tap-maptable: error: invalid config: missing required setting 'app_id'",
    ),
    "unknown-option": (
        "--config {dir}/good.json --state {dir}/state.json --bogus",
        2,
        "tap-maptable: error: No such option '--bogus'",
    ),
    "bad-about-format": (
        "--about --format=xml",
        2,
        "tap-maptable: error: Invalid value for '--format': 'xml' is not one of",
    ),
    # A state file that is not one state says what it is instead ("got null", "Extra data").
    "state-empty": (
        "--config {dir}/good.json --catalog {dir}/catalog.json --state {dir}/empty.json",
        1,
        "tap-maptable: error: invalid state: {dir}/empty.json is empty",
    ),
    "state-several-lines": (
        "--config {dir}/good.json --catalog {dir}/catalog.json --state {dir}/states.jsonl",
        1,
        "tap-maptable: error: invalid state: {dir}/states.jsonl holds several JSON values",
    ),
    "state-message-of-null": (
        "--config {dir}/good.json --catalog {dir}/catalog.json --state {dir}/null-state.json",
        1,
        "tap-maptable: error: invalid state: a STATE message whose value is null",
    ),
    # Nesting that would overflow Python's recursion (the parser's, or the SDK's schema code).
    "state-nested-too-deep": (
        "--config {dir}/good.json --catalog {dir}/catalog.json --state {dir}/deep.json",
        1,
        "tap-maptable: error: invalid state: nested more than 100 levels deep",
    ),
    "catalog-schema-nested-too-deep": (
        "--config {dir}/good.json --catalog {dir}/deep-schema.json",
        1,
        "tap-maptable: error: invalid catalog: nested more than 100 levels deep",
    ),
    "catalog-and-state-both-stdin": (
        "--config {dir}/good.json --catalog - --state -",
        1,
        "tap-maptable: error: invalid state: standard input is the catalog already",
    ),
    "about": ("--about --state {dir}/state.json", 0, ""),
    # `--about` reads neither file: it exits 0 as README says, whatever the files hold.
    "about-bad-catalog": ("--about --catalog {dir}/not-json.json", 0, ""),
    "about-missing-state": ("--about --state {dir}/missing.json", 0, ""),
}
# README's exit code table (Troubleshooting): every code the tap returns. 3 is a finished run
# that skipped tables MapTable refused to serve.
EXIT_CODES = {0, 1, 2, 3, 130, 143}


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """A bad config (no app_id), a good one, a state, a catalog and two broken files."""
    good = {
        "app_id": APP_ID,
        "app_secret": APP_SECRET,
        "api_url": "http://127.0.0.1:9",
        "rate_limit_store": "memory",
        "cache_tokens": False,
    }
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "bad.json").write_text(json.dumps({"app_secret": APP_SECRET}))
    (tmp_path / "state.json").write_text(json.dumps({"bookmarks": {}}))
    (tmp_path / "catalog.json").write_text(json.dumps({"streams": []}))
    (tmp_path / "not-utf8.json").write_bytes(b"\xff\xfe{}")
    (tmp_path / "not-json.json").write_text("{not json")
    (tmp_path / "empty.json").write_text("\n")
    state_line = json.dumps({"type": "STATE", "value": {"bookmarks": {}}})
    (tmp_path / "states.jsonl").write_text(f"{state_line}\n{state_line}\n")
    (tmp_path / "null-state.json").write_text(json.dumps({"type": "STATE", "value": None}))
    depth = 100_000
    (tmp_path / "deep.json").write_text('{"bookmarks": {"s": ' + "[" * depth + "]" * depth + "}}")
    schema: dict[str, object] = {"type": "object"}
    for _ in range(300):
        schema = {"type": "object", "properties": {"a": schema}}
    entry = {"tap_stream_id": "table_tblx", "schema": schema, "metadata": []}
    (tmp_path / "deep-schema.json").write_text(json.dumps({"streams": [entry]}))
    return tmp_path


@pytest.mark.parametrize("case", list(CASES))
def test_a_run_prints_nothing_but_its_own_lines(inputs: Path, case: str) -> None:
    args, code, last = CASES[case]
    argv = [str(VENV_BIN / "tap-maptable"), *args.format(dir=inputs).split()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_MAPTABLE_")}
    env["PYTHONWARNINGS"] = "default"  # what shows the warnings; Meltano sets `once`
    result = subprocess.run(
        argv,
        input=json.dumps({"streams": []}),  # standard input, for `-`
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=inputs,
        check=False,
    )
    for stray in ("ResourceWarning", "tracemalloc", "Warning:", "Traceback"):
        assert stray not in result.stderr, result.stderr[-2000:]
    assert result.returncode == code, result.stderr[-2000:]
    if code:
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith(last.format(dir=inputs)), lines[-1]
        assert not [line for line in lines if "| INFO" not in line][:-1], lines
    else:
        assert "Name: tap-maptable" in result.stdout
        assert not result.stderr.strip(), result.stderr


def test_readme_lists_every_exit_code() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| exit code | meaning |") :].split("\n\n", 1)[0]
    listed = {int(line.split("|")[1]) for line in table.splitlines()[2:]}
    assert listed == EXIT_CODES
    assert "Every failure ends the run with exit code 1" not in readme
