"""What the tap learns about an app's workspaces and tables, learned once per process.

Discovery must read the workspace list, every workspace's detail and every table's first
segment (the columns come only with it). Sync needs the same answers. The Directory keeps the
workspace list and details for the run, so that a process that discovers and then syncs sends
each of those requests once; first segments are the run's reader's (`reading/`), which keeps
them until their table is synced.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import logging
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tap_maptable import api
from tap_maptable.errors import ConfigurationError, MapTableAPIError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from tap_maptable.connection import MapTableConnection
    from tap_maptable.reading import Reader

LOGGER = logging.getLogger("tap_maptable.discovery")
STREAM_PREFIX = "table_"
_ENCODED_PREFIX = "table__"
_SAFE_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_]*")
# `TableRef.description`: "MapTable table 'Orders' (id tbl1) in project ..."
_DESCRIBED = re.compile(r"MapTable \w+ (?P<name>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\") \(id ")


# Appended to the `description` of a table discovery could not read (403, 404, columns the tap
# cannot map): the catalog keeps the table, and a sync with that catalog reports it as skipped
# (exit code 3) instead of never hearing of it (discovery and sync are two processes under
# Meltano).
UNREADABLE_MARK = " Not readable when discovered: "


def unreadable_reason(description: str) -> str | None:
    """Why discovery could not read a table, as its catalog `description` records (or None)."""
    _, found, reason = description.partition(UNREADABLE_MARK)
    return reason if found else None


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
class WorkspaceKey:
    """A workspace, as the API names it: ids are unique within a type only."""

    type: str
    id: str


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

    @classmethod
    def from_description(cls, table_id: str, description: str) -> TableRef:
        """A table named by a catalog: its name read back from the stream's `description`."""
        match = _DESCRIBED.match(description)
        name = description
        if match:
            with contextlib.suppress(ValueError, SyntaxError):
                name = str(ast.literal_eval(match["name"]))
        return cls(table_id=table_id, name=name)

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


def select_tables(
    tables: list[TableRef], wanted: Sequence[str] | None, what: str
) -> list[TableRef]:
    """Keep the tables `table_ids` names (all when unset); warn about each id not among them.

    One missing table should not stop a nightly load of the rest: a WARNING, not an error.
    """
    if not wanted:
        return tables
    known = {table.table_id for table in tables}
    if not known & set(wanted):
        # Not one table to extract: a nightly load would "succeed" with nothing in it.
        names = ", ".join(sorted(wanted))
        msg = f"invalid config: table_ids names no table {what} ({names})"
        raise ConfigurationError(msg)
    for missing in sorted(set(wanted) - known):
        LOGGER.warning(
            "table_ids names table %s, which is not %s; skipping it (the other tables "
            "are extracted as usual).",
            missing,
            what,
        )
    return [table for table in tables if table.table_id in set(wanted)]


class Directory:
    """The app's workspaces, their details and the tables' first segments, fetched once."""

    def __init__(
        self,
        connection: MapTableConnection,
        reader: Reader,
        page_size: int,
        table_ids: Sequence[str] | None,
    ) -> None:
        """Nothing is fetched until asked for; then with the reader's parallel requests."""
        self._connection = connection
        self._reader = reader
        self._page_size = page_size
        self._table_ids = table_ids
        self._workspaces: list[dict[str, Any]] | None = None
        self._details: dict[tuple[str, str], dict[str, Any] | Exception] = {}
        self._unreadable: set[tuple[str, str]] = set()

    def workspaces(self) -> list[dict[str, Any]]:
        """Every workspace the app can see, each once (ids as strings)."""
        if self._workspaces is None:
            self._workspaces = self._read_workspace_pages()
        return self._workspaces

    def _read_workspace_pages(self) -> list[dict[str, Any]]:
        """Page through the workspace list until a page brings nothing new.

        Nothing about paging is documented: a server may cap its pages below `pageSize` (so a
        short page proves nothing), or ignore the parameters and send everything on every page
        (such a page brings nothing new). Either way the list ends on the first page with
        nothing new, at the cost of one request more than a trusting reader would send.
        """
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        page, size = 1, self._page_size
        while True:
            detail = self._connection.get(
                api.WORKSPACES_PATH, {api.PAGE_PARAM: page, api.PAGE_SIZE_PARAM: size}
            )
            items = (
                [item for item in detail if isinstance(item, dict)]
                if isinstance(detail, list)
                else []
            )
            new = 0
            for item in items:
                record = {**item, "id": str(item.get("id")), "type": str(item.get("type"))}
                key = (record["type"], record["id"])
                if key not in seen:
                    seen[key] = record
                    new += 1
            if not new:
                return list(seen.values())
            if len(items) < size:
                # A capped page: whether the server counts pages in the size it serves or in
                # the size asked for, asking for that smaller size from here on (continuing at
                # the first workspace not seen) reads the same offsets both ways.
                size = math.gcd(len(seen), len(items))
                page = len(seen) // size
            page += 1

    def workspace_detail(self, workspace_type: str, workspace_id: str) -> dict[str, Any]:
        """One workspace's detail (its projects and their table nodes)."""
        key = (workspace_type, workspace_id)
        if key not in self._details:
            others = [
                (str(w["type"]), str(w["id"])) for w in self._workspaces or [] if w is not None
            ]
            wanted = [key, *(k for k in others if k != key and k not in self._details)]
            self._fetch(wanted, self._details, self._read_detail)
        return _unwrap(self._details[key])

    def _read_detail(self, key: tuple[str, str]) -> dict[str, Any]:
        workspace_type, workspace_id = key
        path = api.WORKSPACE_DETAIL_PATH.format(
            workspaceType=quote(workspace_type, safe=""), workspaceId=quote(workspace_id, safe="")
        )
        detail = self._connection.get(path)
        return detail if isinstance(detail, dict) else {}

    def _fetch(self, keys: list[Any], cache: dict[Any, Any], read: Callable[[Any], Any]) -> None:
        """Read `keys[0]`, and the other keys with it when requests may go out in parallel.

        Each answer, or the error it ended in, is kept under its key: an error is raised when
        (and only when) that key is asked for, as a one-at-a-time run would.
        """
        if not self._reader.parallel:
            keys = keys[:1]
        cache.update(zip(keys, self._reader.map(read, keys), strict=True))

    def tables_if_read(self) -> list[TableRef] | None:
        """The tables, when the workspace list and every detail were already read; else None.

        For checks that must cost no request (the run read them anyway, or it does not check).
        """
        if self._workspaces is None:
            return None
        keys = {(str(w["type"]), str(w["id"])) for w in self._workspaces}
        if not keys <= set(self._details):
            return None
        return self.tables()

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
        return select_tables(tables, self._table_ids, what="seen by the app")

    def projects(self) -> Iterator[tuple[WorkspaceKey, dict[str, Any]]]:
        """Every project of every workspace whose detail can be read, with its workspace."""
        for workspace in self.workspaces():
            key = WorkspaceKey(type=str(workspace["type"]), id=str(workspace["id"]))
            for project in self._projects(workspace):
                yield key, project

    def every_detail_read(self, stream: str) -> bool:
        """Whether every workspace's detail was read (else `stream` is told why not, once).

        A stream of what the details hold may let the target drop what it did not send only
        when it sent everything: a workspace this run could not read keeps its projects.
        """
        if not self._unreadable:
            return True
        LOGGER.warning(
            "%s: no ACTIVATE_VERSION this run (what MapTable deleted stays in the warehouse "
            "until a run reads every workspace): the detail of workspace(s) %s could not be read.",
            stream,
            ", ".join(f"{k[0]}/{k[1]}" for k in sorted(self._unreadable)),
        )
        return False

    def _projects(self, workspace: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            detail = self.workspace_detail(str(workspace["type"]), str(workspace["id"]))
        except MapTableAPIError as exc:  # an answer about this workspace alone (TABLE_ERRORS)
            if (str(workspace["type"]), str(workspace["id"])) in self._unreadable:
                return []
            self._unreadable.add((str(workspace["type"]), str(workspace["id"])))
            LOGGER.warning(
                "Skipping workspace %s/%s during discovery: %s",
                workspace["type"],
                workspace["id"],
                exc,
            )
            return []
        return [p for p in detail.get("projects") or [] if isinstance(p, dict)]


def _unwrap(kept: dict[str, Any] | Exception) -> dict[str, Any]:
    """A kept answer, or the error its request ended in, raised now."""
    if isinstance(kept, Exception):
        raise kept
    return kept
