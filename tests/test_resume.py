"""A stopped run is continued, not begun again: mid-table resume points and finished tables.

Each case stops the `tap-maptable` command (SIGTERM or SIGKILL) half-way through a paced sync
and runs it again from the last STATE it emitted. The rerun asks only for what the stopped run
had not sent (at most plus the requests that were in flight), nothing is lost, and a table
MapTable will not continue (its resume row deleted: an error code, a 404, or the first segment
again) is read again from its first segment with one WARNING.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tap_maptable.reading.schedule import (
    Claim,
    Window,
    claim,
    holds_up_the_end,
    may_send,
    slow_link,
)
from tests.hardening.support import record_key, truth
from tests.helpers import VENV_BIN, discover, run_cli, set_replication, tap_config

PARALLEL = 4
TABLES, SEGMENTS, ROWS = 4, 12, 10


def _sandbox(make_sandbox: Any, **extra: Any) -> Any:
    """4 tables of 12 segments of 10 rows, 30 requests per 1.5 s on both sides."""
    options = {
        "workspaces": 1,
        "projects_per_workspace": 2,
        "tables_per_project": 2,
        "rows_per_table": SEGMENTS * ROWS,
        "segment_size": ROWS,
        "latency_s": 0.02,
        "rate_limit": 30,
        "rate_window": 1.5,
    }
    return make_sandbox(**{**options, **extra})


def _config(sandbox: Any, **extra: Any) -> dict[str, Any]:
    settings = {
        "requests_per_minute": 30,
        "rate_limit_window_seconds": 1.5,
        "max_parallel_requests": PARALLEL,
    }
    return tap_config(sandbox, **{**settings, **extra})


def _run_with(
    config: dict[str, Any], catalog: dict[str, Any], state: dict[str, Any], tmp_path: Path
) -> Any:
    """`tap-maptable --catalog ... --state ...` with these as files in `tmp_path`."""
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    (tmp_path / "state.json").write_text(json.dumps(state))
    return run_cli(
        ["--catalog", str(tmp_path / "catalog.json"), "--state", str(tmp_path / "state.json")],
        config,
    )


def _files(tmp_path: Path, sandbox: Any, config: dict[str, Any]) -> list[str]:
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text(json.dumps(discover(config)))
    return [
        str(VENV_BIN / "tap-maptable"),
        "--config",
        str(tmp_path / "config.json"),
        "--catalog",
        str(tmp_path / "catalog.json"),
    ]


def _stopped_run(argv: list[str], sandbox: Any, signum: int, after: int) -> list[dict[str, Any]]:
    """Run the tap; send `signum` once the sandbox has served `after` row segments."""
    sandbox.reset_log()
    messages = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None
        sent = False
        for line in proc.stdout:
            if not line.endswith(b"\n"):
                break
            messages.append(json.loads(line))
            if not sent and sum(e.kind == "rows" for e in sandbox.requests) >= after:
                os.kill(proc.pid, signum)
                sent = True
        proc.wait(timeout=60)
    assert sent, "the run ended before the signal"
    return messages


def _last_state(messages: list[dict[str, Any]]) -> dict[str, Any]:
    states: list[dict[str, Any]] = [m["value"] for m in messages if m["type"] == "STATE"]
    assert states
    return states[-1]


def _segments_done(state: dict[str, Any]) -> int:
    """Segments the STATE says were sent: finished tables whole, the one in progress so far."""
    run = state["run"]
    done = 0
    for stream, mark in state["bookmarks"].items():
        if not stream.startswith("table_t"):
            continue
        if mark.get("read_in_run") == run["started_at"]:
            done += SEGMENTS
        else:
            done += (mark.get("resume") or {}).get("segments") or 0
    return done


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_stopped_run_is_continued_with_only_the_unfinished_requests(
    make_sandbox: Any, tmp_path: Path, signum: int
) -> None:
    sandbox = _sandbox(make_sandbox)
    argv = _files(tmp_path, sandbox, _config(sandbox))
    stopped = _stopped_run(argv, sandbox, signum, after=TABLES * SEGMENTS // 2)
    state = _last_state(stopped)
    assert state["run"]["complete"] is False
    done = _segments_done(state)
    assert done >= SEGMENTS, "the STATE records less than one table's worth of work"
    (tmp_path / "state.json").write_text(json.dumps(state))
    sandbox.reset_log()
    rerun = subprocess.run(
        [*argv, "--state", str(tmp_path / "state.json")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    redone = sum(e.kind == "rows" for e in sandbox.requests)
    unfinished = TABLES * SEGMENTS - done
    # At most the work the STATE did not vouch for, plus what was in flight at the stop.
    assert redone <= unfinished + PARALLEL, (redone, unfinished)
    assert "Continuing the run that began at" in rerun.stderr
    # Nothing lost: the two runs together sent every row.
    messages = stopped + [json.loads(line) for line in rerun.stdout.splitlines()]
    sent = {
        (m["stream"], record_key(m["stream"], m["record"]))
        for m in messages
        if m["type"] == "RECORD"
    }
    for stream, keys in truth(sandbox).items():
        assert {k for s, k in sent if s == stream} >= keys, stream
    final = _last_state([json.loads(line) for line in rerun.stdout.splitlines()])
    assert final["run"]["complete"] is True
    assert all(
        (mark.get("resume") or {}).get("after_row") is None
        for stream, mark in final["bookmarks"].items()
        if stream.startswith("table_t")
    )


def test_after_a_complete_run_the_next_run_reads_every_table(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sandbox = _sandbox(make_sandbox, rate_limit=0)
    argv = _files(tmp_path, sandbox, _config(sandbox, requests_per_minute=6000))
    first = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    (tmp_path / "state.json").write_text(
        json.dumps(_last_state([json.loads(x) for x in first.stdout.splitlines()]))
    )
    sandbox.reset_log()
    subprocess.run(
        [*argv, "--state", str(tmp_path / "state.json")],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert sum(e.kind == "rows" for e in sandbox.requests) == TABLES * SEGMENTS


def _mid_table_state(
    sandbox: Any, config: dict[str, Any], segments: int
) -> tuple[dict[str, Any], str, str]:
    """A STATE as a run stopped after `segments` segments of the first table would leave it."""
    first = sandbox.data.tables()[0].table_id
    stream = f"table_{first}"
    rows = [row["id"] for row in sandbox.data.rows(first)]
    complete = run_cli([], config | {"table_ids": [first]})
    assert complete.returncode == 0, complete.stderr[-1000:]
    state = complete.last_state
    assert state is not None
    mark = state["bookmarks"][stream]
    mark["resume"] = {
        "run": state["run"]["started_at"],
        "after_row": rows[segments * ROWS - 1],
        "segments": segments,
        "version": None,
        "max_updated": None,
        "started_at": "2026-01-01T00:00:00Z",
        "backfill": False,
        "columns": mark["columns_sent"],
        "full_table": False,
    }
    state["run"]["complete"] = False
    mark.pop("read_in_run", None)
    # As in a first run: no bookmark yet, every row is due.
    mark.pop("replication_key", None)
    mark.pop("replication_key_value", None)
    return state, stream, rows[segments * ROWS - 1]


@pytest.mark.parametrize("mode", ["error", "code", "404", "restart"])
def test_a_resume_point_maptable_refuses_reads_the_table_again_with_one_warning(
    make_sandbox: Any, tmp_path: Path, mode: str
) -> None:
    sandbox = _sandbox(make_sandbox, rate_limit=0, deleted_cursor=mode)
    config = _config(sandbox, requests_per_minute=6000)
    catalog = discover(config)
    state, stream, after = _mid_table_state(sandbox, config, segments=5)
    sandbox.data.delete_row(sandbox.data.tables()[0].table_id, after)  # the resume row is gone
    run = _run_with(config, catalog, state, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    warnings = [line for line in run.stderr.splitlines() if "would not continue after row" in line]
    assert len(warnings) == 1, run.stderr[-2000:]
    assert stream in warnings[0]
    table = sandbox.data.tables()[0].table_id
    # Every row of the table, from its first segment on.
    assert {r["_row_id"] for r in run.records[stream]} == {
        row["id"] for row in sandbox.data.rows(table)
    }


def test_a_server_ignoring_the_resume_point_reads_the_table_again(
    make_sandbox: Any, tmp_path: Path
) -> None:
    from maptable_sandbox import FaultPlan  # noqa: PLC0415

    sandbox = _sandbox(make_sandbox, rate_limit=0, segment_size=SEGMENTS * ROWS)
    config = _config(sandbox, requests_per_minute=6000)
    catalog = discover(config)
    state, stream, _ = _mid_table_state(sandbox, config, segments=1)
    sandbox.set_faults(FaultPlan(segment_loop="ignore"))
    run = _run_with(config, catalog, state, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "would not continue after row" in run.stderr
    table = sandbox.data.tables()[0].table_id
    assert {r["_row_id"] for r in run.records[stream]} == {
        row["id"] for row in sandbox.data.rows(table)
    }


def test_a_full_table_read_keeps_its_version_across_runs(make_sandbox: Any, tmp_path: Path) -> None:
    sandbox = _sandbox(make_sandbox)
    config = _config(sandbox)
    table = sandbox.data.tables()[0].table_id
    stream = f"table_{table}"
    catalog = set_replication(discover(config | {"table_ids": [table]}), stream, "FULL_TABLE")
    config = config | {"table_ids": [table]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    argv = [
        str(VENV_BIN / "tap-maptable"),
        "--config",
        str(tmp_path / "config.json"),
        "--catalog",
        str(tmp_path / "catalog.json"),
    ]
    stopped = _stopped_run(argv, sandbox, signal.SIGTERM, after=SEGMENTS // 2)
    state = _last_state(stopped)
    resume = state["bookmarks"][stream]["resume"]
    assert resume["after_row"] is not None
    assert resume["version"] is not None
    assert not [m for m in stopped if m["type"] == "ACTIVATE_VERSION" and m["stream"] == stream]
    (tmp_path / "state.json").write_text(json.dumps(state))
    rerun = run_cli(
        ["--catalog", str(tmp_path / "catalog.json"), "--state", str(tmp_path / "state.json")],
        config,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    versions = [m["version"] for m in rerun.of_type("ACTIVATE_VERSION") if m["stream"] == stream]
    assert versions == [resume["version"]]
    assert {m.get("version") for m in rerun.of_type("RECORD") if m["stream"] == stream} == {
        resume["version"]
    }
    first_versions = {
        m.get("version") for m in stopped if m["type"] == "RECORD" and m["stream"] == stream
    }
    assert first_versions == {resume["version"]}


def test_a_resume_is_dropped_when_the_columns_changed(make_sandbox: Any, tmp_path: Path) -> None:
    sandbox = _sandbox(make_sandbox, rate_limit=0)
    config = _config(sandbox, requests_per_minute=6000)
    state, stream, _ = _mid_table_state(sandbox, config, segments=5)
    table = sandbox.data.tables()[0].table_id
    sandbox.add_column(table, "Priority", "number", fill=1)
    (tmp_path / "state.json").write_text(json.dumps(state))
    run = run_cli(["--state", str(tmp_path / "state.json")], config)  # a fresh discovery
    assert run.returncode == 0, run.stderr[-2000:]
    assert "columns or replication method changed since" in run.stderr
    rows = run.records[stream]
    assert len(rows) == sandbox.data.row_count(table)
    assert all(r["Priority"] == 1 for r in rows)


# -- which table may send: the table being written first ----------------------------------------


def _window(free: int, taken_every: float = 0.0, window_s: float = 60.0) -> Window:
    """`60 - free` slots taken, freeing one every `taken_every` s from now (0: all at the end)."""
    taken = 60 - free
    frees = [window_s if not taken_every else (i + 1) * taken_every for i in range(taken)]
    return Window(free, tuple(sorted(frees)), window_s)


def test_the_first_unfinished_table_may_always_send() -> None:
    assert may_send([], _window(0), latency_s=0.5)


def test_a_later_table_waits_while_an_earlier_one_can_use_the_whole_window() -> None:
    # Answers in 0.5 s, 60 a minute: one table alone can use every slot of the window.
    assert not may_send([Claim(remaining=None)], _window(60), latency_s=0.5)
    # Its size known (10 segments left): the rest of the window is the later tables'.
    assert may_send([Claim(remaining=10)], _window(60), latency_s=0.5)
    assert not may_send([Claim(remaining=10)], _window(10), latency_s=0.5)
    # Nothing measured yet: an earlier table of unknown size may need the whole budget.
    assert not may_send([Claim(remaining=None)], _window(60), latency_s=None)
    assert may_send([Claim(remaining=3)], _window(60), latency_s=None)


def test_on_a_slow_link_later_tables_fill_what_latency_leaves_idle() -> None:
    # Answers in 4 s: an earlier table asks once per 4 s; slots taken a while ago free one a
    # second, so a later table may take the free slots but one, even on the first window.
    steady = _window(2, taken_every=1.0)
    assert may_send([Claim(remaining=None)], steady, latency_s=4.0)
    assert not may_send([Claim(remaining=None)], _window(1, taken_every=1.0), latency_s=4.0)
    fresh = _window(50)  # the first window: 10 slots taken just now, freeing in a minute
    assert may_send([Claim(remaining=None)], fresh, latency_s=4.0)
    assert may_send([Claim(remaining=None)] * 3, fresh, latency_s=4.0)
    # Four earlier tables at one ask per 4 s, 16 per window each: no room for a fifth.
    assert not may_send([Claim(remaining=None)] * 4, fresh, latency_s=4.0)


def test_a_table_of_unknown_size_is_counted_on_like_the_largest_known_but_the_first() -> None:
    # No size known: the table being written may ask for the whole window, a later one for its
    # next request.
    assert claim(None, 3, first=True, largest=None) == Claim(remaining=None)
    assert claim(None, 0, first=False, largest=None) == Claim(remaining=1)
    # Once a table was read whole (5 segments), a later one is counted on like it, less what
    # it fetched; the table being written still for the whole window (it may be larger)...
    assert claim(None, 3, first=True, largest=5) == Claim(remaining=None)
    assert claim(None, 3, first=False, largest=5) == Claim(remaining=2)
    # ...at least its next request.
    assert claim(None, 9, first=False, largest=5) == Claim(remaining=1)
    # A known size is what it is, first or not.
    assert claim(7, 3, first=False, largest=50) == Claim(remaining=7)
    # At 4 s an answer, 60 a minute, 42 slots free: the first table of unknown size keeps 16
    # asks; six later tables of 5 segments (4 left) still leave room for one more.
    fresh = _window(42)
    later = [claim(None, 1, first=False, largest=5)] * 6
    assert may_send([Claim(remaining=None), *later], fresh, latency_s=4.0)
    assert not may_send([Claim(remaining=None)] * 3, fresh, latency_s=4.0)


def test_a_slow_link_is_one_where_a_table_alone_uses_at_most_half_the_window() -> None:
    assert slow_link(_window(42), latency_s=4.0)
    assert slow_link(_window(42), latency_s=2.0)  # 30 asks a window, half of 60
    assert not slow_link(_window(42), latency_s=1.0)  # 60 asks: it can use every slot
    # Figure 11's budget-bound run: 30 per 15 s at 0.5 s per answer.
    assert not slow_link(Window(30, (), 15.0), latency_s=0.5)
    assert not slow_link(_window(42), latency_s=None)


def test_on_a_slow_link_the_table_being_written_is_counted_on_like_the_largest_known() -> None:
    # Figure 8 at 2 s: 18 slots free, the rest freeing a minute after they were taken (in 36 s
    # and on); the table being written has fetched 3 of what is likely 5 segments.
    window = Window(18, tuple(36.0 + i for i in range(42)), 60.0)
    assert claim(None, 3, first=True, largest=5, slow=True) == Claim(remaining=2)
    # Guarded for a request every 2 s over the window (30 asks), it left no room for the next
    # table: the run read one table after another.
    assert not may_send([claim(None, 3, first=True, largest=5)], window, latency_s=2.0)
    assert may_send([claim(None, 3, first=True, largest=5, slow=True)], window, latency_s=2.0)
    # With no size known, and on a link where it can use the whole window, it stays unbounded.
    assert claim(None, 3, first=True, largest=None, slow=True) == Claim(remaining=None)
    assert claim(None, 3, first=True, largest=5, slow=False) == Claim(remaining=None)


def _figure_8_at_4_s() -> Window:
    """The window 40.5 s into figure 8 at 4 s: 50 slots taken, freeing from 20 s on."""
    taken = [0.0, 4.0, 8.0, *[12.1] * 3, *[16.1] * 8, *[20.2] * 4, *[24.3] * 8, *[28.4] * 8]
    taken += [*[32.4] * 8, *[36.5] * 8]
    return Window(60 - len(taken), tuple(t + 60.6 - 40.5 for t in taken), 60.0)


def test_near_a_slow_links_end_the_last_tables_start_their_segments() -> None:
    # Figure 8 at 4 s, 40.5 s in: the last four tables have 4 segments left each (16 requests),
    # 10 slots are free, and the next ones free one at a time 20, 24 and 28 s from now.
    window = _figure_8_at_4_s()
    assert window.free == 10
    earlier = [Claim(remaining=None), Claim(remaining=3), Claim(remaining=3)]
    # By the earlier tables' claims, the last table waits for the window's end...
    assert not may_send(earlier, window, latency_s=4.0)
    # ...and its 4 segments, one per 4 s, would then end the run 9 s past the budget's bound.
    assert holds_up_the_end(4, 16, window, latency_s=4.0)
    # Its last request alone is no chain to start early.
    assert not holds_up_the_end(1, 13, window, latency_s=4.0)
    # A fast link: one table alone can use the window, the first table keeps its slots.
    assert not holds_up_the_end(4, 16, window, latency_s=0.5)
    # More than a window of work left: the end is not near.
    assert not holds_up_the_end(4, 100, window, latency_s=4.0)
    # No slot free now: the request would only wait in the budget, ahead of nothing.
    assert not holds_up_the_end(4, 16, Window(0, window.frees_in, 60.0), latency_s=4.0)
    # Slots freeing one a second: 2 segments at 2 s fit the budget's time for them, 4 do not.
    steady = Window(1, tuple(1.0 + i for i in range(59)), 60.0)
    assert not holds_up_the_end(2, 20, steady, latency_s=2.0)
    assert holds_up_the_end(4, 20, steady, latency_s=2.0)


def test_on_a_budget_bound_run_the_first_table_is_read_before_the_others(make_sandbox: Any) -> None:
    # Answers in 20 ms, 30 requests per 1.5 s: one table alone can use the whole budget, so
    # the first table's segments go first and its STATE comes as soon as its own are in.
    from tests.helpers import sync  # noqa: PLC0415

    sandbox = _sandbox(make_sandbox)
    config = _config(sandbox)
    catalog = discover(config)
    sandbox.reset_log()
    run = sync(config, catalog=catalog)
    order = [e.path for e in sandbox.requests if e.kind == "rows"]
    first_table = next(
        m["stream"]
        for m in run.messages
        if m["type"] == "RECORD" and m["stream"].startswith("table_t")
    )
    first_path = f"/open/api/v1/tablenodes/{first_table.removeprefix('table_')}/partial/"
    positions = [i for i, path in enumerate(order) if path == first_path]
    assert positions == list(range(SEGMENTS)), positions


def test_after_a_small_table_the_next_one_still_gets_every_slot_it_can_use(
    make_sandbox: Any, tmp_path: Any
) -> None:
    # The first table written has 1 segment, the others 12: once it is read, the table being
    # written is of unknown size again and must not be counted on like the small one, or later
    # tables take its slots and its STATE comes at the end of the run.
    from tests.helpers import sync  # noqa: PLC0415

    probe = _sandbox(make_sandbox, rate_limit=0)
    config = _config(probe, requests_per_minute=6000)
    order = _tables_in_writing_order(sync(config, catalog=discover(config)))
    sandbox = _sandbox(make_sandbox, table_rows={order[0]: ROWS})
    # Discovery, then the sync at once: one budget for both, as the default store shares it
    # between the two processes of a `meltano run` (with a budget each, discovery's last
    # requests and the sync's first burst met in one window: a 429).
    config = _config(sandbox, rate_limit_store=f"sqlite:///{tmp_path}/budget.sqlite")
    catalog = discover(config)
    sandbox.reset_log()
    sync(config, catalog=catalog)
    tables = [e.path.split("/")[5] for e in sandbox.requests if e.kind == "rows"]
    second = [i for i, table in enumerate(tables) if table == order[1]]
    assert tables[0] == order[0]
    assert second == list(range(1, SEGMENTS + 1)), tables
    assert not [e for e in sandbox.requests if e.status == 429]


def _tables_in_writing_order(run: Any) -> list[str]:
    order: list[str] = []
    for message in run.messages:
        stream = message.get("stream", "")
        if message["type"] == "RECORD" and stream.startswith("table_t") and stream not in order:
            order.append(stream)
    return [stream.removeprefix("table_") for stream in order]


def test_a_run_stopped_long_ago_is_not_continued(make_sandbox: Any, tmp_path: Path) -> None:
    # A scheduled run the next day reads every table: its data is fresh, not a day late.
    sandbox = _sandbox(make_sandbox, rate_limit=0)
    config = _config(sandbox, requests_per_minute=6000, resume_within_hours=1)
    state, stream, _ = _mid_table_state(sandbox, config, segments=5)
    state["run"]["started_at"] = "2026-01-01T00:00:00Z"
    (tmp_path / "state.json").write_text(json.dumps(state))
    sandbox.reset_log()
    run = run_cli(["--state", str(tmp_path / "state.json")], config)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "starting a new run, which reads every table" in run.stderr
    assert "continuing after segment" not in run.stderr
    table = sandbox.data.tables()[0].table_id
    assert len(run.records[stream]) == sandbox.data.row_count(table)
    assert run.last_state is not None
    assert run.last_state["run"]["complete"] is True


def test_a_full_table_read_started_again_is_a_new_version(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # The refused resume row was most likely deleted: read again under a new version, the
    # table's ACTIVATE_VERSION removes it (and every other row the stopped run sent that
    # MapTable no longer has).
    sandbox = _sandbox(make_sandbox, rate_limit=0, deleted_cursor="error")
    config = _config(sandbox, requests_per_minute=6000)
    table = sandbox.data.tables()[0].table_id
    stream = f"table_{table}"
    state, _, after = _mid_table_state(sandbox, config, segments=5)
    state["bookmarks"][stream]["resume"] |= {"version": 1_700_000_000, "full_table": True}
    catalog = set_replication(discover(config), stream, "FULL_TABLE")
    sandbox.data.delete_row(table, after)
    run = _run_with(config, catalog, state, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "would not continue after row" in run.stderr
    (version,) = [m["version"] for m in run.of_type("ACTIVATE_VERSION") if m["stream"] == stream]
    assert version != 1_700_000_000
    assert {m.get("version") for m in run.of_type("RECORD") if m["stream"] == stream} == {version}


def test_a_resume_point_of_another_run_is_not_used(make_sandbox: Any, tmp_path: Path) -> None:
    sandbox = _sandbox(make_sandbox, rate_limit=0)
    config = _config(sandbox, requests_per_minute=6000)
    state, stream, _ = _mid_table_state(sandbox, config, segments=5)
    state["bookmarks"][stream]["resume"]["run"] = "2026-01-01T00:00:00Z"  # an older run's
    (tmp_path / "state.json").write_text(json.dumps(state))
    run = run_cli(["--state", str(tmp_path / "state.json")], config)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "continuing after segment" not in run.stderr
    table = sandbox.data.tables()[0].table_id
    assert len(run.records[stream]) == sandbox.data.row_count(table)


def test_a_stale_catalog_does_not_stop_a_table_from_being_continued(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Meltano caches catalogs: one written before a column was retyped and another deleted.
    sandbox = _sandbox(make_sandbox, rate_limit=0)
    config = _config(sandbox, requests_per_minute=6000)
    table = sandbox.data.tables()[0].table_id
    stream = f"table_{table}"
    catalog = discover(config | {"table_ids": [table]})
    columns = {c["name"]: c["id"] for c in sandbox.data.columns(table)}
    sandbox.retype_column(table, columns["Done"], "singleLineText")
    sandbox.delete_column(table, columns["Notes"])
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    files = ["--catalog", str(tmp_path / "catalog.json")]
    complete = run_cli(files, config)
    assert complete.returncode == 0, complete.stderr[-2000:]
    state = complete.last_state
    assert state is not None
    rows = [row["id"] for row in sandbox.data.rows(table)]
    mark = state["bookmarks"][stream]
    mark["resume"] = {
        "run": state["run"]["started_at"],
        "after_row": rows[5 * ROWS - 1],
        "segments": 5,
        "version": None,
        "max_updated": None,
        "started_at": state["run"]["started_at"],
        "backfill": False,
        "columns": mark["columns_sent"],  # what the read sent: the live mapping
        "full_table": False,
    }
    state["run"]["complete"] = False
    mark.pop("read_in_run")
    (tmp_path / "state.json").write_text(json.dumps(state))
    run = run_cli([*files, "--state", str(tmp_path / "state.json")], config)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "continuing after segment 5" in run.stderr
    assert "changed since" not in run.stderr
    sent = run.records[stream]
    assert {r["_row_id"] for r in sent} <= set(rows[5 * ROWS :])
    assert all(r["Notes"] is None for r in sent)  # the deleted column: null, as before the stop
