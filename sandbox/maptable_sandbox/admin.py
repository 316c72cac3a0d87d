"""Admin endpoints under ``/_sandbox/``: the Python API over HTTP, for a sandbox run as a process.

They answer plain JSON (no envelope), are never rate-limited, faulted or logged.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from maptable_sandbox.api import ApiApp, HttpRequest, HttpResponse, dumps
from maptable_sandbox.config import FaultPlan

if TYPE_CHECKING:
    from collections.abc import Callable

PREFIX = "/_sandbox/"
_ROWS_RE = re.compile(r"/_sandbox/tables/(?P<table>[^/]+)/rows")
_ROW_RE = re.compile(r"/_sandbox/tables/(?P<table>[^/]+)/rows/(?P<row>[^/]+)")


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
    match = _ROW_RE.fullmatch(path)
    if match:
        return _one_row(app, req, match["table"], match["row"])
    match = _ROWS_RE.fullmatch(path)
    if match and req.method == "GET":
        return _reply(list(app.data.rows(match["table"])))
    if match and req.method == "POST":
        return _reply(app.data.insert_row(match["table"], _cells(req.body)), 201)
    return _problem(404, "no such admin endpoint")


def _one_row(app: ApiApp, req: HttpRequest, table_id: str, row_id: str) -> HttpResponse:
    if req.method == "POST":
        return _reply(app.data.update_row(table_id, row_id, _cells(req.body)))
    if req.method == "DELETE":
        app.data.delete_row(table_id, row_id)
        return _reply({"deleted": row_id})
    if req.method == "GET":
        return _reply(app.data.get_row(table_id, row_id))
    return _problem(405, "method not allowed")


def _simple(app: ApiApp, method: str, path: str, body: bytes) -> HttpResponse | None:
    """Endpoints without path parameters."""
    key = (method, path)
    if key == ("GET", "/_sandbox/requests"):
        return _reply([asdict(e) for e in app.log.entries()])
    if key == ("GET", "/_sandbox/secrets"):
        return _reply(sorted(app.issued_secrets()))
    if key == ("GET", "/_sandbox/tables"):
        return _reply([t.to_dict() for t in app.data.tables()])
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


def _cells(body: bytes) -> dict[str, Any]:
    data = json.loads(body or b"{}")
    cells = data.get("cells", {}) if isinstance(data, dict) else None
    if not isinstance(cells, dict):
        msg = 'body must be {"cells": {columnId: value}}'
        raise TypeError(msg)
    return cells
