"""Transient faults are retried with backoff; persistent ones end in one clear line."""

from __future__ import annotations

import pytest

from maptable_sandbox import FaultPlan
from tests.helpers import kinds, run_cli, sync, tap_config

KINDS = ["500", "503", "html502", "drop", "timeout", "truncate", "code"]


def _truth_rows(sandbox) -> int:
    return sum(sandbox.data.row_count(t.table_id) for t in sandbox.data.tables())


@pytest.mark.parametrize("kind", KINDS)
def test_each_transient_fault_is_retried_to_a_complete_run(make_sandbox, kind) -> None:
    sandbox = make_sandbox(
        workspaces=1,
        segment_size=20,
        faults=FaultPlan(schedule={3: kind, 6: kind, 7: kind}, timeout_delay=2.0),
    )
    run = sync(tap_config(sandbox, request_timeout=1))
    rows = sum(len(v) for v in run.rows.values())
    assert rows == _truth_rows(sandbox)
    ids = [r["_row_id"] for v in run.rows.values() for r in v]
    assert len(ids) == len(set(ids))
    assert sum(1 for e in sandbox.requests if e.fault == kind) == 3


def test_a_persistent_failure_ends_in_one_clear_line_after_bounded_tries(sandbox) -> None:
    sandbox.set_faults(FaultPlan(rates={"500": 1.0}, kinds_for=("workspaces",)))
    run = run_cli(["--discover"], {**tap_config(sandbox), "max_tries": 3})
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "tap-maptable: error: GET /open/api/v1/workspaces/, HTTP 500, code 50000"
    )
    assert "requestID" in last
    assert "Traceback" not in run.stderr
    assert kinds(sandbox)["workspaces"] == 3


def test_html_error_pages_are_never_dumped_into_the_log(sandbox) -> None:
    sandbox.set_faults(FaultPlan(rates={"html502": 1.0}, kinds_for=("workspaces",)))
    run = run_cli(["--discover"], {**tap_config(sandbox), "max_tries": 2})
    assert run.returncode == 1
    assert "<html" not in run.stderr.lower()
    assert "HTML page" in run.stderr.strip().splitlines()[-1]
