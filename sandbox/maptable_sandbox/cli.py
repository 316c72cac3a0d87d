"""``maptable-sandbox``: run the fake MapTable server as a process (demo, subprocess tests).

Prints exactly one line, ``maptable-sandbox listening on URL``, then serves until SIGTERM/SIGINT.
Every option below shapes the server at startup; the admin endpoints under /_sandbox/ change
faults, settings and data while it runs.
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

from maptable_sandbox.config import (
    DELETED_CURSOR_MODES,
    TABLE_FAULT_MODES,
    THIRTY_DAYS,
    WORKSPACE_FAULT_MODES,
    FaultPlan,
    SandboxConfig,
    parse_workspace_key,
)
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


def _table_fault(text: str) -> tuple[str, str]:
    table_id, sep, mode = text.partition("=")
    if not sep or not table_id or mode not in TABLE_FAULT_MODES:
        msg = f"expected TABLE_ID=MODE, MODE one of {', '.join(TABLE_FAULT_MODES)}"
        raise argparse.ArgumentTypeError(msg)
    return table_id, mode


def _workspace_fault(text: str) -> tuple[str, str]:
    key, sep, mode = text.partition("=")
    try:
        parse_workspace_key(key)
    except ValueError:
        sep = ""
    if not sep or mode not in WORKSPACE_FAULT_MODES:
        msg = f"expected TYPE/ID=MODE, MODE one of {', '.join(WORKSPACE_FAULT_MODES)}"
        raise argparse.ArgumentTypeError(msg)
    return key, mode


def _faults(text: str) -> FaultPlan:
    """A FaultPlan from JSON, or from a file when written ``@path``."""
    try:
        raw = Path(text[1:]).read_text(encoding="utf-8") if text.startswith("@") else text
        return FaultPlan.from_json(raw)
    except (OSError, ValueError, TypeError) as exc:
        msg = f"bad fault plan: {exc}"
        raise argparse.ArgumentTypeError(msg) from exc


_EPILOG = """\
The request log (--request-log FILE) is JSON lines, one API request per line. Its fields, the
admin endpoints under /_sandbox/ (which change faults, settings and data at run time) and what
each option does are documented in the sandbox package's README.md (sandbox/README.md in the
tap-maptable repository, and the package's long description).
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="maptable-sandbox",
        description=(__doc__ or "").replace("``", "`"),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    net = p.add_argument_group("network")
    net.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    net.add_argument(
        "--port",
        type=int,
        default=0,
        help="port to listen on; 0 picks a free one (default: %(default)s)",
    )
    net.add_argument(
        "--ready-file",
        metavar="FILE",
        help="once listening, write the base URL to FILE, atomically (default: no file)",
    )
    net.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="every API request (not admin) waits this long before it is answered; requests are "
        "served concurrently, so one slow answer holds up no other (default: %(default)s)",
    )
    net.add_argument(
        "--latency-jitter",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="each answer waits --latency plus a uniform draw from [0, SECONDS], from an RNG "
        "seeded by --seed, so answers overtake each other (default: %(default)s)",
    )
    net.add_argument(
        "--body-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="every API answer's body comes this long after its headers, as on a slow "
        "download (default: %(default)s)",
    )
    auth = p.add_argument_group("apps and tokens")
    auth.add_argument(
        "--app",
        type=_app,
        action="append",
        metavar="ID:SECRET",
        help="an app that may authenticate; repeat for more (default: app-1:secret-1)",
    )
    auth.add_argument(
        "--token-ttl",
        type=float,
        default=28800.0,
        metavar="SECONDS",
        help="access-token lifetime (default: %(default)s, 8 hours)",
    )
    auth.add_argument(
        "--refresh-ttl",
        type=float,
        default=THIRTY_DAYS,
        metavar="SECONDS",
        help="refresh-token lifetime (default: %(default)s, 30 days)",
    )
    auth.add_argument(
        "--no-exp",
        action="store_true",
        help="mint JWTs without an exp claim; tokens still expire (default: with exp)",
    )
    auth.add_argument(
        "--token-clock-skew",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="stamp the iat and exp claims this many seconds off real time (positive: the "
        "server's clock is ahead); expiry is still judged by real time and --token-ttl "
        "(default: %(default)s)",
    )
    auth.add_argument(
        "--keep-used-refresh-tokens",
        action="store_true",
        help="accept a refresh token again after it was used, instead of refusing it with code "
        "40102 (default: refuse, i.e. rotation)",
    )
    auth.add_argument(
        "--revoke-access-on-refresh",
        action="store_true",
        help="a refresh also kills the access token issued with the refresh token it used "
        "(code 40104 from then on) (default: that access token lives on)",
    )
    limits = p.add_argument_group("rate limit and paging")
    limits.add_argument(
        "--rate-limit",
        type=int,
        default=60,
        metavar="N",
        help="requests per app admitted in any window (sliding log); excess gets HTTP 429 with "
        "Retry-After; 0 disables the limit (default: %(default)s)",
    )
    limits.add_argument(
        "--rate-window",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="length of the rate-limit window (default: %(default)s)",
    )
    limits.add_argument(
        "--paging",
        choices=("honour", "ignore"),
        default="honour",
        help="whether the workspace list honours page/pageSize or ignores them and serves the "
        "whole list (default: %(default)s)",
    )
    limits.add_argument(
        "--page-size-cap",
        type=int,
        metavar="N",
        help="serve at most N workspaces per page whatever pageSize asks; also caps an "
        "unpaged or --paging ignore list (default: no cap)",
    )
    p.add_argument(
        "--page-offset",
        choices=("served", "asked"),
        default="served",
        help="with --page-size-cap, whether page counts pages of the size served or of the "
        "size asked for (which skips what the cap left out) (default: %(default)s)",
    )
    data = p.add_argument_group("sample data")
    data.add_argument(
        "--workspaces",
        type=int,
        default=2,
        metavar="N",
        help="number of workspaces (default: %(default)s)",
    )
    data.add_argument(
        "--projects-per-workspace",
        type=int,
        default=2,
        metavar="N",
        help="projects in each workspace (default: %(default)s)",
    )
    data.add_argument(
        "--tables-per-project",
        type=int,
        default=2,
        metavar="N",
        help="tables in each project, besides one group node (default: %(default)s)",
    )
    data.add_argument(
        "--rows-per-table",
        type=int,
        default=50,
        metavar="N",
        help="rows in each table, generated lazily from the seed (default: %(default)s)",
    )
    data.add_argument(
        "--table-rows",
        type=_table_rows,
        action="append",
        metavar="TABLE_ID=N",
        help="give one table N rows instead; repeat for more tables (default: none)",
    )
    data.add_argument(
        "--big-table-rows",
        type=int,
        metavar="N",
        help="give the first table N rows (--table-rows wins for that table) (default: none)",
    )
    data.add_argument(
        "--segment-size",
        type=int,
        default=100,
        metavar="N",
        help="rows per segment of a table's rows (default: %(default)s)",
    )
    data.add_argument(
        "--columns-every-segment",
        action="store_true",
        help="send columns and views with every segment, not only the first (default: first only)",
    )
    data.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the sample data: same seed, same ids and rows (default: %(default)s)",
    )
    misc = p.add_argument_group("faults and logging")
    misc.add_argument(
        "--faults",
        type=_faults,
        metavar="JSON|@FILE",
        help="a fault plan (FaultPlan JSON: rates, schedule, seed, kinds_for, timeout_delay, "
        "segment_loop, max_faults, retry_after), inline or read from FILE (default: no faults)",
    )
    misc.add_argument(
        "--table-fault",
        type=_table_fault,
        action="append",
        metavar="TABLE_ID=MODE",
        help="fault one table's segment endpoint; MODE: 403, 404, code (HTTP 200, code 40300), "
        "bad_columns, columns_without_id, or 403/404/code followed by _after_first (only "
        "segments after the first); repeat for more tables (default: none)",
    )
    misc.add_argument(
        "--workspace-fault",
        type=_workspace_fault,
        action="append",
        metavar="TYPE/ID=MODE",
        help="fault one workspace's detail and roles endpoints (e.g. user/164=403); MODE: 403, "
        "404, or code (HTTP 200, code 40300); repeat for more workspaces (default: none)",
    )
    misc.add_argument(
        "--deleted-cursor",
        choices=DELETED_CURSOR_MODES,
        default="continue",
        help="what a lastSegmentRowID naming a deleted (or never existing) row gets: the rows "
        "after its position (continue), HTTP 400 with code 40001 (error), HTTP 200 with code "
        "40001 (code), HTTP 404 (404), or the first segment again (restart) "
        "(default: %(default)s)",
    )
    misc.add_argument(
        "--request-log",
        metavar="FILE",
        help="append one JSON line per API request to FILE; fields in sandbox/README.md "
        "(default: no file)",
    )
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
        refresh_ttl=args.refresh_ttl,
        page_size_cap=args.page_size_cap,
        page_offset=args.page_offset,
        revoke_used_refresh_tokens=not args.keep_used_refresh_tokens,
        revoke_access_on_refresh=args.revoke_access_on_refresh,
        token_clock_skew_s=args.token_clock_skew,
        latency_s=args.latency,
        columns_every_segment=args.columns_every_segment,
        latency_jitter_s=args.latency_jitter,
        body_delay_s=args.body_delay,
        table_faults=dict(args.table_fault or []),
        deleted_cursor=args.deleted_cursor,
        workspace_faults=dict(args.workspace_fault or []),
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
        sandbox = Sandbox(config)
    except ValueError as exc:  # e.g. --table-fault or --workspace-fault naming nothing
        parser.error(str(exc))
    try:
        sandbox.start()
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
