"""Figure 11: how soon the first table's STATE comes, against that table's own minimum.

The reader sends the table being written first; later tables only use what latency leaves idle
(`reading/schedule.py`). So on a budget-bound run the first table should be committed (a STATE
marking it finished) about as soon as its own segments could come one after another, whatever
the other tables want.

8 tables (2 workspaces x 2 projects x 2 tables) x 100 rows in segments of 10, a strict sandbox at
a scaled-down 30 requests per 15 s answering every request after 0.5 s: 84 requests, about three
windows. The catalog comes from `--discover` against a separate, unthrottled sandbox with the
same seed (same ids), so the measured sandbox's window starts empty. Two syncs, each on a fresh
sandbox with `rate_limit_store: memory`: one with no state (table sizes unknown), one from the
final STATE of the first (a complete run: sizes known, `segments_last_read`).

Measured: from the tap's process start (the bench's clock just before the process is made) to
the arrival on its stdout of the first STATE in which a table's bookmark has `read_in_run` set
to the run's `started_at`. The minimum for that table: the process's start-up (process start to
its first request's arrival at the sandbox, measured), plus the requests its first segment must
wait for, one after another (the login, each workspace-list page, one workspace detail: the tap
reads them before any table, with a catalog to warn of tables the catalog lacks), plus its 10
segments one after another, each at the measured latency (the mean `t_end - t_start` of the
sandbox's rows requests). Goal: ratio <= 1.2. The strict minimum (login and the 10 segments
only) is reported beside it.
"""

from __future__ import annotations

from statistics import mean
from typing import TYPE_CHECKING, Any

from bench.common import LiveTap, Sandbox, tap_config, venv_bin, work_dir, write_json
from bench.report import ok, table
from bench.resume import discover

if TYPE_CHECKING:
    from pathlib import Path

NUMBER = "11"
LIMIT, WINDOW = 30, 15.0
LATENCY = 0.5
ROWS, SEGMENT = 100, 10
DATA = ("--rows-per-table", str(ROWS), "--segment-size", str(SEGMENT))  # 8 tables by default


def _catalog(wd: Path) -> Path:
    with Sandbox(wd, "--rate-limit", "0", *DATA, name="discovery-sandbox") as sb:
        config = write_json(
            wd / "discover-config.json",
            tap_config(sb.url, requests_per_minute=1_000_000, rate_limit_store="memory"),
        )
        return discover(wd, config)


def first_finished(live: LiveTap) -> tuple[float, str] | None:
    """When the first STATE marking a table finished by the run arrived, and that table."""
    for line in live.states:
        started = (line.value.get("run") or {}).get("started_at")
        for stream, bookmark in (line.value.get("bookmarks") or {}).items():
            if isinstance(bookmark, dict) and started and bookmark.get("read_in_run") == started:
                return line.t, stream
    return None


def one(wd: Path, name: str, catalog: Path, state: dict[str, Any] | None) -> dict[str, Any]:
    """One sync on a fresh sandbox; the first table's STATE against its own minimum."""
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
        argv = [venv_bin("tap-maptable"), "--config", str(config), "--catalog", str(catalog)]
        if state is not None:
            argv += ["--state", str(write_json(wd / f"{name}-state-in.json", state))]
        live = LiveTap.start(argv, stderr_path=wd / f"{name}.stderr")
        code = live.wait()
        entries = sb.entries()
    found = first_finished(live)
    if found is None or not entries:
        return {"run": name, "returncode": code, "error": "\n".join(live.stderr_lines()[-3:])}
    at, stream = found
    table_id = stream.removeprefix("table_")
    rows = [e for e in entries if e["kind"] == "rows"]
    mine = [e for e in rows if f"/{table_id}/" in e["path"]]
    first_rows = rows[0]
    before = [e for e in entries if e["t"] < first_rows["t"]]
    latency = mean(e["t_end"] - e["t_start"] for e in rows)
    startup = entries[0]["t"] - live.started
    pages = sum(1 for e in before if e["kind"] == "workspaces")
    logins = sum(1 for e in before if e["kind"] == "auth")
    chain = logins + pages + (1 if any(e["kind"] == "workspace" for e in before) else 0)
    minimum = startup + (chain + len(mine)) * latency
    strict = startup + (1 + len(mine)) * latency
    measured = at - live.started
    other_before = [
        e for e in rows if f"/{table_id}/" not in e["path"] and e["t"] < mine[-1]["t_end"]
    ]
    return {
        "run": name,
        "returncode": code,
        "error": "",
        "first_table": stream,
        "first_in_write_order": f"/{table_id}/" in first_rows["path"],
        "requests": len(entries),
        "rate_limited_429": sum(1 for e in entries if e["status"] == 429),
        "its_segments": len(mine),
        "latency_s": latency,
        "startup_s": startup,
        "chain_before": chain,
        "requests_before_first_segment": len(before),
        "measured_s": measured,
        "last_answer_s": mine[-1]["t_end"] - live.started,
        "minimum_s": minimum,
        "ratio": measured / minimum,
        "strict_minimum_s": strict,
        "strict_ratio": measured / strict,
        "other_segments_meanwhile": len(other_before),
        "run_s": max(e["t_end"] for e in entries) - live.started,
        "_final_state": live.last_state,
    }


def run(*, quick: bool) -> dict[str, Any]:  # noqa: ARG001 - already scaled down
    wd = work_dir("first_state")
    catalog = _catalog(wd)
    unknown = one(wd, "no state (sizes unknown)", catalog, None)
    known = one(wd, "from a complete run's STATE (sizes known)", catalog, unknown["_final_state"])
    runs = [unknown, known]
    for r in runs:
        r.pop("_final_state", None)
    return {
        "limit": LIMIT,
        "window_s": WINDOW,
        "latency_s": LATENCY,
        "tables": 8,
        "rows_per_table": ROWS,
        "segment_size": SEGMENT,
        "runs": runs,
    }


def met(res: dict[str, Any]) -> bool:
    return all(not r["error"] and r["ratio"] <= 1.2 for r in res["runs"])


def summary(res: dict[str, Any]) -> tuple[str, str, str, str, str]:
    parts = [
        f"{r['run']}: error"
        if r["error"]
        else (
            f"{r['run']}: {r['measured_s']:.1f} s / {r['minimum_s']:.1f} s = "
            f"**{r['ratio']:.2f}** (strict minimum {r['strict_minimum_s']:.1f} s: "
            f"{r['strict_ratio']:.2f})"
        )
        for r in res["runs"]
    ]
    return (
        NUMBER,
        (
            f"First table's STATE, {res['tables']} tables x 10 segments, {res['limit']} per "
            f"{res['window_s']:g} s, {res['latency_s']:g} s latency"
        ),
        "; ".join(parts),
        "<= 1.2 x its own minimum",
        ok(met(res)),
    )


def section(res: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"## {NUMBER}. First table's STATE",
        "",
        (
            f"{res['tables']} tables x {res['rows_per_table']} rows in segments of "
            f"{res['segment_size']}, a strict sandbox at {res['limit']} requests per "
            f"{res['window_s']:g} s (MapTable's 60 per 60 s scaled down, to keep the run short) "
            f"answering after {res['latency_s']:g} s: budget-bound. A sync with a catalog "
            "(discovered on a separate unthrottled sandbox of the same seed), each run on a "
            "fresh sandbox, `rate_limit_store: memory`. Measured: the tap's process start to "
            "the first STATE marking a table finished by the run (`read_in_run`). Minimum: "
            "start-up (process start to its first request, measured) + the requests before "
            "the table's first segment that must follow one another (login, workspace-list "
            "pages, one detail: the tap reads them first, to warn of tables not in the "
            "catalog) + its segments, each one latency (mean of the rows requests). Strict: "
            "start-up + login + segments only."
        ),
        "",
    ]
    lines += table(
        [
            "run",
            "exit",
            "first table finished",
            "first in write order",
            "start-up s",
            "latency s",
            "chain before",
            "segments",
            "STATE at s",
            "last answer at s",
            "minimum s",
            "ratio",
            "strict min s",
            "strict ratio",
            "other tables' segments meanwhile",
            "run s",
            "429s",
        ],
        [
            [r["run"], r["returncode"], r["error"], *[""] * 14]
            if r["error"]
            else [
                r["run"],
                r["returncode"],
                f"`{r['first_table']}`",
                ok(r["first_in_write_order"]),
                f"{r['startup_s']:.2f}",
                f"{r['latency_s']:.3f}",
                r["chain_before"],
                r["its_segments"],
                f"{r['measured_s']:.2f}",
                f"{r['last_answer_s']:.2f}",
                f"{r['minimum_s']:.2f}",
                f"**{r['ratio']:.3f}**",
                f"{r['strict_minimum_s']:.2f}",
                f"{r['strict_ratio']:.3f}",
                r["other_segments_meanwhile"],
                f"{r['run_s']:.1f}",
                r["rate_limited_429"],
            ]
            for r in res["runs"]
        ],
    )
    return lines
