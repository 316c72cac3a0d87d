"""Figure 8: elapsed / minimum on a slow link, one request at a time vs. the default parallelism.

12 tables (3 workspaces x 2 projects x 2 tables) of 50 rows in segments of 10, a strict 60 per
60 s sandbox answering every request after a fixed latency. The tap runs discovery and sync in one
process (no catalog), so the requests are: 1 login, the workspace list's pages, 3 details,
12 x 5 segments.

The minimum is the larger of two bounds, both for the span from the first request's arrival to
the last answer, for a client with any parallelism and no safety margin:
- the chain's: requests that must follow each other, each waiting for the answer before: the
  login, every page of the workspace list, one workspace detail, then every segment of the
  largest table: chain x latency;
- the budget's: with unlimited parallelism each request could start as soon as the answers it
  depends on are in (the login at 0, list page p at p x latency, the details after the list,
  each table's first segment after the details, its k-th segment k - 1 latencies later). In
  that order, request number i + limit cannot start before request i's start + window; so the
  last request starts no earlier than earliest[N - limit - 1] + window (0-based), and its
  answer comes one latency later. With N <= limit the window never binds.
"""

from __future__ import annotations

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

LIMIT = 60
LATENCIES = (0.0, 0.5, 1.0, 2.0, 4.0)
SEGMENTS_PER_TABLE = 5
DATA = (
    "--workspaces",
    "3",
    "--projects-per-workspace",
    "2",
    "--tables-per-project",
    "2",
    "--rows-per-table",
    "50",
    "--segment-size",
    "10",
)
MODES = {"sequential (max_parallel_requests 1)": 1, "default": None}


def most_in_flight(entries: list[dict[str, Any]]) -> int:
    """The most requests the server was answering at one moment."""
    events = sorted(
        [(e["t_start"], 1) for e in entries] + [(e["t_end"], -1) for e in entries],
        key=lambda event: (event[0], event[1]),
    )
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


def earliest_starts(kinds: dict[str, int], latency: float) -> list[float]:
    """When each request could start at the earliest, given what it waits for (sorted)."""
    pages = kinds["workspaces"]
    starts = [0.0] * kinds["auth"]
    starts += [p * latency for p in range(1, pages + 1)]
    starts += [(pages + 1) * latency] * kinds["workspace"]
    tables = kinds["rows:first"]
    for k in range(SEGMENTS_PER_TABLE):
        starts += [(pages + 2 + k) * latency] * tables
    return sorted(starts)


def budget_bound(kinds: dict[str, int], n: int, latency: float, window: float) -> float:
    """The budget's bound on first arrival to last answer (see the module docstring)."""
    starts = earliest_starts(kinds, latency)
    last = max(starts, default=0.0)
    if n > LIMIT:
        last = max(last, starts[n - LIMIT - 1] + window)
    return last + latency


def analyse(entries: list[dict[str, Any]], latency: float, window: float) -> dict[str, Any]:
    """Elapsed (first arrival to last answer) against the minimum, from the request log."""
    admitted = [e for e in entries if e["status"] != 429]
    n = len(admitted)
    kinds = by_kind(entries)
    chain = kinds["auth"] + kinds["workspaces"] + 1 + SEGMENTS_PER_TABLE
    budget = budget_bound(kinds, n, latency, window) if n else 0.0
    chain_bound = chain * latency
    minimum = max(budget, chain_bound)
    elapsed = max(e["t_end"] for e in entries) - min(e["t_start"] for e in entries)
    return {
        "requests": n,
        "rate_limited_429": len(entries) - n,
        "elapsed_s": elapsed,
        "budget_bound_s": budget,
        "chain_bound_s": chain_bound,
        "minimum_s": minimum,
        "ratio": elapsed / minimum if minimum else float("nan"),
        "max_in_window": max_in_window([e["t_start"] for e in admitted], window),
        "most_in_flight": most_in_flight(entries),
        "by_kind": dict(kinds),
    }


def run(*, quick: bool) -> dict[str, Any]:
    """Every latency, both modes, each on a fresh sandbox (a fresh window)."""
    scale = 0.1 if quick else 1.0
    window = 60.0 * scale
    runs = []
    for latency in (latency * scale for latency in LATENCIES):
        for mode, parallel in MODES.items():
            wd = work_dir(f"latency/{latency:g}-{parallel or 'default'}")
            sandbox_args = ("--rate-limit", str(LIMIT), "--rate-window", str(window))
            with Sandbox(wd, *sandbox_args, "--latency", str(latency), *DATA) as sb:
                extra = {} if parallel is None else {"max_parallel_requests": parallel}
                config = tap_config(
                    sb.url,
                    requests_per_minute=LIMIT,
                    rate_limit_window_seconds=window,
                    rate_limit_store="memory",
                    cache_tokens=False,
                    **extra,
                )
                path = write_json(wd / "config.json", config)
                tap = run_measured(
                    [venv_bin("tap-maptable"), "--config", str(path)],
                    stderr_path=wd / "tap.stderr",
                )
                entries = sb.entries()
            result = analyse(entries, latency, window)
            result |= {"latency_s": latency, "mode": mode, "returncode": tap.returncode}
            runs.append(result)
    return {"limit": LIMIT, "window_s": window, "runs": runs}


def latency_png(result: dict[str, Any], path: Any) -> Any:
    """Latency on x, elapsed / minimum on y, one line per mode."""
    import matplotlib as mpl  # noqa: PLC0415 - optional dependency (the `bench` extra)

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for mode in MODES:
        points = [(r["latency_s"], r["ratio"]) for r in result["runs"] if r["mode"] == mode]
        ax.plot(*zip(*points, strict=True), marker="o", label=mode)
    ax.axhline(1.10, color="tab:red", ls="--", lw=1, label="goal: 1.10")
    ax.set_xlabel("seconds per answer (sandbox latency)")
    ax.set_ylabel("elapsed / minimum")
    ax.set_ylim(bottom=0.9)
    ax.set_title(
        f"12 tables, strict {result['limit']} per {result['window_s']:g} s: "
        "sequential vs. parallel requests",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
