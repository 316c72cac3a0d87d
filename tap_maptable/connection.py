"""The run's one connection to a MapTable app: every request of the run goes through it.

It owns what must exist once per run, however many streams (and threads) send requests: the
request budget, the throttled session, the one authenticator and the one retry policy. Streams
send their pages through the SDK's machinery with these parts (`client.MapTableStream`);
everything else (the workspace list and details, a table's first segment during discovery) asks
`get`, which judges the answer with `classify.check` and retries it by the same policy.
"""

from __future__ import annotations

import atexit
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tap_maptable import __version__
from tap_maptable.auth import MapTableAuthenticator
from tap_maptable.budget import (
    BudgetSpec,
    RequestBudget,
    budget_key,
    open_store,
    throttled_session,
)
from tap_maptable.classify import check
from tap_maptable.reading.schedule import Latency
from tap_maptable.retry import RetryPolicy, log_retry
from tap_maptable.settings import DEFAULT_PARALLEL_REQUESTS
from tap_maptable.tokens import TokenCache

if TYPE_CHECKING:
    from collections.abc import Mapping

    import requests

LOGGER = logging.getLogger("tap_maptable")
DEFAULT_API_URL = "https://maptable.com"


def tap_version() -> str:
    """The tap's version, from the one place it is written (the user agent and `--about`)."""
    return __version__


@dataclass(frozen=True)
class Answer:
    """A successful answer: the envelope's `detail`, and the body it came in (for holding)."""

    detail: Any
    body: bytes


class MapTableConnection:
    """One app's budget, session, authenticator and retry policy, shared by the whole run."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        """Nothing is opened or sent until first used."""
        self._config = config

    # -- the parts ------------------------------------------------------------------------------

    @cached_property
    def policy(self) -> RetryPolicy:
        """How every request of the run is retried and how long it may wait."""
        return RetryPolicy(
            max_tries=int(self._config.get("max_tries", 6)),
            window_s=self.window_s,
        )

    @cached_property
    def budget(self) -> RequestBudget:
        """The app's request budget: every HTTP request of the run passes it."""
        spec = BudgetSpec(
            limit=int(self._config.get("requests_per_minute", 60)),
            window_s=self.window_s,
            key=budget_key(self.app_key),
        )
        store = open_store(self._config.get("rate_limit_store"), spec.rate, self.app_key)
        LOGGER.info(
            "Request budget: %d per %g s, kept in %s.", spec.limit, spec.window_s, store.description
        )
        budget = RequestBudget(spec, store)
        # Leave the shared registry at exit (the SDK's sync_all is final); a killed process's
        # entry simply expires.
        atexit.register(budget.close)
        return budget

    @cached_property
    def authenticator(self) -> MapTableAuthenticator:
        """The one authenticator of the run (one login per run, one refresh at a time)."""
        return MapTableAuthenticator(
            api_url=self.api_url,
            app_id=str(self._config["app_id"]),
            app_secret=str(self._config["app_secret"]),
            session=throttled_session(self.budget, self.policy),
            policy=self.policy,
            timeout=self.timeout,
            cache=self._token_cache(),
        )

    @cached_property
    def session(self) -> requests.Session:
        """The session every stream and `get` send through: the budget, then the token."""
        parallel = int(self._config.get("max_parallel_requests", DEFAULT_PARALLEL_REQUESTS))
        return throttled_session(
            self.budget,
            self.policy,
            before_send=self.authenticator.refresh_header,
            connections=max(10, parallel + 2),
            on_answer=self.latency.observe,
        )

    def open(self) -> MapTableConnection:
        """Build every part now, in this thread, before threads share them.

        (`functools.cached_property` takes no lock on Python 3.12+: two threads asking first
        could each build a budget and an authenticator, and log in twice.)
        """
        _ = self.session
        return self

    # -- requests outside the record flow -------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET `path` and return its envelope's `detail`, or raise the tap's error for it."""
        return self.fetch(path, params).detail

    def fetch(self, path: str, params: Mapping[str, Any] | None = None) -> Answer:
        """GET `path`: its envelope's `detail` and the answer's bytes (or the tap's error)."""
        send = self.policy.decorate(self._get_once, log_retry(LOGGER, self.policy, f"GET {path}"))
        answer: Answer = send(path, params)
        return answer

    def _get_once(self, path: str, params: Mapping[str, Any] | None) -> Answer:
        response = self.session.get(
            self.api_url + path,
            params=dict(params or {}),
            headers=self.headers,
            auth=self.authenticator,
            timeout=self.timeout,
        )
        return Answer(check(response).detail, response.content)

    @cached_property
    def latency(self) -> Latency:
        """How long MapTable takes to answer, as every request of the run measures it."""
        return Latency()

    # -- settings every part reads --------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The API root without a trailing slash."""
        return str(self._config.get("api_url") or DEFAULT_API_URL).rstrip("/")

    @property
    def app_key(self) -> str:
        """Who the budget belongs to: the API's scheme, host and port, and the app id."""
        parts = urlsplit(self.api_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.scheme}://{parts.hostname}:{port}/{self._config['app_id']}"

    @property
    def window_s(self) -> float:
        """The rate-limit window (60 s at MapTable; scaled down only against a sandbox)."""
        return float(self._config.get("rate_limit_window_seconds", 60))

    @property
    def timeout(self) -> float:
        """Seconds to wait for an answer before the request counts as failed (and is retried)."""
        return float(self._config.get("request_timeout", 60))

    @property
    def user_agent(self) -> str:
        """The User-Agent of every request."""
        return str(self._config.get("user_agent") or f"tap-maptable/{tap_version()}")

    @property
    def headers(self) -> dict[str, str]:
        """JSON in, JSON out; the user agent identifies the tap (or the user's own string)."""
        return {"Content-Type": "application/json", "User-Agent": self.user_agent}

    def _token_cache(self) -> TokenCache | None:
        if not self._config.get("cache_tokens", True):
            return None
        from platformdirs import user_cache_dir  # noqa: PLC0415 - only when caching

        return TokenCache(
            Path(user_cache_dir("tap-maptable")) / "tokens",
            self.api_url,
            str(self._config["app_id"]),
            str(self._config["app_secret"]),
        )
