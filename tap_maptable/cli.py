"""The `tap-maptable` command: the SDK's command line, with failures reported in one line.

The SDK's own entry point lets an exception end in a traceback. A scheduled load's log should
instead end with one line that says what went wrong, and exit non-zero; our exceptions (and the
SDK's API errors we raise) already carry such a line, free of secrets.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time

import click
import requests
from singer_sdk.exceptions import (
    ConfigValidationError,
    FatalAPIError,
    RetriableAPIError,
    SingerSDKError,
)

from tap_maptable import allocator, logs, stopping
from tap_maptable.classify import network_failure
from tap_maptable.errors import (
    EXIT_TABLES_SKIPPED,
    MapTableError,
    TablesSkippedError,
    one_line,
)
from tap_maptable.stopping import StopRequestedError
from tap_maptable.tap import TapMapTable

_LAST_LINE_PAUSE_S = 0.05


def main(argv: list[str] | None = None) -> None:
    """Run the tap's command line; on failure print one line and exit non-zero.

    1 for a failed run, 2 for a command line click cannot parse, 128 + the signal number when
    stopped: the codes README's table lists, so that a scheduler can tell them apart.
    """
    stopping.install()
    allocator.fix_mmap_threshold()
    try:
        code = TapMapTable.cli.main(args=argv, prog_name="tap-maptable", standalone_mode=False)
    except TablesSkippedError as exc:
        _fail(str(exc), code=EXIT_TABLES_SKIPPED, label="warning")
    except StopRequestedError as exc:
        _flush_emitted()
        _fail(f"{exc}; the next run resumes from the last STATE emitted", code=exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted")
    except click.ClickException as exc:
        _fail(exc.format_message(), code=exc.exit_code)
    except ConfigValidationError as exc:
        _fail("invalid config: " + "; ".join(exc.errors or [str(exc)]))
    except (MapTableError, FatalAPIError, RetriableAPIError) as exc:
        _fail(str(exc))
    except requests.RequestException as exc:
        _fail(network_failure(exc).final)
    except SingerSDKError as exc:
        _fail(f"{type(exc).__name__}: {exc}")
    except (OSError, ValueError) as exc:
        _fail(f"{type(exc).__name__}: {exc}")
    sys.exit(code if isinstance(code, int) else 0)


def _flush_emitted() -> None:
    """Hand the target every whole message written so far (a stop never cuts one in half)."""
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()


def _fail(message: str, code: int = 1, label: str = "error") -> None:
    # Worker threads still answering were quieted when the run ended; a log record one of them
    # had already let through lands within microseconds: let it, so this line is the last.
    time.sleep(_LAST_LINE_PAUSE_S)
    level = logging.WARNING if label == "warning" else logging.ERROR
    logs.last_line(f"tap-maptable: {label}: {one_line(message, limit=2000)}", level)
    sys.exit(code or 1)
