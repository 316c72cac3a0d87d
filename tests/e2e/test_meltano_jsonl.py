"""`meltano run` and the older `meltano el` / `meltano elt` into target-jsonl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tap_maptable.columns import parse_timestamp
from tests.e2e.support import (
    bookmarks,
    column_ids,
    meltano,
    meltano_env,
    sent_again,
    state_of,
    stream_of,
    truth_entities,
    truth_rows,
    unique,
)

pytestmark = [pytest.mark.xdist_group("meltano"), pytest.mark.slow]

LOADER = "target-jsonl"


def read_jsonl(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Stream -> its records, from target-jsonl's `<stream>.jsonl` files."""
    return {
        path.stem: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for path in sorted(folder.glob("*.jsonl"))
    }


def jsonl_env(sandbox: Any, folder: Path) -> dict[str, str]:
    return meltano_env(
        sandbox,
        TARGET_JSONL_DESTINATION_PATH=str(folder),
        TARGET_JSONL_DO_TIMESTAMP_FILE="false",
    )


def test_run_sends_every_workspace_project_node_and_row_once(
    meltano_project, make_sandbox, tmp_path
):
    sandbox = make_sandbox()
    env = jsonl_env(sandbox, tmp_path)
    meltano(["run", "--state-id-suffix", unique("jsonl"), "tap-maptable", LOADER], env)

    files = read_jsonl(tmp_path)
    truth = truth_rows(sandbox)
    entities = truth_entities(sandbox)
    assert set(files) == {"workspaces", "projects", "table_nodes", *truth}
    assert sorted(f"{w['type']}/{w['id']}" for w in files["workspaces"]) == sorted(
        entities["workspaces"]
    )
    assert sorted(p["id"] for p in files["projects"]) == sorted(entities["projects"])
    assert sorted(n["id"] for n in files["table_nodes"]) == sorted(entities["table_nodes"])
    for stream, rows in truth.items():
        ids = [record["_row_id"] for record in files[stream]]
        assert len(ids) == len(set(ids)), f"{stream}: a row was sent twice"
        assert {record["_row_id"]: record for record in files[stream]} == rows, stream


def test_el_and_elt_keep_state_between_runs(meltano_project, make_sandbox, tmp_path):
    """`meltano el` and `meltano elt` share one --state-id: each resumes where the other ended."""
    sandbox = make_sandbox()
    state_id = unique("el-elt")
    table = sandbox.data.tables()[0]
    stream = stream_of(table.table_id)
    amount = column_ids(sandbox, table.table_id)["Amount"]

    def run(command: str, folder: str) -> dict[str, list[dict[str, Any]]]:
        out = tmp_path / folder
        meltano(
            [command, "tap-maptable", LOADER, "--state-id", state_id],
            jsonl_env(sandbox, out),
        )
        return read_jsonl(out)

    env = jsonl_env(sandbox, tmp_path)
    first = run("el", "first")
    truth = truth_rows(sandbox)
    assert {s: len(first[s]) for s in truth} == {s: len(r) for s, r in truth.items()}
    marks = bookmarks(state_of(state_id, env))
    assert set(marks) == set(truth)

    # elt (with no transformer, the same as el) picks up from el's state...
    updated = next(iter(truth[stream]))
    sandbox.data.update_row(table.table_id, updated, {amount: 99.5})
    second = run("elt", "second")
    for name, rows in truth_rows(sandbox).items():
        expected = sent_again(rows, marks[name])
        assert {r["_row_id"] for r in second.get(name, [])} == expected, name
    assert updated in {r["_row_id"] for r in second[stream]}
    assert next(r for r in second[stream] if r["_row_id"] == updated)["Amount"] == 99.5
    marks_after_elt = bookmarks(state_of(state_id, env))
    assert parse_timestamp(marks_after_elt[stream]) > parse_timestamp(marks[stream]), "elt saved"

    # ...and el picks up from elt's bookmark: the old rows on the old bookmark stay behind.
    third = run("el", "third")
    after = truth_rows(sandbox)
    sent = {r["_row_id"] for r in third[stream]}
    assert sent == sent_again(after[stream], marks_after_elt[stream])
    assert sent < {r["_row_id"] for r in second[stream]}
