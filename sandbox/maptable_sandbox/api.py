"""The fake MapTable Open API: routing, envelopes, auth, rate limit, faults and the endpoints.

Transport-free on purpose: ``ApiApp.handle`` maps an ``HttpRequest`` to an ``HttpResponse`` and
its log entry, and ``server.py`` only moves bytes (and waits out ``latency_s`` and delays). Every
path, code and message lives in this module's constants.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from maptable_sandbox.config import (
    RequestLogEntry,
    SandboxConfig,
    check_clock_skew,
    check_deleted_cursor,
    check_latency,
    check_page_size_cap,
    check_table_fault,
    check_workspace_fault,
    parse_workspace_key,
    workspace_key,
)
from maptable_sandbox.data import Dataset, TableInfo
from maptable_sandbox.faults import NGINX_502, REPLACING, FaultInjector
from maptable_sandbox.ratelimit import SlidingWindowLimiter
from maptable_sandbox.tokens import EXPIRED, REFRESH_INVALID, TokenError, TokenRegistry

API = "/open/api/v1"
AUTH_PATH = f"{API}/auth/"
REFRESH_PATH = f"{API}/token/refresh/"
WORKSPACES_PATH = f"{API}/workspaces/"
WORKSPACE_RE = re.compile(rf"{API}/workspaces/(?P<type>[^/]+)/(?P<id>[^/]+)/")
ROLES_RE = re.compile(rf"{API}/workspaces/(?P<type>[^/]+)/(?P<id>[^/]+)/roles/")
ROWS_RE = re.compile(rf"{API}/tablenodes/(?P<table>[^/]+)/partial/")

JSON_TYPE = "application/json; charset=utf-8"
HTTP_OK, HTTP_BAD, HTTP_UNAUTH, HTTP_NOT_FOUND, HTTP_METHOD = 200, 400, 401, 404, 405
HTTP_FORBIDDEN = 403
HTTP_TOO_MANY, HTTP_ERROR, HTTP_BAD_GATEWAY, HTTP_UNAVAILABLE = 429, 500, 502, 503

BAD_CREDENTIALS = (40101, "invalid appId or appSecret")
BAD_PAGING = (40000, "invalid page or pageSize")
BAD_CURSOR = (40001, "invalid lastSegmentRowID")
GROUP_NODE = (40002, "table node is a group and has no rows")
NOT_FOUND = (40400, "not found")
NO_PERMISSION = (40300, "no permission to read this table")
NO_WORKSPACE_PERMISSION = (40300, "no permission to access this workspace")
CURSOR_ROW_GONE = (40400, "row of lastSegmentRowID not found")
BAD_METHOD = (40500, "method not allowed")
TOO_MANY = (42900, "too many requests")
SERVER_ERROR = (50000, "internal server error")
RETRY_CODE = (50001, "internal error, please retry")
UNAVAILABLE = (50300, "service unavailable")
CYCLE_AFTER = 3  # "cycle": once segment 3 was served, serve segment 2 again
#: Per-table faults that refuse the request: mode (without "_after_first") -> HTTP status, code.
TABLE_REFUSALS: dict[str, tuple[int, tuple[int, str]]] = {
    "403": (HTTP_FORBIDDEN, NO_PERMISSION),
    "404": (HTTP_NOT_FOUND, NOT_FOUND),
    "code": (HTTP_OK, NO_PERMISSION),
}
AFTER_FIRST = "_after_first"
#: Per-workspace faults (all refuse the detail and roles requests): mode -> HTTP status, code.
WORKSPACE_REFUSALS: dict[str, tuple[int, tuple[int, str]]] = {
    "403": (HTTP_FORBIDDEN, NO_WORKSPACE_PERMISSION),
    "404": (HTTP_NOT_FOUND, NOT_FOUND),
    "code": (HTTP_OK, NO_WORKSPACE_PERMISSION),
}
#: What the "bad_columns" table fault serves as ``columns``; "columns_without_id" drops this key.
BAD_COLUMNS = "columns unavailable"
COLUMN_ID_KEY = "id"
#: A cursor naming no live row, per ``deleted_cursor`` mode (not "continue", not "restart").
UNKNOWN_CURSOR_ANSWERS: dict[str, tuple[int, tuple[int, str]]] = {
    "error": (HTTP_BAD, BAD_CURSOR),
    "code": (HTTP_OK, BAD_CURSOR),
    "404": (HTTP_NOT_FOUND, CURSOR_ROW_GONE),
}
#: Log tags (the ``fault`` field) of the table and workspace faults and the unknown-cursor
#: answers, which are the server's configured behaviour, not the fault plan's: they do not count
#: against max_faults.
TABLE_TAG, CURSOR_TAG, LOOP_TAG = "table:", "deleted_cursor:", "segment_loop:"
WORKSPACE_TAG = "workspace:"
STATE_TAGS = (TABLE_TAG, CURSOR_TAG, WORKSPACE_TAG)
METHODS = {"auth": "POST", "refresh": "POST"}


@dataclass(frozen=True)
class HttpRequest:
    """What the handler read off the wire."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    t: float


@dataclass
class HttpResponse:
    """What to write back; ``drop`` closes the connection instead, ``delay`` sleeps first."""

    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    delay: float = 0.0


def dumps(payload: Any) -> bytes:
    """Compact UTF-8 JSON, the fast path for big segments."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def envelope(status: int, code: int, message: str, detail: Any = None) -> HttpResponse:
    """A response in the API's envelope, with a fresh requestID."""
    body = {
        "code": code,
        "message": message,
        "detail": detail,
        "extra": None,
        "requestID": uuid.uuid4().hex,
    }
    return HttpResponse(status, dumps(body))


def segment_response(head: dict[str, Any], rows: list[str], tail: dict[str, Any]) -> HttpResponse:
    """Success envelope around rows that are already JSON text: splice, do not re-serialise.

    Key order matches ``ok()``: code, message, detail (head, rows, tail), extra, requestID.
    """
    parts = [
        '{"code":0,"message":"OK","detail":',
        dumps(head).decode()[:-1],
        ',"rows":[',
        ",".join(rows),
        "]",
        "".join(f",{dumps(k).decode()}:{dumps(v).decode()}" for k, v in tail.items()),
        f'}},"extra":null,"requestID":"{uuid.uuid4().hex}"}}',
    ]
    return HttpResponse(HTTP_OK, "".join(parts).encode())


def ok(detail: Any) -> HttpResponse:
    """Success envelope."""
    return envelope(HTTP_OK, 0, "OK", detail)


def error(status: int, code_message: tuple[int, str]) -> HttpResponse:
    """Failure envelope from one of the ``(code, message)`` constants."""
    return envelope(status, code_message[0], code_message[1])


class RequestLog:
    """Thread-safe in-memory log, mirrored line by line to an optional JSONL file."""

    def __init__(self, path: str | Path | None) -> None:
        """Open the JSONL file (append) if a path is given."""
        self._lock = threading.Lock()
        self._entries: list[RequestLogEntry] = []
        self._file: IO[str] | None = None
        if path is not None:
            self._file = Path(path).open("a", encoding="utf-8")  # noqa: SIM115

    def add(self, entry: RequestLogEntry) -> None:
        """Record one request; the file is flushed per line so a killed sandbox loses nothing."""
        with self._lock:
            self._entries.append(entry)
            if self._file is not None:
                self._file.write(entry.to_json() + "\n")
                self._file.flush()

    def entries(self) -> list[RequestLogEntry]:
        """A copy of the entries so far."""
        with self._lock:
            return list(self._entries)

    def reset(self) -> None:
        """Forget the in-memory entries (the file keeps its history)."""
        with self._lock:
            self._entries.clear()

    def close(self) -> None:
        """Close the file, if any."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def route(path: str) -> tuple[str, dict[str, str]]:
    """Request kind and path parameters; trailing slashes are required, as on the real API."""
    if path == AUTH_PATH:
        return "auth", {}
    if path == REFRESH_PATH:
        return "refresh", {}
    if path == WORKSPACES_PATH:
        return "workspaces", {}
    for kind, pattern in (("roles", ROLES_RE), ("workspace", WORKSPACE_RE), ("rows", ROWS_RE)):
        match = pattern.fullmatch(path)
        if match:
            return kind, match.groupdict()
    return "unknown", {}


def _json_body(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _positive_int(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and int(text) >= 1 else None


class ApiApp:
    """State and behaviour of one sandbox's API (everything except sockets)."""

    def __init__(self, config: SandboxConfig) -> None:
        """Build dataset, token registry, limiter, injector and log from ``config``."""
        self.config = config
        self.data = Dataset(config)
        unknown = sorted(set(config.table_faults) - {t.table_id for t in self.data.tables()})
        if unknown:
            msg = f"table_faults names no table: {unknown}"
            raise ValueError(msg)
        unknown = sorted(
            key
            for key in config.workspace_faults
            if not self.data.has_workspace(*parse_workspace_key(key))
        )
        if unknown:
            msg = f"workspace_faults names no workspace: {unknown}"
            raise ValueError(msg)
        self.tokens = TokenRegistry(
            token_ttl=config.token_ttl,
            refresh_ttl=config.refresh_ttl,
            include_exp=config.include_exp,
            revoke_used_refresh=config.revoke_used_refresh_tokens,
            revoke_access_on_refresh=config.revoke_access_on_refresh,
            clock_skew=config.token_clock_skew_s,
        )
        self.limiter = SlidingWindowLimiter(config.rate_limit, config.rate_window)
        self.faults = FaultInjector(config.faults)
        self.log = RequestLog(config.request_log_path)
        self._latency_s = config.latency_s
        self._latency_jitter_s = config.latency_jitter_s
        self._jitter_rng = random.Random(f"maptable-sandbox:latency:{config.seed}")
        self._jitter_lock = threading.Lock()
        self._page_size_cap = config.page_size_cap
        self._deleted_cursor = config.deleted_cursor
        self._table_faults: dict[str, str] = {}  # replaced, never mutated: read without a lock
        for table_id, mode in config.table_faults.items():
            self.set_table_fault(table_id, mode)
        self._workspace_faults: dict[str, str] = {}  # replaced, never mutated, like table faults
        for key, mode in config.workspace_faults.items():
            self.set_workspace_fault(*parse_workspace_key(key), mode)

    # ----- run-time settings -----------------------------------------------------------------

    @property
    def latency_s(self) -> float:
        """Seconds every API request waits before it is answered (the server does the waiting)."""
        return self._latency_s

    @latency_s.setter
    def latency_s(self, seconds: float) -> None:
        check_latency(seconds)
        self._latency_s = float(seconds)

    @property
    def latency_jitter_s(self) -> float:
        """Most extra seconds, drawn uniformly per answer, on top of ``latency_s``."""
        return self._latency_jitter_s

    @latency_jitter_s.setter
    def latency_jitter_s(self, seconds: float) -> None:
        check_latency(seconds, "latency_jitter_s")
        self._latency_jitter_s = float(seconds)

    def next_latency(self) -> float:
        """Seconds the next API answer waits: ``latency_s`` plus its jitter draw (thread-safe)."""
        jitter = self._latency_jitter_s
        if jitter <= 0:
            return self._latency_s
        with self._jitter_lock:
            return self._latency_s + self._jitter_rng.uniform(0.0, jitter)

    @property
    def deleted_cursor(self) -> str:
        """What a ``lastSegmentRowID`` naming no live row gets (``DELETED_CURSOR_MODES``)."""
        return self._deleted_cursor

    @deleted_cursor.setter
    def deleted_cursor(self, mode: str) -> None:
        check_deleted_cursor(mode)
        self._deleted_cursor = mode

    def table_fault(self, table_id: str) -> str | None:
        """The access fault of one table (``TABLE_FAULT_MODES``), ``None`` if it has none."""
        return self._table_faults.get(table_id)

    def set_table_fault(self, table_id: str, mode: str | None) -> None:
        """Fault one table's segment endpoint from now on (``None``: clear).

        Raises:
            KeyError: No such table (a group node included).
            ValueError: An unknown mode.
        """
        check_table_fault(mode)
        if not self.data.has_table(table_id):
            raise KeyError(table_id)
        faults = {k: v for k, v in self._table_faults.items() if k != table_id}
        if mode is not None:
            faults[table_id] = mode
        self._table_faults = faults

    def workspace_fault(self, ws_type: str, ws_id: int) -> str | None:
        """The access fault of one workspace (``WORKSPACE_FAULT_MODES``), ``None`` if none."""
        return self._workspace_faults.get(workspace_key(ws_type, ws_id))

    def set_workspace_fault(self, ws_type: str, ws_id: int, mode: str | None) -> None:
        """Fault one workspace's detail and roles endpoints from now on (``None``: clear).

        Raises:
            KeyError: No such workspace.
            ValueError: An unknown mode.
        """
        check_workspace_fault(mode)
        if not self.data.has_workspace(ws_type, ws_id):
            raise KeyError(workspace_key(ws_type, ws_id))
        key = workspace_key(ws_type, ws_id)
        faults = {k: v for k, v in self._workspace_faults.items() if k != key}
        if mode is not None:
            faults[key] = mode
        self._workspace_faults = faults

    def table_summary(self, info: TableInfo) -> dict[str, Any]:
        """One table with its live row count, honest segment count and access fault.

        Raises:
            KeyError: The table was deleted meanwhile.
        """
        return info.to_dict() | {
            "row_count": self.data.row_count(info.table_id),
            "segment_count": self.data.segment_count(info.table_id),
            "fault": self.table_fault(info.table_id),
        }

    def table_summaries(self) -> list[dict[str, Any]]:
        """Every live table's ``table_summary`` (one deleted while listing is left out)."""
        summaries = (self._summary_if_live(info) for info in self.data.tables())
        return [summary for summary in summaries if summary is not None]

    def _summary_if_live(self, info: TableInfo) -> dict[str, Any] | None:
        try:
            return self.table_summary(info)
        except KeyError:
            return None

    # ----- structure changes -----------------------------------------------------------------

    def add_project(self, ws_type: str, ws_id: int, name: str) -> dict[str, Any]:
        """``Dataset.add_project``: a project without table nodes, last in the workspace."""
        return self.data.add_project(ws_type, ws_id, name)

    def add_table(self, project_id: str, name: str, rows: int | None = None) -> TableInfo:
        """``Dataset.add_table``: a generated table, last in the project's table nodes."""
        return self.data.add_table(project_id, name, rows)

    def delete_project(self, project_id: str) -> dict[str, Any]:
        """``Dataset.delete_project``, and forget the access faults of its tables."""
        project = self.data.delete_project(project_id)
        self._forget_table_faults({n["id"] for n in project["tableNodes"]})
        return project

    def delete_table(self, node_id: str) -> dict[str, Any]:
        """``Dataset.delete_table``, and forget the table's access fault."""
        node = self.data.delete_table(node_id)
        self._forget_table_faults({node_id})
        return node

    def _forget_table_faults(self, table_ids: set[str]) -> None:
        """Drop faults of deleted tables, so that no listing shows a fault of a table gone."""
        self._table_faults = {k: v for k, v in self._table_faults.items() if k not in table_ids}

    @property
    def page_size_cap(self) -> int | None:
        """Most workspaces served per page; ``None``: no cap."""
        return self._page_size_cap

    @page_size_cap.setter
    def page_size_cap(self, cap: int | None) -> None:
        check_page_size_cap(cap)
        self._page_size_cap = cap

    @property
    def token_clock_skew_s(self) -> float:
        """Seconds the ``iat``/``exp`` claims of newly minted tokens are off real time."""
        return self.tokens.clock_skew

    @token_clock_skew_s.setter
    def token_clock_skew_s(self, seconds: float) -> None:
        check_clock_skew(seconds)
        self.tokens.clock_skew = seconds

    def settings(self) -> dict[str, Any]:
        """The run-time settings, as the admin ``/_sandbox/settings`` endpoint shows them."""
        return {
            "latency_s": self.latency_s,
            "latency_jitter_s": self.latency_jitter_s,
            "page_size_cap": self.page_size_cap,
            "token_clock_skew_s": self.token_clock_skew_s,
            "deleted_cursor": self.deleted_cursor,
        }

    # ----- pipeline --------------------------------------------------------------------------

    def dispatch(self, req: HttpRequest) -> HttpResponse:
        """``handle`` plus logging at once, for callers without a transport (no latency)."""
        response, entry = self.handle(req)
        self.log.add(replace(entry, t_end=time.time()))
        return response

    def handle(self, req: HttpRequest) -> tuple[HttpResponse, RequestLogEntry]:
        """Rate limit first, then faults, then auth and the endpoint.

        Returns:
            The answer and its log entry; the caller sets ``t_end`` and adds the entry to
            ``self.log`` before writing the answer (so a client that has its answer, or gave up
            waiting for it, finds it logged).
        """
        kind, params = route(req.path)
        fault = self.faults.pick(kind)
        key = self._rate_key(kind, req)
        rate_limited = False
        if fault == "429":
            response = error(HTTP_TOO_MANY, TOO_MANY)
            retry_after_header = self.faults.plan.retry_after
            if retry_after_header is not None:
                response.headers["Retry-After"] = retry_after_header
        elif retry_after := self.limiter.admit(key):
            fault, rate_limited = None, True
            response = error(HTTP_TOO_MANY, TOO_MANY)
            response.headers["Retry-After"] = str(retry_after)
        else:
            response, fault = self._admitted(kind, params, req, fault)
        self.faults.commit(None if fault and fault.startswith(STATE_TAGS) else fault)
        entry = RequestLogEntry(
            t=req.t,
            method=req.method,
            path=req.path,
            query=dict(req.query),
            status=0 if response.drop else response.status,
            app_id=None if key == "anonymous" else key,
            kind=kind,
            fault=fault,
            rate_limited=rate_limited,
            t_start=req.t,
            t_end=req.t,
        )
        return response, entry

    def _admitted(
        self, kind: str, params: dict[str, str], req: HttpRequest, fault: str | None
    ) -> tuple[HttpResponse, str | None]:
        if fault in REPLACING:
            return _fault_response(fault), fault
        response, loop = self._endpoint(kind, params, req)
        if fault == "truncate":
            cut = response.body[: len(response.body) // 2]
            response = HttpResponse(HTTP_OK, cut, response.content_type, response.headers)
        elif fault == "timeout":
            response.delay = self.faults.plan.timeout_delay
        return response, fault or loop

    def _rate_key(self, kind: str, req: HttpRequest) -> str:
        if kind == "auth":
            body = _json_body(req.body) or {}
            app_id = body.get("appId")
            return app_id if isinstance(app_id, str) and app_id else "anonymous"
        return self.tokens.app_of(req.headers.get("authorization")) or "anonymous"

    def _endpoint(
        self, kind: str, params: dict[str, str], req: HttpRequest
    ) -> tuple[HttpResponse, str | None]:
        """Run the endpoint; the second item names a segment-loop fault if one shaped the answer."""
        early = self._unauthenticated(kind, req)
        if early is not None:
            return early, None
        try:
            self.tokens.check_access(req.headers.get("authorization"))
        except TokenError as exc:
            return envelope(HTTP_UNAUTH, exc.code, exc.message), None
        if kind == "workspaces":
            return self._workspaces(req.query), None
        if kind == "rows":
            return self._rows(params["table"], req.query)
        return self._workspace(kind, params)

    def _unauthenticated(self, kind: str, req: HttpRequest) -> HttpResponse | None:
        """Answers that need no access token: 404, 405, auth and refresh."""
        if kind == "unknown":
            return error(HTTP_NOT_FOUND, NOT_FOUND)
        if req.method != METHODS.get(kind, "GET"):
            return error(HTTP_METHOD, BAD_METHOD)
        if kind == "auth":
            return self._auth(req)
        if kind == "refresh":
            return self._refresh(req)
        return None

    # ----- endpoints -------------------------------------------------------------------------

    def _auth(self, req: HttpRequest) -> HttpResponse:
        body = _json_body(req.body) or {}
        app_id, app_secret = body.get("appId"), body.get("appSecret")
        if not isinstance(app_id, str) or self.config.apps.get(app_id) != app_secret:
            return error(HTTP_UNAUTH, BAD_CREDENTIALS)
        token, refresh = self.tokens.issue_pair(app_id)
        return ok({"token": token, "refreshToken": refresh})

    def _refresh(self, req: HttpRequest) -> HttpResponse:
        body = _json_body(req.body) or {}
        try:
            token, refresh = self.tokens.rotate(
                req.headers.get("authorization"), body.get("refreshtoken")
            )
        except TokenError as exc:
            return envelope(HTTP_UNAUTH, exc.code, exc.message)
        return ok({"token": token, "refreshToken": refresh})

    def _workspaces(self, query: dict[str, str]) -> HttpResponse:
        """The list, paged when asked; ``page_size_cap`` caps every page, even an unasked one."""
        items = self.data.workspaces()
        cap = self.page_size_cap
        if self.config.paging == "ignore" or ("page" not in query and "pageSize" not in query):
            return ok(items if cap is None else items[:cap])
        page = _positive_int(query.get("page", "1"))
        size = _positive_int(query.get("pageSize", str(max(len(items), 1))))
        if page is None or size is None:
            return error(HTTP_BAD, BAD_PAGING)
        start = (page - 1) * size
        if cap is not None:
            served = min(size, cap)
            start = (page - 1) * (served if self.config.page_offset == "served" else size)
            size = served
        return ok(items[start : start + size])

    def _workspace(self, kind: str, params: dict[str, str]) -> tuple[HttpResponse, str | None]:
        """A workspace's detail or roles; the second item tags a workspace access fault."""
        ws_type, ws_id = params["type"], _positive_int(params["id"])
        if ws_id is None or not self.data.has_workspace(ws_type, ws_id):
            return error(HTTP_NOT_FOUND, NOT_FOUND), None
        mode = self.workspace_fault(ws_type, ws_id)
        if mode is not None:
            status, code_message = WORKSPACE_REFUSALS[mode]
            return error(status, code_message), f"{WORKSPACE_TAG}{mode}"
        if kind == "roles":
            return ok(self.data.workspace_roles(ws_type, ws_id)), None
        return ok(self.data.workspace_detail(ws_type, ws_id)), None

    def _rows(self, table_id: str, query: dict[str, str]) -> tuple[HttpResponse, str | None]:
        """A table's segment; the second item is the log tag of whatever misbehaviour shaped it.

        In order: group and unknown nodes, the table's access fault, a server ignoring the
        cursor, a malformed cursor, a cursor naming no live row, then the segment (which the
        fault plan's ``segment_loop`` may bend). A table deleted while its answer is made is
        not found, as it would have been a moment later.
        """
        try:
            return self._table_rows(table_id, query)
        except KeyError:
            return error(HTTP_NOT_FOUND, NOT_FOUND), None

    def _table_rows(self, table_id: str, query: dict[str, str]) -> tuple[HttpResponse, str | None]:
        data = self.data
        if data.is_group(table_id):
            return error(HTTP_BAD, GROUP_NODE), None
        if not data.has_table(table_id):
            return error(HTTP_NOT_FOUND, NOT_FOUND), None
        cursor = query.get("lastSegmentRowID", "")
        refusal = self._table_refusal(table_id, cursor=bool(cursor))
        if refusal is not None:
            return refusal
        if not cursor:
            return self._first_segment(table_id, None)
        return self._cursor_segment(table_id, cursor)

    def _cursor_segment(self, table_id: str, cursor: str) -> tuple[HttpResponse, str | None]:
        """The answer to a request with a ``lastSegmentRowID``."""
        data = self.data
        if self.faults.plan.segment_loop == "ignore":
            return self._first_segment(table_id, f"{LOOP_TAG}ignore")
        index = data.parse_row_id(table_id, cursor)
        if index is None:
            return error(HTTP_BAD, BAD_CURSOR), None
        if self.deleted_cursor != "continue" and not data.is_live(table_id, index):
            return self._unknown_cursor(table_id)
        return self._later_segment(table_id, index)

    def _first_segment(self, table_id: str, tag: str | None) -> tuple[HttpResponse, str | None]:
        """The table's first segment, with columns and views (``tag``: why it was served)."""
        columns: list[dict[str, Any]] = []  # read in the same snapshot as the rows
        rows, more, _ = self.data.segment_json(
            table_id, -1, self.config.segment_size, columns_out=columns
        )
        head = self._head(table_id) | {"segmentType": "segmentStart", "more": more}
        schema, bad = self._schema(table_id, columns)
        return segment_response(head, rows, schema), bad or tag

    def _later_segment(self, table_id: str, index: int) -> tuple[HttpResponse, str | None]:
        """The segment after row ``index``, unless the plan's ``segment_loop`` bends it."""
        columns: list[dict[str, Any]] = []
        rows, more, loop = self._next_segment(table_id, index, columns)
        head = self._head(table_id) | {"segmentType": "segmentFrame", "more": more}
        tail, bad = (
            self._schema(table_id, columns) if self.config.columns_every_segment else ({}, None)
        )
        return segment_response(head, rows, tail), loop or bad

    def _head(self, table_id: str) -> dict[str, Any]:
        return {"id": table_id, "type": self.data.table_info(table_id).type}

    def _table_refusal(
        self, table_id: str, *, cursor: bool
    ) -> tuple[HttpResponse, str | None] | None:
        """The answer of a table whose access fault refuses this request, else ``None``."""
        mode = self.table_fault(table_id)
        if mode is None:
            return None
        base = mode.removesuffix(AFTER_FIRST)
        if base not in TABLE_REFUSALS or (mode.endswith(AFTER_FIRST) and not cursor):
            return None
        status, code_message = TABLE_REFUSALS[base]
        return error(status, code_message), f"{TABLE_TAG}{mode}"

    def _unknown_cursor(self, table_id: str) -> tuple[HttpResponse, str | None]:
        """The answer to a well-formed cursor naming no live row, per ``deleted_cursor``."""
        mode = self.deleted_cursor
        if mode == "restart":
            return self._first_segment(table_id, f"{CURSOR_TAG}{mode}")
        status, code_message = UNKNOWN_CURSOR_ANSWERS[mode]
        return error(status, code_message), f"{CURSOR_TAG}{mode}"

    def _schema(
        self, table_id: str, columns: list[dict[str, Any]]
    ) -> tuple[dict[str, Any], str | None]:
        """The ``columns`` and ``views`` that follow a segment's rows, and a spoiling fault's tag.

        The table's "bad_columns" and "columns_without_id" faults spoil the columns.
        """
        schema: dict[str, Any] = {"columns": columns, "views": self.data.views(table_id)}
        mode = self.table_fault(table_id)
        if mode == "bad_columns":
            schema["columns"] = BAD_COLUMNS
        elif mode == "columns_without_id":
            schema["columns"] = [
                {k: v for k, v in c.items() if k != COLUMN_ID_KEY} for c in columns
            ]
        else:
            return schema, None
        return schema, f"{TABLE_TAG}{mode}"

    def _next_segment(
        self, table_id: str, index: int, columns: list[dict[str, Any]]
    ) -> tuple[list[str], bool, str | None]:
        """Rows after ``index``, unless the plan's ``segment_loop`` makes the cursor misbehave.

        ``columns`` is filled with the columns the rows were read with.
        """
        size = self.config.segment_size
        mode = self.faults.plan.segment_loop
        if mode == "repeat":  # the segment that ended at the cursor, again
            rows, _, _ = self.data.segment_json(
                table_id, index - size, size, stop=index + 1, columns_out=columns
            )
            return rows, True, f"{LOOP_TAG}repeat"
        if mode == "cycle":
            ends = self._segment_ends(table_id, CYCLE_AFTER)
            if len(ends) == CYCLE_AFTER and index >= ends[-1]:
                rows, _, _ = self.data.segment_json(table_id, ends[0], size, columns_out=columns)
                return rows, True, f"{LOOP_TAG}cycle"
        rows, more, _ = self.data.segment_json(table_id, index, size, columns_out=columns)
        return rows, more, None

    def _segment_ends(self, table_id: str, count: int) -> list[int]:
        """Index of the last row of each of the first ``count`` honest segments."""
        ends: list[int] = []
        after = -1
        for _ in range(count):
            rows, _more, last = self.data.segment_json(table_id, after, self.config.segment_size)
            if not rows:
                break
            ends.append(last)
            after = last
        return ends

    # ----- run-time control ------------------------------------------------------------------

    def issued_secrets(self) -> set[str]:
        """App secrets plus every token issued, with and without the ``Bearer`` prefix."""
        return set(self.config.apps.values()) | self.tokens.issued()

    def close(self) -> None:
        """Release the log file."""
        self.log.close()


_FAULT_ENVELOPES: dict[str, tuple[int, tuple[int, str]]] = {
    "500": (HTTP_ERROR, SERVER_ERROR),
    "503": (HTTP_UNAVAILABLE, UNAVAILABLE),
    "code": (HTTP_OK, RETRY_CODE),
    "401": (HTTP_UNAUTH, EXPIRED),
    "refresh_reject": (HTTP_UNAUTH, REFRESH_INVALID),
}


def _fault_response(fault: str | None) -> HttpResponse:
    """The answer of a fault that replaces the endpoint's answer."""
    if fault == "drop":
        return HttpResponse(0, drop=True)
    if fault == "html502":
        return HttpResponse(HTTP_BAD_GATEWAY, NGINX_502, "text/html")
    status, code_message = _FAULT_ENVELOPES.get(fault or "500", (HTTP_ERROR, SERVER_ERROR))
    return error(status, code_message)


def request_time() -> float:
    """Wall-clock arrival time recorded in the log."""
    return time.time()
