"""Figure 4: peak RSS of a tap sync of a small and a 10x larger table (flat is the target)."""

from __future__ import annotations

from typing import Any

from bench.common import Sandbox, run_measured, venv_bin, work_dir
from bench.throughput import one_table, unthrottled_config


def run(*, quick: bool) -> dict[str, Any]:
    sizes = (20_000, 200_000) if quick else (100_000, 1_000_000)
    out: dict[str, Any] = {"sizes": list(sizes)}
    for rows in sizes:
        wd = work_dir(f"memory-{rows}")
        with Sandbox(wd, *one_table(rows)) as sb:
            config = unthrottled_config(wd, sb.url)
            m = run_measured(
                [venv_bin("tap-maptable"), "--config", str(config)],
                stderr_path=wd / "tap.stderr",
            )
        out[str(rows)] = {
            "maxrss_mib": m.maxrss_mib,
            "wall_s": m.wall_s,
            "rows_per_s": rows / m.wall_s,
            "returncode": m.returncode,
            "error": m.stderr_tail(3) if m.returncode else "",
        }
    small, large = (out[str(n)]["maxrss_mib"] for n in sizes)
    out["growth"] = large / small - 1
    return out
