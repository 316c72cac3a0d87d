"""Which store a `rate_limit_store` setting names, and opening it."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pyrate_limiter import InMemoryBucket

from tap_maptable.budget.redis_store import open_redis
from tap_maptable.budget.sqlite_store import open_sqlite
from tap_maptable.budget.stores import BudgetStore, MemoryRegistry, describe_store
from tap_maptable.errors import ConfigurationError

if TYPE_CHECKING:
    from pyrate_limiter import Rate

LOGGER = logging.getLogger("tap_maptable.budget")
DEFAULT_STORE_FILE = "request-budget.sqlite"


def budget_key(app_key: str) -> str:
    """A short, stable name for an app's budget; the secret is never part of it."""
    return hashlib.sha256(app_key.encode()).hexdigest()[:20]


def default_store_url() -> str | None:
    """A SQLite file in the user's cache directory, or None if it cannot be written."""
    from platformdirs import user_cache_dir  # noqa: PLC0415 - only needed for the default

    directory = Path(user_cache_dir("tap-maptable"))
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = directory / f".probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError:
        return None
    return f"sqlite:///{directory / DEFAULT_STORE_FILE}"


def open_store(url: str | None, rate: Rate, app_key: str) -> BudgetStore:
    """Open the store `url` names (None: the default SQLite file, else memory)."""
    if url is None:
        url = default_store_url()
        if url is None:
            LOGGER.warning(
                "The cache directory cannot be written: the request budget is kept in this "
                "process only (other processes of the same app will not share it)."
            )
            url = "memory"
    key = budget_key(app_key)
    if url == "memory":
        return BudgetStore(InMemoryBucket([rate]), MemoryRegistry(), "memory", shared=False)
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return open_sqlite(url, rate, key)
    if scheme in {"redis", "rediss"}:
        return open_redis(url, rate, key)
    msg = (
        f"invalid config: rate_limit_store {describe_store(url)!r} is not 'memory', "
        "'sqlite:///<path>' or 'redis://host:port/db'"
    )
    raise ConfigurationError(msg)
