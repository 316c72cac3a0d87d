"""`meltano run tap-maptable target-duckdb` against the sandbox, checked in the DuckDB file."""

# ruff: noqa: S608 - table names in SQL come from the sandbox or the warehouse, not from users

from __future__ import annotations

import signal
import time
from datetime import datetime
from pathlib import Path

import pytest

from tap_maptable.columns import parse_timestamp
from tests.e2e.support import (
    FULL_TABLE_METADATA,
    bookmarks,
    column_ids,
    kill_group,
    meltano,
    meltano_env,
    meltano_lock,
    sent_again,
    start_meltano,
    state_of,
    stream_of,
    truth_entities,
    truth_rows,
    unique,
)
from tests.e2e.warehouse import FIXED_STREAMS, check_entities, check_rows
from tests.e2e.warehouse import opened_duckdb as opened

pytestmark = [pytest.mark.xdist_group("meltano"), pytest.mark.slow]

PIPELINE = ["tap-maptable", "target-duckdb"]


def batched(path: Path, table: str) -> dict[str, object]:
    """Row id -> when the target last loaded it (changes exactly when a row is sent again)."""
    with opened(path) as wh:
        return dict(wh.query(f'SELECT _row_id, _sdc_batched_at FROM maptable."{table}"'))


def resent(before: dict[str, object], after: dict[str, object]) -> set[str]:
    return {row_id for row_id, at in after.items() if before.get(row_id) != at}


def test_run_lands_everything_once_with_types_then_only_changes(
    meltano_project, make_sandbox, tmp_path
):
    sandbox = make_sandbox()
    db = tmp_path / "warehouse.duckdb"
    suffix = unique("duckdb")
    env = meltano_env(sandbox, TARGET_DUCKDB_PATH=str(db))
    first = meltano(["run", "--state-id-suffix", suffix, *PIPELINE], env)

    truth = truth_rows(sandbox)
    with opened(db) as wh:
        assert wh.tables() == {*FIXED_STREAMS, *truth}
        check_entities(wh, truth_entities(sandbox))
        for table, rows in truth.items():
            check_rows(wh, table, rows)
        types = wh.column_types(next(iter(truth)))
        project_types = wh.column_types("projects")
        node_types = wh.column_types("table_nodes")
    sent = first.record_counts()
    assert {s: sent.get(s) for s in truth} == {s: len(r) for s, r in truth.items()}
    # Numbers are numeric, date-times timestamps, coordinates and unknown types JSON, and the
    # unicode, spaced and empty-name-derived column names survive (folded to lower case).
    assert types["amount"] == "DOUBLE"
    assert types["单价"] == "DOUBLE"
    assert types["due date"] == "TIMESTAMP"
    assert types["_updated_at"] == "TIMESTAMP"
    assert types["location"] == "JSON"
    assert types["files"] == "JSON"
    # Every documented MapTable type has its warehouse type (README, "Types").
    assert types["done"] == "BOOLEAN"
    assert types["website"] == "JSON"
    assert types["discount"] == "DOUBLE"
    assert types["quantity"] == "DOUBLE"
    assert any(name.startswith("_column_fld") for name in types)
    assert project_types["creator"] == "JSON"
    assert project_types["membercount"] in {"HUGEINT", "BIGINT", "INTEGER"}
    assert types["名称"] == "VARCHAR"
    assert node_types["published"] == "BOOLEAN"

    # Change three rows of two tables, then run the same pipeline again.
    state_id = f"dev:tap-maptable-to-target-duckdb:{suffix}"
    marks = bookmarks(state_of(state_id, env))
    assert set(marks) == set(truth)
    changed: dict[str, set[str]] = {}
    for table, how_many in zip(sandbox.data.tables(), (2, 1), strict=False):
        ids = column_ids(sandbox, table.table_id)
        for row_id in list(truth[stream_of(table.table_id)])[-how_many:]:
            sandbox.data.update_row(
                table.table_id,
                row_id,
                {ids["Amount"]: 4242.5, ids["单价"]: 7, ids["Location"]: {"lng": 1.5, "lat": -2}},
            )
            changed.setdefault(stream_of(table.table_id), set()).add(row_id)
    before = {table: batched(db, table) for table in truth}
    second = meltano(["run", "--state-id-suffix", suffix, *PIPELINE], env)

    after_truth = truth_rows(sandbox)
    with opened(db) as wh:
        for table, rows in after_truth.items():
            check_rows(wh, table, rows)  # each row once, updated rows with their new values
    counts = second.record_counts()
    for table, rows in after_truth.items():
        expected = sent_again(rows, marks[table])
        assert changed.get(table, set()) <= expected
        unchanged = expected - changed.get(table, set())
        assert unchanged == {r for r in rows if rows[r] == truth[table][r]} & expected
        assert resent(before[table], batched(db, table)) == expected, table
        assert counts.get(table, 0) == len(expected), table
    assert sum(len(v) for v in changed.values()) == 3
    new_marks = bookmarks(state_of(state_id, env))
    for table in changed:
        assert parse_timestamp(new_marks[table]) > parse_timestamp(marks[table]), "bookmark moved"


def test_full_table_run_resends_every_row_and_leaves_deleted_rows_stale(
    meltano_project, make_sandbox, tmp_path
):
    """target-duckdb ignores ACTIVATE_VERSION: a row deleted in MapTable stays, not re-stamped.

    After a FULL_TABLE run, the rows whose `_sdc_batched_at` did not advance are the deleted ones
    (README.md, "Warehouses", shows the query).
    """
    sandbox = make_sandbox()
    db = tmp_path / "warehouse.duckdb"
    env = meltano_env(sandbox, TARGET_DUCKDB_PATH=str(db))
    suffix = unique("duckdb-full")
    meltano(["run", "--state-id-suffix", suffix, *PIPELINE], env)

    table = sandbox.data.tables()[0]
    stream = stream_of(table.table_id)
    gone = next(iter(truth_rows(sandbox)[stream]))
    sandbox.data.delete_row(table.table_id, gone)
    before = batched(db, stream)
    full_env = {**env, "TAP_MAPTABLE__METADATA": FULL_TABLE_METADATA}
    time.sleep(1.1)  # the time is noted to the second, as README's `date +'%F %T'`
    noted = datetime.now().strftime("%Y-%m-%d %H:%M:%S")  # noqa: DTZ005 - the loader's clock
    run = meltano(["run", "--state-id-suffix", suffix, *PIPELINE], full_env)

    truth = truth_rows(sandbox)
    assert gone not in truth[stream]
    assert run.record_counts()[stream] == len(truth[stream]), "FULL_TABLE sends every live row"
    after = batched(db, stream)
    assert set(after) == set(truth[stream]) | {gone}, "the deleted row is still in DuckDB"
    assert {r for r in after if after[r] == before[r]} == {gone}, "and only it was not reloaded"
    # README's query finds exactly that row; comparing with the newest stamp would not.
    with opened(db) as wh:
        stale = wh.query(
            f"SELECT _row_id FROM maptable.\"{stream}\" WHERE _sdc_batched_at < TIMESTAMP '{noted}'"
        )
        newest = wh.query(
            f'SELECT _row_id FROM maptable."{stream}" WHERE _sdc_batched_at < '
            f'(SELECT max(_sdc_batched_at) FROM maptable."{stream}")'
        )
    assert {row_id for (row_id,) in stale} == {gone}
    assert len(newest) > 1, "every row is stamped at its own time"


def _paced_pipeline(make_sandbox, tmp_path):
    """A strict sandbox (10 requests per 2 s), a tap paced to match, DuckDB committing every
    10 rows: a run takes seconds and can be stopped half-way."""
    sandbox = make_sandbox(rate_limit=10, rate_window=2.0, segment_size=10)
    db = tmp_path / "warehouse.duckdb"
    env = meltano_env(
        sandbox,
        TARGET_DUCKDB_PATH=str(db),
        TARGET_DUCKDB_BATCH_SIZE_ROWS="10",
        TAP_MAPTABLE_REQUESTS_PER_MINUTE="10",
        TAP_MAPTABLE_RATE_LIMIT_WINDOW_SECONDS="2",
    )
    return sandbox, db, env


def test_killed_run_loses_nothing_when_run_again(meltano_project, make_sandbox, tmp_path):
    # A strict sandbox (10 requests per 2 s) and a tap paced to match: the run takes seconds.
    sandbox, db, env = _paced_pipeline(make_sandbox, tmp_path)
    suffix = unique("duckdb-kill")
    args = ["run", "--state-id-suffix", suffix, *PIPELINE]
    truth = truth_rows(sandbox)
    segments = sum(len(rows) // 10 for rows in truth.values())

    with meltano_lock():
        process = start_meltano(args, env, tmp_path / "killed.log")
        try:
            deadline = time.monotonic() + 120
            while _later_segments(sandbox) < segments // 3:
                assert process.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the run never got a third of the way"
                time.sleep(0.1)
        finally:
            kill_group(process)
    assert _later_segments(sandbox) < segments, "killed before the last segment was read"

    landed_before = _row_count(db)
    assert landed_before < sum(len(rows) for rows in truth.values())

    # Meltano still sees the killed run as running (for 5 minutes): it asks for --force.
    refused = meltano(args, env, check=False)
    assert refused.returncode != 0
    assert "already running" in refused.output
    assert "--force" in refused.output
    meltano(["run", "--force", *args[1:]], env)
    with opened(db) as wh:
        check_entities(wh, truth_entities(sandbox))
        for table, rows in truth.items():
            check_rows(wh, table, rows)


def _row_count(db: Path) -> int:
    """Rows of every row table in the DuckDB file (0 if nothing was loaded yet)."""
    if not db.exists():
        return 0
    with opened(db) as wh:
        return sum(
            wh.query(f'SELECT count(*) FROM maptable."{table}"')[0][0]
            for table in wh.tables()
            if table.startswith("table_tbl")
        )


def _later_segments(sandbox) -> int:
    """Segment requests past each table's first: sent by the sync, never by discovery."""
    return sum(
        1
        for entry in sandbox.requests
        if entry.kind == "rows" and entry.status == 200 and "lastSegmentRowID" in entry.query
    )


def test_a_sigtermed_run_is_continued_with_only_its_unfinished_requests(
    meltano_project, make_sandbox, tmp_path
):
    """SIGTERM to `meltano run` half-way, then a rerun: nothing lost, little asked again.

    The rerun asks at most for the segments the saved state does not vouch for, the requests in
    flight at the stop, and one first segment per table for Meltano's discovery (an editable
    install is discovered again on every run).
    """
    sandbox, db, env = _paced_pipeline(make_sandbox, tmp_path)
    suffix = unique("duckdb-term")
    args = ["run", "--state-id-suffix", suffix, *PIPELINE]
    truth = truth_rows(sandbox)
    per_table = {table: len(rows) // 10 for table, rows in truth.items()}
    segments = sum(per_table.values())
    with meltano_lock():
        process = start_meltano(args, env, tmp_path / "stopped.log")
        deadline = time.monotonic() + 120
        while _later_segments(sandbox) < segments // 2:
            assert process.poll() is None, (tmp_path / "stopped.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the run never got half-way"
            time.sleep(0.05)
        stopped_at = time.time()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    in_flight = sum(1 for e in sandbox.requests if e.kind == "rows" and e.t <= stopped_at < e.t_end)
    # The progress lines (one per 2-s window here) reach Meltano's log.
    assert "Progress: " in (tmp_path / "stopped.log").read_text()
    state = state_of(f"dev:tap-maptable-to-target-duckdb:{suffix}", env)["singer_state"]
    assert state["run"]["complete"] is False
    done = 0
    for table, count in per_table.items():
        mark = state["bookmarks"].get(table, {})
        if mark.get("read_in_run") == state["run"]["started_at"]:
            done += count
        else:
            done += (mark.get("resume") or {}).get("segments") or 0
    assert done > 0, "the saved state vouches for nothing"

    sandbox.reset_log()
    rerun = meltano(args, env)
    asked = sum(1 for e in sandbox.requests if e.kind == "rows")
    assert asked <= segments - done + in_flight + len(per_table), (asked, done, in_flight)
    assert "Continuing the run that began at" in rerun.output
    with opened(db) as wh:
        check_entities(wh, truth_entities(sandbox))
        for table, rows in truth.items():
            check_rows(wh, table, rows)
