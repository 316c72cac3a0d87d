"""`make demo`: MapTable -> Meltano -> DuckDB on this machine, with no MapTable account.

Starts the MapTable sandbox (a strict fake of the API, 60 requests a minute like the real one),
loads it into output/warehouse.duckdb with `meltano run tap-maptable target-duckdb`, shows what
landed, edits three rows and runs the same command again to show that only changes travel.
Meltano's own output goes to output/demo/*.log (the runs' as JSON lines); it is shown only when
something fails.

Run by `make demo` with the Python of `.venv-demo`, which holds only the sandbox and DuckDB's
client: the tap itself runs in the plugin venv that `meltano install` makes under .meltano/.
"""

# ruff: noqa: S608 - table names in SQL come from the sandbox or the warehouse, not from users

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from scripts import plugins

ROOT = Path(__file__).resolve().parents[1]
MELTANO = ROOT / ".venv-meltano" / "bin" / "meltano"
SANDBOX = Path(sys.executable).parent / "maptable-sandbox"
OUTPUT = ROOT / "output"
WORK = OUTPUT / "demo"
# The demo's own warehouse file and state: it starts afresh every time, and never touches what
# the README's dev commands load (output/warehouse.duckdb, dev:tap-maptable-to-target-duckdb).
DATABASE = WORK / "warehouse.duckdb"
PIPELINE = ("tap-maptable", "target-duckdb")
STATE_SUFFIX = "demo"
STATE_ID = f"dev:tap-maptable-to-target-duckdb:{STATE_SUFFIX}"
# The sandbox's default app, the one the README, meltano.yml's `dev` environment and
# sandbox/README.md use: after the demo, the same commands work against `maptable-sandbox`.
APP_ID = "app-1"
APP_SECRET = "secret-1"  # noqa: S105 - a fake app of the local sandbox, documented everywhere
# `meltano install` of the demo's plugins is redone when one of these files changes: the
# dependencies, the loaders' pins, and the version (the editable tap's metadata holds it).
INSTALL_INPUTS = ("pyproject.toml", "meltano.yml", "tap_maptable/__init__.py")
INSTALL_STAMP = ROOT / ".meltano" / "demo-plugins-installed-for.sha256"
EDITED_ROWS = 3
SAMPLE_ROWS = 3


class DemoError(Exception):
    """A step failed; the message says which and where its log is."""


def say(text: str = "") -> None:
    """One line for the reader."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@dataclass
class Sandbox:
    """The sandbox subprocess and where it reports."""

    process: subprocess.Popen[bytes]
    url: str
    request_log: Path

    def api_requests(self) -> int:
        """API requests the sandbox has answered so far (admin calls are not logged)."""
        if not self.request_log.exists():
            return 0
        with self.request_log.open(encoding="utf-8") as lines:
            return sum(1 for line in lines if line.strip())

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call one of the sandbox's /_sandbox/ endpoints (they edit its data)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL is the local sandbox's
            f"{self.url}/_sandbox/{path}", data=data, method=method
        )
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop within 5 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_sandbox() -> Sandbox:
    """Start `maptable-sandbox` on a free port with its sample data and strict 60/min limit."""
    ready = WORK / "sandbox.ready"
    request_log = WORK / "sandbox-requests.jsonl"
    for path in (ready, request_log):
        path.unlink(missing_ok=True)
    argv = [
        str(SANDBOX),
        "--port=0",
        f"--app={APP_ID}:{APP_SECRET}",
        f"--ready-file={ready}",
        f"--request-log={request_log}",
    ]
    with (WORK / "sandbox.log").open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    sandbox = Sandbox(process, "", request_log)
    deadline = time.monotonic() + 30
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            sandbox.stop()
            msg = f"the sandbox did not start; see {WORK / 'sandbox.log'}"
            raise DemoError(msg)
        time.sleep(0.05)
    sandbox.url = ready.read_text(encoding="utf-8").strip()
    return sandbox


def meltano(args: list[str], env: dict[str, str], log_name: str, *, check: bool = True) -> str:
    """Run Meltano in the project root; return its output, or raise with the log's name."""
    log = WORK / log_name
    with log.open("w", encoding="utf-8") as out:
        result = subprocess.run(  # noqa: S603
            [str(MELTANO), *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    output = log.read_text(encoding="utf-8")
    if check and result.returncode != 0:
        tail = "\n".join(_readable(line) for line in output.splitlines()[-15:])
        msg = f"`meltano {' '.join(args)}` failed (full log: {log}):\n{tail}"
        raise DemoError(msg)
    return output


def _log_record(line: str) -> dict[str, Any] | None:
    """One line of `meltano --log-format=json` output, or None."""
    if not line.startswith("{"):
        return None
    with contextlib.suppress(ValueError):
        record = json.loads(line)
        return record if isinstance(record, dict) else None
    return None


def _readable(line: str) -> str:
    """A JSON log line as one line of text, for an error message."""
    record = _log_record(line)
    if record is None:
        return line
    text = f"{record.get('level', '')} {record.get('name', 'meltano')}: {record.get('event', '')}"
    exception = record.get("plugin_exception") or record.get("exception")
    return f"{text} ({exception})" if exception else text


# The line each table ends with in the tap's log (`tap_maptable.logs.TABLE_DONE`; this venv has
# the sandbox, not the tap): "table_<id> (<name>): <n> rows sent, ...".
TABLE_DONE = re.compile(r"(?P<stream>table_[A-Za-z0-9_]+) \(.*\): (?P<rows>\d+) rows? sent")


def rows_sent(output: str) -> int:
    """Table rows the tap sent, from the line each table ends with in Meltano's output."""
    total = 0
    for line in output.splitlines():
        record = _log_record(line)
        if record is not None and record.get("name") != PIPELINE[0]:
            continue
        message = str(record.get("event", "")) if record is not None else line
        match = TABLE_DONE.search(message)
        if match:
            total += int(match["rows"])
    return total


def run_pipeline(sandbox: Sandbox, env: dict[str, str], label: str) -> tuple[int, int, float]:
    """`meltano run tap-maptable target-duckdb`: rows sent, API requests and seconds."""
    requests_before = sandbox.api_requests()
    started = time.monotonic()
    output = meltano(
        [
            "--log-format=json",
            "--environment=dev",
            "run",
            "--state-id-suffix",
            STATE_SUFFIX,
            *PIPELINE,
        ],
        env,
        f"{label}.log",
    )
    seconds = time.monotonic() - started
    return rows_sent(output), sandbox.api_requests() - requests_before, seconds


def show_warehouse(conn: duckdb.DuckDBPyConnection) -> str:
    """Print each table's MapTable name and row count, one table's columns and a few rows."""
    names = dict(conn.execute("SELECT 'table_' || id, name FROM maptable.table_nodes").fetchall())
    tables = [
        str(row[0])
        for row in conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'maptable' ORDER BY table_name"
        ).fetchall()
    ]
    say(f"  {'DuckDB table':<22} {'rows':>5}  MapTable name")
    for table in tables:
        count = _scalar(conn, f'SELECT count(*) FROM maptable."{table}"')
        say(f"  {table:<22} {count:>5}  {names.get(table, '')}")
    first = next(t for t in tables if t.startswith("table_tbl"))
    columns = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'maptable' AND table_name = ? ORDER BY ordinal_position",
        [first],
    ).fetchall()
    say(f"\n  Columns of {first} ({names.get(first, '')}):")
    say("    " + ", ".join(f"{name} {kind}" for name, kind in columns if name[:4] != "_sdc"))
    say("\n  A few of its rows:")
    sample = conn.execute(
        f'SELECT "名称", amount, "单价", "due date", location, _updated_at '
        f'FROM maptable."{first}" ORDER BY _row_id LIMIT {SAMPLE_ROWS}'
    ).fetchall()
    say("    名称 | amount | 单价 | due date | location | _updated_at")
    for row in sample:
        say("    " + " | ".join("∅" if v is None else str(v) for v in row))
    return first


def always_resent(conn: duckdb.DuckDBPyConnection) -> int:
    """Rows an incremental run sends although unchanged: no update time, or the bookmark's."""
    tables = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'table_tbl%'"
    ).fetchall()
    return sum(
        _scalar(
            conn,
            f'SELECT count(*) FROM maptable."{t}" WHERE _updated_at IS NULL '
            f'OR _updated_at = (SELECT max(_updated_at) FROM maptable."{t}")',
        )
        for (t,) in tables
    )


def edit_rows(sandbox: Sandbox, table_id: str) -> list[str]:
    """Append " (edited)" to the first text cell of three rows, in the sandbox's data."""
    rows = sandbox.admin("GET", f"tables/{table_id}/rows")[:EDITED_ROWS]
    edited = []
    for row in rows:
        column, value = next((k, v) for k, v in row["cells"].items() if isinstance(v, str))
        new = f"{value} (edited)"
        sandbox.admin("POST", f"tables/{table_id}/rows/{row['id']}", {"cells": {column: new}})
        edited.append(new)
    return edited


def _scalar(conn: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _project_digest() -> str:
    digest = hashlib.sha256()
    for name in INSTALL_INPUTS:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_plugins(env: dict[str, str]) -> None:
    """`meltano install` of the two plugins the demo runs, when one is missing or is stale.

    Stale: one of INSTALL_INPUTS changed since they were installed (the tap is installed
    editable, which follows code changes but not new dependencies or a new version). The
    project's other loaders (PostgreSQL, JSON lines) are not installed: `make test` does.
    """
    missing = [name for name in plugins.missing() if name in PIPELINE]
    stamp = INSTALL_STAMP.read_text().strip() if INSTALL_STAMP.exists() else ""
    if missing or stamp != _project_digest():
        say(f"Installing {' and '.join(PIPELINE)} into .meltano/ (once; under a minute)...")
        meltano(["install", *PIPELINE], env, "install.log")
        INSTALL_STAMP.write_text(_project_digest() + "\n")


def demo() -> None:
    """The whole demo; the sandbox is stopped whatever happens."""
    started = time.monotonic()
    WORK.mkdir(parents=True, exist_ok=True)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_", "TARGET_"))}
    base_env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    ensure_plugins(base_env)

    say("1. Starting the MapTable sandbox (fake API, sample data, 60 requests/minute)...")
    sandbox = start_sandbox()
    try:
        say(f"   listening on {sandbox.url}")
        env = {
            **base_env,
            "TAP_MAPTABLE_API_URL": sandbox.url,
            "TAP_MAPTABLE_APP_ID": APP_ID,
            "TAP_MAPTABLE_APP_SECRET": APP_SECRET,
            "TARGET_DUCKDB_PATH": str(DATABASE),
        }
        # A fresh start: no warehouse file, no bookmarks from an earlier demo.
        for path in (DATABASE, DATABASE.with_name(DATABASE.name + ".wal")):
            path.unlink(missing_ok=True)
        meltano(
            ["--environment=dev", "state", "clear", "--force", STATE_ID],
            env,
            "clear.log",
            check=False,  # fails when there is nothing to clear
        )

        say(
            "\n2. First run: meltano --environment=dev run --state-id-suffix demo "
            "tap-maptable target-duckdb"
        )
        first = run_pipeline(sandbox, env, "run-1")
        say(f"   {first[0]} table rows sent, {first[1]} API requests, {first[2]:.1f} s")
        say(f"\n3. What landed in {DATABASE.relative_to(ROOT)} (read from the file itself):")
        with contextlib.closing(duckdb.connect(str(DATABASE), read_only=True)) as conn:
            table = show_warehouse(conn)

        with contextlib.closing(duckdb.connect(str(DATABASE), read_only=True)) as conn:
            always = always_resent(conn)
        edited = edit_rows(sandbox, table.removeprefix("table_"))
        say(f"\n4. Edited {len(edited)} rows of {table} in MapTable (the sandbox).")
        say("   Second run, the same command:")
        second = run_pipeline(sandbox, env, "run-2")
        say(f"   {second[0]} table rows sent, {second[1]} API requests, {second[2]:.1f} s")
        if second[0] == len(edited) + always:
            say(
                f"   = the {len(edited)} edited rows + {always} unchanged rows that every "
                "incremental run sends again"
            )
            say("     (their update time is empty, or exactly the bookmark: never lost).")
        with contextlib.closing(duckdb.connect(str(DATABASE), read_only=True)) as conn:
            landed = [
                str(row[0])
                for row in conn.execute(f'SELECT "名称" FROM maptable."{table}"').fetchall()
            ]
            total = sum(
                _scalar(conn, f'SELECT count(*) FROM maptable."{t}"')
                for (t,) in conn.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_name LIKE 'table_tbl%'"
                ).fetchall()
            )
        found = sum(1 for name in edited if name in landed)
        say(f"   The {found} edited rows are in DuckDB with their new values; the warehouse")
        say(f"   still holds {total} table rows, each once (updates replace, by _row_id).")
        bookmark = _bookmark(env, table)
        if bookmark:
            say(f"   Meltano keeps the bookmarks in its state ({STATE_ID}); {table}'s")
            say(f"   is now _updated_at >= {bookmark}.")

        say(
            f"\nDone in {time.monotonic() - started:.0f} s: {first[1] + second[1]} API requests "
            f"in all ({first[1]} + {second[1]}; each run also discovers the tables)."
        )
        python = os.path.relpath(sys.executable, ROOT)
        explore = (
            f"conn = duckdb.connect('{DATABASE.relative_to(ROOT)}'); "
            "conn.sql('SHOW ALL TABLES').show()"
        )
        say(f'Explore: {python} -c "import duckdb; {explore}"')
    finally:
        sandbox.stop()


def _bookmark(env: dict[str, str], table: str) -> str | None:
    output = meltano(["--environment=dev", "state", "get", STATE_ID], env, "state.log")
    start = output.find("{")
    if start < 0:
        return None
    with contextlib.suppress(ValueError):
        state, _ = json.JSONDecoder().raw_decode(output[start:])
        mark = state["singer_state"]["bookmarks"][table]["replication_key_value"]
        return str(mark)
    return None


def main() -> int:
    """Run the demo; 1 on failure, 130 on Ctrl-C (or SIGTERM)."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        demo()
    except DemoError as exc:
        say(f"\ndemo failed: {exc}")
        return 1
    except KeyboardInterrupt:
        say("\ndemo interrupted; the sandbox was stopped.")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
