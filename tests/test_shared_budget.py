"""One request budget for every process of an app: SQLite on one host, Redis across hosts."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tap_maptable.budget import BudgetSpec, RequestBudget, budget_key, describe_store, open_store
from tests.helpers import VENV_BIN, assert_no_secrets, max_in_window, tap_config

LIMIT, WINDOW = 10, 2.0
PROCESSES = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path):
    """A private redis-server on a free loopback port (password-protected)."""
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is missing in CI (.ci/run installs Debian's redis-server)")
        pytest.skip("redis-server not installed (apt-get install redis-server) ")
    port = _free_port()
    password = "redis-pw-7d1e"  # a secret the output must never show
    proc = subprocess.Popen(
        [
            *(server, "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no"),
            *("--requirepass", password, "--dir", str(tmp_path)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    from tests import helpers  # noqa: PLC0415

    helpers.KNOWN_SECRETS.add(password)
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    yield url, proc
    proc.terminate()
    proc.wait(timeout=10)


def _start_taps(
    sandbox, tmp_path: Path, store: str, count: int, **extra
) -> list[subprocess.Popen[str]]:
    procs = []
    for n in range(count):
        config = tmp_path / f"config-{n}.json"
        config.write_text(
            json.dumps(
                tap_config(
                    sandbox,
                    requests_per_minute=LIMIT,
                    rate_limit_window_seconds=WINDOW,
                    rate_limit_store=store,
                    **extra,
                )
            )
        )
        procs.append(
            subprocess.Popen(
                [str(VENV_BIN / "tap-maptable"), "--config", str(config)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return procs


def _records(stdout: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in stdout.splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            counts[message["stream"]] += 1
    return counts


def _expected(sandbox) -> Counter[str]:
    counts = Counter(
        {f"table_{t.table_id}": sandbox.data.row_count(t.table_id) for t in sandbox.data.tables()}
    )
    counts["workspaces"] = len(sandbox.data.workspaces())
    return counts


def _assert_shared(sandbox, procs) -> None:
    expected = _expected(sandbox)
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert_no_secrets(out + err)
        assert proc.returncode == 0, err.strip().splitlines()[-1:]
        got = _records(out)
        assert all(got[name] == n for name, n in expected.items())
    log = sandbox.requests
    assert not [e for e in log if e.status == 429]
    assert max_in_window([e.t for e in log], WINDOW) <= LIMIT
    assert len(log) > 2 * LIMIT, "the processes together must need pacing"


def _data(make_sandbox, rows: int = 40):
    return make_sandbox(
        rate_limit=LIMIT,
        rate_window=WINDOW,
        workspaces=1,
        projects_per_workspace=1,
        tables_per_project=2,
        rows_per_table=rows,
        segment_size=10,
    )


def test_processes_on_one_sqlite_store_share_one_window(make_sandbox, tmp_path) -> None:
    sandbox = _data(make_sandbox)
    procs = _start_taps(sandbox, tmp_path, f"sqlite:///{tmp_path}/budget.sqlite", PROCESSES)
    _assert_shared(sandbox, procs)


def test_processes_on_one_redis_share_one_window(make_sandbox, tmp_path, redis_url) -> None:
    url, _server = redis_url
    sandbox = _data(make_sandbox)
    procs = _start_taps(sandbox, tmp_path, url, PROCESSES)
    _assert_shared(sandbox, procs)


def test_a_killed_process_does_not_wedge_the_others(make_sandbox, tmp_path) -> None:
    sandbox = _data(make_sandbox)
    store = f"sqlite:///{tmp_path}/budget.sqlite"
    procs = _start_taps(sandbox, tmp_path, store, PROCESSES)
    time.sleep(1.5)
    procs[0].send_signal(signal.SIGKILL)
    procs[0].communicate(timeout=30)
    _assert_shared(sandbox, procs[1:])


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_a_slot_stamped_earlier_but_checked_later_still_sees_the_later_one(
    store, tmp_path, request
) -> None:
    """Process A stamps its slot, process B stamps later and is checked first: A must count B's."""
    from pyrate_limiter import RateItem  # noqa: PLC0415

    url = (
        f"sqlite:///{tmp_path}/budget.sqlite"
        if store == "sqlite"
        else request.getfixturevalue("redis_url")[0]
    )
    spec = BudgetSpec(limit=1, window_s=5.0, key=budget_key("app"))
    first, second = (open_store(url, spec.rate, "app") for _ in range(2))
    try:
        stamp = first.bucket.now()
        assert second.bucket.put(RateItem("app", stamp + 50))  # B: stamped later, checked first
        assert not first.bucket.put(RateItem("app", stamp))  # A: its window holds B's slot
    finally:
        first.close()
        second.close()


def test_redis_lost_mid_run_is_a_clear_error_not_a_burst(make_sandbox, tmp_path, redis_url) -> None:
    url, server = redis_url
    sandbox = _data(make_sandbox, rows=200)
    (proc,) = _start_taps(sandbox, tmp_path, url, 1)
    deadline = time.monotonic() + 30
    while len(sandbox.requests) < LIMIT + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.terminate()
    server.wait(timeout=10)
    stopped = time.time()
    out, err = proc.communicate(timeout=120)
    assert_no_secrets(out + err)
    assert proc.returncode == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("tap-maptable: error: rate_limit_store redis://127.0.0.1:"), err[-3000:]
    assert "redis-pw" not in err
    assert "Traceback" not in err
    assert not [e for e in sandbox.requests if e.t > stopped + 0.5]


def test_unreachable_redis_at_start_sends_no_request(sandbox, tmp_path) -> None:
    port = _free_port()
    (proc,) = _start_taps(sandbox, tmp_path, f"redis://:hunter2-pw@127.0.0.1:{port}/0", 1)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1] == (
        f"tap-maptable: error: cannot reach rate_limit_store redis://127.0.0.1:{port}/0: "
        "ConnectionError"
    )
    assert "hunter2" not in out + err
    assert sandbox.requests == []


def test_processes_that_disagree_never_exceed_the_smallest_limit(tmp_path) -> None:
    store = f"sqlite:///{tmp_path}/budget.sqlite"
    window = 0.5
    budgets = []
    for limit in (6, 3):
        spec = BudgetSpec(limit=limit, window_s=window, key=budget_key("app"))
        budgets.append(RequestBudget(spec, open_store(store, spec.rate, "app")))
    for budget in budgets:  # both registered before either sends
        budget._heartbeat_if_due()
    times = []
    for n in range(12):
        budgets[n % 2].acquire()
        times.append(time.monotonic())
    assert {b.limit for b in budgets} == {3}
    assert max_in_window(times, window) <= 3
    for budget in budgets:
        budget.close()


def test_budgets_are_keyed_by_app_never_by_secret() -> None:
    assert budget_key("https://maptable.com:443/app-1") == budget_key(
        "https://maptable.com:443/app-1"
    )
    assert budget_key("https://maptable.com:443/app-1") != budget_key(
        "https://maptable.com:443/app-2"
    )
    assert budget_key("https://maptable.com:443/app-1") != budget_key(
        "https://eu.maptable.com:443/app-1"
    )
    assert describe_store("redis://user:pw@h:6380/2") == "redis://h:6380/2"
    assert describe_store("redis://:s3cr/et@h/0") == "redis://h:6379/0"
    assert "hunter2" not in describe_store("rediss//:hunter2@cache.example:6380/0")


def test_the_default_store_is_a_sqlite_file_in_the_user_cache_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    spec = BudgetSpec(limit=5, window_s=1.0, key=budget_key("app"))
    store = open_store(None, spec.rate, "app")
    assert store.shared
    assert store.description == f"sqlite:///{tmp_path}/tap-maptable/request-budget.sqlite"
    store.close()


def test_an_unwritable_cache_dir_falls_back_to_memory_with_one_warning(
    tmp_path, monkeypatch, caplog
) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the cache directory would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    spec = BudgetSpec(limit=5, window_s=1.0, key=budget_key("app"))
    store = open_store(None, spec.rate, "app")
    assert store.description == "memory"
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "this process only" in warnings[0].getMessage()


def test_a_wait_behind_another_process_s_slots_gives_only_the_latest_time(tmp_path, caplog) -> None:
    # The window filled by a process that ran just before and this one: this one's oldest slot
    # frees in a window, but another's may free sooner. "the next slot frees in 61 s" was said
    # for a slot that freed 44 s later.
    store = f"sqlite:///{tmp_path}/budget.sqlite"
    spec = BudgetSpec(limit=4, window_s=3.0, key=budget_key("app"))
    before, this = (RequestBudget(spec, open_store(store, spec.rate, "app")) for _ in range(2))
    for _ in range(3):
        before.acquire()
    this.acquire()
    with caplog.at_level(logging.INFO, logger="tap_maptable.budget"):
        this.acquire()  # waits for the other process's first slot
    lines = [r.getMessage() for r in caplog.records if "Request budget in use" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "a slot frees within " in lines[0], lines[0]
    assert "(others hold some)" in lines[0]
    for budget in (before, this):
        budget.close()
