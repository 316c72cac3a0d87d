"""Running Meltano against a sandbox, and the sandbox's truth to check warehouses against."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tap_maptable.columns import name_columns, parse_timestamp, row_record
from tap_maptable.logs import rows_sent
from tests.helpers import APP_ID, APP_SECRET, assert_no_secrets

REPO = Path(__file__).resolve().parents[2]
MELTANO = REPO / ".venv-meltano" / "bin" / "meltano"
ENVIRONMENT = "dev"
# Every row stream's replication method, as a Meltano `metadata` extra set through the environment.
FULL_TABLE_METADATA = json.dumps({"table_*": {"replication-method": "FULL_TABLE"}})
# The variables a run may read: the caller's own TAP_/TARGET_/MELTANO_ ones never leak in.
_OWN_PREFIXES = ("TAP_MAPTABLE", "TARGET_", "MELTANO_")
# Commands whose output `record_counts` reads: logged as JSON lines, metric tags included.
PIPELINE_COMMANDS = (["run"], ["el"], ["elt"])


_lock_depth = 0


@contextlib.contextmanager
def meltano_lock() -> Iterator[None]:
    """Hold the project's Meltano lock: one Meltano command at a time, across test processes.

    Meltano keeps one catalog file per extractor in `.meltano/run/`, so two concurrent runs of
    tap-maptable overwrite each other's ("Invalid catalog"). The tests carry
    `xdist_group("meltano")`, but with pytest 9.2 and pytest-xdist 3.8 `--dist loadgroup` no
    longer groups (xdist sets `item._nodeid`, which pytest 9.2 no longer reads), so this lock is
    what keeps them apart. Re-entrant within a process.
    """
    global _lock_depth  # noqa: PLW0603 - a per-process counter is the point
    if _lock_depth:
        _lock_depth += 1
        try:
            yield
        finally:
            _lock_depth -= 1
        return
    path = REPO / ".meltano" / "e2e-tests.lock"
    path.parent.mkdir(exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        _lock_depth = 1
        try:
            yield
        finally:
            _lock_depth = 0
            fcntl.flock(handle, fcntl.LOCK_UN)


def unique(prefix: str) -> str:
    """A state id (suffix) no other test or run uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def meltano_env(sandbox: Any, **extra: str) -> dict[str, str]:
    """Environment of a Meltano command that extracts from `sandbox`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    env.update(
        TAP_MAPTABLE_API_URL=sandbox.url,
        TAP_MAPTABLE_APP_ID=APP_ID,
        TAP_MAPTABLE_APP_SECRET=APP_SECRET,
        # The sandboxes here do not limit (unless a test says so): neither need the tap, whose
        # budget is shared by every run against the same sandbox.
        TAP_MAPTABLE_REQUESTS_PER_MINUTE="6000",
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        NO_COLOR="1",
    )
    env.update(extra)
    return env


@dataclass
class MeltanoResult:
    """One finished Meltano command."""

    args: list[str]
    returncode: int
    output: str
    seconds: float

    def record_counts(self) -> dict[str, int]:
        """Rows the tap sent, per table stream, from the line each table ends with.

        The tap declares `structured-logging`, so Meltano parses its logs; with
        `--log-format=json` (PIPELINE_COMMANDS) each line's text is the record's `event`.
        """
        counts: dict[str, int] = {}
        for line in self.output.splitlines():
            message = line
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if isinstance(record, dict) and record.get("name") == "tap-maptable":
                        message = str(record.get("event", ""))
            found = rows_sent(message) if "tap-maptable" in line else None
            if found is not None:
                stream, rows = found
                counts[stream] = counts.get(stream, 0) + rows
        return counts

    def tail(self, lines: int = 40) -> str:
        """The plugins' error lines and the end of the output, for assertion messages."""
        all_lines = self.output.splitlines()
        errors = [
            line
            for line in all_lines
            if ("tap-maptable" in line or "target-" in line)
            and any(word in line for word in ("error", "Error", "critical", "Exception"))
        ]
        return "\n".join([*errors[:20], "...", *all_lines[-lines:]])


def meltano(
    args: list[str], env: dict[str, str], *, timeout: float = 240, check: bool = True
) -> MeltanoResult:
    """Run `meltano --environment=dev ARGS` in the project root; fail the test if it fails."""
    log_format = ["--log-format=json"] if args[:1] in PIPELINE_COMMANDS else []
    argv = [str(MELTANO), *log_format, f"--environment={ENVIRONMENT}", *args]
    with meltano_lock():
        started = time.monotonic()
        result = subprocess.run(
            argv,
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    output = result.stdout + result.stderr
    assert_no_secrets(output)
    run = MeltanoResult(args, result.returncode, output, time.monotonic() - started)
    if check:
        assert run.returncode == 0, f"meltano {' '.join(args)} failed:\n{run.tail()}"
    return run


def start_meltano(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a Meltano command in its own process group, its output going to `log`.

    Call it, and wait for the process, inside `meltano_lock()`.
    """
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(MELTANO), f"--environment={ENVIRONMENT}", *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process started by `start_meltano` and everything it started; wait for all.

    Waiting for Meltano alone was not enough: its tap and target, killed with it, may still be
    dying a moment later, and a target that has not yet exited holds the warehouse's file lock
    (DuckDB refused to open it once in CI, on a loaded machine).
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _group_alive(process.pid):
        assert time.monotonic() < deadline, f"process group {process.pid} outlived SIGKILL"
        time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` is still running (zombies hold no files: not counted)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[2]) == pgid:
                return True
    return False


def state_of(state_id: str, env: dict[str, str]) -> dict[str, Any]:
    """The Singer state Meltano keeps under `state_id`."""
    result = meltano(["state", "get", state_id], env)
    text = result.output[result.output.index("{") :]
    decoder = json.JSONDecoder()
    state, _ = decoder.raw_decode(text)
    assert isinstance(state, dict)
    return state


def bookmarks(state: dict[str, Any]) -> dict[str, str]:
    """Row stream -> its `_updated_at` bookmark."""
    marks = state.get("singer_state", {}).get("bookmarks", {})
    return {
        stream: mark["replication_key_value"]
        for stream, mark in marks.items()
        if isinstance(mark, dict) and "replication_key_value" in mark
    }


# -- the sandbox's truth ------------------------------------------------------------------------


def stream_of(table_id: str) -> str:
    """The stream (and warehouse table) name of a MapTable table."""
    return f"table_{table_id}"


def truth_rows(sandbox: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Stream -> row id -> the record the tap should send for it, from the sandbox's data."""
    data = sandbox.data
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for table in data.tables():
        columns = name_columns(data.columns(table.table_id))
        out[stream_of(table.table_id)] = {
            row["id"]: row_record(row, columns) for row in data.rows(table.table_id)
        }
    return out


def truth_entities(sandbox: Any) -> dict[str, set[str]]:
    """Workspace keys (`type/id`), project ids and table node ids (groups included)."""
    data = sandbox.data
    workspaces: set[str] = set()
    projects: set[str] = set()
    nodes: set[str] = set()
    for ws in data.workspaces():
        workspaces.add(f"{ws['type']}/{ws['id']}")
        for project in data.workspace_detail(ws["type"], ws["id"])["projects"]:
            projects.add(str(project["id"]))
            nodes.update(str(node["id"]) for node in project["tableNodes"])
    return {"workspaces": workspaces, "projects": projects, "table_nodes": nodes}


def column_ids(sandbox: Any, table_id: str) -> dict[str, str]:
    """Property name -> column id of one table, by the tap's naming rule."""
    return {column.prop_name: column.id for column in name_columns(sandbox.data.columns(table_id))}


def sent_again(rows: dict[str, dict[str, Any]], bookmark: str | None) -> set[str]:
    """Rows an incremental run from `bookmark` sends: updated at or after it, or with no time.

    `rows` are the records as they are now. Rows exactly on the bookmark and rows with no update
    time come again although unchanged (documented: at-least-once, never lost).
    """
    mark = parse_timestamp(bookmark) if bookmark else None
    return {
        row_id
        for row_id, record in rows.items()
        if record["_updated_at"] is None
        or mark is None
        or parse_timestamp(record["_updated_at"]) >= mark
    }
