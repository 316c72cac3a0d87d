"""Where a table's read continues: the part of a table's bookmark that survives a stopped run.

At 60 requests a minute a large app takes hours to read, and runs get stopped (a deploy, an
orchestrator's timeout, a host restart). So after each segment it sends, a table stream records
in its bookmark where its read continues, and a run started from that STATE continues the table
there instead of at its first segment:

- `run`: the run that wrote it (a resume point is used only by that run's continuation);
- `after_row`: the last row id of the last segment fully sent (null: no read in progress);
- `segments`: segments sent so far by this read; `max_updated`: the largest `_updated_at` sent
  so far (the bookmark so far: the SDK's own marker for it does not survive a run);
- `version`: the read's table version (FULL_TABLE), so ACTIVATE_VERSION still comes only after
  the table was read end to end, across runs, with the version its first rows carried;
- `started_at`: when the read began, so the bookmark never passes a row updated since;
- `backfill`: whether the read sends every row (its columns had changed);
- `columns`: what its properties carry (`columns_sent`): a run whose properties carry other
  columns starts the table again;
- `full_table`: the replication method it was read with.

Every key is always written (null when unset): Meltano merges the states of unfinished runs
key by key, and a key left out would keep an older run's value.
The bookmark also keeps `segments_last_read`: the table's size at its last complete read, which
a run uses to plan its requests and to say how long it has left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from tap_maptable.columns import sent

if TYPE_CHECKING:
    from collections.abc import MutableMapping

    from tap_maptable.columns.sent import SentColumn

STATE_KEY: Final = "resume"
SIZE_KEY: Final = "segments_last_read"


@dataclass(frozen=True)
class Resume:
    """An unfinished read of one table, as a bookmark records it."""

    run: str | None  # the run that wrote it (`run.started_at`): only its continuation resumes
    after_row: str
    segments: int
    version: int | None
    max_updated: str | None
    started_at: str | None
    backfill: bool
    columns: list[SentColumn] | None
    full_table: bool


def read_resume(bookmark: dict[str, Any]) -> Resume | None:
    """The unfinished read a bookmark records, or None (none, or not readable)."""
    value = bookmark.get(STATE_KEY)
    if not isinstance(value, dict):
        return None
    after = value.get("after_row")
    if not isinstance(after, str) or not after:
        return None
    segments, version = value.get("segments"), value.get("version")
    return Resume(
        run=_text(value.get("run")),
        after_row=after,
        segments=segments if isinstance(segments, int) and segments >= 0 else 0,
        version=version if isinstance(version, int) and not isinstance(version, bool) else None,
        max_updated=_text(value.get("max_updated")),
        started_at=_text(value.get("started_at")),
        backfill=value.get("backfill") is True,
        columns=sent.from_state(value.get("columns")),
        full_table=value.get("full_table") is True,
    )


def write_resume(bookmark: dict[str, Any], resume: Resume | None) -> None:
    """Record an unfinished read (None: the read is complete, nothing to continue)."""
    bookmark[STATE_KEY] = {
        "run": resume.run if resume else None,
        "after_row": resume.after_row if resume else None,
        "segments": resume.segments if resume else 0,
        "version": resume.version if resume else None,
        "max_updated": resume.max_updated if resume else None,
        "started_at": resume.started_at if resume else None,
        "backfill": resume.backfill if resume else False,
        "columns": sent.to_state(resume.columns) if resume and resume.columns else None,
        "full_table": resume.full_table if resume else False,
    }


def last_size(bookmark: dict[str, Any]) -> int | None:
    """Segments of the table's last complete read, if known."""
    value = bookmark.get(SIZE_KEY)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# -- a run and its continuation -------------------------------------------------------------------
#
# A stopped run is continued, not begun again: the STATE names the run (`run.started_at`) and
# says whether it ended (`run.complete`); each table read to its end by a run records which
# (`read_in_run`). A run given the STATE of a run that did not end continues it: the tables that
# run finished are not read again (their rows updated since are the next run's, which reads
# every table: their bookmarks are capped at that run's start), the table it was reading
# continues at its resume point, and the rest are read as usual.

RUN_KEY: Final = "run"
DONE_KEY: Final = "read_in_run"


def run_to_continue(state: MutableMapping[str, Any]) -> str | None:
    """The start of the run a STATE left unfinished, if it did (None: begin a new run)."""
    run = state.get(RUN_KEY)
    if not isinstance(run, dict) or run.get("complete") is not False:
        return None
    return _text(run.get("started_at"))


def begin_run(state: MutableMapping[str, Any], started_at: str) -> None:
    """Record in the STATE that the run which began at `started_at` is under way."""
    state[RUN_KEY] = {"started_at": started_at, "complete": False}


def end_run(state: MutableMapping[str, Any]) -> None:
    """Record that the run ended: the next one reads every table again."""
    run = state.get(RUN_KEY)
    if isinstance(run, dict):
        run["complete"] = True


def done_in_run(bookmark: dict[str, Any], started_at: str) -> bool:
    """Whether the run that began at `started_at` read this table to its end."""
    return bookmark.get(DONE_KEY) == started_at


def mark_done(bookmark: dict[str, Any], started_at: str) -> None:
    """Record that the run that began at `started_at` read this table to its end."""
    bookmark[DONE_KEY] = started_at
