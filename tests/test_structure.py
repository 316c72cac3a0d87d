"""Workspaces, projects and table nodes: full reads that let the target drop what MapTable deleted.

Each of the three streams reads every workspace in one go and, only when it read them all, sends
ACTIVATE_VERSION after its last record: a target that supports it then removes the projects and
table nodes that MapTable no longer has. A run that could not read some workspace's detail sends
none for projects and table nodes, so that workspace's projects are not removed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Run, sync, tap_config

STRUCTURE = ("workspaces", "projects", "table_nodes")


def versions_after_records(run: Run, stream: str) -> list[int]:
    """The ACTIVATE_VERSION versions of `stream`, each checked to follow every record."""
    records = [
        i for i, m in enumerate(run.messages) if m.get("stream") == stream and m["type"] == "RECORD"
    ]
    found = []
    for index, message in enumerate(run.messages):
        if message["type"] == "ACTIVATE_VERSION" and message["stream"] == stream:
            assert records
            assert index > records[-1], f"{stream}: ACTIVATE_VERSION before a record"
            found.append(message["version"])
    return found


def test_each_structure_stream_is_activated_once_after_a_complete_read(sandbox: Any) -> None:
    run = sync(tap_config(sandbox))
    for stream in STRUCTURE:
        (version,) = versions_after_records(run, stream)
        assert all(m["version"] == version for m in run.of_type("RECORD") if m["stream"] == stream)
    assert len(run.records["projects"]) == sum(
        len(sandbox.data.workspace_detail(w["type"], int(w["id"]))["projects"])
        for w in sandbox.data.workspaces()
    )
    nodes = {(r["projectId"], r["id"]) for r in run.records["table_nodes"]}
    assert len(nodes) == len(run.records["table_nodes"])


@pytest.mark.parametrize("mode", ["403", "404", "code"])
def test_a_workspace_that_cannot_be_read_keeps_its_projects(make_sandbox: Any, mode: str) -> None:
    sandbox = make_sandbox()
    hidden = sandbox.data.workspaces()[0]
    sandbox.set_workspace_fault(hidden["type"], hidden["id"], mode)
    run = sync(tap_config(sandbox))
    assert versions_after_records(run, "workspaces")
    assert versions_after_records(run, "projects") == []
    assert versions_after_records(run, "table_nodes") == []
    shown = {r["workspaceId"] for r in run.records["projects"]}
    assert str(hidden["id"]) not in shown
    assert shown  # the other workspaces' projects are extracted


def test_deleted_projects_and_nodes_are_missing_from_the_next_complete_read(
    sandbox: Any,
) -> None:
    config = tap_config(sandbox)
    first = sync(config)
    project = first.records["projects"][0]["id"]
    node = next(r["id"] for r in first.records["table_nodes"] if r["projectId"] != project)
    sandbox.delete_project(project)
    sandbox.delete_table(node)
    second = sync(config)
    assert project not in {r["id"] for r in second.records["projects"]}
    assert node not in {r["id"] for r in second.records["table_nodes"]}
    assert versions_after_records(second, "projects")
    assert versions_after_records(second, "table_nodes")
