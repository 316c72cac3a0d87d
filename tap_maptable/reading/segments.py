"""A table's segments: where the next one starts, and what each answer means.

MapTable pages a table by row id: the first request has no `lastSegmentRowID`, each later one
names the last row received, and `more: false` ends the table. The tap assumes that much; the
rest is guarded here, in one place, whatever asked:

- a server that sends a segment again (the same last row), cycles, or says more rows follow
  after an empty segment would page forever: `SegmentLoopError`, before a repeated row is sent;
- a resume point from an earlier run's STATE may name a row deleted since: the server may refuse
  it (an error code, a 404) or ignore it and start the table again (`segmentStart`). Either way
  the read starts again at the table's first segment (`ResumeRefused`), never silently skips.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tap_maptable import api
from tap_maptable.errors import SegmentLoopError

SEGMENT_START = "segmentStart"


def segment_path(table_id: str) -> str:
    """The path of a table's segments, its id URL-encoded: the one way the tap asks for rows."""
    return api.TABLE_SEGMENT_PATH.format(tableId=quote(table_id, safe=""))


class ResumeRefusedError(Exception):
    """MapTable would not continue a table after an earlier run's resume point."""


def as_segment(detail: Any) -> dict[str, Any]:
    """A segment's detail as the tap reads it: an object (anything else holds no rows)."""
    return detail if isinstance(detail, dict) else {}


def last_row_id(detail: dict[str, Any]) -> str | None:
    """The id of a segment's last row, or None for an empty segment."""
    rows = detail.get("rows")
    if not isinstance(rows, list) or not rows:
        return None
    last = rows[-1]
    if not isinstance(last, dict) or last.get("id") is None:
        return None
    return str(last["id"])


class SegmentCursor:
    """Where a table's read continues, and a guard against a server that pages forever.

    Remembers one small hash per segment, not the rows, so memory stays flat.
    """

    __slots__ = ("_seen", "after", "done", "resumed", "table_id")

    def __init__(self, table_id: str, after: str | None = None) -> None:
        """Start at the first segment, or (`after`: an earlier run's resume point) after a row."""
        self.table_id = table_id
        self.after = after
        self.resumed = after is not None  # until the server has accepted the resume point
        self.done = False
        self._seen: set[int] = set()
        if after is not None:
            self._seen.add(hash(after))

    @property
    def params(self) -> dict[str, str]:
        """The query of the next request."""
        return {api.LAST_SEGMENT_ROW_PARAM: self.after} if self.after is not None else {}

    def restart(self) -> None:
        """Read the table from its first segment (a resume point was refused)."""
        self.after = None
        self.resumed = False
        self._seen.clear()

    def accept(self, detail: Any) -> dict[str, Any]:
        """Take a segment: check it, move past it; `done` once the server says no more rows.

        Raises:
            ResumeRefusedError: the answer to a resume point starts the table again.
            SegmentLoopError: the segment ends where an earlier one ended.
        """
        segment = as_segment(detail)
        if self.resumed and segment.get("segmentType") == SEGMENT_START:
            msg = "MapTable answered the resume point with the table's first segment"
            raise ResumeRefusedError(msg)
        self.resumed = False
        last = last_row_id(segment)
        more = bool(segment.get("more"))
        if last is None:
            if more:
                msg = (
                    f"table {self.table_id}: the server sent an empty segment but says more "
                    "rows follow; stopping instead of paging forever"
                )
                raise SegmentLoopError(msg)
        else:
            key = hash(last)
            if key in self._seen:
                msg = (
                    f"table {self.table_id}: the server sent the segment ending at row {last} "
                    "again; stopping instead of paging forever (segment loop)"
                )
                raise SegmentLoopError(msg)
            self._seen.add(key)
            self.after = last
        self.done = not more
        if self.done:
            self._seen = set()  # a run holds every table's cursor to its end
        return segment
