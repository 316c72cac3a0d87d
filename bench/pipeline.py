"""Figure 2: requests a `meltano run tap-maptable target-jsonl` sends vs. what the data needs.

The project's meltano.yml is copied into a scratch project under bench/work, with the two
plugins pointed at executables that are already installed (the tap from the interpreter running
the bench, target-jsonl from bench/.venv-target, created on first use), so no `meltano install`
and no edit of the real project are needed. Settings come from environment variables, as in
`make demo`. The data are the sandbox's defaults (the demo's).
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter
from typing import Any

from bench.common import (
    APP_ID,
    APP_SECRET,
    BENCH_DIR,
    ROOT,
    Sandbox,
    by_kind,
    run_measured,
    venv_bin,
    work_dir,
)

MELTANO = ROOT / ".venv-meltano" / "bin" / "meltano"
TARGET_VENV = BENCH_DIR / ".venv-target"
TARGET_PACKAGE = "target-jsonl==0.1.4"
PAGE_SIZE = 100


def target_executable() -> str:
    """target-jsonl in its own venv (its pins clash with the SDK's), installed when missing."""
    exe = TARGET_VENV / "bin" / "target-jsonl"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TARGET_VENV)], check=True)
        subprocess.run(
            [str(TARGET_VENV / "bin" / "pip"), "install", "-q", TARGET_PACKAGE], check=True
        )
    return str(exe)


def available() -> str | None:
    """Why this figure cannot run here, or None."""
    if not (ROOT / "meltano.yml").exists():
        return "no meltano.yml in the project"
    if not MELTANO.exists():
        return f"no Meltano at {MELTANO} (make meltano)"
    return None


def minimum_requests(sandbox_args: list[str]) -> Counter[str]:
    """What the data needs: one login, the list pages, one detail per workspace, each segment."""
    from maptable_sandbox.cli import _parser, build_config  # noqa: PLC0415
    from maptable_sandbox.data import Dataset  # noqa: PLC0415

    config = build_config(_parser().parse_args(sandbox_args))
    data = Dataset(config)
    workspaces = config.workspaces
    need: Counter[str] = Counter(auth=1, workspaces=workspaces // PAGE_SIZE + 1)
    need["workspace"] = workspaces
    for table in data.tables():
        rows = config.table_rows.get(table.table_id, config.rows_per_table)
        need["rows:first"] += 1
        need["rows"] += max(math.ceil(rows / config.segment_size), 1) - 1
    return need


def _project(wd: Any) -> Any:
    import yaml  # noqa: PLC0415 - PyYAML comes with singer-sdk

    project = wd / "project"
    project.mkdir()
    spec = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    executables = {"tap-maptable": venv_bin("tap-maptable"), "target-jsonl": target_executable()}
    for kind in ("extractors", "loaders"):
        for plugin in spec["plugins"].get(kind, []):
            if plugin["name"] in executables:
                plugin.pop("pip_url", None)
                plugin["executable"] = executables[plugin["name"]]
    (project / "meltano.yml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return project


def run(*, quick: bool) -> dict[str, Any]:
    del quick  # the demo data are small either way
    wd = work_dir("pipeline")
    project = _project(wd)
    sandbox_args: list[str] = []  # the sandbox's defaults: the demo's data
    need = minimum_requests(sandbox_args)
    runs = []
    with Sandbox(wd, *sandbox_args) as sb:
        env = {
            "TAP_MAPTABLE_APP_ID": APP_ID,
            "TAP_MAPTABLE_APP_SECRET": APP_SECRET,
            "TAP_MAPTABLE_API_URL": sb.url,
            "TAP_MAPTABLE_RATE_LIMIT_STORE": f"sqlite:///{wd / 'budget.sqlite'}",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_ENVIRONMENT": "dev",
        }
        for attempt in ("first run", "second run"):
            before = len(sb.entries())
            m = run_measured(
                [str(MELTANO), "run", "tap-maptable", "target-jsonl"],
                env=env,
                cwd=project,
                stderr_path=wd / f"meltano-{attempt.replace(' ', '-')}.stderr",
            )
            sent = by_kind(sb.entries()[before:])
            extra = {k: sent[k] - need.get(k, 0) for k in sorted(set(sent) | set(need))}
            runs.append(
                {
                    "attempt": attempt,
                    "returncode": m.returncode,
                    "error": m.stderr_tail(5) if m.returncode else "",
                    "wall_s": m.wall_s,
                    "sent": dict(sent),
                    "total": sum(sent.values()),
                    "extra": {k: v for k, v in extra.items() if v},
                }
            )
    minimum = sum(need.values())
    for r in runs:
        r["ratio"] = r["total"] / minimum
    return {"minimum": dict(need), "minimum_total": minimum, "runs": runs}
