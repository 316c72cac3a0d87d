"""A run's log is for people: what happened, in a few lines; the SDK's detail behind a switch.

At INFO the tap says what a person needs: the request budget, one line per table when it is done
(rows, segments, time), waits, and warnings. singer-sdk's own lines that repeat per table or per
request without saying anything a person acts on are dropped at INFO, and its METRIC lines (a
timer per request, counters per stream) are off, unless asked for:

- the SDK's own logging configuration: a `SINGER_SDK_LOG_CONFIG` file whose `loggers` name
  `singer_sdk.metrics` (for example `level: INFO`) gets the METRIC lines, as the SDK writes them;
- `TAP_MAPTABLE_LOGLEVEL=DEBUG` (or `LOGLEVEL=DEBUG`) shows everything, metrics included.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

from singer_sdk.exceptions import SyncLifecycleSignal
from singer_sdk.logging import StructuredFormatter
from singer_sdk.metrics import METRICS_LOGGER_NAME

# singer-sdk messages that repeat per table (or per child stream) and tell a person nothing to do.
_SDK_NOISE = (
    "Stream is assumed to be unsorted",  # every table: documented in README instead
    "Added '",  # "Added 'projects' as child stream to 'workspaces'"
    "Skipping parse of env var settings",
    "Beginning sync of '",  # each table ends with the tap's own line instead
    "Starting incremental sync of '",
    "Starting full table sync of '",
    "New replication value is null",  # a row with no update time: counted per table instead
)

# What a singer-sdk stream logs at ERROR for any exception that ends its sync, its own control
# signals included: `--test` ends every stream with the record-limit signal, so a passing
# connection test printed an ERROR per table. Dropped for those signals only.
_SDK_SIGNAL_AS_ERROR = "An unhandled error occurred while syncing '"


class _DropSDKNoise(logging.Filter):
    """Drop the SDK's repetitive INFO/WARNING lines and its signals logged as errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but the SDK's known noise."""
        if logging.getLogger(record.name).getEffectiveLevel() <= logging.DEBUG:
            return True
        if not record.name.startswith(("singer_sdk", "tap-maptable")):
            return True
        message = record.getMessage()
        if message.startswith(_SDK_SIGNAL_AS_ERROR):
            # Logged inside the SDK's `except`: the exception it handles is the one current.
            return not isinstance(sys.exc_info()[1], SyncLifecycleSignal)
        return not message.startswith(_SDK_NOISE)


_FILTER = _DropSDKNoise()
for _early in ("tap-maptable", "singer_sdk"):
    logging.getLogger(_early).addFilter(_FILTER)

# The line each table ends with (`table_rows.py`), and how scripts read it back: the demo and the
# end-to-end tests count the rows sent from it, since the SDK's metrics are off by default.
TABLE_DONE_FORMAT = "%s (%s): %d row%s sent%s, from %d segment%s in %.1f s%s."
TABLE_DONE = re.compile(r"(?P<stream>table_[A-Za-z0-9_]+) \(.*\): (?P<rows>\d+) rows? sent")


def rows_sent(message: str) -> tuple[str, int] | None:
    """The stream and its rows sent, if `message` is a table's last line; else None."""
    match = TABLE_DONE.search(message)
    return (match["stream"], int(match["rows"])) if match else None


def for_people() -> None:
    """Quiet singer-sdk's noise on every handler, and its metrics unless they are asked for.

    (The loggers that log before the tap exists, while the SDK reads the settings and builds
    the streams, are filtered from the moment this module is imported.)
    """
    for handler in _handlers():
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    level = os.environ.get("TAP_MAPTABLE_LOGLEVEL") or os.environ.get("LOGLEVEL") or "INFO"
    if level.upper() == "DEBUG" or _metrics_configured():
        return
    logging.getLogger(METRICS_LOGGER_NAME).setLevel(logging.WARNING)


def last_line(line: str, level: int) -> None:
    """The run's last line (`tap-maptable: error: ...`), as its log's format wants it.

    Standalone it is a plain line on stderr, whatever the log's format: README gives it to
    scripts. Under Meltano with the SDK's structured logs (`structured-logging`), Meltano reads
    each JSON line's level and passes a plain line on as INFO: a failed run's reason then
    hid among INFO lines, where alerts on errors missed it. There it is a record of its level,
    in that format, written whatever the log's level (`meltano --log-level=error` would drop a
    warning's record; the last line is never dropped).
    """
    structured = next(
        (h.formatter for h in _handlers() if isinstance(h.formatter, StructuredFormatter)), None
    )
    if structured is not None:
        logger = logging.getLogger("tap-maptable")
        record = logger.makeRecord(logger.name, level, __file__, 0, "%s", (line,), None)
        line = structured.format(record)
    sys.stderr.write(line + "\n")


def _handlers() -> list[logging.Handler]:
    names = (None, "singer_sdk", "tap-maptable")
    loggers = [logging.getLogger(name) for name in names]
    return [handler for logger in loggers for handler in logger.handlers]


def _metrics_configured() -> bool:
    """Whether the SDK's logging configuration file names the metrics logger."""
    path = os.environ.get("SINGER_SDK_LOG_CONFIG")
    if not path:
        return False
    try:
        config = _load(Path(path))
    except (OSError, ValueError):
        return False
    loggers = config.get("loggers") if isinstance(config, dict) else None
    return isinstance(loggers, dict) and METRICS_LOGGER_NAME in loggers


def _load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError:
        import yaml  # noqa: PLC0415 - PyYAML comes with singer-sdk; YAML configs only

        return yaml.safe_load(text)


def quiet_threads(threads: list[threading.Thread]) -> None:
    """From now on, drop the tap's log records made by these threads.

    For worker threads left waiting for an answer when a run stops: the last line of the log must
    be the run's own. Only the tap's own loggers are touched (one filter each, whatever the
    number of runs in the process), and only these threads are quieted: a later run's workers
    log as usual.
    """
    for thread in threads:
        setattr(thread, _QUIET_MARK, True)
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if not name.startswith(_OWN_LOGGERS) or not isinstance(logger, logging.Logger):
            continue
        if _QUIET not in logger.filters:
            logger.addFilter(_QUIET)


_OWN_LOGGERS = ("tap_maptable", "tap-maptable")
_QUIET_MARK = "_tap_maptable_quiet"


class _QuietThreads(logging.Filter):
    """Drop records of threads marked quiet."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: ARG002 - the thread decides
        """Keep every record but those of a quieted thread."""
        return not getattr(threading.current_thread(), _QUIET_MARK, False)


_QUIET = _QuietThreads()
