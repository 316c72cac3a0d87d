"""What the tap learns about an app's workspaces and tables, learned once per process.

Discovery must read the workspace list, every workspace's detail and every table's first
segment (the columns come only with it). Sync needs the same answers. The Directory keeps them,
so that a process that discovers and then syncs sends each of those requests once: the workspace
list and details are kept for the run, a first segment until its stream takes it.
"""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from tap_maptable import api
from tap_maptable.errors import MapTableAPIError

if TYPE_CHECKING:
    from tap_maptable.tap import TapMapTable

LOGGER = logging.getLogger("tap_maptable.discovery")
STREAM_PREFIX = "table_"
_ENCODED_PREFIX = "table__"
_SAFE_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_]*")


def stream_name_for(table_id: str) -> str:
    """`table_<tableId>`; an id with other characters is base32-encoded after `table__`.

    The name must turn back into the id (a catalog names tables only by their streams) and be
    a safe identifier in every warehouse; MapTable's ids are alphanumeric, so the encoded form
    is a safety net, not the rule.
    """
    if _SAFE_ID.fullmatch(table_id):
        return STREAM_PREFIX + table_id
    encoded = base64.b32encode(table_id.encode()).decode().rstrip("=").lower()
    return _ENCODED_PREFIX + encoded


def table_id_for(stream_name: str) -> str:
    """The table id a `stream_name_for` name stands for."""
    if stream_name.startswith(_ENCODED_PREFIX):
        encoded = stream_name.removeprefix(_ENCODED_PREFIX).upper()
        return base64.b32decode(encoded + "=" * (-len(encoded) % 8)).decode()
    return stream_name.removeprefix(STREAM_PREFIX)


@dataclass(frozen=True)
class TableRef:
    """A table whose rows become a stream, and where it lives."""

    table_id: str
    name: str = ""
    node_type: str = "table"
    project_id: str = ""
    project_name: str = ""
    workspace_id: str = ""
    workspace_type: str = ""

    @property
    def stream_name(self) -> str:
        """`table_<tableId>`: ids are stable where names change."""
        return stream_name_for(self.table_id)

    @property
    def description(self) -> str:
        """What a user reads in `--discover` output to find the table."""
        return (
            f"MapTable {self.node_type} {self.name!r} (id {self.table_id}) in project "
            f"{self.project_name!r} (id {self.project_id}), workspace "
            f"{self.workspace_type}/{self.workspace_id}"
        )


class Directory:
    """The app's workspaces, their details and the tables' first segments, fetched once."""

    def __init__(self, tap: TapMapTable) -> None:
        """Nothing is fetched until asked for."""
        self._tap = tap
        self._workspaces: list[dict[str, Any]] | None = None
        self._details: dict[tuple[str, str], dict[str, Any]] = {}
        self._first_segments: dict[str, dict[str, Any]] = {}
        self._read_at: dict[str, datetime] = {}

    def workspaces(self) -> list[dict[str, Any]]:
        """Every workspace the app can see."""
        if self._workspaces is None:
            from tap_maptable.streams import WorkspacesStream  # noqa: PLC0415 - import cycle

            self._workspaces = WorkspacesStream(self._tap).fetch_all()
        return self._workspaces

    def workspace_detail(self, workspace_type: str, workspace_id: str) -> dict[str, Any]:
        """One workspace's detail (its projects and their table nodes)."""
        key = (workspace_type, workspace_id)
        if key not in self._details:
            from tap_maptable.streams import ProjectsStream  # noqa: PLC0415 - import cycle

            self._details[key] = ProjectsStream(self._tap).fetch_detail(
                {"workspaceType": workspace_type, "workspaceId": workspace_id}
            )
        return self._details[key]

    def tables(self) -> list[TableRef]:
        """Every table with rows (`table` and `bigTable` nodes), limited by `table_ids`."""
        tables = [
            TableRef(
                table_id=str(node.get("id")),
                name=str(node.get("name") or ""),
                node_type=str(node.get("type")),
                project_id=str(project.get("id")),
                project_name=str(project.get("name") or ""),
                workspace_id=str(workspace["id"]),
                workspace_type=str(workspace["type"]),
            )
            for workspace in self.workspaces()
            for project in self._projects(workspace)
            for node in project.get("tableNodes") or []
            if isinstance(node, dict) and node.get("type") in api.ROW_TABLE_TYPES
        ]
        return self._tap.limit_to_table_ids(tables, what="seen by the app")

    def first_segment(self, table: TableRef) -> dict[str, Any]:
        """A table's first segment (rows and columns), kept until its stream takes it."""
        if table.table_id not in self._first_segments:
            from tap_maptable.table_rows import TableRowsStream  # noqa: PLC0415 - import cycle

            probe = TableRowsStream(self._tap, table, schema={"properties": {}})
            self._read_at[table.table_id] = datetime.now(tz=timezone.utc)
            self._first_segments[table.table_id] = probe.first_segment()
        return self._first_segments[table.table_id]

    def first_segment_read_at(self, table_id: str) -> datetime | None:
        """When a kept first segment was asked for (None when none is kept).

        Its rows are as old as that: a stream that emits them must not let its bookmark pass
        this time, or a row updated between discovery and sync would be skipped next run.
        """
        return self._read_at.get(table_id) if table_id in self._first_segments else None

    def take_first_segment(self, table_id: str) -> dict[str, Any] | None:
        """Hand a kept first segment to its stream, once: a second sync reads it afresh."""
        return self._first_segments.pop(table_id, None)

    def _projects(self, workspace: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            detail = self.workspace_detail(str(workspace["type"]), str(workspace["id"]))
        except MapTableAPIError as exc:
            if not exc.client_error:
                raise
            LOGGER.warning(
                "Skipping workspace %s/%s during discovery: %s",
                workspace["type"],
                workspace["id"],
                exc,
            )
            return []
        return [p for p in detail.get("projects") or [] if isinstance(p, dict)]
