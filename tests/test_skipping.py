"""One table's failure is that table's: the others are extracted and committed, exit code 3.

A permission change on one table (403, 404, or HTTP 200 with a non-zero code), or a table whose
columns the tap cannot map, must not stop a nightly load of every other table. The table is
skipped with one WARNING, its bookmark stays where it was (so the next run reads it again), and
the run ends with one line naming it and exit code 3: a scheduler can tell "all loaded" (0) from
"loaded but some skipped" (3) from "failed" (1).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from tap_maptable.errors import EXIT_TABLES_SKIPPED
from tests.helpers import discover, run_cli, sync, tap_config

MODES = [
    "403",
    "404",
    "code",
    "bad_columns",
    "columns_without_id",
    "403_after_first",
    "404_after_first",
    "code_after_first",
]


def stream(table_id: str) -> str:
    return f"table_{table_id}"


@pytest.mark.parametrize("mode", MODES)
def test_an_unreadable_table_is_skipped_and_every_other_one_committed(
    make_sandbox: Any, tmp_path: Path, mode: str
) -> None:
    sandbox = make_sandbox(rows_per_table=30, segment_size=10)
    tables = [t.table_id for t in sandbox.data.tables()]
    bad = tables[1]
    config = tap_config(sandbox)
    catalog = discover(config)
    first = sync(config, catalog=catalog)
    assert first.last_state is not None
    sandbox.data.update_row(bad, next(iter(sandbox.data.rows(bad)))["id"], {})
    sandbox.set_table_fault(bad, mode)

    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    (tmp_path / "state.json").write_text(json.dumps(first.last_state))
    run = run_cli(
        ["--catalog", str(tmp_path / "catalog.json"), "--state", str(tmp_path / "state.json")],
        config,
    )

    assert run.returncode == EXIT_TABLES_SKIPPED, run.stderr[-2000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("tap-maptable: warning: 1 table(s) skipped")
    assert stream(bad) in last
    warnings = [line for line in run.stderr.splitlines() if f"Skipping {stream(bad)}" in line]
    assert len(warnings) == 1
    state = run.last_state
    assert state is not None
    before = first.last_state["bookmarks"][stream(bad)]
    assert (
        state["bookmarks"][stream(bad)]["replication_key_value"]
        == (before["replication_key_value"])
    )
    assert "progress_markers" not in state["bookmarks"][stream(bad)]
    for table_id in tables:
        if table_id != bad:
            assert "replication_key_value" in state["bookmarks"][stream(table_id)]
    assert {"projects", "table_nodes", "workspaces"} <= set(run.records)


def test_the_skipped_table_is_read_again_next_run(make_sandbox: Any, tmp_path: Path) -> None:
    sandbox = make_sandbox(rows_per_table=30, segment_size=10)
    bad = sandbox.data.tables()[0].table_id
    config = tap_config(sandbox, table_ids=[bad, sandbox.data.tables()[1].table_id])
    catalog = discover(config)
    first = sync(config, catalog=catalog)
    edited = next(iter(sandbox.data.rows(bad)))["id"]
    sandbox.data.update_row(bad, edited, {})
    sandbox.set_table_fault(bad, "403_after_first")
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    (tmp_path / "state.json").write_text(json.dumps(first.last_state))
    files = ["--catalog", str(tmp_path / "catalog.json")]
    skipping = run_cli([*files, "--state", str(tmp_path / "state.json")], config)
    assert skipping.returncode == EXIT_TABLES_SKIPPED
    sandbox.set_table_fault(bad, None)
    # The state a target commits is the last STATE the skipping run wrote.
    (tmp_path / "state.json").write_text(json.dumps(skipping.last_state))
    again = run_cli([*files, "--state", str(tmp_path / "state.json")], config)
    assert again.returncode == 0, again.stderr[-2000:]
    assert edited in {r["_row_id"] for r in again.rows[stream(bad)]}


def test_a_table_discovery_cannot_read_is_reported_by_the_sync(
    make_sandbox: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Under Meltano, discovery and sync are two processes: a table discovery could not read
    # stays in the catalog, marked, and the sync reports it as skipped (exit 3), never silently.
    sandbox = make_sandbox(rows_per_table=5)
    bad = sandbox.data.tables()[3].table_id
    sandbox.set_table_fault(bad, "columns_without_id")
    with caplog.at_level(logging.WARNING):
        catalog = discover(tap_config(sandbox))
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == stream(bad))
    assert "Not readable when discovered" in entry["schema"]["description"]
    assert any(bad in r.getMessage() and "no id" in r.getMessage() for r in caplog.records)
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    for args in (["--catalog", str(tmp_path / "catalog.json")], []):  # Meltano's, and one process
        run = run_cli(args, tap_config(sandbox))
        assert run.returncode == EXIT_TABLES_SKIPPED, run.stderr[-2000:]
        assert stream(bad) in run.stderr.strip().splitlines()[-1]
        assert stream(bad) not in {m["stream"] for m in run.of_type("SCHEMA")}
        assert len(run.rows) == len(sandbox.data.tables()) - 1


def test_a_run_that_skips_nothing_exits_zero(make_sandbox: Any) -> None:
    sandbox = make_sandbox(rows_per_table=5)
    run = run_cli([], tap_config(sandbox))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "skipped" not in run.stderr.strip().splitlines()[-1]
