"""Fixtures: sandboxes over real HTTP, and a guard that no test output ever shows a secret."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from maptable_sandbox import Sandbox, SandboxConfig
from tests.helpers import APP_ID, APP_SECRET, KNOWN_SECRETS

# Sandboxes of the running test: their tokens are scanned for before the sandbox stops.
LIVE_SANDBOXES: list[Sandbox] = []


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., Sandbox]]:
    """Start sandboxes on free loopback ports; each stops, and yields its secrets, at teardown."""
    started: list[Sandbox] = []

    def factory(**overrides: Any) -> Sandbox:
        overrides.setdefault("apps", {APP_ID: APP_SECRET})
        overrides.setdefault("rate_limit", 0)
        sandbox = Sandbox(SandboxConfig(**overrides))
        sandbox.start()
        started.append(sandbox)
        LIVE_SANDBOXES.append(sandbox)
        return sandbox

    yield factory
    for sandbox in started:
        KNOWN_SECRETS.update(sandbox.issued_secrets())
        LIVE_SANDBOXES.remove(sandbox)
        sandbox.stop()


@pytest.fixture
def sandbox(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """An unthrottled sandbox with the default data set."""
    return make_sandbox()


@pytest.fixture(autouse=True, scope="session")
def _own_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Token files and the default SQLite budget go to a directory of the test session's.

    Every sandbox listens on a port of its own, and a Meltano run (whose settings the tests do
    not narrow) keeps one token file and one budget per port: left in the developer's
    ~/.cache, a test session added hundreds.
    """
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if before is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read the developer's own TAP_MAPTABLE_* variables."""
    for name in list(os.environ):
        if name.startswith("TAP_MAPTABLE_"):
            monkeypatch.delenv(name)


def _secrets() -> set[str]:
    secrets = set(KNOWN_SECRETS)
    for sandbox in LIVE_SANDBOXES:
        secrets.update(sandbox.issued_secrets())
    return {secret for secret in secrets if secret}


def _redact(text: str, secrets: set[str]) -> tuple[str, int]:
    hits = 0
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            hits += 1
            text = text.replace(secret, "***")
    return text, hits


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Fail any test whose captured output, logs or error text shows a secret or token.

    Checked at every phase (set-up, call, tear-down), and the report is redacted before it is
    printed, so that a leak fails the test without repeating the secret in CI's log.
    """
    report = yield
    secrets = _secrets()
    leaks = 0
    sections = []
    for title, content in report.sections:
        clean, hits = _redact(content, secrets)
        leaks += hits
        sections.append((title, clean))
    report.sections = sections
    if report.longrepr is not None:
        clean, hits = _redact(str(report.longrepr), secrets)
        if hits:
            leaks += hits
            report.longrepr = clean
    if leaks:
        report.outcome = "failed"
        note = f"{leaks} secret(s) or token(s) appeared in this test's output (redacted above)"
        report.longrepr = f"{note}\n{report.longrepr}" if report.longrepr else note
    return report
