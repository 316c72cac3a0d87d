"""Workspace pages: honoured, ignored, empty, short, exact multiples; never a duplicate."""

from __future__ import annotations

import pytest

from tests.helpers import kinds, sync, tap_config


def _workspaces_only(sandbox, page_size):
    run = sync(tap_config(sandbox, page_size=page_size), catalog=None)
    return run.records.get("workspaces", []), kinds(sandbox)["workspaces"]


@pytest.mark.parametrize(
    ("paging", "count", "page_size", "requests"),
    [
        # A page shorter than pageSize proves nothing (a server may cap its pages): the list
        # ends on the first page that brings nothing new, one request after the last data.
        ("honour", 3, 2, 3),  # full page, a short one, then an empty one
        ("honour", 4, 2, 3),  # two full pages, then an empty one
        ("honour", 0, 2, 1),  # empty at once
        ("honour", 3, 100, 2),  # one short page, then an empty one
        ("ignore", 3, 2, 2),  # everything twice: the repeat ends it, no duplicates
        ("ignore", 3, 3, 2),  # a full page repeated
        ("ignore", 3, 100, 2),  # everything, then everything again
    ],
)
def test_workspace_paging(make_sandbox, paging, count, page_size, requests) -> None:
    sandbox = make_sandbox(
        paging=paging, workspaces=count, projects_per_workspace=0, tables_per_project=0
    )
    records, sent = _workspaces_only(sandbox, page_size)
    keys = [(r["type"], r["id"]) for r in records]
    assert len(keys) == count
    assert len(set(keys)) == count
    assert sent == requests
    truth = {(w["type"], str(w["id"])) for w in sandbox.data.workspaces()}
    assert set(keys) == truth
