"""Tokens: one login per run, refresh before expiry, rotation, fallbacks, clear failures."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from maptable_sandbox import FaultPlan
from tap_maptable.tokens import as_bearer, token_expiry
from tests.helpers import kinds, run_cli, sync, tap_config


def _jwt(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"Bearer {part({'alg': 'HS256'})}.{part(claims)}.c2ln"


def test_tokens_are_sent_as_returned_and_prefixed_only_when_bare() -> None:
    assert as_bearer("Bearer abc") == "Bearer abc"
    assert as_bearer("bearer abc") == "bearer abc"
    assert as_bearer("abc") == "Bearer abc"


def test_expiry_comes_from_exp_claim_else_eight_hours() -> None:
    assert token_expiry(_jwt({"exp": 1_700_000_123}), received_at=0) == 1_700_000_123
    assert token_expiry(_jwt({"iat": 5}), received_at=100) == 100 + 8 * 3600
    assert token_expiry("Bearer not-a-jwt", received_at=100) == 100 + 8 * 3600


def test_expiry_counts_the_token_lifetime_from_local_receipt_whatever_the_server_clock() -> None:
    # Server clock 3 h ahead: iat/exp are 3 h in our future, the lifetime is still one hour.
    local_now = 1_700_000_000
    ahead = _jwt({"iat": local_now + 3 * 3600, "exp": local_now + 4 * 3600})
    assert token_expiry(ahead, received_at=local_now) == local_now + 3600
    behind = _jwt({"iat": local_now - 5 * 3600, "exp": local_now - 4 * 3600})
    assert token_expiry(behind, received_at=local_now) == local_now + 3600


def test_one_login_per_run_whatever_the_number_of_streams(sandbox) -> None:
    run = sync(tap_config(sandbox))
    counts = kinds(sandbox)
    assert counts["auth"] == 1
    assert counts["refresh"] == 0
    assert not [e for e in sandbox.requests if e.status == 401]
    assert len(run.rows) >= 4
    assert {"workspaces", "projects", "table_nodes"} <= set(run.records)


def test_refreshes_before_expiry_and_keeps_the_rotated_refresh_token(make_sandbox) -> None:
    # Tokens live 2 s; a paced run of ~4 s must refresh at least twice, each time with the
    # refresh token of the previous refresh (the sandbox kills used ones), with no 401 at all.
    sandbox = make_sandbox(token_ttl=2.0, rate_limit=10, rate_window=1.0, segment_size=10)
    run = sync(
        tap_config(sandbox, requests_per_minute=10, rate_limit_window_seconds=1.0),
    )
    counts = kinds(sandbox)
    assert counts["auth"] == 1
    assert counts["refresh"] >= 2
    assert not [e for e in sandbox.requests if e.status in (401, 429)]
    assert run.records


def test_token_without_exp_is_renewed_after_a_401_and_the_request_retried_once(
    make_sandbox,
) -> None:
    # No `exp` claim: the tap assumes 8 hours, but the server expires the token after 1 s.
    sandbox = make_sandbox(
        token_ttl=1.0, include_exp=False, rate_limit=10, rate_window=1.0, segment_size=10
    )
    # One request at a time: with several in flight, one 401 renewal serves them all.
    config = tap_config(
        sandbox, requests_per_minute=10, rate_limit_window_seconds=1.0, max_parallel_requests=1
    )
    run = sync(config)
    unauthorized = [e for e in sandbox.requests if e.status == 401]
    counts = kinds(sandbox)
    assert unauthorized, "the run was expected to outlive its first token"
    # each 401 costs exactly one renewal (a refresh) and one resend
    assert counts["refresh"] == len(unauthorized)
    assert counts["auth"] == 1
    assert len(run.records["workspaces"]) == 2


def test_refused_refresh_falls_back_to_a_new_login(make_sandbox) -> None:
    sandbox = make_sandbox(
        token_ttl=2.0,
        rate_limit=10,
        rate_window=1.0,
        segment_size=10,
        faults=FaultPlan(rates={"refresh_reject": 1.0}, kinds_for=("refresh",)),
    )
    run = sync(tap_config(sandbox, requests_per_minute=10, rate_limit_window_seconds=1.0))
    counts = kinds(sandbox)
    assert counts["refresh"] >= 1
    assert counts["auth"] == 1 + counts["refresh"]
    assert run.records["workspaces"]


def test_a_single_401_mid_run_is_renewed_and_retried(sandbox) -> None:
    sandbox.set_faults(FaultPlan(schedule={4: "401"}))
    run = sync(tap_config(sandbox))
    statuses = [e.status for e in sandbox.requests]
    assert statuses.count(401) == 1
    assert kinds(sandbox)["refresh"] == 1
    assert len(run.records["workspaces"]) == 2


def test_a_second_refusal_is_a_clear_fatal_error(sandbox, caplog) -> None:
    sandbox.set_faults(FaultPlan(rates={"401": 1.0}, kinds_for=("workspaces",)))
    caplog.set_level(logging.INFO)
    with pytest.raises(Exception, match="authentication failed") as info:
        sync(tap_config(sandbox))
    assert "token expired" in str(info.value)
    assert kinds(sandbox)["workspaces"] == 2  # the request and its one retry, nothing more


def test_wrong_secret_ends_the_run_at_once_with_one_line(sandbox) -> None:
    config = {**tap_config(sandbox), "app_secret": "wrong-secret-value"}
    run = run_cli(["--discover"], config)
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("tap-maptable: error: authentication failed: invalid appId or appSecret")
    assert "Traceback" not in run.stderr
    assert kinds(sandbox) == {"auth": 1}
    assert "wrong-secret-value" not in run.stderr


@pytest.mark.parametrize("root_level", ["INFO", "CRITICAL"])
def test_under_meltano_s_structured_logs_the_last_line_is_an_error_record(
    sandbox, tmp_path, root_level
) -> None:
    # Meltano reads the level of each JSON line and passes a plain line on as INFO: the reason
    # a run failed showed as `[info]`. With the logging configuration Meltano 4 writes for a
    # plugin that declares `structured-logging`, the last line is a record at level error,
    # whatever the log's level (`meltano --log-level=critical` sets the root's).
    log_config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"singer_formatter": {"()": "singer_sdk.logging.StructuredFormatter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "singer_formatter",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["console"], "level": root_level},
    }
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(log_config), encoding="utf-8")
    config = {**tap_config(sandbox), "app_secret": "wrong-secret-value"}
    run = run_cli(["--discover"], config, env={"SINGER_SDK_LOG_CONFIG": str(path)})
    assert run.returncode == 1
    last = json.loads(run.stderr.strip().splitlines()[-1])
    assert last["level"] == "error", last
    assert last["message"].startswith(
        "tap-maptable: error: authentication failed: invalid appId or appSecret"
    ), last
    assert "wrong-secret-value" not in run.stderr


def test_a_cached_token_saves_the_next_runs_login(sandbox, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    config = tap_config(sandbox, cache_tokens=True)
    sync(config)
    sync(config)
    assert kinds(sandbox)["auth"] == 1
    files = list((tmp_path / "tap-maptable" / "tokens").glob("*.json"))
    assert len(files) == 1
    assert files[0].stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "tap-maptable" / "tokens").stat().st_mode & 0o777 == 0o700


def test_a_refused_cached_token_falls_back_to_a_login(sandbox, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    config = tap_config(sandbox, cache_tokens=True)
    sync(config)
    sandbox.revoke_tokens()
    run = sync(config)
    assert run.records["workspaces"]
    counts = kinds(sandbox)
    # the revoked access token gets one 401; its refresh token still works: one refresh
    assert counts["auth"] == 1
    assert counts["refresh"] == 1
    assert [e.status for e in sandbox.requests].count(401) == 1


def test_a_pair_another_process_renewed_is_taken_without_a_request(make_sandbox, tmp_path) -> None:
    """Processes of one app share the token cache: a renewal by one costs the others nothing.

    Process A refreshes (rotating the refresh token B holds); B, due for renewal too, finds A's
    newer pair in the cache and uses it instead of sending a refresh that would be refused.
    """
    sandbox = make_sandbox(token_ttl=3.0)
    clock = [1_000_000.0]

    def authenticator():
        from tap_maptable.connection import MapTableConnection  # noqa: PLC0415
        from tap_maptable.tokens import TokenCache  # noqa: PLC0415

        connection = MapTableConnection(tap_config(sandbox))
        auth = connection.authenticator
        auth._cache = TokenCache(tmp_path, sandbox.url, "app-1", "s")
        auth._clock = lambda: clock[0]
        return auth

    a, b = authenticator(), authenticator()
    first = a.token()
    assert b.token() == first  # B starts from A's cached pair: no login of its own
    clock[0] += 10  # both pairs are due for renewal
    renewed = a.token()
    assert renewed != first
    assert b.token() == renewed
    counts = kinds(sandbox)
    assert (counts["auth"], counts["refresh"]) == (1, 1)
    assert not [e for e in sandbox.requests if e.status == 401]
