"""Figure 3: rows per second of a tap sync vs. a plain-`requests` baseline, and a profile."""

from __future__ import annotations

import json
import pstats
import subprocess
import sys
from collections import defaultdict
from itertools import islice
from typing import TYPE_CHECKING, Any

from bench.common import (
    APP_ID,
    APP_SECRET,
    Measured,
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

SEGMENT = 1000
UNTHROTTLED = 1_000_000  # requests_per_minute: the sandbox has no limit in this run


def one_table(rows: int) -> tuple[str, ...]:
    """Sandbox options: one workspace, one project, one table of `rows` rows, unthrottled."""
    return (
        "--rate-limit",
        "0",
        "--workspaces",
        "1",
        "--projects-per-workspace",
        "1",
        "--tables-per-project",
        "1",
        "--rows-per-table",
        str(rows),
        "--segment-size",
        str(SEGMENT),
    )


def unthrottled_config(wd: Path, url: str) -> Path:
    """The tap's config: no client-side limit to speak of, its own budget file."""
    config = tap_config(
        url,
        requests_per_minute=UNTHROTTLED,
        rate_limit_store=f"sqlite:///{wd / 'budget.sqlite'}",
    )
    return write_json(wd / "config.json", config)


def _variants(url: str, config: Path) -> dict[str, list[str]]:
    variants = {
        "baseline": [
            sys.executable,
            "-m",
            "bench.baseline",
            "--url",
            url,
            "--app-id",
            APP_ID,
            "--app-secret",
            APP_SECRET,
        ],
        "tap": [venv_bin("tap-maptable"), "--config", str(config)],
    }
    # The tap as it was before its own writer: the SDK's json writer and type conformance.
    variants["tap (SDK json writer + conformance)"] = [
        sys.executable,
        "-m",
        "bench.tapwrap",
        "--writer",
        "sdk-json",
        "--conform",
        "--",
        "--config",
        str(config),
    ]
    return variants


def _table_records(path: Path, limit: int) -> list[dict[str, Any]]:
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            msg = json.loads(line)
            if msg.get("type") == "RECORD" and msg["stream"].startswith("table_"):
                if msg["stream"] == "table_nodes":
                    continue
                out.append(msg["record"])
                if len(out) >= limit:
                    break
    return out


def _same_records(wd: Path, variants: dict[str, list[str]]) -> str:
    """Check that the baseline prints the tap's records (first 2,000 rows, time ignored)."""
    outs = {}
    for name in ("tap", "baseline"):
        outs[name] = wd / f"check-{name}.out"
        with outs[name].open("wb") as out:
            run_measured(variants[name], stdout=out, stderr_path=wd / f"check-{name}.stderr")
    tap, base = (_table_records(outs[n], 2000) for n in ("tap", "baseline"))
    for path in outs.values():
        path.unlink()
    if tap and tap == base:
        return f"identical (first {len(tap)} rows compared)"
    diff = next((i for i, (a, b) in enumerate(zip(tap, base, strict=False)) if a != b), None)
    return f"DIFFERENT (tap {len(tap)} rows, baseline {len(base)}, first difference at {diff})"


def _area(filename: str) -> str:
    if "tap_maptable" in filename:
        return "tap_maptable"
    for name in ("singer_sdk", "requests", "urllib3", "simplejson", "jsonschema", "msgspec"):
        if f"/{name}/" in filename:
            return name
    if "site-packages" in filename:
        return "other packages"
    if filename.startswith("~") or "<" in filename:
        return "builtins"
    return "stdlib"


def profile_summary(path: Path, top: int = 8) -> dict[str, Any]:
    """Own time per area, and the hottest functions of the tap and of the SDK."""
    stats = pstats.Stats(str(path))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1.0
    areas: dict[str, float] = defaultdict(float)
    rows = []
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in raw.items():
        area = _area(filename)
        areas[area] += tottime
        short = filename.split("site-packages/")[-1].split("/work/main/")[-1]
        rows.append((area, f"{short}:{line}({func})", ncalls, tottime, cumtime))

    def hottest(area: str, key: int) -> list[dict[str, Any]]:
        chosen = sorted((r for r in rows if r[0] == area), key=lambda r: -r[key])
        return [
            {"function": r[1], "calls": r[2], "own_s": r[3], "cum_s": r[4]}
            for r in islice(chosen, top)
        ]

    return {
        "total_own_s": total,
        "areas": dict(sorted(areas.items(), key=lambda kv: -kv[1])),
        "tap_own": hottest("tap_maptable", 3),
        "tap_cum": hottest("tap_maptable", 4),
        "sdk_own": hottest("singer_sdk", 3),
        "sdk_cum": hottest("singer_sdk", 4),
    }


def run(*, quick: bool) -> dict[str, Any]:
    rows = 20_000 if quick else 200_000
    repeats = 1 if quick else 2
    wd = work_dir("throughput")
    runs: dict[str, list[Measured]] = defaultdict(list)
    with Sandbox(wd, *one_table(rows)) as sb:
        config = unthrottled_config(wd, sb.url)
        variants = _variants(sb.url, config)
        requests: dict[str, dict[str, int]] = {}
        for _ in range(repeats):  # interleaved, so that drift hits every variant alike
            for name, argv in variants.items():
                before = len(sb.entries())
                runs[name].append(run_measured(argv, stderr_path=wd / f"{name}.stderr"))
                requests[name] = dict(by_kind(sb.entries()[before:]))
        profile_path = wd / "tap.prof"
        prof = run_measured(
            [
                sys.executable,
                "-m",
                "bench.tapwrap",
                "--profile",
                str(profile_path),
                "--",
                "--config",
                str(config),
            ],
            stdout=subprocess.DEVNULL,
            stderr_path=wd / "profile.stderr",
        )
    with Sandbox(wd, *one_table(2000), name="check") as sb:
        same = _same_records(wd, _variants(sb.url, unthrottled_config(wd, sb.url)))
    results: dict[str, Any] = {"rows": rows, "segment_size": SEGMENT, "repeats": repeats}
    for name, measured in runs.items():
        best = min(measured, key=lambda m: m.wall_s)
        results[name] = {
            "wall_s": best.wall_s,
            "wall_all_s": [m.wall_s for m in measured],
            "cpu_s": best.cpu_s,
            "rows_per_s": rows / best.wall_s,
            "maxrss_mib": best.maxrss_mib,
            "returncode": max(m.returncode for m in measured),
            "error": best.stderr_tail(3) if best.returncode else "",
        }
    results["requests"] = requests
    results["records_check"] = same
    results["profile"] = profile_summary(profile_path) if prof.returncode == 0 else None
    results["profile_wall_s"] = prof.wall_s
    return results
