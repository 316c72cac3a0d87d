"""``maptable-sandbox``: run the fake MapTable server as a process (demo, subprocess tests).

Prints exactly one line, ``maptable-sandbox listening on URL``, then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from maptable_sandbox.config import FaultPlan, SandboxConfig
from maptable_sandbox.data import Dataset
from maptable_sandbox.server import Sandbox

if TYPE_CHECKING:
    from types import FrameType


def _app(text: str) -> tuple[str, str]:
    app_id, sep, secret = text.partition(":")
    if not sep or not app_id or not secret:
        msg = "expected ID:SECRET"
        raise argparse.ArgumentTypeError(msg)
    return app_id, secret


def _table_rows(text: str) -> tuple[str, int]:
    table_id, sep, count = text.partition("=")
    if not sep or not table_id or not count.isdigit():
        msg = "expected TABLE_ID=N"
        raise argparse.ArgumentTypeError(msg)
    return table_id, int(count)


def _faults(text: str) -> FaultPlan:
    """A FaultPlan from JSON, or from a file when written ``@path``."""
    try:
        raw = Path(text[1:]).read_text(encoding="utf-8") if text.startswith("@") else text
        return FaultPlan.from_json(raw)
    except (OSError, ValueError, TypeError) as exc:
        msg = f"bad fault plan: {exc}"
        raise argparse.ArgumentTypeError(msg) from exc


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="maptable-sandbox", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--app", type=_app, action="append", metavar="ID:SECRET")
    p.add_argument("--rate-limit", type=int, default=60)
    p.add_argument("--rate-window", type=float, default=60.0)
    p.add_argument("--token-ttl", type=float, default=28800.0)
    p.add_argument("--no-exp", action="store_true", help="mint tokens without an exp claim")
    p.add_argument("--paging", choices=("honour", "ignore"), default="honour")
    p.add_argument("--workspaces", type=int, default=2)
    p.add_argument("--projects-per-workspace", type=int, default=2)
    p.add_argument("--tables-per-project", type=int, default=2)
    p.add_argument("--rows-per-table", type=int, default=50)
    p.add_argument("--table-rows", type=_table_rows, action="append", metavar="TABLE_ID=N")
    p.add_argument("--big-table-rows", type=int, metavar="N", help="give the first table N rows")
    p.add_argument("--segment-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--faults", type=_faults, metavar="JSON|@FILE")
    p.add_argument("--request-log", metavar="FILE")
    p.add_argument("--ready-file", metavar="FILE")
    return p


def build_config(args: argparse.Namespace) -> SandboxConfig:
    """Turn parsed options into a ``SandboxConfig`` (raises ``ValueError`` on bad values)."""
    table_rows = dict(args.table_rows or [])
    config = SandboxConfig(
        apps=dict(args.app or [("app-1", "secret-1")]),
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        token_ttl=args.token_ttl,
        include_exp=not args.no_exp,
        paging=args.paging,
        workspaces=args.workspaces,
        projects_per_workspace=args.projects_per_workspace,
        tables_per_project=args.tables_per_project,
        rows_per_table=args.rows_per_table,
        table_rows=table_rows,
        segment_size=args.segment_size,
        seed=args.seed,
        faults=args.faults or FaultPlan(),
        request_log_path=args.request_log,
        host=args.host,
        port=args.port,
    )
    if args.big_table_rows is not None:
        tables = Dataset(config).tables()  # structure only: rows are never generated here
        if not tables:
            msg = "--big-table-rows needs at least one table"
            raise ValueError(msg)
        table_rows = {tables[0].table_id: args.big_table_rows, **table_rows}
        config = SandboxConfig(**{**config.__dict__, "table_rows": table_rows})
    return config


def _write_ready(path: str, url: str) -> None:
    """Write atomically so a poller never reads a half-written URL."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent or Path(), prefix=".ready-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(url + "\n")
    Path(tmp).replace(target)


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status (0 after a clean SIGTERM/SIGINT)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = build_config(args)
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        sandbox = Sandbox(config).start()
    except OSError as exc:
        sys.stderr.write(f"maptable-sandbox: cannot listen: {exc}\n")
        return 1
    try:
        sys.stdout.write(f"maptable-sandbox listening on {sandbox.url}\n")
        sys.stdout.flush()
        if args.ready_file:
            _write_ready(args.ready_file, sandbox.url)
        while not stop.wait(0.2):
            pass
    finally:
        sandbox.stop()
    return 0
