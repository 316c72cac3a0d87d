"""Deciding which API request gets which fault, and what a faulted answer looks like.

Decisions are deterministic for a given request sequence: scheduled faults are keyed by the request
number since the plan was installed, and random ones come from an RNG seeded by the plan.
"""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from maptable_sandbox.config import FaultPlan

#: Faults that replace the whole answer before the endpoint runs.
REPLACING = frozenset({"500", "503", "html502", "drop", "code", "401", "refresh_reject"})

NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


class FaultInjector:
    """Holds the current plan plus its request counter, RNG and injected-fault count."""

    def __init__(self, plan: FaultPlan) -> None:
        """Install ``plan``."""
        self._lock = threading.Lock()
        self._plan = plan
        self._rng = random.Random(plan.seed)
        self._count = 0
        self._injected = 0

    @property
    def plan(self) -> FaultPlan:
        """The plan in force."""
        return self._plan

    def install(self, plan: FaultPlan) -> None:
        """Swap the plan; request numbering, RNG and the fault cap start afresh."""
        with self._lock:
            self._plan = plan
            self._rng = random.Random(plan.seed)
            self._count = 0
            self._injected = 0

    def pick(self, kind: str) -> str | None:
        """Number this request and choose its fault (``None``: none), without committing it.

        The RNG is drawn for every eligible request, injected or not, so the sequence of decisions
        depends only on the sequence of requests.
        """
        with self._lock:
            self._count += 1
            plan = self._plan
            fault = plan.schedule.get(self._count)
            if kind in plan.kinds_for and plan.rates:
                draw = self._rng.random()
                if fault is None:
                    fault = _from_rates(plan.rates, draw)
            if fault == "refresh_reject" and kind != "refresh":
                fault = None
            capped = plan.max_faults is not None and self._injected >= plan.max_faults
            return None if capped else fault

    def commit(self, fault: str | None) -> None:
        """Count an injected fault against ``max_faults`` (called once it really applies)."""
        if fault is not None:
            with self._lock:
                self._injected += 1


def _from_rates(rates: dict[str, float], draw: float) -> str | None:
    """Map one uniform draw onto the kinds' probability intervals (sorted for stability)."""
    edge = 0.0
    for kind in sorted(rates):
        edge += rates[kind]
        if draw < edge:
            return kind
    return None
