"""`python -m bench.run`: run the benchmarks and write bench/RESULTS.md and bench/budget.png.

    python -m bench.run                       # everything (about 12 minutes: two strict runs)
    python -m bench.run --only budget,memory  # a subset
    python -m bench.run --quick               # smaller data, a 6-s rate window: ~3 minutes

Figures: budget (1, and the picture, 6), pipeline (2), throughput (3), memory (4), peer (5),
shared (7), latency (8, and latency.png), backfill (9), resume (10), first_state (11),
tables_memory (12), slow_link (13), eta (14). `--quick` numbers are for trying the bench out,
not for quoting.

Results are merged: figures not run this time are kept from the previous run of the same mode
(bench/work/results.json, or results-quick.json for --quick), with the date they were measured.
A figure that file does not hold (a fresh checkout: bench/work is not in git) keeps its summary
row and section from the RESULTS.md in place, if that was written in the same mode, with the date
it gives.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench import (
    backfill,
    budget,
    eta,
    first_state,
    latency,
    memory,
    peer,
    pipeline,
    resume,
    shared,
    slow_link,
    tables_memory,
    throughput,
)
from bench.common import BENCH_DIR, WORK_DIR, machine_info
from bench.plot import budget_png

if TYPE_CHECKING:
    from pathlib import Path

FIGURES = (
    "budget",
    "pipeline",
    "throughput",
    "memory",
    "peer",
    "shared",
    "latency",
    "backfill",
    "resume",
    "first_state",
    "tables_memory",
    "slow_link",
    "eta",
)
# Figures whose module writes its own summary row and section (`summary`, `section`).
MODULES = {
    "resume": resume,
    "first_state": first_state,
    "tables_memory": tables_memory,
    "slow_link": slow_link,
    "eta": eta,
}
RUNNERS = {
    "budget": budget.run,
    "pipeline": pipeline.run,
    "throughput": throughput.run,
    "memory": memory.run,
    "peer": peer.run,
    "shared": shared.run,
    "latency": latency.run,
    "backfill": backfill.run,
    **{name: module.run for name, module in MODULES.items()},
}
# Each figure's numbers in RESULTS.md: its summary rows and its section (6 is budget's picture).
FIGURE_NUMBERS = {
    "budget": ("1", "6"),
    "pipeline": ("2",),
    "throughput": ("3",),
    "memory": ("4",),
    "peer": ("5",),
    "shared": ("7",),
    "latency": ("8",),
    "backfill": ("9",),
    **{name: (module.NUMBER,) for name, module in MODULES.items()},
}
STORE_NAMES = {"sqlite": "SQLite", "redis": "Redis", "memory": "memory (not shared)"}
SUMMARY_HEADER = ["#", "figure", "measured", "target", "met"]
_HEADING = re.compile(r"^## (\d+)\. ")
_ROW = re.compile(r"^\| (\d+|-) \|")
_WRITTEN = re.compile(r"^Written by `(python -m bench\.run[^`]*)`")
_DATE = re.compile(r"^\| date \| (.+?) \|$")
_EARLIER = re.compile(r"^([a-z_, ]+): measured (.+?)(?: by `([^`]*)`)?$")


@dataclass
class Kept:
    """Figures kept from the RESULTS.md in place, for want of their numbers in results.json.

    `rows` and `sections` are keyed by figure number (FIGURE_NUMBERS), as written there;
    `measured` by figure name: when and by which command they were measured.
    """

    rows: dict[str, str] = field(default_factory=dict)
    sections: dict[str, list[str]] = field(default_factory=dict)
    measured: dict[str, dict[str, str]] = field(default_factory=dict)

    def only(self, names: list[str]) -> Kept:
        """The same, for these figures only."""
        numbers = {n for name in names for n in FIGURE_NUMBERS[name]}
        return Kept(
            {k: v for k, v in self.rows.items() if k in numbers},
            {k: v for k, v in self.sections.items() if k in numbers},
            {k: v for k, v in self.measured.items() if k in names},
        )


def _sections(lines: list[str]) -> dict[str, list[str]]:
    """The numbered sections (`## N. ...`) of RESULTS.md lines, each led by one blank line."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if line.startswith("## "):
            match = _HEADING.match(line)
            current = None
            if match:
                current = sections[match.group(1)] = ["", line]
        elif current is not None:
            current.append(line)
    for section in sections.values():
        while section[-1] == "":
            section.pop()
    return sections


def markdown_kept(path: Path, *, quick: bool) -> Kept:
    """The figures of a RESULTS.md written in the same mode: rows, sections and dates."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return Kept()
    written = next((m for line in lines if (m := _WRITTEN.match(line))), None)
    if written is None or ("--quick" in written.group(1)) != quick:
        return Kept()
    command = written.group(1)
    date = next((m.group(1) for line in lines if (m := _DATE.match(line))), "?")
    only = re.search(r"--only (\S+)", command)
    kept = Kept()
    for name in only.group(1).split(",") if only else FIGURES:
        kept.measured[name] = {"date": date, "command": command}
    in_summary = False
    for line in lines:
        if line.startswith("Figures kept from earlier runs"):
            for part in line.split("): ", 1)[-1].rstrip(".").split("; "):
                if match := _EARLIER.match(part):
                    when = {"date": match.group(2)}
                    if match.group(3):
                        when["command"] = match.group(3)
                    for name in match.group(1).split(", "):
                        kept.measured[name] = when
        elif line == "## The figures":
            in_summary = True
        elif in_summary and line.startswith("## "):
            in_summary = False
        elif in_summary and (match := _ROW.match(line)) and match.group(1) != "-":
            kept.rows[match.group(1)] = line
    kept.sections = _sections(lines)
    return kept


def _merged_sections(lines: list[str], kept: Kept) -> list[str]:
    """This run's sections and the kept ones, by figure number."""
    sections = {**kept.sections, **_sections(lines)}
    return [line for number in sorted(sections, key=int) for line in sections[number]]


def _summary_lines(res: dict[str, Any], kept: Kept) -> list[str]:
    """The summary table: this run's rows and the kept ones, by figure number."""
    table = _table(SUMMARY_HEADER, [list(r) for r in summary_rows(res)])
    numbered: dict[str, str] = {}
    others = []
    for line in table[2:]:
        match = _ROW.match(line)
        if match and match.group(1) != "-":
            numbered[match.group(1)] = line
        else:
            others.append(line)
    merged = {**kept.rows, **numbered}
    return table[:2] + [merged[k] for k in sorted(merged, key=int)] + others


def _ok(flag: bool | None) -> str:
    return "n/a" if flag is None else ("yes" if flag else "**no**")


def _num(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


def summary_rows(res: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(#, figure, measured, target, met) for the summary table."""
    rows = []
    b = res.get("budget")
    if isinstance(b, dict) and "ratio" in b:
        rows.append(
            (
                "1",
                f"Budget efficiency (strict {b['limit']} per {b['window_s']:g} s sandbox)",
                (
                    f"{b['requests_admitted']} requests in {_num(b['elapsed_s'], 1)} s; minimum "
                    f"{_num(b['min_span_s'], 0)} s; **ratio {b['ratio']:.3f}**; "
                    f"{b['rate_limited_429']} x 429; busiest {b['window_s']:g}-s window "
                    f"{b['max_in_window_admitted']}"
                ),
                "ratio <= 1.05, 0 x 429",
                _ok(b["ratio"] <= 1.05 and b["rate_limited_429"] == 0),
            )
        )
    p = res.get("pipeline")
    if isinstance(p, dict) and "runs" in p:
        first = p["runs"][0]
        later = p["runs"][1] if len(p["runs"]) > 1 else None
        text = f"first run {first['total']} / {p['minimum_total']} = **{first['ratio']:.2f}**" + (
            f"; second run {later['total']} / {p['minimum_total']} = {later['ratio']:.2f}"
            if later
            else ""
        )
        rows.append(
            ("2", "Requests per `meltano run` (demo data)", text, "1.0", _ok(first["ratio"] <= 1.0))
        )
    t = res.get("throughput")
    if isinstance(t, dict) and "tap" in t:
        ratio = t["tap"]["wall_s"] / t["baseline"]["wall_s"]
        text = (
            f"tap {_num(t['tap']['rows_per_s'], 0)} rows/s, baseline "
            f"{_num(t['baseline']['rows_per_s'], 0)} rows/s: **{ratio:.2f}x** "
            f"(CPU {t['tap']['cpu_s'] / t['baseline']['cpu_s']:.2f}x)"
        )
        for name, v in t.items():
            if name in {"tap", "baseline"} or not (isinstance(v, dict) and "wall_s" in v):
                continue
            vs = v["wall_s"] / t["baseline"]["wall_s"]
            cpu = v["cpu_s"] / t["baseline"]["cpu_s"]
            text += f"; {name} {_num(v['rows_per_s'], 0)} rows/s: {vs:.2f}x (CPU {cpu:.2f}x)"
        rows.append(
            (
                "3",
                f"Throughput, {t['rows']:,} rows, unthrottled",
                text,
                "<= 1.5x baseline",
                _ok(ratio <= 1.5),
            )
        )
    m = res.get("memory")
    if isinstance(m, dict) and "growth" in m:
        small, large = m["sizes"]
        text = (
            f"{small:,} rows: {_num(m[str(small)]['maxrss_mib'], 1)} MiB; {large:,} rows: "
            f"{_num(m[str(large)]['maxrss_mib'], 1)} MiB: **{m['growth'] * 100:+.1f} %**"
        )
        rows.append(("4", "Peak RSS, one table", text, "<= +10 %", _ok(m["growth"] <= 0.10)))
    q = res.get("peer")
    if isinstance(q, dict) and "ratio" in q:
        text = (
            f"exit {q['returncode']}; {q['records']:,} records; {q['requests_sent']} requests sent "
            f"({q['requests_admitted']} admitted), **{q['rate_limited_429']} x 429**; "
            f"{_num(q['elapsed_s'], 1)} s first to last request (ratio {q['ratio']:.3f}); "
            f"wall {_num(q['wall_s'], 1)} s"
        )
        rows.append(
            ("5", "Peer: tap-rest-api-msdk, same strict sandbox", text, "(comparison)", "n/a")
        )
    if isinstance(b, dict) and "ratio" in b:
        rows.append(("6", "Picture", "[budget.png](budget.png)", "", "n/a"))
    for name, summary in (
        ("shared", _shared_summary),
        ("latency", _latency_summary),
        ("backfill", _backfill_summary),
    ):
        value = res.get(name)
        if isinstance(value, dict) and "runs" in value:
            rows.append(summary(value))
    rows += [m.summary(res[n]) for n, m in MODULES.items() if _measured_figure(res.get(n))]
    for name in FIGURES:
        value = res.get(name)
        if isinstance(value, dict) and "skipped" in value:
            rows.append(("-", name, f"not run: {value['skipped']}", "", "n/a"))
    return rows


def _measured_figure(value: Any) -> bool:
    """Whether a figure's result holds numbers (not a skip or a failure)."""
    return isinstance(value, dict) and "skipped" not in value


def _latency_ok(lat: dict[str, Any]) -> bool:
    return all(r["ratio"] <= 1.10 and not r["rate_limited_429"] for r in _default_runs(lat))


def _default_runs(lat: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in lat["runs"] if r["mode"] == "default"]


def _latency_summary(lat: dict[str, Any]) -> tuple[str, str, str, str, str]:
    parts = []
    for mode in dict.fromkeys(r["mode"] for r in lat["runs"]):
        ratios = ", ".join(
            f"{r['latency_s']:g} s: {r['ratio']:.2f}" for r in lat["runs"] if r["mode"] == mode
        )
        parts.append(f"{mode}: {ratios}")
    limited = sum(r["rate_limited_429"] for r in lat["runs"])
    text = "; ".join(parts) + f"; **{limited} x 429** in all; [latency.png](latency.png)"
    return (
        "8",
        f"Slow link: elapsed / minimum, 12 tables, strict {lat['limit']} per {lat['window_s']:g} s",
        text,
        "default <= 1.10 at every latency, 0 x 429",
        _ok(_latency_ok(lat)),
    )


def _latency_lines(lat: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## 8. Slow link: requests for different tables in flight at once",
        "",
        (
            "12 tables x 50 rows in segments of 10 (3 workspaces x 2 projects x 2 tables), a "
            f"strict {lat['limit']} per {lat['window_s']:g} s sandbox that answers every request "
            "after the given latency; discovery and sync in one tap process. Elapsed = first "
            "request's arrival to last answer (sandbox log). Minimum = the larger of the "
            "chain's bound, (login + workspace-list pages + 1 detail + 5 segments of a table) x "
            "latency, and the budget's: each request at its earliest start given what it waits "
            "for, request i + limit no sooner than a window after request i, plus one latency "
            "for the last answer (bench/latency.py says it in full). The default "
            "`max_parallel_requests` is the tap's own."
        ),
        "",
    ]
    lines += _table(
        [
            "latency s",
            "mode",
            "exit",
            "requests",
            "429",
            "elapsed s",
            "minimum s",
            "ratio",
            "busiest window",
            "most in flight",
        ],
        [
            [
                f"{r['latency_s']:g}",
                r["mode"],
                r["returncode"],
                r["requests"],
                r["rate_limited_429"],
                _num(r["elapsed_s"], 1),
                _num(r["minimum_s"], 1),
                f"{r['ratio']:.3f}",
                r["max_in_window"],
                r["most_in_flight"],
            ]
            for r in lat["runs"]
        ],
    )
    lines += ["", "![elapsed over minimum by latency](latency.png)"]
    return lines


def _backfill_ok(bf: dict[str, Any]) -> bool:
    return bool(
        bf["all_exit_0"]
        and bf["extra_requests"] == 0
        and bf["unchanged_tables_same"]
        and bf["changed_table_whole"]
        and bf["backfill_line_once_for_changed_only"]
    )


def _backfill_summary(bf: dict[str, Any]) -> tuple[str, str, str, str, str]:
    _, control, after = bf["runs"]
    (changed,) = [t for t in bf["per_table"] if t["changed"]]
    others = len(bf["per_table"]) - 1
    text = (
        f"run 2 (control) {control['requests_total']} requests, "
        f"{control['row_records']:,} row records; run 3 (one table's columns changed) "
        f"{after['requests_total']} requests, {after['row_records']:,} row records: "
        f"**{bf['extra_requests']} extra requests**; changed table {changed['run2']} -> "
        f"{changed['run3']} records (all {changed['rows']} rows: {_ok(bf['changed_table_whole'])}"
        f"); the {others} other tables as in run 2: {_ok(bf['unchanged_tables_same'])}; backfill "
        f"line once, for that table only: {_ok(bf['backfill_line_once_for_changed_only'])}"
    )
    return (
        "9",
        f"Backfill after a column change, {bf['tables']} tables of {bf['rows_per_table']} rows",
        text,
        "extra requests = 0; records of unchanged tables unchanged",
        _ok(_backfill_ok(bf)),
    )


def _backfill_lines(bf: dict[str, Any]) -> list[str]:
    full, control, after = bf["runs"]
    checked = bf["changed_rows_checked"]
    lines = [
        "",
        "## 9. Backfill after a column change",
        "",
        (
            f"One sandbox, unthrottled (`--rate-limit 0`): 2 workspaces x 2 projects x 2 tables "
            f"of {bf['rows_per_table']} rows in segments of {bf['segment_size']}. Three "
            "`tap-maptable --config c.json [--state s.json]` processes (discovery and sync in "
            "one process, as without --catalog), each with `rate_limit_store: memory`, "
            "`cache_tokens: false` (so each logs in) and no client-side limit to speak of: "
            "run 1 with no state; run 2 (the control) from run 1's last STATE, nothing "
            "changed; then the columns of table "
            f"`{bf['changed_table']}` change over the sandbox's admin endpoints ("
            + "; ".join(bf["changes"])
            + "), and run 3 from run 2's last STATE. Records per stream from the tap's stdout, "
            "requests by kind from the sandbox's request log (`rows:first` = a table's first "
            "segment), backfill lines (`sending every row, not only those updated since`) "
            "from the tap's stderr. An incremental run sends the rows updated at or after the "
            "bookmark (the sandbox's newest update time, which many of its rows share) and "
            "every row without an update time: that is what run 2 sends, and what run 3 must "
            "send for every table but the changed one."
        ),
        "",
    ]
    lines += _table(
        [
            "run",
            "exit",
            "wall s",
            "requests by kind",
            "requests",
            "not 200",
            "row records",
            "all records",
            "backfill lines",
        ],
        [
            [
                r["run"],
                r["returncode"],
                f"{r['wall_s']:.1f}",
                r["requests"],
                r["requests_total"],
                r["status_not_200"],
                f"{r['row_records']:,}",
                f"{r['records_total']:,}",
                len(r["backfill_lines"]),
            ]
            for r in (full, control, after)
        ],
    )
    lines += ["", "Records per table:", ""]
    lines += _table(
        ["table", "name", "rows", "segments", "run 1", "run 2", "run 3", "run 3 - run 2"],
        [
            [
                f"`{t['table_id']}`" + (" (changed)" if t["changed"] else ""),
                t["name"],
                t["rows"],
                t["segments"],
                t["run1"],
                t["run2"],
                t["run3"],
                f"{t['run3'] - t['run2']:+d}",
            ]
            for t in bf["per_table"]
        ],
    )
    lines += [
        "",
        (
            f"Run 3 against run 2: {bf['extra_requests']:+d} requests, requests by kind the "
            f"same: {_ok(bf['same_requests_by_kind'])}. The changed table's {checked['records']} "
            f"records of run 3: `Priority` = {backfill.PRIORITY} in {checked['priority_filled']}, "
            f"`Notes` a number in {checked['notes_numbers']}; its `columns_sent` after run 3 "
            f"lists `Priority`: {_ok(checked['columns_sent_has_priority'])}."
        ),
    ]
    if after["backfill_lines"]:
        lines += ["", "The backfill line of run 3 (stderr):", "", "```"]
        lines += [line.split(" | ", 3)[-1] for line in after["backfill_lines"]]
        lines += ["```"]
    errors = [f"{r['run']}: {r['error']}" for r in bf["runs"] if r["error"]]
    if errors:
        lines += ["", "Errors (last lines of stderr):", "", "```", *errors, "```"]
    return lines


def _ratio(r: dict[str, Any]) -> str:
    return "n/a" if not r["min_span_s"] else f"{r['ratio']:.3f}"


def _shared_ok(s: dict[str, Any]) -> bool:
    """Every shared-store run: 0 x 429, every process complete, ratio <= 1.05 where defined."""
    return all(
        r["rate_limited_429"] == 0 and r["all_ok"] and (not r["min_span_s"] or r["ratio"] <= 1.05)
        for r in s["runs"]
        if r["store"] != "memory"
    )


def _shared_summary(s: dict[str, Any]) -> tuple[str, str, str, str, str]:
    parts = []
    for store in ("sqlite", "redis", "memory"):
        runs = [r for r in s["runs"] if r["store"] == store]
        if not runs:
            continue
        slash = "/".join
        parts.append(
            f"{STORE_NAMES[store]}, {slash(str(r['processes']) for r in runs)} processes: "
            f"{slash(str(r['requests_admitted']) for r in runs)} requests, "
            f"**{slash(str(r['rate_limited_429']) for r in runs)} x 429**, "
            f"ratio {slash(_ratio(r) for r in runs)}, busiest window "
            f"{slash(str(r['max_in_window_admitted']) for r in runs)}, all complete "
            f"{slash(_ok(r['all_ok']) for r in runs)}"
        )
    return (
        "7",
        f"Processes sharing one budget (strict {s['limit']} per {s['window_s']:g} s sandbox)",
        "; ".join(parts),
        "shared stores: 0 x 429, ratio <= 1.05, every process exit 0 and complete",
        _ok(_shared_ok(s)),
    )


def _shared_lines(s: dict[str, Any]) -> list[str]:
    per = s["requests_per_process"]
    lines = [
        "",
        "## 7. Processes sharing one budget",
        "",
        (
            f"One strict sandbox ({s['limit']} requests per sliding {s['window_s']:g} s for the "
            "app, 2 workspaces x 2 projects x 2 tables of "
            f"{s['rows_per_table']} rows in segments of {s['segment_size']}) per configuration; "
            "N tap processes started at once, each with `cache_tokens: false` (each logs in, as "
            f"N separate pipelines would) and its own {s['tables_per_process']} tables "
            f"(`table_ids`): 1 login, 1 workspace page, 2 workspace details and the segments, "
            f"{per} requests a process, {4 * per} for 4. Every process of a configuration "
            "names the same `rate_limit_store` (a fresh SQLite file; a Redis database of a "
            "redis-server the bench starts on loopback). The `memory` rows are the contrast: "
            "each process paces only itself, killed (exit -9) after 2 x (minimum + window). The "
            "three series (SQLite, Redis, memory) run side by side, each on its own sandbox. "
            "Requests and 429s come from the sandbox's log; elapsed is its first to last "
            "request; the minimum is floor((N-1)/limit) x window for the N admitted (0, so no "
            "ratio, when all fit in one window)."
        ),
        "",
    ]
    lines += _table(
        [
            "store",
            "processes",
            "needed",
            "admitted",
            "429s",
            f"busiest {s['window_s']:g}-s window (admitted / sent)",
            "elapsed s",
            "minimum s",
            "ratio",
            "process wall s",
            "exit codes",
            "all complete",
        ],
        [
            [
                STORE_NAMES[r["store"]],
                r["processes"],
                r["needed"],
                r["requests_admitted"],
                r["rate_limited_429"],
                f"{r['max_in_window_admitted']} / {r['max_in_window_sent']}",
                f"{r['elapsed_s']:.1f}",
                f"{r['min_span_s']:.0f}",
                _ratio(r),
                ", ".join(f"{p['wall_s']:.1f}" for p in r["procs"]),
                ", ".join(str(p["returncode"]) for p in r["procs"]),
                _ok(r["all_ok"]),
            ]
            for r in s["runs"]
        ],
    )
    errors = [
        f"{r['store']} x {r['processes']}, process {i}: {p['error']}"
        for r in s["runs"]
        for i, p in enumerate(r["procs"])
        if p["error"]
    ]
    if errors:
        lines += ["", "Errors (last lines of stderr):", "", "```", *errors, "```"]
    return lines


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def _profile_lines(prof: dict[str, Any]) -> list[str]:
    lines = [
        (
            "cProfile of one tap run (same data; profiling slows it down): "
            f"{prof['total_own_s']:.1f} s "
            "of profiled time, own time by area:"
        ),
        "",
    ]
    lines += _table(
        ["area", "own s", "share"],
        [
            [k, f"{v:.2f}", f"{v / prof['total_own_s'] * 100:.0f} %"]
            for k, v in prof["areas"].items()
        ],
    )
    for key, title in (
        ("tap_own", "tap_maptable: most own time"),
        ("tap_cum", "tap_maptable: most cumulative time"),
        ("sdk_own", "singer_sdk: most own time"),
        ("sdk_cum", "singer_sdk: most cumulative time"),
    ):
        lines += ["", f"**{title}**", ""]
        lines += _table(
            ["function", "calls", "own s", "cum s"],
            [
                [f"`{r['function']}`", r["calls"], f"{r['own_s']:.2f}", f"{r['cum_s']:.2f}"]
                for r in prof[key]
            ],
        )
    return lines


def _earlier_lines(res: dict[str, Any], info: dict[str, str], kept: Kept) -> list[str]:
    """Which figures were kept from earlier runs, and when those were measured."""
    earlier: dict[str, list[str]] = {}
    for name, when in res.get("_measured", {}).items():
        if (name in res or name in kept.measured) and when.get("date") != info["date"]:
            command = when.get("command")
            key = when.get("date", "?") + (f" by `{command}`" if command else "")
            earlier.setdefault(key, []).append(name)
    if not earlier:
        return []
    return [
        "",
        "Figures kept from earlier runs (not run this time; the machine line above is this "
        "run's): "
        + "; ".join(f"{', '.join(names)}: measured {key}" for key, names in earlier.items())
        + ".",
    ]


def write_results(
    res: dict[str, Any], info: dict[str, str], args: argparse.Namespace, kept: Kept | None = None
) -> str:
    kept = kept or Kept()
    lines = [
        "# tap-maptable benchmarks",
        "",
        f"Written by `python -m bench.run{' --quick' if args.quick else ''}"
        f"{' --only ' + args.only if args.only else ''}` in {res['_elapsed_s'] / 60:.1f} min. "
        "See [README.md](README.md) for what each figure means and how it is measured."
        + (
            " **Quick mode: small data and a 6-s rate window; not for quoting.**"
            if args.quick
            else ""
        ),
        "",
        "## Machine",
        "",
    ]
    lines += _table(["", ""], [[k, v] for k, v in info.items()])
    lines += _earlier_lines(res, info, kept)
    lines += ["", "## The figures", ""]
    lines += _summary_lines(res, kept)

    details = len(lines)
    b = res.get("budget")
    if isinstance(b, dict) and "ratio" in b:
        lines += [
            "",
            "## 1. Budget efficiency",
            "",
            (
                f"8 tables x 240 rows in segments of 10, sandbox limit {b['limit']} per sliding "
                f"{b['window_s']:g} s. Minimum span = floor((N-1)/{b['limit']}) x "
                f"{b['window_s']:g} s "
                f"for N = {b['requests_admitted']} requests. Tap process wall time "
                f"{b['tap_wall_s']:.1f} s (exit {b['tap_returncode']}). Requests by kind: "
                f"{b['by_kind']}. Busiest window counting every request sent: "
                f"{b['max_in_window_sent']}."
            ),
            "",
            "![requests per sliding window](budget.png)",
        ]
    p = res.get("pipeline")
    if isinstance(p, dict) and "runs" in p:
        lines += [
            "",
            "## 2. Requests per pipeline",
            "",
            (
                "`meltano run tap-maptable target-jsonl` (Meltano 4.4.1, the project's "
                "meltano.yml, "
                f"dev environment) against the sandbox's default data. Minimum: {p['minimum']} = "
                f"{p['minimum_total']} (`rows:first` = a table's first segment, `rows` = the "
                "others)."
            ),
            "",
        ]
        lines += _table(
            ["run", "exit", "wall s", "requests by kind", "total", "ratio", "extra requests"],
            [
                [
                    r["attempt"],
                    r["returncode"],
                    f"{r['wall_s']:.1f}",
                    r["sent"],
                    r["total"],
                    f"{r['ratio']:.2f}",
                    r["extra"] or "none",
                ]
                for r in p["runs"]
            ],
        )
        errors = [r["error"] for r in p["runs"] if r["error"]]
        if errors:
            lines += ["", "Errors:", "", "```", *errors, "```"]
    t = res.get("throughput")
    if isinstance(t, dict) and "tap" in t:
        lines += [
            "",
            "## 3. Throughput",
            "",
            (
                f"One table of {t['rows']:,} rows, segments of {t['segment_size']}, sandbox "
                "unthrottled "
                "(`--rate-limit 0`), output to /dev/null. "
                f"Best of {t['repeats']} interleaved runs; "
                "wall time includes process start. Wall times move with any other load on the "
                "machine (see the load average above); CPU s, the process's own user + system "
                "time, "
                "is the steadier comparison. The sandbox (generating rows) shares "
                f"the 2 cores with the client. Requests per run: {t['requests']}. "
                f"Baseline records vs. tap records: {t['records_check']}."
            ),
            "",
        ]
        lines += _table(
            [
                "variant",
                "wall s (best)",
                "all runs",
                "rows/s",
                "CPU s",
                "peak RSS MiB",
                "vs baseline",
            ],
            [
                [
                    name,
                    f"{v['wall_s']:.2f}",
                    ", ".join(f"{w:.2f}" for w in v["wall_all_s"]),
                    f"{v['rows_per_s']:,.0f}",
                    f"{v['cpu_s']:.2f}",
                    f"{v['maxrss_mib']:.1f}",
                    f"{v['wall_s'] / t['baseline']['wall_s']:.2f}x",
                ]
                for name, v in t.items()
                if isinstance(v, dict) and "wall_s" in v
            ],
        )
        if t.get("profile"):
            lines += ["", "### Profile", "", *_profile_lines(t["profile"])]
    m = res.get("memory")
    if isinstance(m, dict) and "growth" in m:
        lines += [
            "",
            "## 4. Memory",
            "",
            "Peak RSS: the tap process's VmHWM (/proc), one table each, unthrottled.",
            "",
        ]
        lines += _table(
            ["rows", "peak RSS MiB", "wall s", "rows/s", "exit"],
            [
                [
                    f"{n:,}",
                    f"{m[str(n)]['maxrss_mib']:.1f}",
                    f"{m[str(n)]['wall_s']:.1f}",
                    f"{m[str(n)]['rows_per_s']:,.0f}",
                    m[str(n)]["returncode"],
                ]
                for n in m["sizes"]
            ],
        )
    q = res.get("peer")
    if isinstance(q, dict) and "ratio" in q:
        lines += [
            "",
            "## 5. Peer: tap-rest-api-msdk 1.4.2",
            "",
            (
                "Installed in bench/.venv-peer (singer-sdk 0.40), static token from one login, one "
                "stream per path (workspace list, each workspace detail, each table's segments), "
                "jsonpath paging on the last row id (`lastSegmentRowID`; it cannot read `more`, so "
                "each table costs one extra, empty segment), `backoff_type: header` (waits "
                "Retry-After). It infers schemas by fetching each stream once during discovery. "
                f"Requests by kind: {q['by_kind']}. Busiest {q['window_s']:g}-s window: "
                f"{q['max_in_window_admitted']} admitted, {q['max_in_window_sent']} sent."
            ),
        ]
        if q["error"]:
            lines += ["", "```", q["error"], "```"]
    for name, section in (
        ("shared", _shared_lines),
        ("latency", _latency_lines),
        ("backfill", _backfill_lines),
    ):
        value = res.get(name)
        if isinstance(value, dict) and "runs" in value:
            lines += section(value)
    lines += [
        line
        for n, m in MODULES.items()
        if _measured_figure(res.get(n))
        for line in m.section(res[n])
    ]
    lines[details:] = _merged_sections(lines[details:], kept)
    failures = {
        k: v["traceback"] for k, v in res.items() if isinstance(v, dict) and "traceback" in v
    }
    if failures:
        lines += ["", "## Failures", ""]
        for k, v in failures.items():
            lines += [f"{k}:", "", "```", v, "```"]
    text = "\n".join(lines) + "\n"
    (BENCH_DIR / "RESULTS.md").write_text(text, encoding="utf-8")
    return text


def _run_one(name: str, quick: bool) -> dict[str, Any]:
    reason = pipeline.available() if name == "pipeline" else None
    if reason:
        print(f"[bench] {name}: skipped ({reason})", flush=True)
        return {"skipped": reason}
    print(f"[bench] {name} ...", flush=True)
    t0 = time.monotonic()
    try:
        result = RUNNERS[name](quick=quick)
    except Exception as exc:
        result = {
            "skipped": f"failed: {type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
        print(result["traceback"], flush=True)
    print(f"[bench] {name} done in {time.monotonic() - t0:.0f} s", flush=True)
    return result


def _previous(path: Path, results: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Put the figures of the previous run of this mode into `results`; return their dates.

    A figure not run this time keeps its last numbers, so that `--only` updates RESULTS.md
    instead of dropping the rest. Results files from before this merge have no per-figure
    dates: their figures are dated by the file's machine line.
    """
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    measured = dict(previous.get("_measured") or {})
    fallback = {"date": previous.get("machine", {}).get("date", "?")}
    for name in FIGURES:
        if name in previous:
            results[name] = previous[name]
            measured.setdefault(name, fallback)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(FIGURES)}")
    parser.add_argument("--quick", action="store_true", help="small data, 6-s rate window")
    args = parser.parse_args()
    chosen = [f.strip() for f in args.only.split(",")] if args.only else list(FIGURES)
    unknown = set(chosen) - set(FIGURES)
    if unknown:
        parser.error(f"unknown figure(s): {', '.join(sorted(unknown))}")
    info = machine_info()
    started = time.monotonic()
    command = (
        f"python -m bench.run{' --quick' if args.quick else ''}"
        f"{' --only ' + args.only if args.only else ''}"
    )
    results_path = WORK_DIR / ("results-quick.json" if args.quick else "results.json")
    results: dict[str, Any] = {}
    measured = _previous(results_path, results)
    for name in chosen:
        measured[name] = {"date": info["date"], "command": command}
    # Figures with no numbers in results.json keep what RESULTS.md shows (a fresh checkout).
    kept = markdown_kept(BENCH_DIR / "RESULTS.md", quick=args.quick)
    kept = kept.only(
        [
            name
            for name in FIGURES
            if name not in results
            and name not in chosen
            and FIGURE_NUMBERS[name][0] in kept.rows
            and name in kept.measured
        ]
    )
    measured |= kept.measured
    # The two strict runs (budget, peer) mostly wait on the rate limit, each on its own sandbox
    # and app: run them side by side. Nothing else runs beside them.
    side_by_side = {"budget", "peer"} <= set(chosen)
    with ThreadPoolExecutor(max_workers=1) as pool:
        for name in FIGURES:
            if name not in chosen or (side_by_side and name == "peer"):
                continue
            peer_future = (
                pool.submit(_run_one, "peer", args.quick)
                if side_by_side and name == "budget"
                else None
            )
            results[name] = _run_one(name, args.quick)
            if name == "budget" and "timeline" in results[name]:
                budget_png(results[name], BENCH_DIR / "budget.png")
            if name == "latency" and "runs" in results[name]:
                latency.latency_png(results[name], BENCH_DIR / "latency.png")
            if peer_future is not None:
                results["peer"] = peer_future.result()
    results["_elapsed_s"] = time.monotonic() - started
    results["_measured"] = measured
    WORK_DIR.mkdir(exist_ok=True)
    results_path.write_text(json.dumps({"machine": info, **results}, indent=2, default=str))
    print(write_results(results, info, args, kept))


if __name__ == "__main__":
    main()
