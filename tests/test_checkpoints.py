"""STATE pacing: a STATE per segment for a small app, no flood of STATE for a large one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tap_maptable import checkpoints
from tap_maptable.checkpoints import STATE_BYTES_PER_S, PacedStateWriter, interval_s
from tests.helpers import is_row_stream, sync, tap_config


class _Writer:
    def __init__(self) -> None:
        self.written: list[Any] = []

    def write_state(self, state: Any) -> None:
        self.written.append(state)


def test_a_small_state_waits_a_request_a_big_one_as_long_as_its_size_takes() -> None:
    assert interval_s(1.0, 2_000) == 1.0
    assert interval_s(0.05, 0) == 0.05
    assert interval_s(1.0, 1_000_000) == pytest.approx(1_000_000 / STATE_BYTES_PER_S)


def test_a_state_too_soon_is_skipped_unless_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(checkpoints.time, "monotonic", lambda: now[0])
    size = [0]
    inner = _Writer()
    writer = PacedStateWriter(inner, base_s=lambda: 1.0, last_bytes=lambda: size[0])
    writer.write_state("a")
    now[0] += 0.5
    writer.write_state("b")  # half a second later: skipped
    writer.write_state("c", force=True)  # the end of a run, or a stop: never skipped
    now[0] += 1.0
    writer.write_state("d")
    size[0] = 10 * STATE_BYTES_PER_S  # a 10-s STATE: the next waits 10 s
    now[0] += 9.0
    writer.write_state("e")
    now[0] += 1.0
    writer.write_state("f")
    assert inner.written == ["a", "c", "d", "f"]


def test_many_tables_get_a_few_states_and_the_last_holds_every_bookmark(
    make_sandbox: Any,
) -> None:
    # 60 tables: a STATE after every table (the SDK's) and every segment (ours) would be about
    # 120 STATE lines each holding all 60 bookmarks.
    sandbox = make_sandbox(
        workspaces=2, projects_per_workspace=3, tables_per_project=10, rows_per_table=20
    )
    run = sync(tap_config(sandbox, requests_per_minute=100_000))
    states = run.of_type("STATE")
    tables = [stream for stream in run.rows if is_row_stream(stream)]
    assert len(tables) == 60
    assert len(states) < len(tables), len(states)
    last = states[-1]["value"]
    assert set(tables) <= set(last["bookmarks"])
    assert last["run"]["complete"] is True
    # Every STATE is whole JSON of every bookmark so far (nothing cut to make it smaller).
    assert all(json.dumps(s["value"]) for s in states)
