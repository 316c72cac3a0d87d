"""`--test`, the SDK's connection test: one record per stream, exit 0, and no ERROR line.

The SDK stops each stream of a dry run by raising its record-limit signal, and its stream
logged every one as "An unhandled error occurred while syncing" at ERROR before the dry run
caught it: a passing `--test` (what `meltano config test tap-maptable` runs) printed an ERROR
per table. A real failure still ends the run with its one line and a non-zero exit.
"""

from __future__ import annotations

from typing import Any

from tests.helpers import run_tap_command, tap_config


def test_a_passing_connection_test_logs_no_error(sandbox: Any) -> None:
    result = run_tap_command(["--test"], tap_config(sandbox))
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"type":"RECORD"' in result.stdout.replace(" ", "")  # it did read records
    assert "ERROR" not in result.stderr, result.stderr[-2000:]
    assert "unhandled error" not in result.stderr


def test_a_failing_connection_test_still_says_why(sandbox: Any) -> None:
    config = {**tap_config(sandbox), "app_secret": "wrong-secret-value"}
    result = run_tap_command(["--test"], config)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("tap-maptable: error:")
