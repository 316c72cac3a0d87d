"""What RESULTS.md is written with: markdown tables, yes/no, numbers."""

from __future__ import annotations

import math
from typing import Any


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def ok(flag: bool | None) -> str:
    """yes, **no**, or n/a."""
    return "n/a" if flag is None else ("yes" if flag else "**no**")


def num(x: float | None, digits: int = 2) -> str:
    """A number with thousands separators, n/a for None or NaN."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"
