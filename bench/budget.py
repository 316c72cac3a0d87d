"""Figure 1: how close a tap sync comes to the fastest schedule the rate limit allows."""

from __future__ import annotations

from typing import Any

from bench.common import (
    Sandbox,
    by_kind,
    max_in_window,
    min_span,
    run_measured,
    tap_config,
    venv_bin,
    work_dir,
    write_json,
)

LIMIT = 60
# 2 workspaces x 2 projects x 2 tables = 8 tables of 240 rows in segments of 10: 24 segments
# each, plus one login, one workspace page and two workspace details = 196 requests.
DATA = (
    "--workspaces",
    "2",
    "--projects-per-workspace",
    "2",
    "--tables-per-project",
    "2",
    "--rows-per-table",
    "240",
    "--segment-size",
    "10",
)


def analyse(entries: list[dict[str, Any]], limit: int, window: float) -> dict[str, Any]:
    """Elapsed vs. the theoretical minimum, 429s and the busiest window, from a request log."""
    sent = [e["t"] for e in entries]
    admitted = [e["t"] for e in entries if e["status"] != 429]
    limited = sum(1 for e in entries if e["status"] == 429)
    n = len(admitted)
    elapsed = max(sent) - min(sent) if sent else 0.0
    minimum = min_span(n, limit, window)
    return {
        "requests_sent": len(sent),
        "requests_admitted": n,
        "rate_limited_429": limited,
        "elapsed_s": elapsed,
        "min_span_s": minimum,
        "ratio": elapsed / minimum if minimum else float("nan"),
        "max_in_window_admitted": max_in_window(admitted, window),
        "max_in_window_sent": max_in_window(sent, window),
        "by_kind": dict(by_kind(entries)),
    }


def run(*, quick: bool) -> dict[str, Any]:
    window = 6.0 if quick else 60.0
    wd = work_dir("budget")
    with Sandbox(wd, "--rate-limit", str(LIMIT), "--rate-window", str(window), *DATA) as sb:
        config = tap_config(
            sb.url,
            requests_per_minute=LIMIT,
            rate_limit_window_seconds=window,
            rate_limit_store=f"sqlite:///{wd / 'budget.sqlite'}",
        )
        path = write_json(wd / "config.json", config)
        with (wd / "tap.out").open("wb") as out:
            tap = run_measured(
                [venv_bin("tap-maptable"), "--config", str(path)],
                stdout=out,
                stderr_path=wd / "tap.stderr",
            )
        entries = sb.entries()
    result = analyse(entries, LIMIT, window)
    t0 = min(e["t"] for e in entries)
    result |= {
        "window_s": window,
        "limit": LIMIT,
        "tap_wall_s": tap.wall_s,
        "tap_returncode": tap.returncode,
        "tap_error": tap.stderr_tail(3) if tap.returncode else "",
        "timeline": [(e["t"] - t0, e["status"]) for e in sorted(entries, key=lambda e: e["t"])],
    }
    return result
