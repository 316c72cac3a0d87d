"""Under every fault the sandbox can inject, nothing is lost or doubled, or the run fails clearly.

Three layers:
- one kind at a time, a handful of times in a run: the run completes with every row exactly once;
- one kind on every try of one request: the command fails with one clear line, after a bounded
  number of tries;
- a mix of every kind at once, at several seeds (light and heavy): each run either completes
  with every row exactly once, or fails with one clear line; never anything in between.

Sleeps are shortened (see `support.install_fast_waits`); tries and request counts are not.
Seeds: TAP_MAPTABLE_FAULT_SEEDS (default 4 per mix level, three levels).
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

from maptable_sandbox import FaultPlan
from tap_maptable.retry import MAX_RATE_LIMIT_WAITS
from tests.hardening.support import (
    assert_exactly_once,
    assert_no_tokens,
    assert_one_clear_line,
    fast_env,
    install_fast_waits,
    keys_by_stream,
    truth,
)
from tests.helpers import Run, run_cli, sync, tap_config

TRANSIENT_KINDS = ["500", "503", "html502", "drop", "timeout", "truncate", "code", "429", "401"]
ALL_KINDS = [*TRANSIENT_KINDS, "refresh_reject"]
# Request numbers (since the plan was installed) that get the fault: the workspace list, two
# in a row, and segments both first and later in their tables. Request 1 is the login.
SCHEDULE = (2, 5, 6, 13, 20)
SEEDS = int(os.environ.get("TAP_MAPTABLE_FAULT_SEEDS", "4"))
# Per-kind rate. Light runs mostly complete, heavy ones mostly die early (often at login: a
# ten-kind mix at 0.1 each faults 90% of requests), medium ones do both, with dozens of faults.
MIX_LEVELS = {"light": 0.03, "medium": 0.05, "heavy": 0.1}
MIX_KINDS_FOR = ("auth", "refresh", "workspaces", "workspace", "rows")

# What the one clear line says for a fault on every try of GET /workspaces/.
EXPECTED_LINE = {
    "500": "GET /open/api/v1/workspaces/, HTTP 500, code 50000",
    "503": "GET /open/api/v1/workspaces/, HTTP 503, code 50300",
    "html502": "HTML page",
    "drop": ": the connection was dropped",  # "cannot reach 127.0.0.1:<port>: ..."
    "timeout": ": no answer in time",
    "truncate": "not valid JSON",
    "code": "GET /open/api/v1/workspaces/, HTTP 200, code 50001",
    "429": "still rate limited",
    "401": "authentication failed",
}


@pytest.fixture
def fast_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    install_fast_waits(monkeypatch.setattr)


def _injected(sandbox, kind: str) -> int:
    return sum(1 for e in sandbox.requests if e.fault == kind)


# -- one kind at a time, transient: the run completes, every row exactly once -----------------


@pytest.mark.parametrize("kind", TRANSIENT_KINDS)
def test_each_fault_kind_mid_run_loses_and_doubles_nothing(make_sandbox, fast_waits, kind) -> None:
    sandbox = make_sandbox(
        segment_size=20,
        faults=FaultPlan(schedule=dict.fromkeys(SCHEDULE, kind), timeout_delay=2.0),
    )
    # The schedule numbers requests: one at a time, so that requests 5 and 6 are two requests,
    # never a request and its own resend (two 401s in a row are rightly fatal).
    run = sync(tap_config(sandbox, request_timeout=1, max_parallel_requests=1))
    assert_exactly_once(run, sandbox)
    assert _injected(sandbox, kind) == len(SCHEDULE)
    assert_no_tokens(sandbox, *(str(m) for m in run.messages))


@pytest.mark.parametrize("rate", [0.5, 1.0])
def test_refused_refreshes_lose_and_double_nothing(make_sandbox, fast_waits, rate) -> None:
    # Tokens live ~1 s and the run is paced, so the tap refreshes on its own; a 401 on request 5
    # forces one renewal (a refresh) in any case. Seed 3's first draw refuses the first refresh.
    sandbox = make_sandbox(
        workspaces=1,
        segment_size=10,
        token_ttl=1.0,
        rate_limit=20,
        rate_window=1.0,
        faults=FaultPlan(
            rates={"refresh_reject": rate}, kinds_for=("refresh",), schedule={5: "401"}, seed=3
        ),
    )
    run = sync(tap_config(sandbox, requests_per_minute=20, rate_limit_window_seconds=1))
    assert_exactly_once(run, sandbox)
    counts = Counter(e.kind for e in sandbox.requests)
    refused = sum(1 for e in sandbox.requests if e.kind == "refresh" and e.status == 401)
    assert _injected(sandbox, "refresh_reject") >= 1
    assert counts["auth"] == 1 + refused  # every refused refresh costs exactly one new login


# -- one kind on every try: one clear line, bounded tries ---------------------------------------


@pytest.mark.parametrize("kind", TRANSIENT_KINDS)
def test_a_persistent_fault_fails_in_one_clear_line_after_bounded_tries(sandbox, kind) -> None:
    max_tries = 3
    sandbox.set_faults(FaultPlan(rates={kind: 1.0}, kinds_for=("workspaces",), timeout_delay=2.0))
    config = tap_config(sandbox, max_tries=max_tries, request_timeout=1)
    run = run_cli(["--discover"], config, env=fast_env(), timeout=60)
    last = assert_one_clear_line(run)
    assert EXPECTED_LINE[kind] in last
    if kind in {"drop", "timeout"}:
        assert f"cannot reach 127.0.0.1:{sandbox.port}" in last
    assert "<html" not in run.stderr.lower()
    assert not run.of_type("SCHEMA")
    assert_no_tokens(sandbox, run.stderr, last)
    tries = Counter(e.kind for e in sandbox.requests)["workspaces"]
    if kind == "429":  # waited out MAX_RATE_LIMIT_WAITS times, then one fatal error
        assert tries == MAX_RATE_LIMIT_WAITS + 1
    elif kind == "401":  # renewed and re-sent once, then fatal
        assert tries == 2
    else:
        assert tries == max_tries


def test_a_persistent_fault_mid_sync_fails_clearly_and_keeps_what_was_sent(make_sandbox) -> None:
    max_tries = 3
    sandbox = make_sandbox(segment_size=10)
    # Request 30 and every retry of it fail, whatever request it is (a segment, by then): one
    # request at a time, so that requests 30 to 32 are one request and its retries.
    sandbox.set_faults(FaultPlan(schedule=dict.fromkeys(range(30, 30 + max_tries), "503")))
    config = tap_config(sandbox, max_tries=max_tries, max_parallel_requests=1)
    run = run_cli([], config, env=fast_env(), timeout=60)
    last = assert_one_clear_line(run)
    assert "HTTP 503" in last
    assert len(sandbox.requests) == 29 + max_tries
    expected = truth(sandbox)
    for stream, keys in keys_by_stream(run.records).items():
        assert not [k for k, n in keys.items() if n > 1], f"{stream}: duplicates"
        assert set(keys) <= expected[stream]
    assert run.rows, "records before the failure were emitted"


# -- every kind at once, several seeds ---------------------------------------------------------


def _check_bounded(sandbox, max_tries: int) -> None:
    """No data request is sent more often than its tries, renewals and 429 waits allow."""
    per_request = Counter(
        (e.method, e.path, tuple(sorted(e.query.items())))
        for e in sandbox.requests
        if e.kind not in {"auth", "refresh"}
    )
    bound = max_tries * 2 * (MAX_RATE_LIMIT_WAITS + 1)
    worst = max(per_request.values(), default=0)
    assert worst <= bound, f"one request was sent {worst} times (bound {bound})"
    token_calls = sum(1 for e in sandbox.requests if e.kind in {"auth", "refresh"})
    renewals = 1 + sum(1 for e in sandbox.requests if e.status == 401 and e.kind != "auth")
    renewals += sum(1 for e in sandbox.requests if e.kind == "refresh")
    # Token calls are tried as often as any request (the one retry policy).
    assert token_calls <= renewals * max_tries * (MAX_RATE_LIMIT_WAITS + 1)


def _check_outcome(run: Run, sandbox) -> None:
    assert run.returncode in {0, 1}
    if run.returncode == 0:
        assert "Traceback" not in run.stderr
        assert_exactly_once(run, sandbox)
    else:
        assert_one_clear_line(run)
        # What was emitted before the failure is still never doubled.
        for stream, keys in keys_by_stream(run.records).items():
            assert not [k for k, n in keys.items() if n > 1], f"{stream}: duplicates"


@pytest.mark.parametrize("level", list(MIX_LEVELS))
@pytest.mark.parametrize("seed", range(SEEDS))
def test_a_mix_of_every_fault_completes_exactly_once_or_fails_clearly(
    make_sandbox, level, seed
) -> None:
    rate = MIX_LEVELS[level]
    sandbox = make_sandbox(
        segment_size=20,
        token_ttl=2.0,
        faults=FaultPlan(
            rates=dict.fromkeys(ALL_KINDS, rate),
            kinds_for=MIX_KINDS_FOR,
            seed=1000 + seed,
            timeout_delay=2.0,
        ),
    )
    max_tries = 6
    # A faulty run sends more than the default budget of 60 requests a minute: lift it, so the
    # test measures retries, not pacing.
    config = tap_config(sandbox, request_timeout=1, max_tries=max_tries, requests_per_minute=6000)
    run = run_cli([], config, env=fast_env(), timeout=90)
    _check_outcome(run, sandbox)
    _check_bounded(sandbox, max_tries)
    assert_no_tokens(sandbox, run.stderr, *(str(m) for m in run.messages))
