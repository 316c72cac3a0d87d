"""Plain dataclasses that configure the sandbox and describe what it saw.

They live apart from the server so that the tap's tests, the CLI and the admin endpoints can share
them without importing any HTTP machinery, and so that every one of them round-trips through JSON
(the CLI takes a fault plan as JSON, the request log is written as JSON lines).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pathlib import Path

#: Every fault the sandbox knows how to inject (see ``faults.py``).
FAULT_KINDS: frozenset[str] = frozenset(
    {"500", "503", "html502", "drop", "timeout", "truncate", "code", "429", "401", "refresh_reject"}
)
#: Request kinds, as logged and as named in ``FaultPlan.kinds_for``.
REQUEST_KINDS: tuple[str, ...] = (
    "auth",
    "refresh",
    "workspaces",
    "workspace",
    "roles",
    "rows",
    "unknown",
)
#: "repeat": the segment that ended at the cursor again; "cycle": segment 2 after segment 3;
#: "ignore": ``lastSegmentRowID`` is ignored, every request gets the first segment.
SEGMENT_LOOPS: tuple[str | None, ...] = (None, "repeat", "cycle", "ignore")
#: Per-table access faults (``SandboxConfig.table_faults``): a permission change on one table.
#: The ``_after_first`` modes serve the first segment and refuse every later one.
TABLE_FAULT_MODES: tuple[str, ...] = (
    "403",
    "404",
    "code",
    "bad_columns",
    "columns_without_id",
    "403_after_first",
    "404_after_first",
    "code_after_first",
)
#: Per-workspace access faults (``SandboxConfig.workspace_faults``), on the workspace detail and
#: roles endpoints: the current user lost access to one workspace.
WORKSPACE_FAULT_MODES: tuple[str, ...] = ("403", "404", "code")
#: What a ``lastSegmentRowID`` naming no live row (deleted, or never there) gets.
DELETED_CURSOR_MODES: tuple[str, ...] = ("continue", "error", "code", "404", "restart")
THIRTY_DAYS = 30 * 86400.0


def _fail(message: str) -> None:
    """Raise ``ValueError``; kept apart so validators stay one-liners."""
    raise ValueError(message)


@dataclass(frozen=True)
class FaultPlan:
    """What goes wrong, and when.

    Attributes:
        rates: Fault kind -> probability per eligible request (their sum must not exceed 1).
        schedule: 1-based number of the API request (counted since the plan was installed) ->
            fault kind; applies whatever the request's kind.
        seed: Seed of the RNG behind ``rates``, so a given request sequence faults the same way.
        kinds_for: Request kinds eligible for ``rates``.
        timeout_delay: Seconds the "timeout" fault sleeps before answering normally.
        segment_loop: None, "repeat", "cycle" or "ignore": a server whose segment cursor
            misbehaves (see ``SEGMENT_LOOPS``).
        max_faults: Cap on injected faults (``None``: no cap).
        retry_after: Raw ``Retry-After`` header of the "429" fault, sent as is (any text, e.g.
            ``"1e9"``, ``"nan"``, ``"-5"`` or an HTTP date); ``None`` sends no header.
    """

    rates: dict[str, float] = field(default_factory=dict)
    schedule: dict[int, str] = field(default_factory=dict)
    seed: int = 0
    kinds_for: tuple[str, ...] = ("workspaces", "workspace", "rows")
    timeout_delay: float = 3.0
    segment_loop: str | None = None
    max_faults: int | None = None
    retry_after: str | None = "1"

    def __post_init__(self) -> None:
        """Reject plans that would silently do nothing, such as a misspelt fault kind."""
        unknown = (set(self.rates) | set(self.schedule.values())) - FAULT_KINDS
        if unknown:
            _fail(f"unknown fault kind(s): {sorted(unknown)}")
        if any(not 0.0 <= r <= 1.0 for r in self.rates.values()) or sum(self.rates.values()) > 1.0:
            _fail("fault rates must lie in [0, 1] and sum to at most 1")
        if set(self.kinds_for) - set(REQUEST_KINDS):
            _fail(f"unknown request kind(s) in kinds_for: {self.kinds_for}")
        if self.segment_loop not in SEGMENT_LOOPS:
            _fail(f"segment_loop must be one of {SEGMENT_LOOPS}")
        if any(n < 1 for n in self.schedule):
            _fail("schedule keys are 1-based request numbers")
        if self.retry_after is not None and not _header_safe(self.retry_after):
            _fail("retry_after must be Latin-1 text without CR or LF (or null for no header)")

    @classmethod
    def throttled(
        cls,
        count: int | None = None,
        *,
        retry_after: str | None = "1",
        kinds: tuple[str, ...] = REQUEST_KINDS,
    ) -> FaultPlan:
        """A plan answering the next ``count`` requests of ``kinds`` (all: ``None``) with 429.

        The answers do not touch the real rate limiter: they are faults, logged as ``"429"``.
        """
        return cls(rates={"429": 1.0}, kinds_for=kinds, max_faults=count, retry_after=retry_after)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (schedule keys become strings, as JSON requires)."""
        data = asdict(self)
        data["schedule"] = {str(k): v for k, v in self.schedule.items()}
        data["kinds_for"] = list(self.kinds_for)
        return data

    def to_json(self) -> str:
        """Serialise for the CLI's ``--faults`` and the admin ``/_sandbox/faults`` endpoint."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultPlan:
        """Build from a JSON-decoded dict; missing keys take their defaults."""
        kwargs = dict(data)
        if "schedule" in kwargs:
            kwargs["schedule"] = {int(k): str(v) for k, v in kwargs["schedule"].items()}
        if "kinds_for" in kwargs:
            kwargs["kinds_for"] = tuple(kwargs["kinds_for"])
        if "rates" in kwargs:
            kwargs["rates"] = {str(k): float(v) for k, v in kwargs["rates"].items()}
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> FaultPlan:
        """Inverse of ``to_json``."""
        data = json.loads(text)
        if not isinstance(data, dict):
            _fail("a fault plan must be a JSON object")
        return cls.from_dict(data)


def _header_safe(value: object) -> bool:
    """Whether ``value`` can be sent verbatim as an HTTP header value by ``http.server``."""
    if not isinstance(value, str) or "\r" in value or "\n" in value:
        return False
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _default_apps() -> dict[str, str]:
    """One app, matching the CLI default, so ``SandboxConfig()`` just works."""
    return {"app-1": "secret-1"}


@dataclass(frozen=True)
class SandboxConfig:
    """Everything that shapes one sandbox server; see sandbox/README.md for the semantics.

    The opt-in misbehaviours (all off by default):

    Attributes:
        page_size_cap: Serve at most this many workspaces per page, whatever ``pageSize`` asks;
            ``None``: no cap.
        page_offset: With a cap, how ``page`` counts: ``"served"`` in pages of the capped size
            (page 2 starts after the first page served), ``"asked"`` in pages of the size asked
            for (page 2 starts at ``pageSize``, skipping what the cap left out: the common
            ``LIMIT min(size, cap) OFFSET (page - 1) * size``).
        revoke_used_refresh_tokens: A used refresh token is refused (40102) from then on (the
            default, rotation); ``False``: a lenient server that accepts it again.
        revoke_access_on_refresh: A refresh also kills the access token issued with the refresh
            token it used (40104 from then on).
        token_clock_skew_s: ``iat`` and ``exp`` of minted JWTs are stamped this many seconds off
            real time (positive: the server's clock is ahead); validity is still judged by real
            time and ``token_ttl``.
        latency_s: Every API request (not admin) waits this long before it is answered, without
            holding up other requests.
        latency_jitter_s: Each answer waits ``latency_s`` plus a uniform draw from
            ``[0, latency_jitter_s]`` (a seeded RNG), so answers overtake each other.
        body_delay_s: Every API answer's body comes this long after its status line and
            headers (a slow download): the whole answer takes ``latency_s`` plus this.
        columns_every_segment: Send ``columns`` and ``views`` with every row segment, not just
            the first.
        table_faults: Table id -> one of ``TABLE_FAULT_MODES``: that table's segment endpoint
            refuses (403, 404, a non-zero code) or serves unusable ``columns``.
        workspace_faults: ``"{type}/{id}"`` (``workspace_key``) -> one of
            ``WORKSPACE_FAULT_MODES``: that workspace's detail and roles endpoints refuse.
        deleted_cursor: One of ``DELETED_CURSOR_MODES``: what a ``lastSegmentRowID`` naming a
            deleted (or never existing) row gets; "continue" serves the rows after its position.
    """

    apps: dict[str, str] = field(default_factory=_default_apps)
    rate_limit: int = 60
    rate_window: float = 60.0
    token_ttl: float = 28800.0
    refresh_ttl: float = THIRTY_DAYS
    include_exp: bool = True
    paging: Literal["honour", "ignore"] = "honour"
    workspaces: int = 2
    projects_per_workspace: int = 2
    tables_per_project: int = 2
    rows_per_table: int = 50
    table_rows: dict[str, int] = field(default_factory=dict)
    segment_size: int = 100
    seed: int = 0
    faults: FaultPlan = field(default_factory=FaultPlan)
    request_log_path: str | Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    page_size_cap: int | None = None
    page_offset: Literal["served", "asked"] = "served"
    revoke_used_refresh_tokens: bool = True
    revoke_access_on_refresh: bool = False
    token_clock_skew_s: float = 0.0
    latency_s: float = 0.0
    columns_every_segment: bool = False
    latency_jitter_s: float = 0.0
    body_delay_s: float = 0.0
    table_faults: dict[str, str] = field(default_factory=dict)
    deleted_cursor: str = "continue"
    workspace_faults: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Fail at construction rather than with a confusing server error later."""
        if not self.apps:
            _fail("at least one app is required")
        if self.paging not in ("honour", "ignore"):
            _fail("paging must be 'honour' or 'ignore'")
        if self.rate_limit < 0 or self.rate_window <= 0:
            _fail("rate_limit must be >= 0 and rate_window > 0")
        if self.segment_size < 1:
            _fail("segment_size must be >= 1")
        counts = (self.workspaces, self.projects_per_workspace, self.tables_per_project)
        if (
            min(counts) < 0
            or self.rows_per_table < 0
            or min(self.table_rows.values(), default=0) < 0
        ):
            _fail("counts must be >= 0")
        if self.token_ttl <= 0 or self.refresh_ttl <= 0 or math.isnan(self.token_ttl):
            _fail("token lifetimes must be > 0")
        check_page_size_cap(self.page_size_cap)
        if self.page_offset not in ("served", "asked"):
            _fail("page_offset must be 'served' or 'asked'")
        check_latency(self.latency_s)
        check_latency(self.latency_jitter_s, "latency_jitter_s")
        check_latency(self.body_delay_s, "body_delay_s")
        check_clock_skew(self.token_clock_skew_s)
        for mode in self.table_faults.values():
            check_table_fault(mode)
        check_deleted_cursor(self.deleted_cursor)
        for key, mode in self.workspace_faults.items():
            parse_workspace_key(key)
            check_workspace_fault(mode)


def check_page_size_cap(cap: int | None) -> None:
    """``ValueError`` unless ``cap`` is ``None`` or an int >= 1."""
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        _fail("page_size_cap must be an integer >= 1 (or null for no cap)")


def check_latency(seconds: float, name: str = "latency_s") -> None:
    """``ValueError`` unless ``seconds`` is a finite number >= 0 (``name``: for the message)."""
    if not _finite(seconds) or seconds < 0:
        _fail(f"{name} must be a finite number >= 0")


def check_table_fault(mode: str | None) -> None:
    """``ValueError`` unless ``mode`` is one of ``TABLE_FAULT_MODES`` (or ``None``: no fault)."""
    if mode is not None and mode not in TABLE_FAULT_MODES:
        _fail(f"table fault mode must be one of {list(TABLE_FAULT_MODES)} (or null for none)")


def check_workspace_fault(mode: str | None) -> None:
    """``ValueError`` unless ``mode`` is one of ``WORKSPACE_FAULT_MODES`` (or ``None``)."""
    if mode is not None and mode not in WORKSPACE_FAULT_MODES:
        _fail(
            f"workspace fault mode must be one of {list(WORKSPACE_FAULT_MODES)} (or null for none)"
        )


def workspace_key(ws_type: str, ws_id: int | str) -> str:
    """The ``"{type}/{id}"`` key of a workspace in ``workspace_faults``."""
    return f"{ws_type}/{ws_id}"


def parse_workspace_key(key: str) -> tuple[str, int]:
    """Inverse of ``workspace_key``; ``ValueError`` unless ``key`` is ``TYPE/ID``, ID digits."""
    ws_type, sep, ws_id = key.partition("/")
    if not sep or not ws_type or not ws_id.isascii() or not ws_id.isdigit():
        _fail(f"a workspace key must be TYPE/ID (e.g. user/164), not {key!r}")
    return ws_type, int(ws_id)


def check_deleted_cursor(mode: str) -> None:
    """``ValueError`` unless ``mode`` is one of ``DELETED_CURSOR_MODES``."""
    if mode not in DELETED_CURSOR_MODES:
        _fail(f"deleted_cursor must be one of {list(DELETED_CURSOR_MODES)}")


def check_clock_skew(seconds: float) -> None:
    """``ValueError`` unless ``seconds`` is a finite number."""
    if not _finite(seconds):
        _fail("token_clock_skew_s must be a finite number")


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class RequestLogEntry:
    """One API request as the sandbox saw it; ``status`` 0 means the connection was dropped.

    Times are wall-clock epoch seconds (``time.time()``). ``t`` and ``t_start`` are both the
    arrival (headers read); ``t_end`` is when the answer is written (or the connection dropped):
    the moment the request was handled plus any ``latency_s``, "timeout" delay and, for an
    answer with a body, ``body_delay_s``. The entry is
    logged when the request is handled, before that wait, so a client that gave up waiting still
    finds it. Two requests overlapped in the server when their ``[t_start, t_end]`` intersect.
    The JSONL fields are documented in sandbox/README.md.
    """

    t: float
    method: str
    path: str
    query: dict[str, str]
    status: int
    app_id: str | None
    kind: str
    fault: str | None
    rate_limited: bool
    t_start: float
    t_end: float

    def to_json(self) -> str:
        """One line of the JSONL request log."""
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RequestLogEntry:
        """Inverse of ``to_json``, for tests that read the log of a sandbox subprocess."""
        data = json.loads(text)
        return cls(**data)
