"""Freed memory goes back to the system during a run, not only at its end (glibc's malloc).

glibc serves a block of 128 KiB or more with an mmap of its own; when such a block is freed it
raises that threshold to the block's size (up to 32 MiB), and the free memory a heap may keep
before it is trimmed to twice that. The first large block a run frees is its catalog's text,
10 MB at 1,000 tables: from then on every block under 10 MB came from the heaps (one per request
worker), and each heap kept up to 20 MB of freed memory for the rest of the run. Setting the
threshold (to glibc's own default) turns that adjustment off. Bench figure 12, 1,000 tables:
a sync with a catalog peaked at about 104 MiB, and at about 91 MiB with the threshold set.

Only the tap's own process, from its command line (`cli.main`), and only with glibc; a
`MALLOC_MMAP_THRESHOLD_` or `MALLOC_TRIM_THRESHOLD_` in the environment (glibc's own tuning)
is left to rule.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

LOGGER = logging.getLogger("tap_maptable.allocator")

M_MMAP_THRESHOLD = -3  # glibc's <malloc.h>
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's default, kept fixed
TUNING_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def fix_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold at its default; whether it was set.

    False where there is nothing to do: another C library, or the user's own tuning.
    """
    if any(name in os.environ for name in TUNING_VARIABLES):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - glibc always has it
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1)
    LOGGER.debug("glibc mmap threshold fixed at %d bytes: %s", MMAP_THRESHOLD_BYTES, done)
    return done
