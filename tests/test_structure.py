"""Workspaces, projects and table nodes: full reads that let the target drop what MapTable deleted.

Each of the three streams reads every workspace in one go and, only when it read them all, sends
ACTIVATE_VERSION after its last record: a target that supports it then removes the projects and
table nodes that MapTable no longer has. A run that could not read some workspace's detail sends
none for projects and table nodes, so that workspace's projects are not removed.
"""

from __future__ import annotations

from typing import Any

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
