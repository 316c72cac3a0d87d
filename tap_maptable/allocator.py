"""Freed memory goes back to the system during a run, not only at its end (glibc's malloc).

glibc serves a large block (128 KiB or more, by default) with an mmap of its own when its heap
cannot; when such a block is freed it raises that threshold to the block's size (up to 32 MiB),
and the free memory a heap may keep before it is trimmed to twice that. The first large block a
run frees is its catalog's text, 10 MB at 1,000 tables: from then on blocks under 10 MB came from
the heaps (one per request worker), and each heap kept up to 20 MB of freed memory for the rest
of the run. Setting both thresholds (to glibc's own defaults) turns that adjustment off, and
undoes what the imports had already raised. Bench figure 12, 1,000 tables: a sync with a
catalog peaked at about 104 MiB, and at about 91 MiB with the thresholds set.

Only the tap's own process, from its command line (`cli.main`), and only with glibc; glibc's own
tuning in the environment (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`, or either in
`GLIBC_TUNABLES`) is left to rule.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

LOGGER = logging.getLogger("tap_maptable.allocator")

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 128 * 1024  # glibc's default for both, kept fixed
TUNING_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
TUNABLES = ("glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold")


def fix_mmap_threshold() -> bool:
    """Fix glibc's mmap and trim thresholds at their defaults; whether they were set.

    False where there is nothing to do: another C library, or the user's own tuning.
    """
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if any(name in os.environ for name in TUNING_VARIABLES) or any(
        name in tunables for name in TUNABLES
    ):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - glibc always has it
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = all(
        mallopt(option, THRESHOLD_BYTES) == 1 for option in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)
    )
    LOGGER.debug("glibc mmap and trim thresholds fixed at %d bytes: %s", THRESHOLD_BYTES, done)
    return done
