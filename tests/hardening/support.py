"""Shared by the hardening tests: the sandbox's truth, checks of runs against it, fast waits.

Fast waits shorten the tap's *sleeps* (backoff between tries, token-call retries, 429 pauses)
without changing how many times anything is tried, so a test can run dozens of faulty syncs in
seconds and still check the real retry logic, request counts and messages. In this process they
are installed with `monkeypatch`; in a `tap-maptable` subprocess, by `shim/sitecustomize.py`
when `HARDENING_FAST_WAITS=1` and the shim directory is on PYTHONPATH (see `fast_env`).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import backoff

from tap_maptable.discovery import TableRef
from tests.helpers import Run, is_row_stream, run_tap_command

FAST_WAITS_ENV = "HARDENING_FAST_WAITS"
SHIM_DIR = Path(__file__).parent / "shim"
FAST_SLEEP_CAP_S = 0.02
ERROR_PREFIX = "tap-maptable: error: "
FIXED_STREAMS = ("workspaces", "projects", "table_nodes")

_real_sleep = time.sleep


class _FastTime:
    """The `time` module with `sleep` capped: what the tap's modules see under fast waits."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        _real_sleep(min(max(seconds, 0.0), FAST_SLEEP_CAP_S))


def _fast_backoff(_stream: Any) -> Any:
    return backoff.constant(interval=FAST_SLEEP_CAP_S)


def install_fast_waits(setattr_: Callable[[Any, str, Any], None] = setattr) -> None:
    """Cap the tap's sleeps (backoff, token-call retries, 429 pauses); tries stay the same."""
    from tap_maptable import retry  # noqa: PLC0415 - only when installed
    from tap_maptable.budget import limiter  # noqa: PLC0415

    setattr_(retry.RetryPolicy, "wait_generator", _fast_backoff)
    setattr_(limiter, "time", _FastTime())


def fast_env() -> dict[str, str]:
    """Environment for `run_cli` that installs fast waits in the tap subprocess."""
    paths = [str(SHIM_DIR), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p), FAST_WAITS_ENV: "1"}


def stream_of(table_id: str) -> str:
    """The stream name the tap gives a table."""
    return TableRef(table_id=table_id).stream_name


def truth(sandbox: Any) -> dict[str, set[Any]]:
    """Every record key the tap should emit, by stream, from the sandbox's own data."""
    data = sandbox.data
    expected: dict[str, set[Any]] = {name: set() for name in FIXED_STREAMS}
    for workspace in data.workspaces():
        expected["workspaces"].add((str(workspace["type"]), str(workspace["id"])))
        detail = data.workspace_detail(workspace["type"], workspace["id"])
        for project in detail.get("projects") or []:
            expected["projects"].add(str(project["id"]))
            for node in project.get("tableNodes") or []:
                expected["table_nodes"].add(str(node["id"]))
    for table in data.tables():
        expected[stream_of(table.table_id)] = {str(r["id"]) for r in data.rows(table.table_id)}
    return expected


def record_key(stream: str, record: dict[str, Any]) -> Any:
    """The primary key of a record of `stream`."""
    if stream == "workspaces":
        return (str(record["type"]), str(record["id"]))
    if is_row_stream(stream):
        return str(record["_row_id"])
    return str(record["id"])


def keys_by_stream(records: dict[str, list[dict[str, Any]]]) -> dict[str, Counter[Any]]:
    """How often each key was emitted, by stream."""
    return {s: Counter(record_key(s, r) for r in recs) for s, recs in records.items()}


def assert_exactly_once(run: Run, sandbox: Any) -> None:
    """Every row of every table, and every workspace, project and node, exactly once."""
    expected = truth(sandbox)
    emitted = keys_by_stream(run.records)
    assert set(emitted) == set(expected), "streams differ from the sandbox's"
    for stream, keys in expected.items():
        counts = emitted[stream]
        duplicated = sorted(str(k) for k, n in counts.items() if n > 1)
        assert not duplicated, f"{stream}: {len(duplicated)} keys emitted twice"
        assert set(counts) == keys, (
            f"{stream}: {len(keys - set(counts))} missing, {len(set(counts) - keys)} unknown"
        )


def assert_one_clear_line(run: Run) -> str:
    """A failed command: exit 1, no traceback, and a last stderr line that says why."""
    assert run.returncode == 1, f"exit code {run.returncode}"
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert lines, "no error line at all"
    last = lines[-1]
    assert last.startswith(ERROR_PREFIX), f"last stderr line is not an error line: {last[:200]!r}"
    assert len(last) > len(ERROR_PREFIX) + 10
    return last


def assert_no_tokens(sandbox: Any, *texts: str) -> None:
    """No app secret or token the sandbox has issued appears in `texts`."""
    secrets = {s for s in sandbox.issued_secrets() if s}
    leaked = sum(1 for s in secrets for t in texts if s in t)
    assert not leaked, f"{leaked} secret(s) or token(s) appeared in the output"


def run_command(
    args: list[str], config: dict[str, Any] | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `tap-maptable` and return its raw output (for output that is not Singer lines)."""
    return run_tap_command(args, config, env=env)
