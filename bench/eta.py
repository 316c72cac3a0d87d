"""Figure 14: the progress lines, and how good their estimate of the time left is.

Once per budget window the tap logs `Progress: 3 of 6 tables, N rows sent, N requests (0 x 429)
in 1 min 2 s; about 40 s left: 40 request(s) to go at 30 per 15 s.` ("at least ... left (k
table(s) of unknown size)" while table sizes are unknown; they come from the previous complete
run's STATE, `segments_last_read`), and ends with `Run complete: ...`.

6 tables (1 workspace x 2 projects x 3 tables) x 200 rows in segments of 10 (120 segments,
124 requests with discovery in the same process), a strict sandbox at 10 requests per 6 s (a
scaled-down window; latency 0.05 s): budget-bound, about 72 s. Two runs, each on a fresh sandbox
of the same seed (`rate_limit_store: memory`): the first with no state, the second from the
first's final STATE (a new run, since the first completed, but with every size known).

From the tap's stderr (log timestamps): the progress lines, their number and the gaps between
them (and from the process start to the first); at the second run's halfway point (the progress
line closest to 50 % of the time from process start to `Run complete`), its estimate of the time
left against the time that actually remained until `Run complete`. Goal: within 25 %.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Any

from bench.common import LiveTap, Sandbox, log_time, tap_config, venv_bin, work_dir, write_json
from bench.report import ok, table

if TYPE_CHECKING:
    from pathlib import Path

NUMBER = "14"
LIMIT, WINDOW = 10, 6.0
LATENCY = 0.05
ROWS, SEGMENT = 200, 10
DATA = (
    "--workspaces",
    "1",
    "--projects-per-workspace",
    "2",
    "--tables-per-project",
    "3",
    "--rows-per-table",
    str(ROWS),
    "--segment-size",
    str(SEGMENT),
)
GOAL = 0.25
_LEFT = re.compile(r"; (about|at least) (.+?) left")
_DURATION = re.compile(r"(?:(\d+) h)? ?(?:(\d+) min)? ?(?:(\d+) s)?")


def seconds(text: str) -> float | None:
    """`2 h 05 min`, `4 min 10 s`, `12 s` (progress.duration) back to seconds."""
    match = _DURATION.fullmatch(text.strip())
    if not match or not any(match.groups()):
        return None
    hours, minutes, secs = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + secs


def progress_lines(lines: list[str]) -> tuple[list[dict[str, Any]], float | None]:
    """The progress lines (time, text, kind of estimate, seconds left) and `Run complete`'s time."""
    found = []
    end = None
    for line in lines:
        if "| Progress: " in line:
            text = line.split("| Progress: ", 1)[1]
            match = _LEFT.search(text)
            found.append(
                {
                    "t": log_time(line),
                    "text": "Progress: " + text,
                    "estimate": match.group(1) if match else None,
                    "left_s": seconds(match.group(2)) if match else None,
                }
            )
        elif "| Run complete: " in line:
            end = log_time(line)
    return found, end


def one(wd: Path, name: str, state: dict[str, Any] | None) -> dict[str, Any]:
    sandbox_args = ("--rate-limit", str(LIMIT), "--rate-window", str(WINDOW))
    with Sandbox(wd, *sandbox_args, "--latency", str(LATENCY), *DATA, name=name) as sb:
        config = write_json(
            wd / f"{name}-config.json",
            tap_config(
                sb.url,
                requests_per_minute=LIMIT,
                rate_limit_window_seconds=WINDOW,
                rate_limit_store="memory",
                cache_tokens=False,
            ),
        )
        argv = [venv_bin("tap-maptable"), "--config", str(config)]
        if state is not None:
            argv += ["--state", str(write_json(wd / f"{name}-state-in.json", state))]
        live = LiveTap.start(argv, stderr_path=wd / f"{name}.stderr")
        code = live.wait()
        entries = sb.entries()
    lines, end = progress_lines(live.stderr_lines())
    start = live.started
    result: dict[str, Any] = {
        "run": name,
        "returncode": code,
        "requests": len(entries),
        "rate_limited_429": sum(1 for e in entries if e["status"] == 429),
        "progress_lines": len(lines),
        "_final_state": live.last_state,
    }
    if end is None or not lines:
        result["error"] = "\n".join(live.stderr_lines()[-3:])
        return result
    total = end - start
    times = [start] + [line["t"] for line in lines]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for line in lines:
        line["at_s"] = line["t"] - start
        line["actual_left_s"] = end - line["t"]
    half = min(lines, key=lambda line: abs(line["at_s"] - total / 2))
    error = (
        None
        if half["left_s"] is None or not half["actual_left_s"]
        else (half["left_s"] - half["actual_left_s"]) / half["actual_left_s"]
    )
    result |= {
        "error": "",
        "run_s": total,
        "gaps_s": gaps,
        "max_gap_s": max(gaps[1:], default=None),
        "lines": [{k: v for k, v in line.items() if k != "t"} for line in lines],
        "halfway": {k: v for k, v in half.items() if k != "t"},
        "halfway_error": error,
    }
    return result


def run(*, quick: bool) -> dict[str, Any]:  # noqa: ARG001 - already scaled down
    wd = work_dir("eta")
    first = one(wd, "run-1", None)
    second = one(wd, "run-2", first["_final_state"])
    runs = [first, second]
    for r in runs:
        r.pop("_final_state", None)
    return {
        "limit": LIMIT,
        "window_s": WINDOW,
        "latency_s": LATENCY,
        "tables": 6,
        "rows_per_table": ROWS,
        "segment_size": SEGMENT,
        "runs": runs,
    }


def _every_window(r: dict[str, Any], window: float) -> bool:
    """At least one progress line per window: no gap between lines above ~1.5 windows."""
    gaps = r.get("gaps_s") or []
    return bool(gaps) and all(g <= 1.5 * window for g in gaps[1:])


def met(res: dict[str, Any]) -> bool:
    known = res["runs"][-1]
    error = known.get("halfway_error")
    return (
        error is not None
        and abs(error) <= GOAL
        and all(_every_window(r, res["window_s"]) for r in res["runs"])
    )


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.0f} %"


def summary(res: dict[str, Any]) -> tuple[str, str, str, str, str]:
    parts = []
    for r, label in zip(res["runs"], ("run 1 (sizes unknown)", "run 2 (sizes known)"), strict=True):
        if r.get("error"):
            parts.append(f"{label}: error")
            continue
        half = r["halfway"]
        parts.append(
            f"{label}: {r['progress_lines']} progress lines in {r['run_s']:.0f} s, gaps "
            f"{min(r['gaps_s'][1:], default=0):.1f}-{r['max_gap_s'] or 0:.1f} s; at "
            f"{half['at_s']:.0f} s: {half['estimate']} {half['left_s']} s left, actually "
            f"{half['actual_left_s']:.0f} s: **{_pct(r['halfway_error'])}**"
        )
    return (
        NUMBER,
        (
            f"Time-left estimate, {res['tables']} tables x 20 segments, {res['limit']} per "
            f"{res['window_s']:g} s"
        ),
        "; ".join(parts),
        "a line every window; estimate at halfway (sizes known) within 25 %",
        ok(met(res)),
    )


def section(res: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"## {NUMBER}. Time-left estimate",
        "",
        (
            f"{res['tables']} tables x {res['rows_per_table']} rows in segments of "
            f"{res['segment_size']}, discovery and sync in one process, a strict sandbox at "
            f"{res['limit']} requests per {res['window_s']:g} s (MapTable's 60 per 60 s scaled "
            f"down, to keep the run short; latency {res['latency_s']:g} s): budget-bound. Run 1 "
            "with no state; run 2, on a fresh sandbox of the same seed, from run 1's final "
            "STATE (a new run: run 1 completed; every table's size known). Times from the "
            "tap's log timestamps, from the process start; actual left = `Run complete` minus "
            "the line's time; error = (estimate - actual) / actual. The halfway line is the one "
            "closest to 50 % of the run."
        ),
        "",
    ]
    lines += table(
        [
            "run",
            "exit",
            "requests",
            "429s",
            "run s",
            "progress lines",
            "gaps s (start to 1st, then between)",
            "halfway line at s",
            "estimate",
            "actual left s",
            "error",
        ],
        [
            [r["run"], r["returncode"], r["requests"], r["rate_limited_429"], r["error"]] + [""] * 6
            if r.get("error")
            else [
                r["run"],
                r["returncode"],
                r["requests"],
                r["rate_limited_429"],
                f"{r['run_s']:.1f}",
                r["progress_lines"],
                ", ".join(f"{g:.1f}" for g in r["gaps_s"]),
                f"{r['halfway']['at_s']:.1f}",
                f"{r['halfway']['estimate']} {r['halfway']['left_s']} s",
                f"{r['halfway']['actual_left_s']:.1f}",
                f"**{_pct(r['halfway_error'])}**",
            ]
            for r in res["runs"]
        ],
    )
    for r in res["runs"]:
        if r.get("error"):
            continue
        lines += ["", f"Every progress line of {r['run']} (estimate against the actual):", ""]
        lines += table(
            ["at s", "estimate", "actual left s", "error", "line"],
            [
                [
                    f"{line['at_s']:.1f}",
                    f"{line['estimate']} {line['left_s']} s",
                    f"{line['actual_left_s']:.1f}",
                    _pct(
                        None
                        if line["left_s"] is None or not line["actual_left_s"]
                        else (line["left_s"] - line["actual_left_s"]) / line["actual_left_s"]
                    ),
                    f"`{line['text']}`",
                ]
                for line in r["lines"]
            ],
        )
    return lines
