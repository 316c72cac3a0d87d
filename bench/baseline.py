"""The least a MapTable extractor must do, as a yardstick for the tap's speed.

    python -m bench.baseline --url URL --app-id ID --app-secret SECRET

Plain `requests` (one keep-alive session), the same HTTP calls as a tap sync (login, workspace
pages, one detail per workspace, every table's segments) and the same Singer RECORD lines on
stdout for every table's rows. Rows go through the tap's own `row_record`, so the records are
identical and the difference in time is what the SDK and the tap's plumbing cost. No schema
validation, no state, no retries, no rate limit: run it against an unthrottled sandbox.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

import requests

from tap_maptable.columns import name_columns, row_record

API = "/open/api/v1"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline")
    parser.add_argument("--url", required=True)
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--app-secret", required=True)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()

    session = requests.Session()
    base = args.url.rstrip("/") + API

    def get(path: str, **params: Any) -> Any:
        response = session.get(base + path, params=params or None, timeout=60)
        response.raise_for_status()
        body = response.json()
        if body["code"] != 0:
            raise RuntimeError(body["message"])
        return body["detail"]

    login = session.post(
        base + "/auth/", json={"appId": args.app_id, "appSecret": args.app_secret}, timeout=60
    )
    login.raise_for_status()
    session.headers["Authorization"] = login.json()["detail"]["token"]

    out = sys.stdout
    dumps = json.JSONEncoder(separators=(",", ":")).encode  # as the SDK writes them

    def emit(stream: str, record: dict[str, Any]) -> None:
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        message = {"type": "RECORD", "stream": stream, "record": record, "time_extracted": now}
        out.write(dumps(message) + "\n")

    workspaces: list[dict[str, Any]] = []
    page = 1
    while True:
        items = get("/workspaces/", page=page, pageSize=args.page_size)
        workspaces.extend(items)
        if len(items) < args.page_size:
            break
        page += 1

    tables: list[str] = []
    for ws in workspaces:
        emit("workspaces", {**ws, "id": str(ws["id"])})
        detail = get(f"/workspaces/{ws['type']}/{ws['id']}/")
        for project in detail.get("projects") or []:
            emit("projects", {k: v for k, v in project.items() if k != "tableNodes"})
            for node in project.get("tableNodes") or []:
                emit("table_nodes", node)
                if node.get("type") in {"table", "bigTable"}:
                    tables.append(str(node["id"]))

    for table_id in tables:
        stream = f"table_{table_id}"
        columns = None
        cursor = None
        while True:
            params = {"lastSegmentRowID": cursor} if cursor else {}
            segment = get(f"/tablenodes/{table_id}/partial/", **params)
            if columns is None:
                columns = name_columns(segment.get("columns") or [])
            rows = segment.get("rows") or []
            for row in rows:
                emit(stream, row_record(row, columns))
            if not segment.get("more") or not rows:
                break
            cursor = rows[-1]["id"]
    out.flush()


if __name__ == "__main__":
    main()
