"""The app's structure: workspaces, projects and table nodes.

The workspace list and one workspace detail per workspace serve all three streams. They are read
through the tap's `Directory` (the same answers discovery needs), so that discovery and sync in
the same process never ask MapTable twice.
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

    def get_child_context(self, record: dict[str, Any], context: Context | None) -> dict[str, Any]:  # noqa: ARG002
        """Projects are read per workspace."""
        return {"workspaceType": record["type"], "workspaceId": record["id"]}


class ProjectsStream(MapTableStream):
    """Every project of every workspace, from the workspace detail."""

    name = "projects"
    path = api.WORKSPACE_DETAIL_PATH
    parent_stream_type = WorkspacesStream
    primary_keys: ClassVar[list[str]] = ["id"]
    state_partitioning_keys: ClassVar[list[str]] = []
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

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Projects of one workspace; the detail is fetched once and shared with table_nodes."""
        assert context is not None  # noqa: S101 - a child stream always has its parent's context
        detail = self._tap.directory.workspace_detail(
            str(context["workspaceType"]), str(context["workspaceId"])
        )
        for project in detail.get("projects") or []:
            if isinstance(project, dict):
                # Table nodes are their own stream; the project record does not repeat them.
                yield {
                    **{key: value for key, value in project.items() if key != "tableNodes"},
                    "id": str(project.get("id")),
                    "workspaceId": context["workspaceId"],
                    "workspaceType": context["workspaceType"],
                }

    def get_child_context(self, record: dict[str, Any], context: Context | None) -> dict[str, Any]:  # noqa: ARG002
        """Table nodes come with the project, in the same (kept) workspace detail."""
        return {
            "projectId": record["id"],
            "workspaceId": record["workspaceId"],
            "workspaceType": record["workspaceType"],
        }


class TableNodesStream(MapTableStream):
    """Every table node (`table`, `bigTable`, `group`) of every project."""

    name = "table_nodes"
    path = api.WORKSPACE_DETAIL_PATH
    parent_stream_type = ProjectsStream
    primary_keys: ClassVar[list[str]] = ["id"]
    state_partitioning_keys: ClassVar[list[str]] = []
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

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """The project's nodes, from the workspace detail its parent already read."""
        assert context is not None  # noqa: S101 - a child stream always has its parent's context
        detail = self._tap.directory.workspace_detail(
            str(context["workspaceType"]), str(context["workspaceId"])
        )
        project = next(
            (
                p
                for p in detail.get("projects") or []
                if isinstance(p, dict) and str(p.get("id")) == context["projectId"]
            ),
            {},
        )
        for node in project.get("tableNodes") or []:
            if isinstance(node, dict):
                yield {
                    **node,
                    "id": str(node.get("id")),
                    "projectId": context["projectId"],
                    "workspaceId": context["workspaceId"],
                    "workspaceType": context["workspaceType"],
                }
