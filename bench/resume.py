"""Figure 10: requests redone after a stop, when a run is continued from its last STATE.

After each segment it sent (STATE paced by its bytes: after every segment here) a table's
bookmark says where its read continues (`resume`: `after_row`, `segments`, ...), the STATE names
the run (`run`: `started_at`, `complete`), and the tables the run finished carry `read_in_run`.
A run given the STATE of a stopped run continues it: finished tables are not read again, the
table in progress continues after its resume point. So the requests a stop costs should be at
most the ones the stopped process had in flight (sent, its answer not yet written out).

4 tables x 12 segments (1 workspace x 2 projects x 2 tables of 120 rows, segments of 10), a
strict sandbox at a scaled-down 30 requests per 15 s and a small latency (0.05 s): the run is
budget-bound. Per stop signal (SIGTERM, SIGKILL), on a fresh sandbox:

1. `tap-maptable --discover` writes the catalog (8 requests);
2. a sync with that catalog, stopped by the signal as soon as the sandbox has answered half of
   the row segments (its request log, polled every 5 ms: rows requests whose `t_end` has
   passed);
3. a sync from the last STATE the stopped process printed, with the same catalog.

Every process names one `rate_limit_store`, a SQLite file in the figure's work dir, so the
stopped process's requests still count for the next one's budget (with `memory` the rerun would
meet 429s that the stopped process caused, and that is not what is measured here).

Numbers, all from the sandbox's log and the STATE: segment requests of the stopped run and of
the rerun; the segments the STATE vouches for (tables it marks finished by the run, whole, plus
`resume.segments` of the others); requests in flight at the stop (the stopped run's rows
requests answered after the signal was sent: `t_end` > stop time); redone = stopped + rerun -
48; being printed at the stop = answers received before the stop whose rows the process had not
all printed (answered - row records printed // 10: a SIGKILL that lands while a segment is
written loses it, whatever the tap does). Goal: redone <= in flight at the stop, and 0 x 429.
Judged strictly (in flight: answered after the stop) and, for SIGKILL, counting the answer being
printed as in flight (`met(..., counting_printing=True)`).
"""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING, Any

from bench.common import (
    LiveTap,
    LogTail,
    Sandbox,
    by_kind,
    run_measured,
    tap_config,
    venv_bin,
    work_dir,
    write_json,
)
from bench.report import ok, table

if TYPE_CHECKING:
    from pathlib import Path

NUMBER = "10"
LIMIT, WINDOW = 30, 15.0
LATENCY = 0.05
ROWS, SEGMENT = 120, 10
DATA = (
    "--workspaces",
    "1",
    "--projects-per-workspace",
    "2",
    "--tables-per-project",
    "2",
    "--rows-per-table",
    str(ROWS),
    "--segment-size",
    str(SEGMENT),
)
SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
STOP_AT = 0.5  # of the row segments answered


def admin_tables(url: str) -> list[dict[str, Any]]:
    """The sandbox's live tables (`GET /_sandbox/tables`): ids, rows, segments."""
    import requests  # noqa: PLC0415 - the tap's dependency, here only for an admin call

    response = requests.get(f"{url}/_sandbox/tables", timeout=30)
    response.raise_for_status()
    return list(response.json())


def sqlite_store(wd: Path) -> str:
    """A `rate_limit_store` URL for a SQLite file in `wd` (an absolute path: four slashes)."""
    return f"sqlite:///{(wd / 'budget.sqlite').resolve()}"


def discover(wd: Path, config: Path) -> Path:
    """`tap-maptable --discover` into `catalog.json`."""
    catalog = wd / "catalog.json"
    with catalog.open("wb") as out:
        m = run_measured(
            [venv_bin("tap-maptable"), "--config", str(config), "--discover"],
            stdout=out,
            stderr_path=wd / "discover.stderr",
        )
    if m.returncode:
        msg = f"discovery failed: {m.stderr_tail(3)}"
        raise RuntimeError(msg)
    return catalog


def vouched(state: dict[str, Any] | None, segments: dict[str, int]) -> dict[str, Any]:
    """What a STATE vouches for: tables finished by its run (whole) and resume points."""
    if not state:
        return {"segments": 0, "finished": [], "resume": {}}
    run = state.get("run") or {}
    started = run.get("started_at")
    finished, resume = [], {}
    total = 0
    for stream, bookmark in (state.get("bookmarks") or {}).items():
        table_id = stream.removeprefix("table_")
        if table_id not in segments or not isinstance(bookmark, dict):
            continue
        if started and bookmark.get("read_in_run") == started:
            finished.append(table_id)
            total += segments[table_id]
            continue
        done = (bookmark.get("resume") or {}).get("segments") or 0
        if done:
            resume[table_id] = done
            total += done
    return {"segments": total, "finished": finished, "resume": resume}


def _stopped_run(
    wd: Path, sb: Sandbox, argv: list[str], sig: signal.Signals, half: int
) -> dict[str, Any]:
    """The sync, stopped by `sig` once the sandbox answered `half` row segments."""
    tail = LogTail(sb.log_path)
    tail.poll()
    before = len(tail.entries)
    live = LiveTap.start(argv, stderr_path=wd / "stopped.stderr")
    stop_at = None
    while live.proc.poll() is None:
        tail.poll()
        now = time.time()
        answered = sum(
            1 for e in tail.entries[before:] if e["kind"] == "rows" and e["t_end"] <= now
        )
        if answered >= half:
            stop_at = time.time()
            live.proc.send_signal(sig)
            break
        time.sleep(0.005)
    code = live.wait()
    # Answers still being written when the signal came are in the log already (logged on
    # arrival); wait for their `t_end` and for any request a dying process still sent.
    time.sleep(LATENCY + 1.0)
    tail.poll()
    entries = tail.entries[before:]
    return {
        "returncode": code,
        "stop_at": stop_at,
        "entries": entries,
        "state": live.last_state,
        "states": len(live.states),
        "last_state_t": live.states[-1].t if live.states else None,
        "records": sum(n for s, n in live.records.items() if s.startswith("table_")),
        "stderr_tail": live.stderr_lines()[-2:],
    }


def one(sig_name: str) -> dict[str, Any]:
    """One stop (by `sig_name`) and its continuation, on a fresh sandbox and budget file."""
    wd = work_dir(f"resume/{sig_name}")
    sandbox_args = ("--rate-limit", str(LIMIT), "--rate-window", str(WINDOW))
    with Sandbox(wd, *sandbox_args, "--latency", str(LATENCY), *DATA) as sb:
        segments = {t["table_id"]: t["segment_count"] for t in admin_tables(sb.url)}
        total = sum(segments.values())
        config = write_json(
            wd / "config.json",
            tap_config(
                sb.url,
                requests_per_minute=LIMIT,
                rate_limit_window_seconds=WINDOW,
                rate_limit_store=sqlite_store(wd),
                cache_tokens=False,
            ),
        )
        catalog = discover(wd, config)
        discovery = len(sb.entries())
        argv = [venv_bin("tap-maptable"), "--config", str(config), "--catalog", str(catalog)]
        half = round(total * STOP_AT)
        stopped = _stopped_run(wd, sb, argv, SIGNALS[sig_name], half)
        state = stopped["state"]
        state_path = write_json(wd / "state-in.json", state or {})
        rerun_before = len(sb.entries())
        rerun = LiveTap.start([*argv, "--state", str(state_path)], stderr_path=wd / "rerun.stderr")
        rerun_code = rerun.wait()
        all_entries = sb.entries()
    stop = stopped["stop_at"] or 0.0
    stopped_entries = stopped["entries"]
    rerun_entries = all_entries[rerun_before:]
    stopped_rows = [e for e in stopped_entries if e["kind"] == "rows"]
    rerun_rows = [e for e in rerun_entries if e["kind"] == "rows"]
    in_flight = [e for e in stopped_rows if e["t_end"] > stop]
    answered = [e for e in stopped_rows if e["t_end"] <= stop]
    state_vouches = vouched(state, segments)
    final = rerun.last_state or {}
    finished_after = vouched(final, segments)["finished"]
    stderr = rerun.stderr_lines()
    first = min(e["t_start"] for e in stopped_entries) if stopped_entries else stop
    # The last STATE the stopped process printed: how long before the stop it was read.
    last_state = stopped["last_state_t"]
    stopped_lag = None if last_state is None else stop - last_state
    return {
        "signal": sig_name,
        "segments_total": total,
        "discovery_requests": discovery,
        "stop_after_s": stop - first,
        "stopped": {
            "returncode": stopped["returncode"],
            "segment_requests": len(stopped_rows),
            "answered_before_stop": len(answered),
            "requests": dict(by_kind(stopped_entries)),
            "states": stopped["states"],
            "row_records": stopped["records"],
            "last_line": stopped["stderr_tail"][-1] if stopped["stderr_tail"] else "",
        },
        "state_vouches": state_vouches,
        "last_state_before_stop_s": stopped_lag,
        "in_flight_at_stop": len(in_flight),
        "rerun": {
            "returncode": rerun_code,
            "segment_requests": len(rerun_rows),
            "requests": dict(by_kind(rerun_entries)),
            "row_records": sum(n for s, n in rerun.records.items() if s.startswith("table_")),
            "continued": any("Continuing the run that began" in line for line in stderr),
            "all_tables_finished": sorted(finished_after) == sorted(segments),
        },
        "redone": len(stopped_rows) + len(rerun_rows) - total,
        "being_printed_at_stop": max(0, len(answered) - stopped["records"] // SEGMENT),
        "unvouched_answered": len(answered) - state_vouches["segments"],
        "rate_limited_429": sum(1 for e in all_entries if e["status"] == 429),
    }


def run(*, quick: bool) -> dict[str, Any]:  # noqa: ARG001 - already scaled down
    return {
        "limit": LIMIT,
        "window_s": WINDOW,
        "latency_s": LATENCY,
        "tables": 4,
        "rows_per_table": ROWS,
        "segment_size": SEGMENT,
        "runs": [one(name) for name in SIGNALS],
    }


def met(res: dict[str, Any], *, counting_printing: bool = False) -> bool:
    """Redone <= in flight (with `counting_printing`, plus the answers being printed)."""
    return all(
        r["redone"]
        <= r["in_flight_at_stop"] + (r.get("being_printed_at_stop", 0) if counting_printing else 0)
        and r["rate_limited_429"] == 0
        and r["rerun"]["returncode"] == 0
        and r["rerun"]["all_tables_finished"]
        for r in res["runs"]
    )


def summary(res: dict[str, Any]) -> tuple[str, str, str, str, str]:
    parts = [
        f"{r['signal']}: stopped {r['stopped']['segment_requests']} + rerun "
        f"{r['rerun']['segment_requests']} segments, STATE vouched for "
        f"{r['state_vouches']['segments']}, in flight {r['in_flight_at_stop']} (+ "
        f"{r.get('being_printed_at_stop', 0)} being printed): **redone {r['redone']}**, "
        f"{r['rate_limited_429']} x 429"
        for r in res["runs"]
    ]
    return (
        NUMBER,
        (
            f"Requests redone after a stop, {res['tables']} x 12 segments, {res['limit']} per "
            f"{res['window_s']:g} s"
        ),
        "; ".join(parts),
        "redone <= in flight at the stop, 0 x 429",
        (
            ok(met(res))
            + (
                ""
                if met(res)
                else f" (counting the answer being printed as in flight: "
                f"{ok(met(res, counting_printing=True))})"
            )
        ),
    )


def section(res: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"## {NUMBER}. Requests redone after a stop",
        "",
        (
            f"{res['tables']} tables x {res['rows_per_table']} rows in segments of "
            f"{res['segment_size']} (48 segments), a strict sandbox at {res['limit']} requests per "
            f"{res['window_s']:g} s (MapTable's 60 per 60 s scaled down, to keep the run short) "
            f"answering after {res['latency_s']:g} s: budget-bound. Per signal, on a fresh "
            "sandbox: `--discover`, then a sync with that catalog stopped by the signal once "
            "the sandbox had answered half the row segments, then a sync from the last STATE "
            "the stopped process printed. Every process names one SQLite `rate_limit_store` in "
            "the work dir, so the stopped run's requests count for the rerun's budget. "
            "Segments from the sandbox's log; vouched = tables the STATE marks finished by the "
            "run (`read_in_run`), whole, plus `resume.segments` of the others; in flight = the "
            "stopped run's rows requests answered after the signal (`t_end` > stop time); "
            "redone = stopped + rerun - 48; answered, not vouched = segments answered before "
            "the stop that the STATE does not vouch for; being printed = answered before the "
            "stop, rows not all printed (answered - row records printed // "
            f"{res['segment_size']}); row records printed = RECORD lines "
            f"of the tables the stopped process printed ({res['segment_size']} per segment; "
            "with SIGKILL, records after the last STATE may be lost from stdout's buffer)."
        ),
        "",
    ]
    lines += table(
        [
            "signal",
            "stop after s",
            "stopped: exit",
            "segments sent",
            "answered before stop",
            "row records printed",
            "STATE vouches",
            "last STATE before stop s",
            "in flight at stop",
            "being printed at stop",
            "answered, not vouched",
            "rerun: exit",
            "segments sent",
            "redone",
            "429s",
            "rerun continued / all finished",
        ],
        [
            [
                r["signal"],
                f"{r['stop_after_s']:.1f}",
                r["stopped"]["returncode"],
                r["stopped"]["segment_requests"],
                r["stopped"]["answered_before_stop"],
                r["stopped"]["row_records"],
                (
                    f"{r['state_vouches']['segments']} ({len(r['state_vouches']['finished'])} "
                    f"finished + {sum(r['state_vouches']['resume'].values())})"
                ),
                "n/a"
                if r["last_state_before_stop_s"] is None
                else f"{r['last_state_before_stop_s']:.2f}",
                r["in_flight_at_stop"],
                r.get("being_printed_at_stop", "n/a"),
                r["unvouched_answered"],
                r["rerun"]["returncode"],
                r["rerun"]["segment_requests"],
                f"**{r['redone']}**",
                r["rate_limited_429"],
                f"{ok(r['rerun']['continued'])} / {ok(r['rerun']['all_tables_finished'])}",
            ]
            for r in res["runs"]
        ],
    )
    lines += ["", "Requests by kind:", ""]
    lines += table(
        ["signal", "discovery", "stopped run", "rerun"],
        [
            [
                r["signal"],
                r["discovery_requests"],
                r["stopped"]["requests"],
                r["rerun"]["requests"],
            ]
            for r in res["runs"]
        ],
    )
    return lines
