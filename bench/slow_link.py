"""Figure 13: a slow link, fixed and jittered, for the one reader of every table.

Complements figure 8 (`latency.py`), measured before the reader was rebuilt: the same data and
the same bound, for the tap's default parallelism only, on a window scaled down to keep each run
short; then answers whose time varies, so that they overtake each other.

1. The sweep: figure 8's 12 tables (3 workspaces x 2 projects x 2 tables) of 50 rows in segments
   of 10, discovery and sync in one process (66 requests), a strict sandbox at 60 requests per
   30 s (figure 8's 60 per 60 s with the window halved) answering after 0, 0.5, 1, 2 and 4 s.
   Elapsed (first arrival to last answer) over the minimum of `latency.analyse` (the larger of
   the chain's bound and the budget's). Goal: <= 1.10 at every latency, 0 x 429.
2. Jitter: the same data, 20 runs, each on a fresh sandbox with its own seed, answering after
   0.5 s plus a uniform draw from [0, 1] s (`--latency 0.5 --latency-jitter 1.0`), at 30
   requests per 6 s (so a run lasts about 15 s). Per run: 429s, the busiest 6-s window of
   admitted requests (and of every request sent) against the limit, elapsed, the most requests
   in flight at once. Goal: 0 x 429 in all 20.
"""

from __future__ import annotations

from statistics import mean
from typing import Any

from bench.common import (
    Sandbox,
    by_kind,
    max_in_window,
    run_measured,
    tap_config,
    venv_bin,
    work_dir,
    write_json,
)
from bench.latency import DATA, LATENCIES, analyse, most_in_flight
from bench.report import ok, table

NUMBER = "13"
SWEEP_LIMIT, SWEEP_WINDOW = 60, 30.0  # latency.analyse's limit is 60
JITTER_LIMIT, JITTER_WINDOW = 30, 6.0
JITTER_BASE, JITTER_SPREAD = 0.5, 1.0
JITTER_RUNS, QUICK_JITTER_RUNS = 20, 5


def _tap_run(wd: Any, url: str, limit: int, window: float) -> int:
    config = write_json(
        wd / "config.json",
        tap_config(
            url,
            requests_per_minute=limit,
            rate_limit_window_seconds=window,
            rate_limit_store="memory",
            cache_tokens=False,
        ),
    )
    tap = run_measured(
        [venv_bin("tap-maptable"), "--config", str(config)], stderr_path=wd / "tap.stderr"
    )
    return tap.returncode


def sweep(latencies: tuple[float, ...]) -> list[dict[str, Any]]:
    runs = []
    for latency in latencies:
        wd = work_dir(f"slow_link/sweep-{latency:g}")
        args = ("--rate-limit", str(SWEEP_LIMIT), "--rate-window", str(SWEEP_WINDOW))
        with Sandbox(wd, *args, "--latency", str(latency), *DATA) as sb:
            code = _tap_run(wd, sb.url, SWEEP_LIMIT, SWEEP_WINDOW)
            entries = sb.entries()
        result = analyse(entries, latency, SWEEP_WINDOW)
        result |= {"latency_s": latency, "returncode": code}
        runs.append(result)
    return runs


def jittered(count: int) -> list[dict[str, Any]]:
    runs = []
    for seed in range(1, count + 1):
        wd = work_dir(f"slow_link/jitter-{seed}")
        args = (
            "--rate-limit",
            str(JITTER_LIMIT),
            "--rate-window",
            str(JITTER_WINDOW),
            "--latency",
            str(JITTER_BASE),
            "--latency-jitter",
            str(JITTER_SPREAD),
            "--seed",
            str(seed),
        )
        with Sandbox(wd, *args, *DATA) as sb:
            code = _tap_run(wd, sb.url, JITTER_LIMIT, JITTER_WINDOW)
            entries = sb.entries()
        admitted = [e for e in entries if e["status"] != 429]
        runs.append(
            {
                "seed": seed,
                "returncode": code,
                "requests": len(admitted),
                "rate_limited_429": len(entries) - len(admitted),
                "max_in_window": max_in_window([e["t_start"] for e in admitted], JITTER_WINDOW),
                "max_in_window_sent": max_in_window([e["t_start"] for e in entries], JITTER_WINDOW),
                "elapsed_s": max(e["t_end"] for e in entries) - min(e["t_start"] for e in entries),
                "mean_latency_s": mean(e["t_end"] - e["t_start"] for e in entries),
                "most_in_flight": most_in_flight(entries),
                "by_kind": dict(by_kind(entries)),
            }
        )
    return runs


def run(*, quick: bool) -> dict[str, Any]:
    latencies = (0.0, 1.0, 4.0) if quick else LATENCIES
    return {
        "sweep_limit": SWEEP_LIMIT,
        "sweep_window_s": SWEEP_WINDOW,
        "jitter_limit": JITTER_LIMIT,
        "jitter_window_s": JITTER_WINDOW,
        "jitter": f"{JITTER_BASE:g} s + U[0, {JITTER_SPREAD:g}] s",
        "sweep": sweep(latencies),
        "jittered": jittered(QUICK_JITTER_RUNS if quick else JITTER_RUNS),
    }


def _sweep_ok(res: dict[str, Any]) -> bool:
    return all(
        r["ratio"] <= 1.10 and not r["rate_limited_429"] and r["returncode"] == 0
        for r in res["sweep"]
    )


def _jitter_ok(res: dict[str, Any]) -> bool:
    return all(r["rate_limited_429"] == 0 and r["returncode"] == 0 for r in res["jittered"])


def summary(res: dict[str, Any]) -> tuple[str, str, str, str, str]:
    ratios = ", ".join(f"{r['latency_s']:g} s: {r['ratio']:.2f}" for r in res["sweep"])
    jit = res["jittered"]
    limited = sum(r["rate_limited_429"] for r in jit)
    runs_limited = sum(1 for r in jit if r["rate_limited_429"])
    busiest = max(r["max_in_window"] for r in jit)
    text = (
        f"fixed latency, elapsed / minimum: {ratios} "
        f"({sum(r['rate_limited_429'] for r in res['sweep'])} x 429); jittered "
        f"({res['jitter']}), {len(jit)} runs: **{limited} x 429** ("
        f"{'none in any run' if not limited else f'in {runs_limited} of {len(jit)} runs'}), "
        f"busiest {res['jitter_window_s']:g}-s window {busiest} of {res['jitter_limit']}"
    )
    return (
        NUMBER,
        (
            f"Slow link: fixed latency (60 per {res['sweep_window_s']:g} s) and jittered "
            f"({res['jitter_limit']} per {res['jitter_window_s']:g} s)"
        ),
        text,
        "<= 1.10 at every latency; 0 x 429 in every run",
        ok(_sweep_ok(res) and _jitter_ok(res)),
    )


def section(res: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"## {NUMBER}. Slow link, fixed and jittered",
        "",
        (
            "Figure 8's data (12 tables x 50 rows in segments of 10; discovery and sync in one "
            "process, 66 requests), the tap's default `max_parallel_requests`, "
            "`rate_limit_store: memory`, each run on a fresh sandbox. Fixed latency: a strict "
            f"{res['sweep_limit']} per {res['sweep_window_s']:g} s sandbox (figure 8's window "
            "halved, to keep the runs short); elapsed = first arrival to last answer; the "
            "minimum as in figure 8 (`bench/latency.py`)."
        ),
        "",
    ]
    lines += table(
        [
            "latency s",
            "exit",
            "requests",
            "429",
            "elapsed s",
            "chain bound s",
            "budget bound s",
            "ratio",
            "busiest window",
            "most in flight",
        ],
        [
            [
                f"{r['latency_s']:g}",
                r["returncode"],
                r["requests"],
                r["rate_limited_429"],
                f"{r['elapsed_s']:.1f}",
                f"{r['chain_bound_s']:.1f}",
                f"{r['budget_bound_s']:.1f}",
                f"**{r['ratio']:.3f}**",
                r["max_in_window"],
                r["most_in_flight"],
            ]
            for r in res["sweep"]
        ],
    )
    lines += [
        "",
        (
            f"Jittered: answers after {res['jitter']} (`--latency {JITTER_BASE:g} "
            f"--latency-jitter {JITTER_SPREAD:g}`, seed = run number, so every run draws "
            f"differently), a strict {res['jitter_limit']} per {res['jitter_window_s']:g} s "
            "sandbox. Busiest window: the most requests in any sliding window, admitted / "
            "sent."
        ),
        "",
    ]
    lines += table(
        [
            "run",
            "exit",
            "requests",
            "429",
            f"busiest {res['jitter_window_s']:g}-s window",
            "limit",
            "elapsed s",
            "mean latency s",
            "most in flight",
        ],
        [
            [
                r["seed"],
                r["returncode"],
                r["requests"],
                r["rate_limited_429"],
                f"{r['max_in_window']} / {r['max_in_window_sent']}",
                res["jitter_limit"],
                f"{r['elapsed_s']:.1f}",
                f"{r['mean_latency_s']:.2f}",
                r["most_in_flight"],
            ]
            for r in res["jittered"]
        ],
    )
    return lines
