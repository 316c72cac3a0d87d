"""Fixtures: sandboxes over real HTTP, and a guard that no test output ever shows a secret."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from maptable_sandbox import Sandbox, SandboxConfig
from tests.helpers import APP_ID, APP_SECRET, KNOWN_SECRETS

_SECRETS_KEY = pytest.StashKey[list[str]]()


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
        return sandbox

    yield factory
    for sandbox in started:
        KNOWN_SECRETS.update(sandbox.issued_secrets())
        sandbox.stop()


@pytest.fixture
def sandbox(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """An unthrottled sandbox with the default data set."""
    return make_sandbox()


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read the developer's own TAP_MAPTABLE_* variables."""
    for name in list(os.environ):
        if name.startswith("TAP_MAPTABLE_"):
            monkeypatch.delenv(name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Fail any test whose captured output, logs or error text shows a secret or token."""
    report = yield
    texts = item.stash.setdefault(_SECRETS_KEY, [])
    texts.extend(content for _, content in report.sections)
    if report.longrepr is not None:
        texts.append(str(report.longrepr))
    if call.when == "teardown":
        leaked = {s for s in KNOWN_SECRETS if s and any(s in text for text in texts)}
        if leaked:
            report.outcome = "failed"
            report.longrepr = f"{len(leaked)} secret(s) or token(s) appeared in this test's output"
    return report
