"""The retry policy's once-per-run warning: once per policy (one per run), whatever the threads."""

from __future__ import annotations

import logging
import math
import threading

import pytest

from tap_maptable.retry import RetryPolicy

REPLACED = "MapTable sent a Retry-After of"


def test_a_senseless_retry_after_is_one_window_and_logged_once_per_run(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="tap_maptable.retry")
    policy = RetryPolicy(window_s=2.0)
    barrier = threading.Barrier(8)
    waits: list[float] = []

    def wait_out_429s() -> None:
        barrier.wait()
        waits.extend(policy.rate_limit_wait(told) for told in (math.inf, 1e9, 7.0))

    threads = [threading.Thread(target=wait_out_429s) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert waits == [2.0] * 24
    assert policy.rate_limit_wait(-5.0) == 2.0
    assert policy.rate_limit_wait(1.5) == 1.5
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith(REPLACED)]
    assert len(logged) == 2, logged  # one for "too long", one for "negative"


def test_each_run_has_its_own_policy_and_logs_again(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="tap_maptable.retry")
    for _ in range(2):
        RetryPolicy(window_s=1.0).rate_limit_wait(math.nan)
    assert sum(r.getMessage().startswith(REPLACED) for r in caplog.records) == 2


def test_policies_compare_by_identity() -> None:
    assert RetryPolicy() != RetryPolicy()
    with pytest.raises(TypeError):
        RetryPolicy(_warned={"huge"})  # type: ignore[call-arg]
