"""Assume nothing of the server or the network: each hostile behaviour, against the sandbox.

Every test runs the tap over real HTTP (in this process, or as the `tap-maptable` command) and
asserts counts and bounds, never exact timings:
- paging: a server that caps the page size, or ignores paging, still yields every workspace,
  project, table node and row, and the list ends on the first page that brings nothing new;
- Retry-After: any header (huge, infinite, NaN, negative, an HTTP date, garbage, none) is waited
  out within one rate-limit window, replaced with one warning per run; a 429 that never ends
  ends the run in one line after the bounded number of waits;
- a pause stored in a shared budget (SQLite) can never hold a run longer than the bound;
- a request that gets no answer (DNS, refused, TLS) ends in one true line, retried only when a
  retry can help, never called an authentication failure;
- tokens stamped by a skewed server clock, and a token cache shared by two processes against a
  server that revokes used refresh tokens;
- smaller defects: credentials in store descriptions, odd table ids in paths and stream names,
  the `--state`/`--catalog` files closed on every path, and the budget's INFO line.
"""

from __future__ import annotations

import http.server
import itertools
import json
import logging
import math
import os
import re
import shutil
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pytest
import requests

from tap_maptable import api
from tap_maptable.budget import BudgetSpec, RequestBudget, budget_key, describe_store, open_store
from tap_maptable.budget.sqlite_store import HostLock, SQLiteRegistry
from tap_maptable.connection import MapTableConnection
from tap_maptable.discovery import TableRef, table_id_for
from tap_maptable.errors import MapTableError
from tap_maptable.reading.segments import segment_path
from tap_maptable.retry import MAX_RATE_LIMIT_WAITS
from tap_maptable.tokens import TokenCache, TokenPair, token_expiry
from tests.hardening.support import (
    ERROR_PREFIX,
    assert_exactly_once,
    assert_no_tokens,
    assert_one_clear_line,
    keys_by_stream,
    truth,
)
from tests.helpers import (
    APP_ID,
    APP_SECRET,
    VENV_BIN,
    Run,
    discover,
    kinds,
    run_cli,
    sync,
    tap_config,
)

if TYPE_CHECKING:
    from maptable_sandbox import Sandbox

REPLACED_RETRY_AFTER = "MapTable sent a Retry-After of"
BUDGET_IN_USE = "Request budget in use"
STILL_RATE_LIMITED = "still rate limited"
AUTH_FAILED = "authentication failed"
PASSWORD = "hunter2xyz"


# -- helpers ------------------------------------------------------------------------------------


def _free_port() -> int:
    """A loopback port nobody listens on (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _log_lines(run: Run, text: str) -> list[str]:
    """The stderr lines of `run` that contain `text`."""
    return [line for line in run.stderr.splitlines() if text in line]


def _last_line(run: Run) -> str:
    lines = run.stderr.strip().splitlines()
    return lines[-1] if lines else ""


def _timed_cli(config: dict[str, Any], *, timeout: float = 30, **kwargs: Any) -> tuple[Run, float]:
    """Run the command; return the run and how long it took (seconds)."""
    started = time.monotonic()
    run = run_cli([], config, timeout=timeout, **kwargs)
    return run, time.monotonic() - started


def _small(make_sandbox: Callable[..., Sandbox], **overrides: Any) -> Sandbox:
    """One workspace, one project, two tables: a run of a handful of requests."""
    settings: dict[str, Any] = {
        "workspaces": 1,
        "projects_per_workspace": 1,
        "tables_per_project": 2,
        "rows_per_table": 20,
    }
    return make_sandbox(**{**settings, **overrides})


# -- 1. paging that assumes nothing -------------------------------------------------------------


@pytest.mark.parametrize("offset", ["served", "asked"])
@pytest.mark.parametrize(("workspaces", "cap"), [(8, 3), (6, 3)])
def test_a_capped_page_size_still_yields_every_workspace_table_and_row(
    make_sandbox, workspaces, cap, offset
) -> None:
    # The tap asks for 100 per page; the server sends at most `cap`, counting pages either in
    # the size it serves or in the size asked for. A short page is not the end of the list:
    # only a page that brings nothing new is.
    sandbox = make_sandbox(
        page_offset=offset,
        page_size_cap=cap,
        workspaces=workspaces,
        projects_per_workspace=1,
        tables_per_project=1,
        rows_per_table=5,
    )
    run = sync(tap_config(sandbox, page_size=100))
    expected = truth(sandbox)
    emitted = keys_by_stream(run.records)
    missing = expected["workspaces"] - set(emitted.get("workspaces", {}))
    assert not missing, f"{len(missing)} of {workspaces} workspaces never arrived"
    assert_exactly_once(run, sandbox)
    pages = math.ceil(workspaces / cap)
    listed = [e for e in sandbox.requests if e.kind == "workspaces"]
    assert len(listed) == pages + 1, "the list must end on the first page with nothing new"


@pytest.mark.parametrize("page_size", [3, 100])
def test_a_server_ignoring_paging_costs_at_most_one_extra_list_request(
    make_sandbox, page_size
) -> None:
    # Every page is the whole list: the second brings nothing new and ends it, no duplicates.
    sandbox = make_sandbox(
        paging="ignore", workspaces=5, projects_per_workspace=1, tables_per_project=1
    )
    run = sync(tap_config(sandbox, page_size=page_size))
    assert_exactly_once(run, sandbox)
    assert 1 <= kinds(sandbox)["workspaces"] <= 2


# -- 2. bounded waits -----------------------------------------------------------------------------

# (value sent verbatim as Retry-After, whether the tap must say it replaced it)
RETRY_AFTER_CASES: list[tuple[str | None, bool | None]] = [
    ("1e9", True),
    ("inf", True),
    ("nan", True),
    ("-5", True),
    ("Fri, 01 Jan 2099 00:00:00 GMT", True),
    ("Mon, 01 Jan 2001 00:00:00 GMT", True),
    ("garbage", None),  # unreadable: waited as a window; a warning is allowed, one at most
    (None, False),  # no header: a window, nothing to warn about
]
THROTTLED = 2
WINDOW_S = 1.0


@dataclass
class _Throttled:
    retry_after: str | None
    sandbox: Sandbox
    run: Run
    seconds: float


def _throttled_run(make_sandbox: Callable[..., Sandbox], retry_after: str | None) -> _Throttled:
    sandbox = _small(make_sandbox, rate_limit=10, rate_window=WINDOW_S)
    sandbox.throttle(THROTTLED, retry_after=retry_after, kinds=("workspaces",))
    config = tap_config(sandbox, requests_per_minute=10, rate_limit_window_seconds=WINDOW_S)
    run, seconds = _timed_cli(config, timeout=30)
    return _Throttled(retry_after, sandbox, run, seconds)


def _check_throttled(result: _Throttled, must_warn: bool | None) -> None:
    run, sandbox = result.run, result.sandbox
    assert run.returncode == 0, _last_line(run)
    assert_exactly_once(run, sandbox)
    log = sandbox.requests
    assert [e.status for e in log].count(429) == THROTTLED
    # Each wait is one window at most (plus the budget's margin and loopback slack).
    listed = [e for e in log if e.kind == "workspaces"]
    gaps = [b.t - a.t for a, b in itertools.pairwise(listed) if a.status == 429]
    assert len(gaps) == THROTTLED
    assert max(gaps) < WINDOW_S + 2.0, f"waited {max(gaps):.1f} s after a 429"
    assert result.seconds < 20, f"the run took {result.seconds:.0f} s"
    warned = len(_log_lines(run, REPLACED_RETRY_AFTER))
    if must_warn is True:
        assert warned == 1, f"{warned} warnings about the replaced Retry-After (want 1 per run)"
    elif must_warn is False:
        assert warned == 0
    else:
        assert warned <= 1
    assert AUTH_FAILED not in run.stderr


def _problem(result: _Throttled, must_warn: bool | None) -> str:
    """What is wrong with one throttled run ("" when nothing is)."""
    try:
        _check_throttled(result, must_warn)
    except AssertionError as exc:
        return str(exc) or "assertion failed"
    return ""


def test_every_retry_after_is_waited_out_within_one_window(make_sandbox) -> None:
    # The eight runs go at once (each waits about two windows): one per header, each with its
    # own sandbox; every failure is reported, not only the first.
    with ThreadPoolExecutor(len(RETRY_AFTER_CASES)) as pool:
        results = list(
            pool.map(lambda case: _throttled_run(make_sandbox, case[0]), RETRY_AFTER_CASES)
        )
    problems = [
        f"Retry-After {result.retry_after!r}: {problem}"
        for result, (_, must_warn) in zip(results, RETRY_AFTER_CASES, strict=True)
        if (problem := _problem(result, must_warn))
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("kind", ["workspaces", "auth"])
def test_a_429_that_never_ends_stops_the_run_in_one_line_after_the_bounded_waits(
    make_sandbox, kind
) -> None:
    sandbox = _small(make_sandbox)
    sandbox.throttle(None, retry_after="1e9", kinds=(kind,))
    window = 0.25
    run, seconds = _timed_cli(tap_config(sandbox, rate_limit_window_seconds=window))
    last = assert_one_clear_line(run)
    assert STILL_RATE_LIMITED in last
    assert AUTH_FAILED not in last
    assert [e.status for e in sandbox.requests].count(429) == MAX_RATE_LIMIT_WAITS + 1
    assert len(_log_lines(run, REPLACED_RETRY_AFTER)) == 1
    bound = MAX_RATE_LIMIT_WAITS * (window + 0.2) + 10
    assert seconds < bound, f"{seconds:.0f} s for {MAX_RATE_LIMIT_WAITS} waits of {window} s"


# -- 3. a shared pause cannot outlive the bound ---------------------------------------------------


def _store_pause(path: Path, key: str, how: str) -> None:
    """Leave a pause for app `key` in the SQLite budget file at `path`, as `how` says."""
    now = time.time()
    if how == "registry-old-horizon":
        # A pause recorded by a process whose horizon was long past (a bad clock, old version).
        registry = SQLiteRegistry(path, key, HostLock(f"{path}.lock", 5))
        try:
            registry.pause_until(now + 1e9, now - 3600)
        finally:
            registry.close()
        return
    until = {
        "far-future": now + 1e9,
        "an-hour": now + 3600,
        "infinite": math.inf,
        "no-time": None,
    }[how]
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE budget_pauses (key TEXT PRIMARY KEY, until REAL)")
        conn.execute("INSERT INTO budget_pauses VALUES (?, ?)", (key, until))
    conn.close()


@pytest.mark.parametrize(
    "how", ["far-future", "an-hour", "infinite", "registry-old-horizon", "no-time"]
)
def test_a_stored_pause_beyond_the_bound_never_holds_a_run(make_sandbox, tmp_path, how) -> None:
    sandbox = _small(make_sandbox)
    path = tmp_path / "budget.sqlite"
    config = tap_config(
        sandbox,
        rate_limit_store=f"sqlite:///{path}",
        requests_per_minute=10,
        rate_limit_window_seconds=1,
    )
    _store_pause(path, budget_key(MapTableConnection(config).app_key), how)
    run, seconds = _timed_cli(config, timeout=30)
    assert "Traceback" not in run.stderr
    assert run.returncode == 0, _last_line(run)
    assert_exactly_once(run, sandbox)
    # Ignored, not merely cut to one window per request (that would take about 8 s here).
    assert seconds < 5, f"the run took {seconds:.0f} s"


@pytest.mark.parametrize("seconds", [1e9, math.inf, -5.0, math.nan])
def test_a_pause_of_any_length_in_a_shared_store_is_bounded(tmp_path, seconds) -> None:
    # `RequestBudget.pause` promises: never longer than one window (plus margin), whatever the
    # caller asks; the pause lives in a file every later run of the app reads.
    spec = BudgetSpec(limit=5, window_s=0.5, key="pause-bound")
    url = f"sqlite:///{tmp_path / 'budget.sqlite'}"
    budget = RequestBudget(spec, open_store(url, spec.rate, "app"))
    try:
        budget.pause(seconds)
        started = time.monotonic()
        budget.acquire()
        waited = time.monotonic() - started
    finally:
        budget.close()
    assert waited <= budget.max_pause_s + 1.0
    # And the next run of the same app, on the same file, is not held either.
    later = RequestBudget(spec, open_store(url, spec.rate, "app"))
    try:
        started = time.monotonic()
        later.acquire()
        assert time.monotonic() - started <= later.max_pause_s + 1.0
    finally:
        later.close()


# -- 4. network errors in one true line ----------------------------------------------------------


def _assert_network_line(run: Run, expected_end: str) -> str:
    last = assert_one_clear_line(run)
    assert last.endswith(expected_end), last
    assert AUTH_FAILED not in run.stderr
    return last


def test_a_name_that_does_not_resolve_fails_at_once_in_one_line(sandbox) -> None:
    config = {**tap_config(sandbox), "api_url": "https://maptabel.invalid"}
    run, seconds = _timed_cli(config, timeout=60)
    last = _assert_network_line(run, "the name does not resolve (is api_url right?)")
    assert last == ERROR_PREFIX + (
        "cannot reach maptabel.invalid: the name does not resolve (is api_url right?)"
    )
    assert not _log_lines(run, "Retrying"), "a name that does not resolve is not retried"
    assert seconds < 15


def test_a_proxy_whose_name_does_not_resolve_is_named_as_what_to_check(sandbox) -> None:
    # The host in the line is the API's (the request's), but the proxy is what failed: the
    # hint must not send the user to api_url.
    config = {**tap_config(sandbox), "api_url": "https://maptable.example"}
    proxy = "http://someone:pr0xy-s3cret@proxy.invalid:3128"  # its password is never printed
    env = {"HTTPS_PROXY": proxy, "NO_PROXY": "", "no_proxy": ""}
    run, _ = _timed_cli(config, timeout=60, env=env)
    last = _assert_network_line(run, "(is the proxy right?)")
    assert "api_url" not in last
    assert "maptable.example through the proxy proxy.invalid:3128: " in last, last
    assert "pr0xy-s3cret" not in run.stderr + run.stdout
    assert "someone" not in run.stderr


def test_a_body_that_stops_coming_is_a_read_timeout_of_the_api_s_host(make_sandbox) -> None:
    # Headers at once, the body after the read timeout: requests raises a ConnectionError
    # around urllib3's timeout, with no request, and the line said "cannot reach MapTable: the
    # connection was dropped".
    sandbox = make_sandbox(body_delay_s=3.0)
    run, seconds = _timed_cli(tap_config(sandbox, request_timeout=1, max_tries=2), timeout=60)
    _assert_network_line(
        run, f"cannot reach 127.0.0.1:{sandbox.port}: no answer in time (read timeout)"
    )
    assert seconds < 30


def test_a_refused_connection_is_retried_max_tries_times_in_all(sandbox) -> None:
    max_tries = 2
    port = _free_port()
    config = {**tap_config(sandbox, max_tries=max_tries), "api_url": f"http://127.0.0.1:{port}"}
    run, seconds = _timed_cli(config, timeout=60)
    _assert_network_line(
        run, f"cannot reach 127.0.0.1:{port}: the connection was refused (is api_url right?)"
    )
    retries = _log_lines(run, "Retrying")
    # `max_tries` tries in all (retry.py, settings.py): the first and max_tries - 1 retries.
    assert len(retries) <= max_tries - 1, (
        f"{len(retries)} retry lines for max_tries={max_tries}: " + " | ".join(retries)
    )
    assert seconds < 20


def test_a_server_that_speaks_no_tls_fails_fast_in_one_line(sandbox) -> None:
    config = {**tap_config(sandbox), "api_url": f"https://127.0.0.1:{sandbox.port}"}
    run, seconds = _timed_cli(config)
    last = _assert_network_line(run, "the TLS handshake failed")
    assert "TLS" in last
    assert not _log_lines(run, "Retrying")
    assert seconds < 15


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Failed handshakes are the point here: stay quiet."""


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    do_POST = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """No access log."""


@pytest.fixture
def self_signed_https(tmp_path) -> Iterator[int]:
    """An HTTPS server on loopback with a self-signed certificate; yields its port."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: no self-signed certificate to serve")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost"),
            *("-days", "2", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = _QuietServer(("127.0.0.1", 0), _Answer)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_certificate_that_does_not_verify_fails_fast_in_one_line(
    sandbox, self_signed_https
) -> None:
    config = {**tap_config(sandbox), "api_url": f"https://127.0.0.1:{self_signed_https}"}
    run, seconds = _timed_cli(config)
    last = _assert_network_line(run, "its TLS certificate does not verify")
    expected = f"cannot reach 127.0.0.1:{self_signed_https}: its TLS certificate does not verify"
    assert last == ERROR_PREFIX + expected
    assert not _log_lines(run, "Retrying")
    assert seconds < 15


# -- 6. tokens ------------------------------------------------------------------------------------

TOKEN_TTL = 2  # whole seconds: the sandbox's claims are whole seconds


@pytest.mark.parametrize("skew_hours", [3, -3])
def test_a_skewed_server_clock_neither_refreshes_per_request_nor_sends_expired_tokens(
    make_sandbox, skew_hours
) -> None:
    sandbox = make_sandbox(
        workspaces=1,
        projects_per_workspace=1,
        tables_per_project=2,
        rows_per_table=75,
        segment_size=5,
        token_ttl=TOKEN_TTL,
        token_clock_skew_s=skew_hours * 3600.0,
    )
    run = sync(
        tap_config(
            sandbox, requests_per_minute=10, rate_limit_window_seconds=1, max_parallel_requests=1
        )
    )
    assert_exactly_once(run, sandbox)
    log = sandbox.requests
    duration = log[-1].t - log[0].t
    assert duration > 1.5 * TOKEN_TTL, "the run must outlive a token to need a refresh"
    refused = [e for e in log if e.status == 401]
    assert not refused, f"{len(refused)} requests answered 401 (token expired or refused)"
    refreshes = kinds(sandbox)["refresh"]
    assert refreshes >= 1
    # About one per lifetime (renewed at 90 % of it), never one per request.
    assert refreshes <= duration / (0.5 * TOKEN_TTL) + 1, (refreshes, round(duration, 1))
    assert refreshes < len(log) / 5
    assert kinds(sandbox)["auth"] == 1


def _seed_token_cache(sandbox: Sandbox, cache_home: Path) -> None:
    """Log in once and cache the pair where both processes will find it."""
    received_at = time.time()
    response = requests.post(
        sandbox.url + api.AUTH_PATH,
        json={api.AUTH_APP_ID: APP_ID, api.AUTH_APP_SECRET: APP_SECRET},
        timeout=5,
    )
    detail = response.json()["detail"]
    token, refresh = detail[api.TOKEN_FIELD], detail[api.REFRESH_TOKEN_FIELD]
    cache = TokenCache(cache_home / "tap-maptable" / "tokens", sandbox.url, APP_ID, APP_SECRET)
    cache.save(TokenPair(token, refresh, token_expiry(token, received_at), received_at))


@pytest.mark.parametrize("revoke_access_on_refresh", [False, True])
def test_two_processes_sharing_a_token_cache_both_finish(
    make_sandbox, tmp_path, revoke_access_on_refresh
) -> None:
    # Both start from the same cached pair; its refresh token works once. Whichever refreshes
    # second is refused and must pick up the pair the other cached (or log in), not fail.
    sandbox = make_sandbox(
        workspaces=1,
        projects_per_workspace=1,
        tables_per_project=2,
        rows_per_table=80,
        segment_size=5,
        token_ttl=TOKEN_TTL,
        revoke_used_refresh_tokens=True,
        revoke_access_on_refresh=revoke_access_on_refresh,
    )
    config = tap_config(
        sandbox,
        cache_tokens=True,
        requests_per_minute=12,
        rate_limit_window_seconds=1,
        max_parallel_requests=1,
    )
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    cache_home = tmp_path / "cache"
    _seed_token_cache(sandbox, cache_home)
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    argv = [str(VENV_BIN / "tap-maptable"), "--config", str(config_path)]
    # Output to files, not pipes: neither process may stall on a full pipe while the other runs.
    outs = [(tmp_path / f"out{n}.jsonl", tmp_path / f"err{n}.txt") for n in range(2)]
    procs = []
    for out, err in outs:
        with out.open("w") as stdout, err.open("w") as stderr:
            procs.append(subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env))
    for proc, (out, err) in zip(procs, outs, strict=True):
        proc.wait(timeout=60)
        stdout, stderr = out.read_text(), err.read_text()
        assert_no_tokens(sandbox, stdout, stderr)
        run = Run(
            messages=[json.loads(line) for line in stdout.splitlines() if line],
            stderr=stderr,
            returncode=proc.returncode,
        )
        assert run.returncode == 0, _last_line(run)
        assert AUTH_FAILED not in stderr
        assert_exactly_once(run, sandbox)
    log = sandbox.requests
    statuses = Counter((e.kind, e.status) for e in log)
    assert statuses[("refresh", 200)] >= 1, "the runs must outlive a token"
    data_refused = sum(
        n
        for (kind, status), n in statuses.items()
        if status == 401 and kind in {"workspaces", "workspace", "rows"}
    )
    if revoke_access_on_refresh:
        assert data_refused <= statuses[("refresh", 200)], statuses
    else:
        assert data_refused == 0, statuses
    assert statuses[("auth", 200)] <= 3, "at most one fallback login per process"


# -- 7. smaller defects ---------------------------------------------------------------------------

# A URL, and the parts of its credentials its description must not show.
STORE_CASES: list[tuple[str, list[str]]] = [
    (f"redis://alice:{PASSWORD}@cache.example:6380/1", ["alice", PASSWORD]),
    (f"rediss://alice:{PASSWORD}@cache.example/0", ["alice", PASSWORD]),
    (f"rediss://:{PASSWORD}@cache.example:6380", [PASSWORD]),
    (f"redis://cache.example:6380/0?password={PASSWORD}", [PASSWORD]),
    (f"sqlite:///tmp/budget.db?password={PASSWORD}", [PASSWORD]),
    (f"sqlite:///tmp/budget.db#{PASSWORD}", [PASSWORD]),
    (f"postgres://alice:{PASSWORD}@db.example/budget?password={PASSWORD}", ["alice", PASSWORD]),
    ("redis://alice:hunX/terY#2xyz@cache.example:6380/0", ["alice", "hunX", "terY", "2xyz"]),
    ("redis://alice:huntX@er2xyz@cache.example:6380/0", ["alice", "huntX", "er2xyz"]),
    ("redis://alice:pwX/aY#sZ@wordxyz@cache.example:6380/0", ["alice", "pwX", "wordxyz"]),
    (f"redis://alice:{PASSWORD}@cache.example:notaport/0", ["alice", PASSWORD]),
    (f"ftp://alice:{PASSWORD}@files.example/x", ["alice", PASSWORD]),
    (f"weird:alice:{PASSWORD}@files.example", ["alice", PASSWORD]),
    (f"unix://alice:{PASSWORD}@/tmp/redis.sock", ["alice", PASSWORD]),
    # A password in the query or fragment that contains `@`:
    ("sqlite:///tmp/budget.db?password=huntX@er2xyz", ["huntX", "er2xyz"]),
    ("postgres://db.example/budget?password=paX@ss2xyz", ["paX", "ss2xyz"]),
    ("sqlite:///tmp/budget.db#pw=huntX@er2xyz", ["huntX", "er2xyz"]),
]


@pytest.mark.parametrize(("url", "secrets"), STORE_CASES)
def test_a_store_description_shows_no_credentials(url, secrets) -> None:
    description = describe_store(url)
    shown = [secret for secret in secrets if secret in description]
    assert not shown, f"{url!r} is described as {description!r}"


@pytest.mark.parametrize(
    ("url", "name"),
    [
        (f"ftp://alice:{PASSWORD}@files.example/x", "ftp://files.example/x"),
        (f"redis://alice:{PASSWORD}@cache.example:notaport/0", "redis://cache.example"),
        (
            f"sqlite:////proc/no-such-dir/budget.db?password={PASSWORD}",
            "sqlite:////proc/no-such-dir/budget.db",
        ),
    ],
)
def test_a_store_that_cannot_be_opened_is_named_without_its_password(url, name) -> None:
    spec = BudgetSpec(limit=5, window_s=1)
    with pytest.raises(MapTableError) as raised:
        open_store(url, spec.rate, "app")
    message = str(raised.value)
    assert f"rate_limit_store {name!r}" in message or f"rate_limit_store {name} " in message, (
        message
    )
    assert PASSWORD not in message
    assert "alice" not in message


def test_an_unreachable_redis_store_ends_the_run_in_one_line_without_its_password(
    sandbox,
) -> None:
    port = _free_port()
    config = tap_config(sandbox, rate_limit_store=f"redis://alice:{PASSWORD}@127.0.0.1:{port}/0")
    run, _ = _timed_cli(config)
    last = assert_one_clear_line(run)
    assert f"redis://127.0.0.1:{port}/0" in last
    assert PASSWORD not in run.stderr + run.stdout
    assert "alice" not in run.stderr + run.stdout


ODD_TABLE_IDS = [
    "a/b",
    "a?b=c",
    "a b",
    "tbl#1",
    "100%",
    "../../etc/passwd",
    "ü-tbl",
    "_lead",
    "tbl_ok",
    "Tbl9977c482d5",
    "a%2Fb",
]


@pytest.mark.parametrize("table_id", ODD_TABLE_IDS)
def test_odd_table_ids_are_url_encoded_in_paths_and_round_trip_through_stream_names(
    table_id,
) -> None:
    prefix, suffix = api.TABLE_SEGMENT_PATH.split("{tableId}")
    path = segment_path(table_id)
    assert path.startswith(prefix)
    assert path.endswith(suffix)
    encoded = path[len(prefix) : len(path) - len(suffix)]
    assert not set(encoded) & set("/?# "), encoded
    assert unquote(encoded) == table_id
    name = TableRef(table_id=table_id).stream_name
    assert re.fullmatch(r"table_[0-9A-Za-z_]+", name), name
    assert table_id_for(name) == table_id


def test_odd_table_id_paths_reach_the_server_as_one_path_segment(sandbox) -> None:
    # Over real HTTP: each encoded id arrives whole, routed as one table's segment request.
    ids = ["a/b", "x?y=1", "a b", "t#1"]
    for table_id in ids:
        requests.get(sandbox.url + segment_path(table_id), timeout=5).close()
    log = sandbox.requests
    assert [e.path for e in log] == [segment_path(table_id) for table_id in ids]
    assert [e.kind for e in log] == ["rows"] * len(ids)
    assert all(not e.query for e in log)


@pytest.fixture
def input_files(sandbox, tmp_path) -> dict[str, Path]:
    config = tap_config(sandbox)
    files = {
        "config": tmp_path / "config.json",
        "catalog": tmp_path / "catalog.json",
        "state": tmp_path / "state.json",
        "bad": tmp_path / "bad.json",
        "not-utf8": tmp_path / "not-utf8.json",
    }
    files["config"].write_text(json.dumps(config))
    files["catalog"].write_text(json.dumps(discover(config)))
    files["state"].write_text(json.dumps({"bookmarks": {}}))
    files["bad"].write_text("{not json")
    files["not-utf8"].write_bytes(b"\xff\xfe{}")
    return files


@pytest.mark.parametrize(
    ("catalog", "state", "ok"),
    [
        ("bad", "state", False),
        ("catalog", "bad", False),
        ("not-utf8", "state", False),
        ("catalog", "not-utf8", False),
        ("catalog", "state", True),
    ],
)
def test_state_and_catalog_files_are_closed_on_every_exit_path(
    input_files, catalog, state, ok
) -> None:
    argv = [str(VENV_BIN / "tap-maptable"), "--config", str(input_files["config"])]
    argv += ["--catalog", str(input_files[catalog]), "--state", str(input_files[state])]
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "always::ResourceWarning"},
        check=False,
    )
    assert "ResourceWarning" not in result.stderr, [
        line for line in result.stderr.splitlines() if "ResourceWarning" in line
    ]
    assert "Traceback" not in result.stderr
    assert (result.returncode == 0) is ok, result.stderr.strip().splitlines()[-1:]


def test_a_run_under_the_limit_says_nothing_of_the_budget(make_sandbox, caplog) -> None:
    sandbox = _small(make_sandbox, rate_limit=100, rate_window=1)
    caplog.set_level(logging.INFO, logger="tap_maptable")
    run = sync(tap_config(sandbox, requests_per_minute=100, rate_limit_window_seconds=1))
    assert len(sandbox.requests) < 20
    assert not [r for r in caplog.records if BUDGET_IN_USE in r.getMessage()]
    assert run.tap is not None
    assert run.tap.connection.budget.waits == 0


def test_a_run_over_the_limit_says_once_that_it_waits_for_the_budget(make_sandbox, caplog) -> None:
    sandbox = _small(make_sandbox, rate_limit=5, rate_window=1, rows_per_table=50, segment_size=10)
    caplog.set_level(logging.INFO, logger="tap_maptable")
    run = sync(tap_config(sandbox, requests_per_minute=5, rate_limit_window_seconds=1))
    assert len(sandbox.requests) >= 12
    lines = [r for r in caplog.records if BUDGET_IN_USE in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelno == logging.INFO
    assert not [e for e in sandbox.requests if e.status == 429]
    assert run.tap is not None
    assert run.tap.connection.budget.waits >= 1
