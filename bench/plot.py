"""Figure 6: requests per sliding window over time, against the limit, for the budget run."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


def budget_png(result: dict[str, Any], path: Path) -> Path:
    """Draw the budget run's sliding-window count and cumulative requests; save as PNG."""
    import matplotlib as mpl  # noqa: PLC0415 - optional dependency (the `bench` extra)

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    timeline = result["timeline"]
    window, limit = result["window_s"], result["limit"]
    admitted = [t for t, status in timeline if status != 429]
    limited = [t for t, status in timeline if status == 429]
    # The window's count on a fine grid (it falls between requests, as old ones age out).
    end = admitted[-1] if admitted else 0.0
    grid = sorted({*admitted, *(i * window / 200 for i in range(int(end / window * 200) + 2))})
    counts = [
        bisect.bisect_right(admitted, t) - bisect.bisect_right(admitted, t - window) for t in grid
    ]

    fig, ax = plt.subplots(figsize=(10, 4.8), dpi=110)
    ax.step(
        grid,
        counts,
        where="post",
        color="tab:blue",
        lw=1.6,
        label="requests in the last window",
    )
    ax.axhline(limit, color="tab:red", ls="--", lw=1.2, label=f"limit: {limit} per {window:g} s")
    if limited:
        ax.scatter(
            limited, [limit] * len(limited), marker="x", color="black", zorder=3, label="429"
        )
    ax.set_xlabel("seconds since the first request")
    ax.set_ylabel(f"requests in the sliding {window:g}-s window")
    ax.set_ylim(0, limit * 1.25)
    ax2 = ax.twinx()
    ax2.plot(admitted, range(1, len(admitted) + 1), color="tab:green", lw=1, alpha=0.7)
    ax2.set_ylabel("requests sent so far", color="tab:green")
    ax2.set_ylim(0, max(len(admitted), 1) * 1.1)
    ax.set_title(
        f"tap-maptable request budget: {result['requests_admitted']} requests in "
        f"{result['elapsed_s']:.1f} s (minimum {result['min_span_s']:.0f} s, "
        f"ratio {result['ratio']:.3f}), {result['rate_limited_429']} x 429",
        fontsize=10,
    )
    handles, labels = ax.get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="tab:green", lw=1))
    labels.append("cumulative requests (right axis)")
    ax.legend(handles, labels, loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
