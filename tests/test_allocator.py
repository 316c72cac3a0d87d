"""The tap's process gives freed memory back during a run (`allocator.fix_mmap_threshold`)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from typing import Any

import pytest

from tap_maptable import allocator

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# A 1,000-table catalog's text is about 10 MB: freed once it is parsed. Then blocks of 1 MB (a
# large answer, a STATE) are made and freed. Without the fix glibc serves them from its heap,
# keeps them when freed (its trim threshold is now twice the catalog's size), and the process's
# RSS stays up; with it, each is an mmap of its own, returned when freed.
_SCRIPT = """
import json, sys
from tap_maptable import allocator

def rss_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

fixed = allocator.fix_mmap_threshold() if sys.argv[1] == "fix" else False
catalog = bytearray(10 * 2**20)
del catalog
before = rss_kib()
blocks = [bytearray(2**20) for _ in range(16)]
del blocks
print(json.dumps({"fixed": fixed, "kept_kib": rss_kib() - before}))
"""


def _kept(mode: str) -> dict[str, Any]:
    env = {"PATH": "/usr/bin:/bin"}  # no MALLOC_* tuning from the caller's environment
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    result: dict[str, Any] = json.loads(run.stdout)
    return result


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only; elsewhere the fix does nothing")
def test_after_a_large_block_is_freed_later_blocks_are_given_back() -> None:
    without, with_fix = _kept("none"), _kept("fix")
    assert with_fix["fixed"] is True
    assert without["kept_kib"] > 12 * 1024, without  # 16 MB made and freed, kept
    assert with_fix["kept_kib"] < 2 * 1024, with_fix


@pytest.mark.parametrize(
    "tuning",
    [
        {"MALLOC_TRIM_THRESHOLD_": "1048576"},
        {"MALLOC_MMAP_THRESHOLD_": "65536"},
        {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"},
    ],
)
def test_the_user_s_own_malloc_tuning_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, tuning: dict[str, str]
) -> None:
    for name, value in tuning.items():
        monkeypatch.setenv(name, value)
    assert allocator.fix_mmap_threshold() is False


def test_another_c_library_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*allocator.TUNING_VARIABLES, "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    assert allocator.fix_mmap_threshold() is False


# In a process of its own: the command line installs signal handlers and logging.
_CLI_SCRIPT = """
from tap_maptable import allocator, cli
calls = []
allocator.fix_mmap_threshold = lambda: calls.append("fixed") or True
try:
    cli.main(["--version"])
except SystemExit as stop:
    print(stop.code, calls)
"""


def test_the_command_line_fixes_the_thresholds_before_it_runs() -> None:
    run = subprocess.run(
        [sys.executable, "-c", _CLI_SCRIPT],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert run.stdout.splitlines()[-1] == "0 ['fixed']", run.stdout + run.stderr
