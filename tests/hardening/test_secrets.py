"""Nothing the tap prints shows the app secret or a token; the test-wide guard itself works.

Covers: the conftest guard (run on inner test sessions with pytester), `--about` (text and
JSON), `--discover`, a sync at DEBUG log level, error messages, and the refusal of plain http
to a remote host before any network access.
"""

from __future__ import annotations

import json
import re
import socket
import time
from typing import Any

import pytest

from maptable_sandbox import FaultPlan
from tap_maptable.errors import ConfigurationError
from tap_maptable.tap import TapMapTable
from tests.hardening.support import (
    assert_no_tokens,
    assert_one_clear_line,
    fast_env,
    install_fast_waits,
    run_command,
)
from tests.helpers import APP_SECRET, run_cli, tap_config

pytest_plugins = ["pytester"]

INNER_SECRET = "inner-only-secret-6d1f0b2a"  # known to the inner sessions' guard only

INNER_CONFTEST = """
pytest_plugins = ["tests.conftest"]
"""
INNER_TESTS = f"""
import logging
import sys

import requests

from tests.helpers import APP_ID, APP_SECRET, KNOWN_SECRETS

SECRET = "inner-only-" + {INNER_SECRET.removeprefix("inner-only-")!r}  # not in any source line
KNOWN_SECRETS.add(SECRET)


def test_clean():
    print("nothing to see here")


def test_prints_a_secret():
    print("the secret is", SECRET)


def test_writes_a_secret_to_stderr():
    sys.stderr.write(SECRET + "\\n")


def test_logs_an_issued_token(sandbox):
    answer = requests.post(
        sandbox.url + "/open/api/v1/auth/",
        json={{"appId": APP_ID, "appSecret": APP_SECRET}},
        timeout=5,
    )
    token = answer.json()["detail"]["token"]
    logging.getLogger("inner").warning("got %s", token.removeprefix("Bearer "))


def test_fails_with_the_secret_in_its_message():
    assert False, SECRET
"""


def _inner_session(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> Any:
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    capsys.readouterr()  # the inner session's output, echoed by pytester: not ours to show
    return result


def test_the_guard_fails_every_test_that_shows_a_secret_or_token(pytester, capsys) -> None:
    inner_session = _inner_session(pytester, capsys)
    assert inner_session.ret != 0
    flagged = {
        line.split("::")[1].split(" ")[0]
        for line in inner_session.stdout.lines
        if line.startswith(("FAILED ", "ERROR ")) and " - 1 secret(s)" in line
    }
    assert flagged == {
        "test_prints_a_secret",
        "test_writes_a_secret_to_stderr",
        "test_logs_an_issued_token",
        "test_fails_with_the_secret_in_its_message",
    }


def test_the_guards_own_report_does_not_show_the_secret(pytester, capsys) -> None:
    # The guard fails the test, but pytest still prints the captured output and the call's
    # error text (where the secret is) in the failure report, that is, in the CI log.
    inner_session = _inner_session(pytester, capsys)
    text = inner_session.stdout.str() + inner_session.stderr.str()
    shown = text.count(INNER_SECRET)
    tokens = len(re.findall(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", text))
    assert (shown, tokens) == (0, 0), (
        f"the failure report shows the secret {shown} time(s) and {tokens} token(s)"
    )


# -- the command's own output ------------------------------------------------------------------


@pytest.mark.parametrize("args", [["--about"], ["--about", "--format=json"]])
def test_about_shows_no_secret(sandbox, args) -> None:
    result = run_command(args, tap_config(sandbox))
    assert result.returncode == 0
    assert APP_SECRET not in result.stdout + result.stderr
    if "--format=json" in args:
        about = json.loads(result.stdout)
        assert "app_secret" in json.dumps(about)  # the setting is described, not filled in
    assert not sandbox.requests


def test_discover_shows_no_secret_or_token(sandbox) -> None:
    result = run_command(["--discover"], tap_config(sandbox))
    assert result.returncode == 0
    assert json.loads(result.stdout)["streams"]
    assert_no_tokens(sandbox, result.stdout, result.stderr)


@pytest.mark.parametrize("variable", ["TAP_MAPTABLE_LOGLEVEL", "LOGLEVEL"])
def test_a_debug_sync_shows_no_secret_token_or_authorization(make_sandbox, variable) -> None:
    # Short-lived tokens: the run logs in, refreshes and is refused once, all at DEBUG.
    sandbox = make_sandbox(
        workspaces=1, segment_size=20, token_ttl=1.0, rate_limit=20, rate_window=1.0
    )
    sandbox.set_faults(FaultPlan(schedule={6: "401"}))
    config = tap_config(sandbox, requests_per_minute=20, rate_limit_window_seconds=1)
    run = run_cli([], config, env={variable: "DEBUG"})
    assert run.returncode == 0, run.stderr[-500:]
    assert "| DEBUG" in run.stderr, "the log level setting had no effect"
    assert "urllib3.connectionpool" in run.stderr  # requests are logged at DEBUG...
    assert "authorization" not in run.stderr.lower()  # ...without their headers
    assert "bearer" not in run.stderr.lower()
    assert_no_tokens(sandbox, run.stderr, json.dumps(run.messages))
    assert any(e.kind == "refresh" for e in sandbox.requests)


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        (FaultPlan(rates={"401": 1.0}, kinds_for=("workspaces",)), "authentication failed"),
        (FaultPlan(rates={"500": 1.0}, kinds_for=("auth",)), "authentication failed"),
        (FaultPlan(rates={"code": 1.0}, kinds_for=("workspaces",)), "code 50001"),
    ],
    ids=["token-refused", "login-failing", "error-code"],
)
def test_error_messages_show_no_secret_or_token(sandbox, plan, expected) -> None:
    sandbox.set_faults(plan)
    config = tap_config(sandbox, max_tries=1)
    run = run_cli(["--discover"], config, env=fast_env())
    last = assert_one_clear_line(run)
    assert expected in last
    assert_no_tokens(sandbox, run.stderr)


def test_a_wrong_secret_is_not_repeated_in_the_error(sandbox) -> None:
    wrong = "wrong-secret-4471"
    run = run_cli(["--discover"], {**tap_config(sandbox), "app_secret": wrong})
    last = assert_one_clear_line(run)
    assert "authentication failed" in last
    assert wrong not in run.stderr


@pytest.mark.parametrize("bad", [12345, "", ["s3cret-in-a-list"], {"v": "s3cret-in-an-object"}])
def test_an_invalid_secret_setting_is_named_but_not_shown(sandbox, bad) -> None:
    run = run_cli(["--discover"], {**tap_config(sandbox), "app_secret": bad})
    last = assert_one_clear_line(run)
    assert last.startswith("tap-maptable: error: invalid config:")
    assert "app_secret" in last
    for shown in (json.dumps(bad), "s3cret-in"):
        if shown not in {'""', "12345"}:
            assert shown not in run.stderr
    assert not sandbox.requests


# -- plain http to a remote host ----------------------------------------------------------------


def test_plain_http_to_a_remote_host_is_refused_before_any_network_access(monkeypatch) -> None:
    attempts: list[str] = []

    def no_network(*args, **kwargs):
        attempts.append(repr(args[:1]))
        msg = "network access in a test that must not reach the network"
        raise OSError(msg)

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    config = {"app_id": "a", "app_secret": APP_SECRET, "api_url": "http://maptable.invalid"}
    with pytest.raises(
        ConfigurationError, match=r"refusing plain http to maptable\.invalid"
    ) as info:
        TapMapTable(config=config)
    assert APP_SECRET not in str(info.value)
    assert not attempts


def test_the_command_refuses_plain_http_to_a_remote_host_at_once() -> None:
    config = {"app_id": "a", "app_secret": APP_SECRET, "api_url": "http://maptable.invalid/"}
    started = time.monotonic()
    run = run_cli(["--discover"], config)
    elapsed = time.monotonic() - started
    last = assert_one_clear_line(run)
    assert last.startswith("tap-maptable: error: invalid config: api_url: refusing plain http")
    assert "allow_insecure_http" in last
    assert "network error" not in run.stderr
    assert elapsed < 15  # a network attempt would retry with backoff for much longer


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9", "https://maptable.invalid"],
)
def test_loopback_http_and_any_https_are_accepted(monkeypatch, url) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)
    install_fast_waits(monkeypatch.setattr)
    config = {"app_id": "a", "app_secret": APP_SECRET, "api_url": url, "max_tries": 1}
    with pytest.raises(Exception) as info:  # any failure but the refusal
        TapMapTable(config=config)
    assert "refusing plain http" not in str(info.value)


def test_allow_insecure_http_lifts_the_refusal(monkeypatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)
    install_fast_waits(monkeypatch.setattr)
    config = {
        "app_id": "a",
        "app_secret": APP_SECRET,
        "api_url": "http://maptable.invalid",
        "allow_insecure_http": True,
        "max_tries": 1,
    }
    with pytest.raises(Exception) as info:
        TapMapTable(config=config)
    assert "refusing plain http" not in str(info.value)


def _refuse(*_args, **_kwargs):
    msg = "no network in this test"
    raise socket.gaierror(msg)
