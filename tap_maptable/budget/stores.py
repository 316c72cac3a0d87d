"""What a request budget is kept in: the store (a pyrate-limiter bucket) and its registry.

MapTable's limit is per app, not per process: a `meltano run` alone is two processes (discovery,
then sync), and teams run backfills beside nightly loads, or schedulers on several hosts. Every
process that names the same store and the same app shares one sliding window. pyrate-limiter
keeps the window; the `Registry` is ours: every process records its own `requests_per_minute`
(with an expiry, renewed while it runs) and all of them use the smallest live one, and it shares
a pause after a 429, so that when one process is told to wait, all of them wait.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tap_maptable.errors import MapTableError

if TYPE_CHECKING:
    from pyrate_limiter import AbstractBucket


class StoreUnavailableError(MapTableError):
    """The shared budget's store cannot be used; the tap stops rather than run unthrottled."""


class Registry(Protocol):
    """What processes sharing a budget tell each other, besides the window itself."""

    def heartbeat(self, limit: int, ttl_s: float) -> int:
        """Record this process's limit for `ttl_s` seconds; return the smallest live limit."""
        ...

    def pause_until(self, until: float, horizon: float) -> None:
        """Ask every process to send nothing before `until` (epoch seconds).

        A pause recorded beyond `horizon` (the longest any pause can be) is not one of ours
        and is replaced, never kept.
        """
        ...

    def resume_at(self, horizon: float) -> float:
        """The time before which no process should send (0 when none).

        A pause past `horizon` is ignored: it can only come from a bad clock or an older
        version, and must not hang a run.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass
class BudgetStore:
    """An opened store: the bucket holding the window, the registry, and a printable name."""

    bucket: AbstractBucket
    registry: Registry
    description: str
    shared: bool

    def close(self) -> None:
        """Release the registry (the bucket is closed by its limiter)."""
        self.registry.close()


class MemoryRegistry:
    """One process: nothing to share."""

    def __init__(self) -> None:
        """Start with no pause."""
        self._until = 0.0

    def heartbeat(self, limit: int, ttl_s: float) -> int:  # noqa: ARG002 - same shape as others
        """This process's own limit is the only one."""
        return limit

    def pause_until(self, until: float, horizon: float) -> None:
        """Remember the pause."""
        self._until = max(self._until if self._until <= horizon else 0.0, until)

    def resume_at(self, horizon: float) -> float:
        """The remembered pause."""
        return self._until if self._until <= horizon else 0.0

    def close(self) -> None:
        """Nothing to release."""


def describe_store(url: str) -> str:
    """The store's URL with no user, password, query or fragment (any scheme), for logs and errors.

    A password may hold `/`, `?`, `#` or `@`, and a query may hold a `password=`: no parser
    reads every such URL right. So the host is read twice, once dropping the query first and
    once the user info first; when the two readings disagree the URL is ambiguous and its host
    is not shown at all, rather than risk showing part of a password.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "(a URL without a scheme)"
    if scheme == "sqlite":
        return "sqlite://" + _QUERY.split(rest, maxsplit=1)[0]
    query_first = _location(_QUERY.split(rest, maxsplit=1)[0])
    user_first = _location(rest)
    if query_first != user_first:
        return f"{scheme}://(host not shown: the URL is ambiguous)"
    host, path = user_first
    if scheme in {"redis", "rediss"}:
        name, colon, port = host.rpartition(":") if ":" in host.lstrip("[") else (host, "", "")
        if colon and not port.isdigit():
            return f"{scheme}://{name}"
        return f"{scheme}://{name}:{port or 6379}{path or '/0'}"
    return f"{scheme}://{host}{path}"


_QUERY = re.compile(r"[?#]")


def _location(rest: str) -> tuple[str, str]:
    """Host (and port) and path of what follows `scheme://`, after the last `@`."""
    after = rest.rsplit("@", 1)[-1]
    host, slash, path = after.partition("/")
    return host, slash + _QUERY.split(path, maxsplit=1)[0]


def member_id() -> str:
    """This process among those sharing a store: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
