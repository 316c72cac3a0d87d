"""The request budget: no window over the limit, the budget fully used, 429s waited out."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
import requests

from maptable_sandbox import FaultPlan
from tap_maptable.budget import BudgetSpec, RequestBudget, open_store
from tap_maptable.budget.sqlite_store import HostLock
from tap_maptable.classify import retry_after_seconds
from tests.helpers import APP_ID, APP_SECRET, kinds, max_in_window, sync, tap_config

LIMIT, WINDOW = 10, 2.0


def _strict(make_sandbox, **data):
    return make_sandbox(rate_limit=LIMIT, rate_window=WINDOW, **data)


def _paced(sandbox, **extra):
    return tap_config(sandbox, requests_per_minute=LIMIT, rate_limit_window_seconds=WINDOW, **extra)


def test_strict_limiter_sees_no_429_and_no_window_over_the_limit(make_sandbox) -> None:
    sandbox = _strict(make_sandbox, workspaces=3, segment_size=10, rows_per_table=40)
    run = sync(_paced(sandbox))
    log = sandbox.requests
    assert len(log) > 3 * LIMIT, "the run must be long enough to need pacing"
    assert not [e for e in log if e.status == 429]
    assert max_in_window([e.t for e in log], WINDOW) <= LIMIT
    assert kinds(sandbox)["auth"] == 1  # counted by the sandbox's limiter like any request
    assert run.tap is not None
    assert run.tap.connection.budget.acquired == len(log)


def test_a_small_run_uses_the_budget_without_waiting(make_sandbox) -> None:
    sandbox = _strict(make_sandbox, workspaces=1, projects_per_workspace=1, tables_per_project=1)
    run = sync(_paced(sandbox))
    assert len(sandbox.requests) < LIMIT
    assert run.tap is not None
    assert run.tap.connection.budget.waits == 0


def test_retry_after_is_honoured_and_not_counted_as_a_failure(sandbox, caplog) -> None:
    # Five 429s in a row on one request, with max_tries=2: rate limiting is not failure.
    sandbox.set_faults(FaultPlan(schedule=dict.fromkeys(range(3, 8), "429")))
    caplog.set_level(logging.WARNING)
    run = sync(tap_config(sandbox, max_tries=2))
    assert [e.status for e in sandbox.requests].count(429) == 5
    warnings = [r for r in caplog.records if "429" in r.getMessage()]
    assert len(warnings) == 5
    assert len(run.records["workspaces"]) == 2


def test_another_client_of_the_app_is_waited_out(make_sandbox) -> None:
    sandbox = _strict(make_sandbox, workspaces=1, projects_per_workspace=1, tables_per_project=1)
    # Someone else spends the whole window just before the tap starts.
    for _ in range(LIMIT):
        requests.post(
            sandbox.url + "/open/api/v1/auth/",
            json={"appId": APP_ID, "appSecret": APP_SECRET},
            timeout=5,
        )
    run = sync(_paced(sandbox))
    assert run.records["workspaces"]
    assert max_in_window([e.t for e in sandbox.requests if e.status != 429], WINDOW) <= LIMIT
    assert [e.status for e in sandbox.requests].count(429) <= 2


def test_retry_after_parsing() -> None:
    assert retry_after_seconds({"Retry-After": "3"}) == 3.0
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"Retry-After": "soon"}) is None


def test_budget_admits_the_limit_at_once_then_paces() -> None:
    budget = RequestBudget(BudgetSpec(limit=5, window_s=0.5, key="unit"))
    for _ in range(5):
        budget.acquire()
    assert budget.waits == 0
    budget.acquire()
    assert budget.waits == 1


def test_jittered_slow_answers_never_push_a_window_over_the_limit(make_sandbox) -> None:
    # Answers take 0 to 0.4 s, in any order, with 8 requests in flight: a slot is counted from
    # when it is granted, right before its request leaves, so the server's window (arrivals)
    # never holds more than the tap's.
    sandbox = _strict(
        make_sandbox, workspaces=2, segment_size=10, rows_per_table=60, latency_jitter_s=0.4
    )
    for _ in range(2):
        time.sleep(WINDOW + 0.3)  # each run's budget is its own: the last run's window ends
        sandbox.reset_log()
        sync(_paced(sandbox, max_parallel_requests=8))
        log = sandbox.requests
        assert len(log) > 3 * LIMIT
        assert not [e for e in log if e.status == 429]
        assert max_in_window([e.t for e in log], WINDOW) <= LIMIT


def test_a_slot_is_taken_in_order_of_priority() -> None:
    budget = RequestBudget(BudgetSpec(limit=1, window_s=0.5))
    budget.acquire()  # the window is full for half a second
    order: list[int] = []

    def wait(rank: int) -> None:
        with budget.priority(rank):
            budget.acquire()
        order.append(rank)

    later = threading.Thread(target=wait, args=(5,))
    later.start()
    time.sleep(0.1)  # the later table's request waits first
    sooner = threading.Thread(target=wait, args=(0,))
    sooner.start()
    later.join(5)
    sooner.join(5)
    assert order == [0, 5]


def test_time_behind_more_urgent_requests_is_not_a_store_failure() -> None:
    # A later table's request may wait many windows while the first table takes every slot:
    # slots are being granted, so the budget must not give up on it.
    budget = RequestBudget(BudgetSpec(limit=2, window_s=0.25))
    stop = threading.Event()

    def busy() -> None:
        with budget.priority(0):
            while not stop.is_set():
                budget.acquire()

    first = threading.Thread(target=busy)
    first.start()
    time.sleep(0.05)
    started = time.monotonic()
    timer = threading.Timer(2.5, stop.set)  # longer than 4 windows and their margins
    timer.start()
    with budget.priority(5):
        budget.acquire()  # raised StoreUnavailableError after ~1.8 s before
    first.join(5)
    assert time.monotonic() - started >= 2.0


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_busy_limiter_lock_is_not_a_full_window(
    store: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # pyrate-limiter's non-blocking ask gives up when its lock is busy (its leak thread, or
    # another process sharing the SQLite file), which read as a full window: a wait, counted,
    # and "Request budget in use: ... reached" logged while 98 of 100 slots were free.
    spec = BudgetSpec(limit=100, window_s=60.0, key="busy")
    url = f"sqlite:///{tmp_path / 'budget.sqlite'}"
    shared = open_store(url, spec.rate, spec.key) if store == "sqlite" else None
    budget = RequestBudget(spec, shared)
    budget.acquire()
    budget.acquire()
    lock = budget._limiter.lock
    locks = lock if isinstance(lock, tuple) else (lock,)
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        for each in locks:
            each.acquire()
        taken.set()
        release.wait(5)
        for each in reversed(locks):
            each.release()

    holder = threading.Thread(target=hold)
    holder.start()
    taken.wait(5)
    threading.Timer(0.3, release.set).start()
    with caplog.at_level(logging.INFO, logger="tap_maptable.budget"):
        budget.acquire()
    holder.join(5)
    budget.close()
    assert release.is_set()  # the slot was given once the lock was free, not before
    assert budget.acquired == 3
    assert budget.waits == 0
    assert "reached" not in caplog.text


def test_a_file_lock_that_fails_leaves_the_thread_lock_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file lock failing with anything but a timeout (the disk, a permission) kept the
    # store's thread lock held: every other thread then waited out its timeout, forever after.
    lock = HostLock(f"{tmp_path}/budget.sqlite.lock", 1.0)

    def fail(**_kwargs: object) -> None:
        raise PermissionError

    with monkeypatch.context() as patch:
        patch.setattr(lock._file, "acquire", fail)
        with pytest.raises(PermissionError):
            lock.acquire()
    taken: list[bool] = []
    other = threading.Thread(target=lambda: taken.append(lock.acquire(blocking=True, timeout=0.5)))
    other.start()
    other.join(5)
    assert taken == [True]
