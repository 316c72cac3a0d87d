"""The paginator of a table's row segments (the Directory reads the workspace list's pages)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from singer_sdk.pagination import BaseAPIPaginator

from tap_maptable.envelope import read_envelope
from tap_maptable.errors import SegmentLoopError

if TYPE_CHECKING:
    import requests


class SegmentPaginator(BaseAPIPaginator[str | None]):
    """`lastSegmentRowID` = the last row id received; `more: false` ends the table.

    A server that sends a segment again (the same last row id), or cycles through segments,
    would page forever: `check` raises a clear error before the repeated rows are emitted. It
    remembers one small hash per segment, not the rows, so memory stays flat.
    """

    def __init__(self, table_id: str, start_value: str | None = None) -> None:
        """Start after `start_value` (None: from the table's first segment)."""
        super().__init__(start_value=start_value)
        self.table_id = table_id
        self._seen: set[int] = set()
        if start_value is not None:
            self._seen.add(hash(start_value))

    def check(self, detail: dict[str, Any]) -> None:
        """Raise SegmentLoopError if this segment ends where an earlier one ended."""
        last = last_row_id(detail)
        if last is None:
            if detail.get("more"):
                msg = (
                    f"table {self.table_id}: the server sent an empty segment but says more "
                    "rows follow; stopping instead of paging forever"
                )
                raise SegmentLoopError(msg)
            return
        key = hash(last)
        if key in self._seen:
            msg = (
                f"table {self.table_id}: the server sent the segment ending at row {last} "
                "again; stopping instead of paging forever (segment loop)"
            )
            raise SegmentLoopError(msg)
        self._seen.add(key)

    def has_more(self, response: requests.Response) -> bool:
        """The server's `more` flag."""
        return bool(_detail(response).get("more"))

    def get_next(self, response: requests.Response) -> str | None:
        """The last row id of this segment."""
        return last_row_id(_detail(response))


def last_row_id(detail: dict[str, Any]) -> str | None:
    """The id of a segment's last row, or None for an empty segment."""
    rows = detail.get("rows")
    if not isinstance(rows, list) or not rows:
        return None
    last = rows[-1]
    if not isinstance(last, dict) or last.get("id") is None:
        return None
    return str(last["id"])


def _detail(response: requests.Response) -> dict[str, Any]:
    detail = read_envelope(response).detail
    return detail if isinstance(detail, dict) else {}
