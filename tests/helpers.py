"""Shared helpers: run the tap (in process or as a command) against a sandbox, read its output."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tap_maptable.tap import TapMapTable

APP_ID = "app-1"
APP_SECRET = "s3cret-9f1c2e7d-never-print-me"
VENV_BIN = Path(sys.executable).parent

# Every secret any sandbox of this session has issued; conftest scans all test output for them.
KNOWN_SECRETS: set[str] = {APP_SECRET}


def tap_config(sandbox: Any, **extra: Any) -> dict[str, Any]:
    """A config for `sandbox`.

    The budget is kept in memory and tokens are not cached unless a test says otherwise: a
    sandbox's port can be reused by a later test, and the defaults (a SQLite budget and a token
    file shared by every process of the same app on this host) would then carry the earlier
    test's requests and tokens into the later one.
    """
    return {
        "app_id": APP_ID,
        "app_secret": APP_SECRET,
        "api_url": sandbox.url,
        "rate_limit_store": "memory",
        "cache_tokens": False,
        **extra,
    }


@dataclass
class Run:
    """The Singer messages of one run, sorted for assertions."""

    messages: list[dict[str, Any]]
    stderr: str = ""
    returncode: int = 0
    stdout: str = ""
    tap: TapMapTable | None = None
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for message in self.messages:
            if message.get("type") == "RECORD":
                self.records.setdefault(message["stream"], []).append(message["record"])

    @property
    def rows(self) -> dict[str, list[dict[str, Any]]]:
        """Records of the table-row streams only (`table_<id>`, not `table_nodes`)."""
        return {k: v for k, v in self.records.items() if is_row_stream(k)}

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    @property
    def last_state(self) -> dict[str, Any] | None:
        states = self.of_type("STATE")
        return states[-1]["value"] if states else None

    def schema(self, stream: str) -> dict[str, Any]:
        return next(m["schema"] for m in self.of_type("SCHEMA") if m["stream"] == stream)


def is_row_stream(name: str) -> bool:
    """Whether a stream carries a table's rows."""
    return name.startswith("table_") and name != "table_nodes"


def sync(
    config: dict[str, Any],
    catalog: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
) -> Run:
    """Run discovery (unless a catalog is given) and sync in this process; return the messages."""
    # The tap writes bytes to stdout's buffer: give it a text stream with one underneath.
    buffer = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    with contextlib.redirect_stdout(buffer):
        tap = TapMapTable(config=config, catalog=catalog, state=state)
        tap.sync_all()
    buffer.flush()
    output = buffer.buffer.getvalue().decode()
    assert_no_secrets(output)
    return Run(messages=[json.loads(line) for line in output.splitlines() if line], tap=tap)


def discover(config: dict[str, Any]) -> dict[str, Any]:
    """The catalog `--discover` would print, from this process."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        tap = TapMapTable(config=config)
        catalog = tap.catalog_dict
    assert_no_secrets(buffer.getvalue() + json.dumps(catalog))
    return catalog


def run_tap_command(
    args: list[str],
    config: dict[str, Any] | None = None,
    *,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the `tap-maptable` command; `config` is written to a file and passed as --config."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [str(VENV_BIN / "tap-maptable"), *args]
        if config is not None:
            path = Path(tmp) / "config.json"
            path.write_text(json.dumps(config))
            argv += ["--config", str(path)]
        result = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            check=False,
        )
    assert_no_secrets(result.stdout + result.stderr)
    return result


def run_cli(
    args: list[str],
    config: dict[str, Any] | None = None,
    *,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Run:
    """Run the `tap-maptable` command and read its stdout as Singer messages."""
    result = run_tap_command(args, config, stdin=stdin, env=env, timeout=timeout)
    messages = []
    for line in result.stdout.splitlines():
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if isinstance(message, dict):  # Singer messages; not lines of indented JSON
                messages.append(message)
    return Run(
        messages=messages,
        stderr=result.stderr,
        returncode=result.returncode,
        stdout=result.stdout,
    )


def select_only(catalog: dict[str, Any], streams: set[str]) -> dict[str, Any]:
    """Mark only `streams` selected in a discovered catalog."""
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


def set_replication(catalog: dict[str, Any], stream: str, method: str) -> dict[str, Any]:
    """Choose FULL_TABLE or INCREMENTAL for one stream in a catalog."""
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == stream:
            entry["replication_method"] = method
            for item in entry["metadata"]:
                if item["breadcrumb"] == []:
                    item["metadata"]["forced-replication-method"] = method
                    item["metadata"]["replication-method"] = method
    return catalog


def kinds(sandbox: Any) -> Counter[str]:
    """How many API requests of each kind the sandbox has received."""
    return Counter(entry.kind for entry in sandbox.requests)


def max_in_window(times: list[float], window: float) -> int:
    """The most requests any sliding window of `window` seconds holds."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def assert_no_secrets(text: str) -> None:
    """Fail if any known secret (app secret, any issued token) appears in `text`."""
    leaked = [s for s in KNOWN_SECRETS if s and s in text]
    assert not leaked, f"{len(leaked)} secret(s) leaked into output"
