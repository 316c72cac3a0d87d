"""Requests for different tables in flight at once: same output, same budget, bounded memory."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from maptable_sandbox import FaultPlan
from tap_maptable.prefetch import QUEUE_DEPTH, Prefetcher
from tap_maptable.settings import DEFAULT_PARALLEL_REQUESTS
from tap_maptable.tap import TapMapTable
from tests.hardening.support import assert_exactly_once, assert_one_clear_line
from tests.helpers import kinds, max_in_window, run_cli, sync, tap_config

LIMIT, WINDOW = 20, 2.0


def _slow_sandbox(make_sandbox, **extra):
    """12 tables of 3 segments, answering each request after 0.15 s, 20 per 2 s."""
    options = {
        "workspaces": 3,
        "projects_per_workspace": 2,
        "tables_per_project": 2,
        "rows_per_table": 30,
        "segment_size": 10,
        "latency_s": 0.15,
        "rate_limit": LIMIT,
        "rate_window": WINDOW,
    }
    return make_sandbox(**{**options, **extra})


def _config(sandbox, **extra):
    return tap_config(sandbox, requests_per_minute=LIMIT, rate_limit_window_seconds=WINDOW, **extra)


def _most_in_flight(entries) -> int:
    events = sorted([(e.t_start, 1) for e in entries] + [(e.t_end, -1) for e in entries])
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


def _comparable(messages) -> list[tuple[object, ...]]:
    """The messages, less what differs between any two runs (table versions, timings)."""
    out: list[tuple[object, ...]] = []
    for message in messages:
        if message["type"] == "ACTIVATE_VERSION":
            out.append(("ACTIVATE_VERSION", message["stream"]))
        elif message["type"] == "RECORD":
            out.append(("RECORD", message["stream"], message["record"]))
        elif message["type"] == "STATE":
            out.append(("STATE", message["value"].get("bookmarks")))
        else:
            out.append((message["type"], message.get("stream")))
    return out


def test_requests_overlap_within_the_budget_and_output_equals_a_sequential_run(
    make_sandbox,
) -> None:
    sandbox = _slow_sandbox(make_sandbox)
    parallel = sync(_config(sandbox))
    log = sandbox.requests
    assert DEFAULT_PARALLEL_REQUESTS > 1
    assert _most_in_flight(log) >= 2, "no two requests were ever in flight at once"
    assert not [e for e in log if e.status == 429], "429s caused by the tap's own pacing"
    assert max_in_window([e.t for e in log], WINDOW) <= LIMIT
    assert_exactly_once(parallel, sandbox)

    sandbox.reset_log()
    sequential = sync(_config(sandbox, max_parallel_requests=1))
    assert _most_in_flight(sandbox.requests) == 1
    assert _comparable(parallel.messages) == _comparable(sequential.messages)


def test_one_refresh_at_a_time_and_no_request_sent_with_a_dead_token(make_sandbox) -> None:
    # Tokens live 2 s: a run of several seconds refreshes while many requests are in flight.
    sandbox = _slow_sandbox(make_sandbox, token_ttl=2.0, revoke_access_on_refresh=True)
    run = sync(_config(sandbox))
    assert_exactly_once(run, sandbox)
    counts = kinds(sandbox)
    assert counts["auth"] == 1
    assert counts["refresh"] >= 1
    refused = [e for e in sandbox.requests if e.status == 401]
    # A refresh revokes the old access token: a thread that sent with it after the refresh
    # would get a 401. Each refresh can meet at most the requests already in flight.
    assert len(refused) <= counts["refresh"] * DEFAULT_PARALLEL_REQUESTS
    duration = max(e.t_end for e in sandbox.requests) - min(e.t for e in sandbox.requests)
    assert counts["refresh"] <= duration / 1.0 + 1, "refreshed more often than tokens expire"


def test_transient_faults_in_background_fetches_are_retried_as_in_the_foreground(
    make_sandbox,
) -> None:
    plan = FaultPlan(rates={"503": 0.15, "drop": 0.05, "429": 0.05}, seed=7, kinds_for=("rows",))
    sandbox = _slow_sandbox(make_sandbox, latency_s=0.05, faults=plan)
    run = sync(_config(sandbox))
    assert_exactly_once(run, sandbox)
    assert sum(1 for e in sandbox.requests if e.fault) >= 3


def test_a_fatal_error_in_a_background_fetch_ends_the_run_in_one_line(make_sandbox) -> None:
    sandbox = _slow_sandbox(make_sandbox, latency_s=0.05)
    last_table = sandbox.data.tables()[-1].table_id
    # Every request for the last table's rows fails for good (a 400 with an error code).
    sandbox.set_faults(FaultPlan(rates={"code": 1.0}, kinds_for=("rows",), seed=1))
    run = run_cli([], _config(sandbox, max_tries=2), timeout=120)
    last = assert_one_clear_line(run)
    assert "code 5" in last or "HTTP" in last
    assert "Traceback" not in run.stderr
    # Nothing of a table whose segments failed: no record beyond what was fetched.
    assert not run.records.get(f"table_{last_table}")


def test_the_bookmark_cap_covers_rows_fetched_before_their_stream_started(sandbox) -> None:
    tap = TapMapTable(config=tap_config(sandbox))
    table = sandbox.data.tables()[3]
    long_ago = datetime(2024, 6, 1, tzinfo=timezone.utc)
    tap.start_prefetch()
    # As if this table's background fetch had begun long before its stream started.
    job = tap.prefetcher._jobs[table_stream := f"table_{table.table_id}"]
    deadline = time.monotonic() + 10
    while job.started_at is None and time.monotonic() < deadline:
        time.sleep(0.01)
    job.started_at = long_ago.timestamp()
    with contextlib.redirect_stdout(io.TextIOWrapper(io.BytesIO(), encoding="utf-8")):
        tap.sync_all()
    capped = tap.state["bookmarks"][table_stream]["replication_key_value"]
    assert datetime.fromisoformat(capped) <= long_ago - timedelta(minutes=5)


def test_segments_held_ahead_stay_under_the_cap_while_the_current_table_is_slow() -> None:
    produced = dict.fromkeys("ABCD", 0)
    lock = threading.Lock()

    def table(name: str):
        def fetch():
            for _ in range(50):
                with lock:
                    produced[name] += 1
                yield [{"table": name}]

        return fetch

    prefetcher = Prefetcher(workers=3)
    prefetcher.plan([(name, table(name)) for name in "ABCD"])
    first = prefetcher.segments("A", table("A"))
    taken = 0
    for _ in range(5):
        next(first)
        taken += 1
        time.sleep(0.05)  # a slow target: the background fetches run far ahead if they can
    with lock:
        held = sum(produced.values()) - taken
    # Every segment fetched and not yet taken: the upcoming tables' cap, the current table's
    # queue, and one in flight per worker.
    assert held <= prefetcher.ahead_cap + QUEUE_DEPTH + prefetcher.workers
    assert held < 4 * 50 - taken, "the background fetches were not held back at all"
    rest = sum(1 for _ in first) + taken
    assert rest == 50
    for name in "BCD":
        assert sum(1 for _ in prefetcher.segments(name, table(name))) == 50
    prefetcher.stop()


def test_background_errors_are_raised_when_their_table_is_reached_in_order() -> None:
    def ok():
        yield [{"n": 1}]

    def broken():
        yield [{"n": 1}]
        msg = "segment 2 failed"
        raise RuntimeError(msg)

    prefetcher = Prefetcher(workers=2)
    prefetcher.plan([("A", ok), ("B", broken), ("C", ok)])
    assert list(prefetcher.segments("A", ok)) == [[{"n": 1}]]
    segments = prefetcher.segments("B", broken)
    assert next(segments) == [{"n": 1}]
    with pytest.raises(RuntimeError, match="segment 2 failed"):
        next(segments)
    assert list(prefetcher.segments("C", ok)) == [[{"n": 1}]]
    prefetcher.stop()


def test_one_request_at_a_time_fetches_in_the_main_thread() -> None:
    prefetcher = Prefetcher(workers=1)
    seen = []

    def fetch():
        seen.append(threading.current_thread() is threading.main_thread())
        yield [{"n": 1}]

    prefetcher.plan([("A", fetch)])
    assert list(prefetcher.segments("A", fetch)) == [[{"n": 1}]]
    assert seen == [True]
