"""The app's structure: workspaces, projects and table nodes.

The workspace list and one workspace detail per workspace serve all three streams. They are read
through the tap's `Directory` (the same answers discovery needs), so that discovery and sync in
the same process never ask MapTable twice. Each stream reads every workspace at once (not one
child sync per workspace), so that it can tell a complete read: only then does it send
ACTIVATE_VERSION, and a project or table node deleted in MapTable leaves the warehouse. A run
that could not read some workspace's detail sends none (a WARNING says so), so that workspace's
projects stay.
The rows of each table are their own streams, in `table_rows.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk import typing as th

from tap_maptable import api
from tap_maptable.client import MapTableStream

if TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.helpers.types import Context

# Ids are emitted as strings: the vendor shows ints, the Node SDK strings. One type fits both.
_ID = th.StringType


class WorkspacesStream(MapTableStream):
    """Every workspace the app can see (`GET /workspaces/`, read page by page by the Directory)."""

    name = "workspaces"
    path = api.WORKSPACES_PATH
    primary_keys: ClassVar[list[str]] = ["type", "id"]  # ids are unique within a type only
    replication_key = None
    schema = th.PropertiesList(
        th.Property("id", _ID, required=True),
        th.Property("type", th.StringType, required=True),
        th.Property("name", th.StringType),
        th.Property("avatar", th.StringType),
        th.Property("plan", th.StringType),
    ).to_dict()

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:  # noqa: ARG002
        """The workspace list, read once per run (discovery may already have read it)."""
        yield from self._tap.directory.workspaces()
        self.activate_version()


class ProjectsStream(MapTableStream):
    """Every project of every workspace, from the workspace details."""

    name = "projects"
    path = api.WORKSPACE_DETAIL_PATH
    primary_keys: ClassVar[list[str]] = ["id"]
    replication_key = None
    schema = th.PropertiesList(
        th.Property("id", _ID, required=True),
        th.Property("name", th.StringType),
        th.Property("desc", th.StringType),
        th.Property("icon", th.StringType),
        th.Property("createTime", th.DateTimeType),
        th.Property("updateTime", th.DateTimeType),
        th.Property("memberCount", th.IntegerType),
        th.Property(
            "creator",
            th.ObjectType(
                th.Property("id", _ID),
                th.Property("name", th.StringType),
                th.Property("avatar", th.StringType),
            ),
        ),
        th.Property("workspaceId", _ID, required=True),
        th.Property("workspaceType", th.StringType, required=True),
    ).to_dict()

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:  # noqa: ARG002
        """Every workspace's projects; the details are fetched once and shared with table_nodes."""
        directory = self._tap.directory
        for workspace, project in directory.projects():
            # Table nodes are their own stream; the project record does not repeat them.
            yield {
                **{key: value for key, value in project.items() if key != "tableNodes"},
                "id": str(project.get("id")),
                "workspaceId": workspace.id,
                "workspaceType": workspace.type,
            }
        if directory.every_detail_read(self.name):
            self.activate_version()


class TableNodesStream(MapTableStream):
    """Every table node (`table`, `bigTable`, `group`) of every project."""

    name = "table_nodes"
    path = api.WORKSPACE_DETAIL_PATH
    primary_keys: ClassVar[list[str]] = ["id"]
    replication_key = None
    schema = th.PropertiesList(
        th.Property("id", _ID, required=True),
        th.Property("name", th.StringType),
        th.Property("type", th.StringType),
        th.Property("subscribed", th.BooleanType),
        th.Property("published", th.BooleanType),
        th.Property("createTime", th.DateTimeType),
        th.Property("projectId", _ID, required=True),
        th.Property("workspaceId", _ID, required=True),
        th.Property("workspaceType", th.StringType, required=True),
    ).to_dict()

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:  # noqa: ARG002
        """Every project's nodes, from the workspace details (read once per run)."""
        directory = self._tap.directory
        for workspace, project in directory.projects():
            for node in project.get("tableNodes") or []:
                if isinstance(node, dict):
                    yield {
                        **node,
                        "id": str(node.get("id")),
                        "projectId": str(project.get("id")),
                        "workspaceId": workspace.id,
                        "workspaceType": workspace.type,
                    }
        if directory.every_detail_read(self.name):
            self.activate_version()
