"""Admin endpoints under ``/_sandbox/``: the Python API over HTTP, for a sandbox run as a process.

They answer plain JSON (no envelope), are never rate-limited, faulted, delayed or logged. Every
endpoint is listed, with its body and effect, in sandbox/README.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from maptable_sandbox.api import ApiApp, HttpRequest, HttpResponse, dumps
from maptable_sandbox.config import (
    FaultPlan,
    check_clock_skew,
    check_deleted_cursor,
    check_latency,
    check_page_size_cap,
    workspace_key,
)

if TYPE_CHECKING:
    from collections.abc import Callable

PREFIX = "/_sandbox/"
_ROWS_RE = re.compile(r"/_sandbox/tables/(?P<table>[^/]+)/rows")
_ROW_RE = re.compile(r"/_sandbox/tables/(?P<table>[^/]+)/rows/(?P<row>[^/]+)")
_COLUMNS_RE = re.compile(r"/_sandbox/tables/(?P<table>[^/]+)/columns")
_ORDER_RE = re.compile(r"/_sandbox/tables/(?P<table>[^/]+)/columns/order")
_COLUMN_RE = re.compile(
    r"/_sandbox/tables/(?P<table>[^/]+)/columns/(?P<column>[^/]+?)(?:/(?P<action>rename|retype))?"
)
_FAULT_RE = re.compile(r"/_sandbox/tables/(?P<table>[^/]+)/fault")
_TABLE_RE = re.compile(r"/_sandbox/tables/(?P<table>[^/]+)")
_PROJECT_RE = re.compile(r"/_sandbox/projects/(?P<project>[^/]+)")
_PROJECT_TABLES_RE = re.compile(r"/_sandbox/projects/(?P<project>[^/]+)/tables")
_WORKSPACE_RE = re.compile(
    r"/_sandbox/workspaces/(?P<type>[^/]+)/(?P<id>[^/]+)/(?P<action>projects|fault)"
)
MODE_BODY = 'body must be {"mode": MODE} (null clears)'
NO_ENDPOINT = "no such admin endpoint"
#: Run-time settings and their checks (each raises ``ValueError`` on a bad value).
SETTINGS: dict[str, Callable[[Any], None]] = {
    "latency_s": check_latency,
    "latency_jitter_s": lambda value: check_latency(value, "latency_jitter_s"),
    "page_size_cap": check_page_size_cap,
    "token_clock_skew_s": check_clock_skew,
    "deleted_cursor": check_deleted_cursor,
}


def _reply(payload: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(status, dumps(payload))


def _problem(status: int, message: str) -> HttpResponse:
    return _reply({"error": message}, status)


def handle_admin(app: ApiApp, req: HttpRequest) -> HttpResponse:
    """Serve one admin request; errors become ``{"error": ...}`` with a 4xx status."""
    path = req.path.rstrip("/")
    try:
        return _dispatch(app, req, path)
    except KeyError as exc:
        return _problem(404, f"not found: {exc}")
    except (ValueError, TypeError) as exc:
        return _problem(400, str(exc))


def _dispatch(app: ApiApp, req: HttpRequest, path: str) -> HttpResponse:
    simple = _simple(app, req.method, path, req.body)
    if simple is not None:
        return simple
    structure = _structure(app, req, path)
    if structure is not None:
        return structure
    if "/columns" in path:
        return _columns(app, req, path)
    match = _FAULT_RE.fullmatch(path)
    if match:
        return _table_fault(app, req, match["table"])
    return _rows(app, req, path)


def _rows(app: ApiApp, req: HttpRequest, path: str) -> HttpResponse:
    """Rows: list, insert; one row: get, update, delete."""
    match = _ROW_RE.fullmatch(path)
    if match:
        return _one_row(app, req, match["table"], match["row"])
    match = _ROWS_RE.fullmatch(path)
    if match and req.method == "GET":
        return _reply(list(app.data.rows(match["table"])))
    if match and req.method == "POST":
        return _reply(app.data.insert_row(match["table"], _cells(req.body)), 201)
    return _problem(404, NO_ENDPOINT)


def _structure(app: ApiApp, req: HttpRequest, path: str) -> HttpResponse | None:
    """Projects and table nodes: add and delete; workspace faults. ``None``: not one of these."""
    match = _WORKSPACE_RE.fullmatch(path)
    if match:
        ws_type, ws_id = match["type"], _workspace_id(match["type"], match["id"])
        if match["action"] == "fault":
            return _workspace_fault(app, req, ws_type, ws_id)
        if req.method != "POST":
            return _problem(405, "method not allowed")
        return _reply(app.add_project(ws_type, ws_id, _text(_object(req.body), "name")), 201)
    match = _PROJECT_TABLES_RE.fullmatch(path)
    if match:
        return _add_table(app, req, match["project"])
    match = _PROJECT_RE.fullmatch(path) or _TABLE_RE.fullmatch(path)
    return None if match is None else _delete_node(app, req, match.groupdict())


def _delete_node(app: ApiApp, req: HttpRequest, params: dict[str, str]) -> HttpResponse:
    """``DELETE`` a project (answering its table nodes' ids too) or one table node."""
    if req.method != "DELETE":
        return _problem(405, "method not allowed")
    if "project" in params:
        project = app.delete_project(params["project"])
        nodes = [n["id"] for n in project["tableNodes"]]
        return _reply({"deleted": project["id"], "tableNodes": nodes})
    return _reply({"deleted": app.delete_table(params["table"])["id"]})


def _add_table(app: ApiApp, req: HttpRequest, project_id: str) -> HttpResponse:
    """``POST {"name", "rows"?}``: a new table (201), as ``GET /_sandbox/tables`` lists it."""
    if req.method != "POST":
        return _problem(405, "method not allowed")
    body = _object(req.body)
    rows = body.get("rows")
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int)):
        msg = '"rows" must be an integer'
        raise TypeError(msg)
    info = app.add_table(project_id, _text(body, "name"), rows)
    return _reply(app.table_summary(info), 201)


def _workspace_id(ws_type: str, text: str) -> int:
    """A workspace id from a path; ``KeyError`` (404) if it cannot name one."""
    if not text.isascii() or not text.isdigit():
        raise KeyError(workspace_key(ws_type, text))
    return int(text)


def _workspace_fault(app: ApiApp, req: HttpRequest, ws_type: str, ws_id: int) -> HttpResponse:
    """Show (GET) or set (POST ``{"mode": ...}``, ``null`` clears) one workspace's fault."""
    if req.method == "POST":
        body = _object(req.body)
        if "mode" not in body:
            raise ValueError(MODE_BODY)
        app.set_workspace_fault(ws_type, ws_id, body["mode"])
    elif req.method != "GET":
        return _problem(405, "method not allowed")
    elif not app.data.has_workspace(ws_type, ws_id):
        raise KeyError(workspace_key(ws_type, ws_id))
    return _reply(
        {
            "workspace_type": ws_type,
            "workspace_id": ws_id,
            "mode": app.workspace_fault(ws_type, ws_id),
        }
    )


def _one_row(app: ApiApp, req: HttpRequest, table_id: str, row_id: str) -> HttpResponse:
    if req.method == "POST":
        return _reply(app.data.update_row(table_id, row_id, _cells(req.body)))
    if req.method == "DELETE":
        app.data.delete_row(table_id, row_id)
        return _reply({"deleted": row_id})
    if req.method == "GET":
        return _reply(app.data.get_row(table_id, row_id))
    return _problem(405, "method not allowed")


def _columns(app: ApiApp, req: HttpRequest, path: str) -> HttpResponse:
    """Column drift: list, add, reorder, rename, retype, delete."""
    data = app.data
    match = _ORDER_RE.fullmatch(path)
    if match and req.method == "POST":
        body = _object(req.body)
        order = body.get("order")
        if order is not None and not isinstance(order, list):
            msg = '"order" must be a list of column ids'
            raise TypeError(msg)
        reverse = body.get("reverse") is True
        return _reply(data.reorder_columns(match["table"], order, reverse=reverse))
    match = _COLUMNS_RE.fullmatch(path)
    if match and req.method == "GET":
        return _reply(data.columns(match["table"]))
    if match and req.method == "POST":
        return _reply(_add_column(app, match["table"], _object(req.body)), 201)
    match = _COLUMN_RE.fullmatch(path)
    if match is None:
        return _problem(404, NO_ENDPOINT)
    return _one_column(app, req, match["table"], match["column"], match["action"])


def _table_fault(app: ApiApp, req: HttpRequest, table_id: str) -> HttpResponse:
    """Show (GET) or set (POST ``{"mode": ...}``, ``null`` clears) one table's access fault."""
    if req.method == "POST":
        body = _object(req.body)
        if "mode" not in body:
            raise ValueError(MODE_BODY)
        app.set_table_fault(table_id, body["mode"])
    elif req.method != "GET":
        return _problem(405, "method not allowed")
    elif not app.data.has_table(table_id):
        raise KeyError(table_id)
    return _reply({"table_id": table_id, "mode": app.table_fault(table_id)})


def _add_column(app: ApiApp, table_id: str, body: dict[str, Any]) -> dict[str, Any]:
    position = body.get("position")
    if position is not None and (isinstance(position, bool) or not isinstance(position, int)):
        msg = '"position" must be an integer'
        raise TypeError(msg)
    return app.data.add_column(
        table_id,
        _text(body, "name"),
        _text(body, "type"),
        type_options=body.get("typeOptions"),
        fill=body.get("fill"),
        position=position,
    )


def _one_column(
    app: ApiApp, req: HttpRequest, table_id: str, column_id: str, action: str | None
) -> HttpResponse:
    data = app.data
    if (req.method, action) == ("DELETE", None):
        data.delete_column(table_id, column_id)
        return _reply({"deleted": column_id})
    if req.method != "POST" or action is None:
        return _problem(405, "method not allowed")
    body = _object(req.body)
    if action == "rename":
        return _reply(data.rename_column(table_id, column_id, _text(body, "name")))
    options = body.get("typeOptions")
    return _reply(data.retype_column(table_id, column_id, _text(body, "type"), options))


def _settings(app: ApiApp, body: bytes) -> HttpResponse:
    """Change any of the run-time settings; all are checked before any is applied."""
    changes = _object(body)
    unknown = set(changes) - set(SETTINGS)
    if unknown:
        msg = f"unknown setting(s): {sorted(unknown)}; known: {list(SETTINGS)}"
        raise ValueError(msg)
    for name, value in changes.items():
        SETTINGS[name](value)
    for name, value in changes.items():
        setattr(app, name, value)
    return _reply(app.settings())


def _simple(app: ApiApp, method: str, path: str, body: bytes) -> HttpResponse | None:
    """Endpoints without path parameters."""
    key = (method, path)
    if key == ("POST", "/_sandbox/settings"):
        return _settings(app, body)
    reads: dict[tuple[str, str], Callable[[], Any]] = {
        ("GET", "/_sandbox/settings"): app.settings,
        ("GET", "/_sandbox/requests"): lambda: [asdict(e) for e in app.log.entries()],
        ("GET", "/_sandbox/secrets"): lambda: sorted(app.issued_secrets()),
        ("GET", "/_sandbox/tables"): app.table_summaries,
    }
    if key in reads:
        return _reply(reads[key]())
    actions: dict[tuple[str, str], Callable[[], None]] = {
        ("POST", "/_sandbox/faults"): lambda: app.faults.install(
            FaultPlan.from_json(body.decode() or "{}")
        ),
        ("POST", "/_sandbox/revoke"): app.tokens.revoke_access,
        ("POST", "/_sandbox/reset-log"): app.log.reset,
    }
    if key in actions:
        actions[key]()
        return _reply({"ok": True})
    return None


def _object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object (an empty body is ``{}``)."""
    data = json.loads(body or b"{}")
    if not isinstance(data, dict):
        msg = "body must be a JSON object"
        raise TypeError(msg)
    return data


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        msg = f'"{key}" must be a string'
        raise TypeError(msg)
    return value


def _cells(body: bytes) -> dict[str, Any]:
    data = json.loads(body or b"{}")
    cells = data.get("cells", {}) if isinstance(data, dict) else None
    if not isinstance(cells, dict):
        msg = 'body must be {"cells": {columnId: value}}'
        raise TypeError(msg)
    return cells
