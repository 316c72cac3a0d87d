"""Figure 5: a generic singer-sdk REST tap (tap-rest-api-msdk) on the budget run's data.

It runs from its own venv, bench/.venv-peer (created on first use; never a project dependency),
with a static token obtained once from the sandbox, against the same strict sandbox and data as
figure 1. Its config names every stream by path, so the workspace and table ids come from the
sandbox's dataset, built locally from the same options (no request is spent on them).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from bench.budget import DATA, LIMIT, analyse
from bench.common import BENCH_DIR, Sandbox, run_measured, work_dir, write_json

PEER_VENV = BENCH_DIR / ".venv-peer"
PEER_PACKAGE = "tap-rest-api-msdk==1.4.2"


def peer_executable() -> str:
    """The peer's command, installing it into its own venv when missing."""
    exe = PEER_VENV / "bin" / "tap-rest-api-msdk"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run(
            [str(PEER_VENV / "bin" / "pip"), "install", "-q", PEER_PACKAGE],
            check=True,
        )
    return str(exe)


def _layout() -> tuple[list[tuple[str, int]], list[str]]:
    """(workspace type, id) pairs and table ids of the sandbox built from DATA."""
    from maptable_sandbox.cli import _parser, build_config  # noqa: PLC0415
    from maptable_sandbox.data import Dataset  # noqa: PLC0415

    config = build_config(_parser().parse_args(list(DATA)))
    tables = Dataset(config).tables()
    workspaces = sorted({(t.workspace_type, t.workspace_id) for t in tables}, key=lambda w: w[1])
    return workspaces, [t.table_id for t in tables]


def peer_config(url: str, token: str) -> dict[str, Any]:
    """Streams for the workspace list, each workspace's projects and each table's segments."""
    workspaces, tables = _layout()
    api = "/open/api/v1"
    streams: list[dict[str, Any]] = [
        {
            "name": "workspaces",
            "path": f"{api}/workspaces/",
            "params": {"page": 1, "pageSize": 100},
            "records_path": "$.detail[*]",
            "primary_keys": ["id"],
        }
    ]
    streams += [
        {
            "name": f"projects_{ws_type}_{ws_id}",
            "path": f"{api}/workspaces/{ws_type}/{ws_id}/",
            "records_path": "$.detail.projects[*]",
            "primary_keys": ["id"],
        }
        for ws_type, ws_id in workspaces
    ]
    streams += [
        {
            "name": f"table_{table_id}",
            "path": f"{api}/tablenodes/{table_id}/partial/",
            "records_path": "$.detail.rows[*]",
            "primary_keys": ["id"],
        }
        for table_id in tables
    ]
    return {
        "api_url": url,
        "headers": {"Authorization": token if token.startswith("Bearer ") else f"Bearer {token}"},
        # Segment paging as far as its config can say it: the next token is the last row's id,
        # sent as lastSegmentRowID; it cannot read `more`, so it stops on an empty segment.
        "pagination_request_style": "jsonpath_paginator",
        "pagination_response_style": "default",
        "next_page_token_path": "$.detail.rows[-1:].id",
        "pagination_next_page_param": "lastSegmentRowID",
        # Its best setting for a rate-limited API: wait as long as Retry-After says.
        "backoff_type": "header",
        "backoff_param": "Retry-After",
        "streams": streams,
    }


def run(*, quick: bool) -> dict[str, Any]:
    window = 6.0 if quick else 60.0
    exe = peer_executable()
    wd = work_dir("peer")
    with Sandbox(wd, "--rate-limit", str(LIMIT), "--rate-window", str(window), *DATA) as sb:
        config = write_json(wd / "config.json", peer_config(sb.url, sb.token()))
        with (wd / "peer.out").open("wb") as out:
            m = run_measured(
                [exe, "--config", str(config)],
                stdout=out,
                stderr_path=wd / "peer.stderr",
                timeout=30 * window,
            )
        entries = sb.entries()
    with (wd / "peer.out").open(encoding="utf-8") as f:
        records = sum(1 for line in f if '"type":"RECORD"' in line.replace(" ", ""))
    result = analyse(entries, LIMIT, window)
    result |= {
        "window_s": window,
        "wall_s": m.wall_s,
        "returncode": m.returncode,
        "records": records,
        "error": m.stderr_tail(3) if m.returncode else "",
    }
    return result
