"""Figure 7: several tap processes of one app, one strict sandbox, one shared request budget.

1, 2 and 4 tap processes start at once against one sandbox (60 requests per sliding window per
app) and share one `rate_limit_store`: a SQLite file, then a Redis server of the bench's own.
Each process syncs its own two tables (`table_ids`) and logs in itself (`cache_tokens: false`,
as N separate pipelines would): 1 login, 1 workspace page, 2 workspace details and 2 x 23
segments = 50 requests, so 4 processes need 200. The contrast: 2 and 4 processes with
`rate_limit_store: memory`, each pacing only itself, with a bounded timeout.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import requests

from bench.budget import analyse
from bench.common import (
    Sandbox,
    min_span,
    run_measured,
    stop_process,
    tap_config,
    venv_bin,
    work_dir,
    write_json,
)

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Self

LIMIT = 60
ROWS = 230  # 23 segments of 10: with the login, list page and 2 details, 50 requests a process
SEGMENT = 10
TABLES_PER_PROCESS = 2
SHARED_COUNTS = (1, 2, 4)
MEMORY_COUNTS = (2, 4)
DATA = (
    "--workspaces",
    "2",
    "--projects-per-workspace",
    "2",
    "--tables-per-project",
    "2",
    "--rows-per-table",
    str(ROWS),
    "--segment-size",
    str(SEGMENT),
)
REDIS_SERVER = "/usr/bin/redis-server"
_PORT_LOCK = threading.Lock()


def requests_per_process() -> int:
    """What one process's slice needs: login, list page, both details, its tables' segments."""
    return 1 + 1 + 2 + TABLES_PER_PROCESS * -(-ROWS // SEGMENT)


class RedisServer:
    """A throwaway redis-server on a free loopback port, no persistence; stopped on exit."""

    def __init__(self, workdir: Path) -> None:
        """Nothing starts until entered."""
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self) -> Self:
        """Start it and wait until it answers PING."""
        import redis  # noqa: PLC0415 - only this figure needs it

        with _PORT_LOCK, socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        argv = [
            REDIS_SERVER,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
        ]
        with (self.workdir / "redis.log").open("wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    msg = f"redis-server did not start (see {self.workdir / 'redis.log'})"
                    raise RuntimeError(msg) from None
                time.sleep(0.05)
        client.close()
        return self

    def url(self, db: int) -> str:
        """A `rate_limit_store` URL for database `db`."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def __exit__(self, *exc: object) -> None:
        """Stop it (SIGTERM, then SIGKILL)."""
        stop_process(self.proc)
        self.proc = None


def _records(path: Path) -> Counter[str]:
    """RECORD messages per table stream in one process's output."""
    counts: Counter[str] = Counter()
    with path.open(encoding="utf-8") as f:
        for line in f:
            if '"RECORD"' not in line:
                continue
            msg = json.loads(line)
            stream = msg.get("stream", "")
            if (
                msg.get("type") == "RECORD"
                and stream.startswith("table_")
                and stream != "table_nodes"
            ):
                counts[stream] += 1
    return counts


def run_config(
    store: str,
    processes: int,
    window: float,
    *,
    redis_url: str = "",
    timeout: float,
    label: str,
) -> dict[str, Any]:
    """Start `processes` taps at once against one fresh strict sandbox; analyse its log."""
    wd = work_dir(f"shared/{label}")
    store_url = {"memory": "memory", "redis": redis_url}.get(
        store, f"sqlite:///{wd / 'budget.sqlite'}"
    )
    with Sandbox(wd, "--rate-limit", str(LIMIT), "--rate-window", f"{window:g}", *DATA) as sb:
        tables = [
            t["table_id"] for t in requests.get(f"{sb.url}/_sandbox/tables", timeout=10).json()
        ]
        argvs = []
        for i in range(processes):
            config = tap_config(
                sb.url,
                requests_per_minute=LIMIT,
                rate_limit_window_seconds=window,
                rate_limit_store=store_url,
                cache_tokens=False,
                table_ids=tables[i * TABLES_PER_PROCESS : (i + 1) * TABLES_PER_PROCESS],
            )
            path = write_json(wd / f"config-{i}.json", config)
            argvs.append([venv_bin("tap-maptable"), "--config", str(path)])

        def one(i: int) -> Any:
            with (wd / f"tap-{i}.out").open("wb") as out:
                return run_measured(
                    argvs[i], stdout=out, stderr_path=wd / f"tap-{i}.stderr", timeout=timeout
                )

        with ThreadPoolExecutor(max_workers=processes) as pool:
            measured = list(pool.map(one, range(processes)))
        entries = sb.entries()
    result = analyse(entries, LIMIT, window)
    procs = []
    for i, m in enumerate(measured):
        records = _records(wd / f"tap-{i}.out")
        own = tables[i * TABLES_PER_PROCESS : (i + 1) * TABLES_PER_PROCESS]
        complete = all(records.get(f"table_{t}", 0) == ROWS for t in own)
        procs.append(
            {
                "returncode": m.returncode,
                "wall_s": m.wall_s,
                "records": sum(records.values()),
                "complete": complete,
                "killed_by_timeout": m.wall_s >= timeout - 1 and m.returncode < 0,
                "error": m.stderr_tail(2) if m.returncode else "",
            }
        )
    result |= {
        "store": store,
        "store_url": store_url,
        "processes": processes,
        "window_s": window,
        "limit": LIMIT,
        "timeout_s": timeout,
        "needed": processes * requests_per_process(),
        "all_ok": all(p["returncode"] == 0 and p["complete"] for p in procs),
        "procs": procs,
    }
    print(
        f"[bench] shared {label}: {result['requests_admitted']} admitted, "
        f"{result['rate_limited_429']} x 429, {result['elapsed_s']:.1f} s, ok={result['all_ok']}",
        flush=True,
    )
    return result


def _series(store: str, counts: tuple[int, ...], window: float, redis: RedisServer | None) -> list:
    out = []
    for n in counts:
        need = min_span(n * requests_per_process(), LIMIT, window)
        # Shared: generous (a stall shows as a ratio, not a kill). Memory: the bounded contrast.
        timeout = need + 3 * window + 60 if store != "memory" else 2 * (need + window) + 10
        out.append(
            run_config(
                store,
                n,
                window,
                redis_url=redis.url(n) if redis else "",
                timeout=timeout,
                label=f"{store}-{n}",
            )
        )
    return out


def run(*, quick: bool) -> dict[str, Any]:
    window = 6.0 if quick else 60.0
    if shutil.which(REDIS_SERVER) is None:
        msg = f"{REDIS_SERVER} not found"
        raise FileNotFoundError(msg)
    wd = work_dir("shared")
    # The three series use separate sandboxes and stores and mostly wait on their rate limits:
    # they run side by side (only process start-up competes for the cores).
    with RedisServer(wd) as redis, ThreadPoolExecutor(max_workers=3) as pool:
        futures = {
            "sqlite": pool.submit(_series, "sqlite", SHARED_COUNTS, window, None),
            "redis": pool.submit(_series, "redis", SHARED_COUNTS, window, redis),
            "memory": pool.submit(_series, "memory", MEMORY_COUNTS, window, None),
        }
        runs = [r for f in futures.values() for r in f.result()]
    return {
        "limit": LIMIT,
        "window_s": window,
        "rows_per_table": ROWS,
        "segment_size": SEGMENT,
        "tables_per_process": TABLES_PER_PROCESS,
        "requests_per_process": requests_per_process(),
        "runs": runs,
    }
