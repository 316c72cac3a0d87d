"""Installs the hardening tests' fast waits in a `tap-maptable` subprocess, when asked to.

Only on PYTHONPATH for subprocesses started with `tests.hardening.support.fast_env()`.
"""

import os

if os.environ.get("HARDENING_FAST_WAITS") == "1":
    from tests.hardening.support import install_fast_waits

    install_fast_waits()
