"""One reader for every table: parallel requests, same output, same budget, bounded memory.

The first tests run the tap against a slow sandbox; the others drive the reader (`reading/`)
with a fake connection, to look at what it holds, in which order it asks, and which thread asks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from maptable_sandbox import FaultPlan
from tap_maptable.columns.naming import column_essentials
from tap_maptable.connection import Answer
from tap_maptable.envelope import parse_detail
from tap_maptable.errors import SegmentLoopError
from tap_maptable.reading import Hold, Latency, Reader, ReadPlan, schedule
from tap_maptable.reading.reader import FIRST_WORKERS, QUEUE_DEPTH, THREAD_PREFIX
from tap_maptable.reading.schedule import in_flight_needed, workers_wanted
from tap_maptable.settings import DEFAULT_PARALLEL_REQUESTS
from tests.hardening.support import assert_exactly_once, assert_one_clear_line
from tests.helpers import kinds, max_in_window, run_cli, sync, tap_config

if TYPE_CHECKING:
    from collections.abc import Iterator

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


TIMED_KEYS = frozenset({"replication_key_signpost", "read_in_run"})


def _comparable(messages) -> list[tuple[object, ...]]:
    """The messages, less what differs between any two runs (table versions, timings).

    STATE messages written while a table is read come at most once a second: how many there
    are depends on timing. The last STATE, less its times, must be the same.
    """
    out: list[tuple[object, ...]] = []
    for message in messages:
        if message["type"] == "ACTIVATE_VERSION":
            out.append(("ACTIVATE_VERSION", message["stream"]))
        elif message["type"] == "RECORD":
            out.append(("RECORD", message["stream"], message["record"]))
        elif message["type"] != "STATE":
            out.append((message["type"], message.get("stream")))
    last = next(m for m in reversed(messages) if m["type"] == "STATE")["value"]["bookmarks"]
    timeless = {
        stream: {
            k: v for k, v in mark.items() if k not in {"replication_key_signpost", "read_in_run"}
        }
        for stream, mark in last.items()
    }
    out.append(("STATE", timeless))
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


@pytest.mark.parametrize(
    "slow",
    [
        pytest.param({"latency_s": 1.2}, id="slow-answers"),
        # Headers at once, the body 1.2 s later: timing to the headers measured a fast link.
        pytest.param({"body_delay_s": 1.2}, id="slow-downloads"),
    ],
)
def test_on_a_slow_link_workers_join_and_the_budget_still_holds(
    make_sandbox, caplog, slow: dict[str, float]
) -> None:
    # The whole path: answer times measured by the session, the reader growing past its first
    # workers, every request still through the one budget. 1.2 s an answer at 14 per 2 s wants
    # 17 in flight: the setting (12) is the bound, and 12 in flight would send 10 a second, more
    # than the budget's 7, so the budget is what holds the window.
    limit, window = 14, 2.0
    options = {"latency_s": 0.0, "rate_limit": limit, "rate_window": window, **slow}
    sandbox = _slow_sandbox(make_sandbox, **options)
    config = tap_config(
        sandbox,
        requests_per_minute=limit,
        rate_limit_window_seconds=window,
        max_parallel_requests=12,
    )
    with caplog.at_level(logging.INFO):
        run = sync(config)
    assert_exactly_once(run, sandbox)
    log = sandbox.requests
    assert FIRST_WORKERS < _most_in_flight(log) <= 12
    assert not [e for e in log if e.status == 429], "429s caused by the tap's own pacing"
    assert max_in_window([e.t for e in log], window) <= limit
    lines = [r.getMessage() for r in caplog.records]
    grew = [line for line in lines if "requests in flight at once" in line]
    assert len(grew) == 1, grew  # one INFO line, however the estimate moves after
    assert "up to 12 requests in flight at once, was 8" in grew[0], grew[0]


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
    # (Answers in 0.15 s need no more than the first workers at 20 per 2 s.)
    assert len(refused) <= counts["refresh"] * FIRST_WORKERS
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


def test_a_request_failing_for_good_ends_the_run_in_one_line(make_sandbox) -> None:
    # Every row request fails with a transient code until the tries run out: a failure of the
    # server, not of one table (those are skipped: tests/test_skipping.py). The reader's
    # background failures are raised in table order: see the fake-MapTable tests below.
    sandbox = _slow_sandbox(make_sandbox, latency_s=0.05)
    sandbox.set_faults(FaultPlan(rates={"code": 1.0}, kinds_for=("rows",), seed=1))
    run = run_cli([], _config(sandbox, max_tries=2), timeout=120)
    last = assert_one_clear_line(run)
    assert "code 5" in last or "HTTP" in last
    assert "Traceback" not in run.stderr
    assert not run.rows


def test_a_dry_run_with_a_catalog_reads_each_table_without_a_false_loop(make_sandbox) -> None:
    # After a dry run left a table early, later tables were fetched by the main thread while
    # background fetches were still mid-request on the same stream objects: a false
    # SegmentLoopError. Per-read state now lives in the reader's reads, one request at a time.
    from tap_maptable.tap import TapMapTable  # noqa: PLC0415
    from tests.helpers import discover  # noqa: PLC0415

    sandbox = _slow_sandbox(make_sandbox, latency_s=0.3, rate_limit=0)
    config = tap_config(sandbox)
    catalog = discover(config)
    tap = TapMapTable(config=config, catalog=catalog)
    with contextlib.redirect_stdout(_Sink()):
        assert tap.run_sync_dry_run(dry_run_record_limit=1)
    assert tap._skipped == [], tap._skipped  # no table skipped for a (false) segment loop


class _Sink:
    """A stdout that takes bytes and text and keeps nothing."""

    buffer = property(lambda self: self)

    def write(self, data: Any) -> int:
        return len(data)

    def flush(self) -> None:
        pass


# -- the reader, with a fake MapTable ------------------------------------------------------------


class _Budget:
    limit = 1000

    def free_slots(self) -> int:
        return self.limit

    def window_view(self) -> tuple[int, tuple[float, ...]]:
        return self.limit, ()

    @contextlib.contextmanager
    def priority(self, _rank: int):
        yield


class _MapTable:
    """Tables of one-row segments; each request is recorded with the thread that made it."""

    window_s = 60.0

    def __init__(
        self,
        sizes: dict[str, int],
        *,
        delay: float = 0.0,
        fail: dict[str, int] | None = None,
        latency: Latency | None = None,
        columns: list[Any] | None = None,
    ):
        self.sizes = sizes
        self.columns = columns or [{"id": "c1", "name": "N", "type": "number"}]
        self.delay = delay
        self.fail = fail or {}
        self.latency = latency  # told each answer's time, as the connection tells the reader's
        self.budget = _Budget()
        self.calls: list[tuple[str, int, bool]] = []
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()

    def open(self) -> _MapTable:
        return self

    def fetch(self, path: str, params: dict[str, str]) -> Answer:
        table = path.split("/")[-3]
        after = params.get("lastSegmentRowID")
        index = 0 if after is None else int(after.removeprefix(table)) + 1
        with self._lock:
            self.calls.append((table, index, threading.current_thread() is threading.main_thread()))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.delay)
        with self._lock:
            self.in_flight -= 1
        if self.latency is not None:
            self.latency.observe(self.delay)
        if self.fail.get(table) == index:
            msg = f"segment {index} of {table} failed"
            raise RuntimeError(msg)
        detail = {
            "rows": [{"id": f"{table}{index}", "cells": {}, "pad": "x" * 1000}],
            "more": index + 1 < self.sizes[table],
            "segmentType": "segmentStart" if index == 0 else "segmentFrame",
        }
        if index == 0:
            detail["columns"] = self.columns
        body = json.dumps({"code": 0, "detail": detail}).encode()
        return Answer(detail, body)


def _reader(
    maptable: _MapTable, workers: int, memory: int = 10**9, latency: Latency | None = None
) -> Reader:
    return Reader(
        maptable,  # type: ignore[arg-type]
        workers=workers,
        hold=Hold(memory, parse=parse_detail),
        latency=latency or Latency(),
    )


def _rows(reader: Reader, stream: str) -> list[str]:
    read = reader.read_of(stream)
    assert read is not None
    return [row["id"] for detail in reader.segments(read) for row in detail["rows"]]


def test_segments_held_ahead_stay_under_the_memory_cap_while_the_writer_is_slow() -> None:
    maptable = _MapTable(dict.fromkeys("ABCD", 40))
    segment = len(maptable.fetch("/x/A/partial/", {}).body)
    maptable.calls.clear()
    reader = _reader(maptable, workers=3, memory=5 * segment)
    reader.plan([ReadPlan(name, name) for name in "ABCD"])
    read = reader.read_of("A")
    assert read is not None
    first = reader.segments(read)
    for _ in range(5):
        next(first)
        time.sleep(0.05)  # a slow target: the workers would run far ahead if they could
    fetched = len(maptable.calls)
    held = fetched - 5
    # The current table's queue, the memory cap, and one request in flight per worker.
    assert held <= QUEUE_DEPTH + 5 + 3, held
    assert sum(1 for _ in first) == 35
    for name in "BCD":
        assert _rows(reader, name) == [f"{name}{i}" for i in range(40)]
    assert len(maptable.calls) == 160, "a segment was fetched twice"
    reader.close()


def test_what_does_not_fit_in_memory_waits_on_disk_and_is_not_fetched_twice() -> None:
    maptable = _MapTable(dict.fromkeys("ABC", 1))
    reader = _reader(maptable, workers=3, memory=1)
    columns = reader.first_columns(["A", "B", "C"])  # discovery reads every first segment
    assert all(isinstance(c, list) for c in columns.values())
    reader.plan([ReadPlan(name, name) for name in "ABC"])
    assert reader._hold.spilled >= 2  # everything past the (tiny) memory cap went to disk
    assert [_rows(reader, name) for name in "ABC"] == [["A0"], ["B0"], ["C0"]]
    assert len(maptable.calls) == 3
    reader.close()


def test_a_run_keeps_no_table_s_columns_once_discovery_has_them() -> None:
    # A read stays in the reader for the whole run: a column list kept on each grew a
    # 1,000-table sync by megabytes.
    maptable = _MapTable(dict.fromkeys("AB", 2))
    reader = _reader(maptable, workers=2)
    columns = reader.first_columns(["A"])  # discovery keeps A's; B is read by the sync alone
    assert columns["A"] == [{"id": "c1", "name": "N", "type": "number"}]
    reader.plan([ReadPlan(name, name) for name in "AB"])
    assert [_rows(reader, name) for name in "AB"] == [["A0", "A1"], ["B0", "B1"]]
    reads = [reader.read_of(name) for name in "AB"]
    assert [read.columns for read in reads if read is not None] == [None, None]
    assert len(maptable.calls) == 4, "a segment was fetched twice"
    reader.close()


def test_discovery_keeps_only_what_the_tap_reads_of_each_column() -> None:
    # A choice column lists every option (`typeOptions`): kept for 1,000 tables until the sync
    # planned them, such lists were most of what discovery held.
    options = {"choices": [{"name": f"option {i}", "color": "red"} for i in range(50)]}
    columns = [
        {"id": "c1", "name": "S", "type": "singleChoice", "typeOptions": options, "isPrimary": 1},
        {"id": "c2", "type": "number", "typeOptions": None},  # no name: still none
        "not a column",  # as it came, for `live_columns` to refuse
    ]
    maptable = _MapTable({"A": 1}, columns=columns)
    reader = _reader(maptable, workers=1)
    kept = reader.first_columns(["A"])["A"]
    assert kept == [
        {"id": "c1", "name": "S", "type": "singleChoice"},
        {"id": "c2", "type": "number"},
        "not a column",
    ]
    reader.close()
    assert column_essentials({"id": "c1"}) == {"id": "c1"}, "not a list: left for the check"
    assert column_essentials(None) is None


def test_a_failure_is_raised_when_its_table_is_reached_in_order() -> None:
    maptable = _MapTable({"A": 2, "B": 3, "C": 2}, fail={"B": 1})
    reader = _reader(maptable, workers=2)
    reader.plan([ReadPlan(name, name) for name in "ABC"])
    assert _rows(reader, "A") == ["A0", "A1"]
    read = reader.read_of("B")
    assert read is not None
    segments = reader.segments(read)
    assert next(segments)["rows"][0]["id"] == "B0"
    with pytest.raises(RuntimeError, match="segment 1 of B failed"):
        next(segments)
    assert _rows(reader, "C") == ["C0", "C1"]
    reader.close()


def test_one_request_at_a_time_fetches_in_the_main_thread() -> None:
    maptable = _MapTable({"A": 3, "B": 2})
    reader = _reader(maptable, workers=1)
    reader.plan([ReadPlan("A", "A"), ReadPlan("B", "B")])
    assert _rows(reader, "A") == ["A0", "A1", "A2"]
    assert _rows(reader, "B") == ["B0", "B1"]
    assert all(main for _, _, main in maptable.calls)
    reader.close()


def test_a_read_continues_after_its_resume_point() -> None:
    maptable = _MapTable({"A": 5})
    reader = _reader(maptable, workers=2)
    reader.plan([ReadPlan("A", "A", after="A2")])
    assert _rows(reader, "A") == ["A3", "A4"]
    assert [index for _, index, _ in maptable.calls] == [3, 4]
    reader.close()


def test_a_server_that_repeats_a_segment_is_a_loop_not_an_endless_read() -> None:
    maptable = _MapTable({"A": 5})
    original = maptable.fetch

    def stuck(path: str, params: dict[str, str]) -> Answer:
        return original(path, {"lastSegmentRowID": "A1"} if params else params)

    maptable.fetch = stuck  # type: ignore[method-assign]
    reader = _reader(maptable, workers=2)
    reader.plan([ReadPlan("A", "A")])
    with pytest.raises(SegmentLoopError):
        _rows(reader, "A")
    reader.close()


def test_a_segment_that_cannot_be_held_fails_its_table_never_loses_it(monkeypatch) -> None:
    # A full disk while holding a segment: the table fails with that error, in its turn; the
    # read does not go on past the segment it could not keep.
    maptable = _MapTable({"A": 3, "B": 6})
    reader = _reader(maptable, workers=3, memory=1)
    calls = {"n": 0}
    keep = Hold.keep

    def full(self, detail, body, *, in_memory=False):
        calls["n"] += 1
        if calls["n"] == 4:
            msg = "No space left on device"
            raise OSError(28, msg)
        return keep(self, detail, body, in_memory=in_memory)

    monkeypatch.setattr(Hold, "keep", full)
    reader.plan([ReadPlan("A", "A"), ReadPlan("B", "B")])
    with pytest.raises(OSError, match="No space left"):  # in A's turn, or in B's
        [_rows(reader, name) for name in "AB"]
    reader.close()


class _Window(_Budget):
    """A budget whose window is figure 8's, 4 s per answer, 40.5 s in: 53 slots taken."""

    limit = 60

    def window_view(self) -> tuple[int, tuple[float, ...]]:
        taken = [0.0, 4.0, 8.0, *[12.1] * 3, *[16.1] * 8, *[20.2] * 4, *[24.3] * 8, *[28.4] * 8]
        taken += [*[32.4] * 8, *[36.5] * 8, *[40.5] * 3]  # the last three: in flight now
        return self.limit - len(taken), tuple(t + 60.6 - 40.5 for t in taken)


@pytest.mark.parametrize(("latency_s", "sends"), [(4.0, True), (0.5, False)])
def test_near_a_slow_links_end_the_last_table_starts_its_segments(
    latency_s: float, sends: bool
) -> None:
    # Table A was read whole (5 segments); B, C and D have their second segment in flight, E
    # has its first. By the earlier tables' claims E would wait for the window's end, and its
    # 4 segments left, one per 4 s, would be the run's tail: it sends now. On a fast link the
    # table being written keeps every slot it can use: E waits.
    maptable = _MapTable(dict.fromkeys("ABCDE", 5))
    maptable.budget = _Window()
    latency = Latency()
    latency.observe(latency_s)
    reader = Reader(
        maptable,  # type: ignore[arg-type]
        workers=1,  # no worker threads: the test asks the reader itself
        hold=Hold(10**9, parse=parse_detail),
        latency=latency,
    )
    plans = [ReadPlan("A", "A", expected_segments=5, done=True)]
    reader.plan(plans + [ReadPlan(name, name) for name in "BCDE"])
    for name in "BCDE":
        read = reader.read_of(name)
        assert read is not None
        read.fetched, read.in_flight = 1, name != "E"
    chosen = reader._choose()
    assert (chosen is not None and chosen.stream == "E") is sends
    reader.close()


def test_requests_in_flight_needed_are_twice_the_budget_s_rate_times_the_answer_time() -> None:
    assert in_flight_needed(60, 60.0, 4.0) == FIRST_WORKERS  # MapTable's budget, figure 8's 4 s
    assert in_flight_needed(60, 30.0, 4.0) == 16  # figure 13: twice the rate
    assert in_flight_needed(60, 60.0, 0.01) == 1
    assert in_flight_needed(60, 60.0, None) == 1  # nothing measured yet


@pytest.mark.parametrize(
    ("limit", "window_s", "latency_s", "most", "wanted"),
    [
        pytest.param(60, 60.0, 8.0, 16, 16, id="maptable-at-8-s"),
        pytest.param(60, 30.0, 4.0, 16, 16, id="figure-13-at-4-s"),
        pytest.param(60, 30.0, 4.0, 12, 12, id="never-above-the-setting"),
        pytest.param(60, 60.0, 2.0, 16, 8, id="the-first-suffice"),
        pytest.param(60, 60.0, 8.0, 4, 4, id="a-setting-below-the-first"),
        # An unthrottled budget on loopback: the tap itself is the limit, not latency.
        pytest.param(1_000_000, 60.0, 0.005, 16, 8, id="fast-answers-unthrottled"),
        pytest.param(1_000_000, 60.0, None, 16, 8, id="nothing-measured"),
    ],
)
def test_workers_wanted(
    limit: int, window_s: float, latency_s: float | None, most: int, wanted: int
) -> None:
    assert workers_wanted(limit, window_s, latency_s, first=FIRST_WORKERS, most=most) == wanted


@pytest.fixture
def slow_from_a_tenth() -> Iterator[None]:
    """Answers count as slow from 0.1 s: the reader tests below stay short."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(schedule, "SLOW_ANSWER_S", 0.1)
        yield


class _FastBudget(_Budget):
    """100 requests a second: at 0.3 s an answer, 60 in flight would keep it busy."""

    limit = 100


@pytest.mark.parametrize(
    ("delay", "most", "workers"),
    [
        pytest.param(0.3, 16, 16, id="slow-answers-add-workers-up-to-the-setting"),
        pytest.param(0.3, 5, 5, id="never-more-than-the-setting"),
        pytest.param(0.0, 16, FIRST_WORKERS, id="fast-answers-add-none"),
    ],
)
@pytest.mark.usefixtures("slow_from_a_tenth")
def test_workers_join_only_when_answers_are_too_slow_to_keep_the_budget_busy(
    delay: float, most: int, workers: int
) -> None:
    # A thread per request in flight costs memory a fast link never needs; on a slow link the
    # first 8 left the budget idle (bench figure 13: 1.23 times the minimum at 4 s an answer).
    latency = Latency()
    maptable = _MapTable({f"T{n:02d}": 3 for n in range(24)}, delay=delay, latency=latency)
    maptable.window_s = 1.0
    maptable.budget = _FastBudget()
    reader = _reader(maptable, workers=most, latency=latency)
    names = sorted(maptable.sizes)
    reader.plan([ReadPlan(name, name) for name in names])
    for name in names:
        assert _rows(reader, name) == [f"{name}{i}" for i in range(3)]
    assert reader.workers == workers
    assert maptable.most_in_flight <= workers
    if workers > FIRST_WORKERS:
        assert maptable.most_in_flight > FIRST_WORKERS, maptable.most_in_flight
    assert len(maptable.calls) == 72, "a segment was fetched twice"
    reader.close()


@pytest.mark.usefixtures("slow_from_a_tenth")
def test_a_worker_the_system_will_not_start_ends_the_growing_not_the_run(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Growing happens in the workers: a thread that failed to start killed the worker that
    # asked, then every other one, and the writer waited for segments nobody fetched.
    start = threading.Thread.start

    def start_at_most_first_workers(thread: threading.Thread) -> None:
        if thread.name.startswith(f"{THREAD_PREFIX}-") and int(thread.name.rsplit("-")[-1]) >= 10:
            msg = "can't start new thread"
            raise RuntimeError(msg)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", start_at_most_first_workers)
    latency = Latency()
    maptable = _MapTable({f"T{n:02d}": 3 for n in range(24)}, delay=0.2, latency=latency)
    maptable.window_s = 1.0
    maptable.budget = _FastBudget()
    reader = _reader(maptable, workers=16, latency=latency)
    names = sorted(maptable.sizes)
    reader.plan([ReadPlan(name, name) for name in names])
    done = threading.Event()

    def read_all() -> None:
        for name in names:
            assert _rows(reader, name) == [f"{name}{i}" for i in range(3)]
        done.set()

    with caplog.at_level(logging.WARNING):
        writer = threading.Thread(target=read_all, daemon=True)
        writer.start()
        writer.join(timeout=30)
    assert done.is_set(), "the run waited for workers that never started"
    assert reader.workers == 10  # the ones that started, and no more
    warned = [r.getMessage() for r in caplog.records if "No more request workers" in r.getMessage()]
    assert len(warned) == 1, warned
    reader.close()


@pytest.mark.parametrize(
    ("startable", "workers", "warning"),
    [
        pytest.param(3, 3, "No more request workers", id="some-start-reads-with-those"),
        pytest.param(0, 1, "No request worker could start", id="none-start-reads-in-one-thread"),
    ],
)
def test_first_workers_the_system_will_not_start_leave_the_run_reading(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    startable: int,
    workers: int,
    warning: str,
) -> None:
    # The first workers were started with no guard: a process limit ended the run with a
    # RuntimeError traceback before any request.
    start = threading.Thread.start

    def start_some(thread: threading.Thread) -> None:
        name = thread.name
        if name.startswith(f"{THREAD_PREFIX}-") and int(name.rsplit("-")[-1]) >= startable:
            msg = "can't start new thread"
            raise RuntimeError(msg)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", start_some)
    maptable = _MapTable({f"T{n:02d}": 3 for n in range(6)}, delay=0.01)
    reader = _reader(maptable, workers=16)
    names = sorted(maptable.sizes)
    with caplog.at_level(logging.WARNING):
        reader.plan([ReadPlan(name, name) for name in names])
        for name in names:
            assert _rows(reader, name) == [f"{name}{i}" for i in range(3)]
    assert reader.workers == workers
    assert len(maptable.calls) == 18, "a segment was fetched twice, or not at all"
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1, warned
    assert warned[0].startswith(warning), warned
    reader.close()
