"""Figure 9: a backfill after a column change costs one table's records and no request.

The tap keeps in its STATE, per table, which MapTable column each property carried
(`columns_sent`). When a table's columns change between runs, the next incremental run sends
every row of that table (and logs "sending every row, not only those updated since"); other
tables stay incremental. MapTable cannot filter by time, so the tap reads every segment on every
run anyway: the backfill should cost no extra request.

Three tap processes (`tap-maptable --config c.json [--state s.json]`, discovery and sync in one
process, as without --catalog) against one unthrottled sandbox:

1. a full sync, no state;
2. the control: the same again from run 1's last STATE, nothing changed;
3. after one table's columns change over the sandbox's admin endpoints (a filled number column
   "Priority" added; the text column "Notes" deleted and a number column "Notes" added), a sync
   from run 2's last STATE.

Records per stream come from the tap's stdout, requests by kind from the sandbox's request log
(each run's slice of it), the backfill lines from the tap's stderr.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from bench.common import (
    Sandbox,
    by_kind,
    run_measured,
    tap_config,
    venv_bin,
    work_dir,
    write_json,
)

if TYPE_CHECKING:
    from pathlib import Path

BACKFILL = "sending every row, not only those updated since"
PRIORITY = 7  # the fill of the added "Priority" column
UNTHROTTLED = 1_000_000  # requests_per_minute: the sandbox has no limit in this run
ROWS, SEGMENT = 500, 100
QUICK_ROWS, QUICK_SEGMENT = 50, 10
# 2 workspaces x 2 projects x 2 tables (the sandbox's defaults), unthrottled.
DATA = ("--rate-limit", "0")


def stream(table_id: str) -> str:
    """The tap's stream name for a table id made of letters, digits and `_` (the sandbox's)."""
    return f"table_{table_id}"


def _admin(url: str, method: str, path: str, body: Any = None) -> Any:
    import requests  # noqa: PLC0415 - the tap's dependency, here only for the admin calls

    response = requests.request(method, f"{url}/_sandbox/{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def change_columns(url: str, table_id: str) -> list[str]:
    """Add a filled "Priority"; delete the text "Notes" and add a number column of that name."""
    columns = _admin(url, "GET", f"tables/{table_id}/columns")
    (notes,) = [c for c in columns if c["name"] == "Notes"]
    _admin(
        url,
        "POST",
        f"tables/{table_id}/columns",
        {"name": "Priority", "type": "number", "fill": PRIORITY},
    )
    _admin(url, "DELETE", f"tables/{table_id}/columns/{notes['id']}")
    _admin(url, "POST", f"tables/{table_id}/columns", {"name": "Notes", "type": "number"})
    return [
        f"a number column 'Priority' added, filled with {PRIORITY}",
        f"the {notes['type']} column 'Notes' ({notes['id']}) deleted",
        "a number column 'Notes' added, filled with each row's number",
    ]


def _read_output(path: Path) -> tuple[Counter[str], dict[str, Any] | None, list[dict[str, Any]]]:
    """Records per stream, the last STATE's value, and the RECORD messages of every stream."""
    records: Counter[str] = Counter()
    state: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            message = json.loads(line)
            if message.get("type") == "RECORD":
                records[message["stream"]] += 1
                rows.append(message)
            elif message.get("type") == "STATE":
                state = message["value"]
    return records, state, rows


def _sync(
    wd: Path, sb: Sandbox, name: str, config: Path, state: dict[str, Any] | None
) -> dict[str, Any]:
    """One tap process; its records, last STATE, requests and backfill lines."""
    argv = [venv_bin("tap-maptable"), "--config", str(config)]
    if state is not None:
        argv += ["--state", str(write_json(wd / f"{name}.state-in.json", state))]
    before = len(sb.entries())
    out_path = wd / f"{name}.out"
    with out_path.open("wb") as out:
        m = run_measured(argv, stdout=out, stderr_path=wd / f"{name}.stderr")
    entries = sb.entries()[before:]
    records, last_state, rows = _read_output(out_path)
    stderr = (wd / f"{name}.stderr").read_text(encoding="utf-8", errors="replace")
    sent = by_kind(entries)
    return {
        "run": name,
        "returncode": m.returncode,
        "error": m.stderr_tail(5) if m.returncode else "",
        "wall_s": m.wall_s,
        "records": dict(sorted(records.items())),
        "records_total": sum(records.values()),
        "requests": dict(sent),
        "requests_total": sum(sent.values()),
        "status_not_200": sum(1 for e in entries if e["status"] != 200),
        "backfill_lines": [line for line in stderr.splitlines() if BACKFILL in line],
        "_state": last_state,
        "_rows": rows,
    }


def run(*, quick: bool) -> dict[str, Any]:
    rows, segment = (QUICK_ROWS, QUICK_SEGMENT) if quick else (ROWS, SEGMENT)
    wd = work_dir("backfill")
    args = (*DATA, "--rows-per-table", str(rows), "--segment-size", str(segment))
    with Sandbox(wd, *args) as sb:
        config = write_json(
            wd / "config.json",
            tap_config(
                sb.url,
                requests_per_minute=UNTHROTTLED,
                rate_limit_store="memory",
                cache_tokens=False,
            ),
        )
        tables = _admin(sb.url, "GET", "tables")
        changed = tables[0]["table_id"]
        full = _sync(wd, sb, "run 1 (full)", config, None)
        control = _sync(wd, sb, "run 2 (control)", config, full["_state"])
        changes = change_columns(sb.url, changed)
        after = _sync(wd, sb, "run 3 (after the change)", config, control["_state"])
        live = {t["table_id"]: t for t in _admin(sb.url, "GET", "tables")}
    runs = [full, control, after]
    for r in runs:  # the row streams only: not workspaces, projects, table_nodes
        r["row_records"] = sum(r["records"].get(stream(t), 0) for t in live)
    changed_rows = [r["record"] for r in after["_rows"] if r["stream"] == stream(changed)]
    columns_sent = ((after["_state"] or {}).get("bookmarks", {}).get(stream(changed)) or {}).get(
        "columns_sent"
    ) or []
    per_table = [
        {
            "table_id": t,
            "name": live[t]["name"],
            "changed": t == changed,
            "rows": live[t]["row_count"],
            "segments": live[t]["segment_count"],
            "run1": full["records"].get(stream(t), 0),
            "run2": control["records"].get(stream(t), 0),
            "run3": after["records"].get(stream(t), 0),
        }
        for t in live
    ]
    unchanged_same = all(r["run3"] == r["run2"] for r in per_table if not r["changed"])
    changed_whole = all(r["run3"] == r["rows"] for r in per_table if r["changed"])
    lines = after["backfill_lines"]
    for r in runs:
        del r["_state"], r["_rows"]
    return {
        "rows_per_table": rows,
        "segment_size": segment,
        "tables": len(live),
        "changed_table": changed,
        "changes": changes,
        "runs": runs,
        "per_table": per_table,
        "extra_requests": after["requests_total"] - control["requests_total"],
        "same_requests_by_kind": after["requests"] == control["requests"],
        "unchanged_tables_same": unchanged_same,
        "changed_table_whole": changed_whole,
        "backfill_line_once_for_changed_only": (
            len(lines) == 1
            and stream(changed) in lines[0]
            and not full["backfill_lines"]
            and not control["backfill_lines"]
        ),
        "changed_rows_checked": {
            "records": len(changed_rows),
            "priority_filled": sum(1 for r in changed_rows if r.get("Priority") == PRIORITY),
            "notes_numbers": sum(
                1
                for r in changed_rows
                if isinstance(r.get("Notes"), int | float) and not isinstance(r["Notes"], bool)
            ),
            "columns_sent_has_priority": any(item[0] == "Priority" for item in columns_sent),
        },
        "all_exit_0": all(r["returncode"] == 0 for r in runs),
    }
