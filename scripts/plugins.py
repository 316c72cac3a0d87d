"""Whether the project's Meltano plugins need `meltano install` (used by the demo and the tests).

They do when one is missing, and when `pyproject.toml` or `meltano.yml` changed since the last
install: the tap is installed editable (`pip_url: -e .`), which follows code changes but not new
dependencies, and a loader's pinned version lives in `meltano.yml`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = (
    ("extractors", "tap-maptable"),
    ("loaders", "target-jsonl"),
    ("loaders", "target-duckdb"),
    ("loaders", "target-postgres"),
)
STAMP = ROOT / ".meltano" / "plugins-installed-for.sha256"


def _digest() -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "meltano.yml", "tap_maptable/__init__.py"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def missing() -> list[str]:
    """Plugins whose executable is not installed."""
    return [
        name
        for kind, name in PLUGINS
        if not (ROOT / ".meltano" / kind / name / "venv" / "bin" / name).exists()
    ]


def need_install() -> bool:
    """Whether `meltano install` should run before the next pipeline."""
    return bool(missing()) or not STAMP.exists() or STAMP.read_text().strip() != _digest()


def mark_installed() -> None:
    """Remember that `meltano install` succeeded for the current project files."""
    STAMP.write_text(_digest() + "\n")
