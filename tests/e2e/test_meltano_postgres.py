"""`meltano run tap-maptable target-postgres` into a private PostgreSQL server."""

# ruff: noqa: S608 - table names in SQL come from the sandbox or the warehouse, not from users

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from tests.e2e.support import (
    FULL_TABLE_METADATA,
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
from tests.e2e.warehouse import FIXED_STREAMS, Warehouse, check_entities, check_rows

if TYPE_CHECKING:
    from tests.e2e.conftest import Postgres

pytestmark = [pytest.mark.xdist_group("meltano"), pytest.mark.slow, pytest.mark.postgres]

PIPELINE = ["tap-maptable", "target-postgres"]


@contextlib.contextmanager
def opened(postgres: Postgres, database: str) -> Iterator[Warehouse]:
    with psycopg.connect(postgres.dsn(database)) as conn:
        # target-postgres keeps names as sent, and empty strings as empty strings.
        yield Warehouse(conn, lower_names=False, empty_text_is_null=False, exact_numbers=True)


def pg_env(sandbox: Any, postgres: Postgres, database: str, **extra: str) -> dict[str, str]:
    return meltano_env(
        sandbox,
        TARGET_POSTGRES_HOST=postgres.host,
        TARGET_POSTGRES_PORT=str(postgres.port),
        TARGET_POSTGRES_USER=postgres.user,
        TARGET_POSTGRES_DATABASE=database,
        # The server trusts 127.0.0.1, but the target insists on a password.
        TARGET_POSTGRES_PASSWORD="unused-with-trust-auth",
        **extra,
    )


def loaded_at(postgres: Postgres, database: str, table: str) -> dict[str, Any]:
    """Row id -> when the target last loaded it."""
    with opened(postgres, database) as wh:
        return dict(wh.query(f'SELECT "_row_id", "_sdc_batched_at" FROM maptable."{table}"'))


def test_rows_land_once_with_types_then_incremental_updates(
    meltano_project, make_sandbox, postgres
):
    sandbox = make_sandbox()
    database = postgres.create_database(unique("pg").replace("-", "_"))
    suffix = unique("pg")
    env = pg_env(sandbox, postgres, database)
    meltano(["run", "--state-id-suffix", suffix, *PIPELINE], env)

    truth = truth_rows(sandbox)
    with opened(postgres, database) as wh:
        assert wh.tables() == {*FIXED_STREAMS, *truth}
        check_entities(wh, truth_entities(sandbox))
        for table, rows in truth.items():
            check_rows(wh, table, rows)
        types = wh.column_types(next(iter(truth)))
        project_types = wh.column_types("projects")
        node_types = wh.column_types("table_nodes")
    assert types["Amount"] == "NUMERIC"
    assert types["单价"] == "NUMERIC"
    assert types["Due date"] == "TIMESTAMP WITHOUT TIME ZONE"
    assert types["_updated_at"] == "TIMESTAMP WITHOUT TIME ZONE"
    assert types["Location"] == "JSONB"
    assert types["Files"] == "JSONB"
    # Every documented MapTable type has its warehouse type (README, "Types").
    assert types["Done"] == "BOOLEAN"
    assert types["Website"] == "JSONB"
    assert types["Discount"] == "NUMERIC"
    assert types["Quantity"] == "NUMERIC"
    assert any(name.startswith("_column_fld") for name in types)
    assert project_types["creator"] == "JSONB"
    assert project_types["memberCount"] == "BIGINT"
    assert types["名称"] == "TEXT"
    assert types["_row_id"] == "TEXT"
    assert node_types["published"] == "BOOLEAN"

    state_id = f"dev:tap-maptable-to-target-postgres:{suffix}"
    marks = bookmarks(state_of(state_id, env))
    table = sandbox.data.tables()[1]
    stream = stream_of(table.table_id)
    ids = column_ids(sandbox, table.table_id)
    changed = set(list(truth[stream])[:2])
    for row_id in changed:
        sandbox.data.update_row(table.table_id, row_id, {ids["Amount"]: 0.25, ids["Notes"]: "改"})
    before = {name: loaded_at(postgres, database, name) for name in truth}
    second = meltano(["run", "--state-id-suffix", suffix, *PIPELINE], env)

    after_truth = truth_rows(sandbox)
    with opened(postgres, database) as wh:
        for name, rows in after_truth.items():
            check_rows(wh, name, rows)
    counts = second.record_counts()
    for name, rows in after_truth.items():
        expected = sent_again(rows, marks[name])
        assert name != stream or changed <= expected
        after = loaded_at(postgres, database, name)
        assert {r for r in after if after[r] != before[name][r]} == expected, name
        assert counts.get(name, 0) == len(expected), name


def test_full_table_soft_then_hard_deletes(meltano_project, make_sandbox, postgres):
    sandbox = make_sandbox()
    database = postgres.create_database(unique("pgdel").replace("-", "_"))
    suffix = unique("pg-full")
    env = pg_env(sandbox, postgres, database, TAP_MAPTABLE__METADATA=FULL_TABLE_METADATA)
    meltano(["run", "--state-id-suffix", suffix, *PIPELINE], env)

    table = sandbox.data.tables()[0]
    stream = stream_of(table.table_id)
    first, second = list(truth_rows(sandbox)[stream])[:2]

    # activate_version on, hard_delete off: the deleted row stays, stamped in _sdc_deleted_at.
    sandbox.data.delete_row(table.table_id, first)
    meltano(["run", "--state-id-suffix", suffix, *PIPELINE], env)
    truth = truth_rows(sandbox)
    with opened(postgres, database) as wh:
        deleted = wh.query(
            f'SELECT "_row_id" FROM maptable."{stream}" WHERE "_sdc_deleted_at" IS NOT NULL'
        )
        live = wh.query(f'SELECT count(*) FROM maptable."{stream}" WHERE "_sdc_deleted_at" IS NULL')
    assert deleted == [(first,)]
    assert live == [(len(truth[stream]),)]

    # hard_delete on: the next FULL_TABLE run removes deleted rows.
    sandbox.data.delete_row(table.table_id, second)
    meltano(
        ["run", "--state-id-suffix", suffix, *PIPELINE],
        {**env, "TARGET_POSTGRES_HARD_DELETE": "true"},
    )
    truth = truth_rows(sandbox)
    with opened(postgres, database) as wh:
        check_rows(wh, stream, truth[stream])  # exactly the live rows, each once
        for name, rows in truth.items():
            landed = wh.query(f'SELECT count(*) FROM maptable."{name}"')
            assert landed == [(len(rows),)], name


def test_deleted_projects_and_table_nodes_leave_the_warehouse(
    meltano_project, make_sandbox, postgres
):
    """workspaces, projects and table_nodes carry ACTIVATE_VERSION after a complete read."""
    sandbox = make_sandbox()
    database = postgres.create_database(unique("pgstruct").replace("-", "_"))
    suffix = unique("pg-struct")
    env = pg_env(sandbox, postgres, database, TARGET_POSTGRES_HARD_DELETE="true")
    meltano(["run", "--state-id-suffix", suffix, *PIPELINE], env)
    truth = truth_entities(sandbox)
    with opened(postgres, database) as wh:
        check_entities(wh, truth)

    workspace = sandbox.data.workspaces()[0]
    detail = sandbox.data.workspace_detail(workspace["type"], int(workspace["id"]))
    project = detail["projects"][0]
    other = detail["projects"][1]
    node = other["tableNodes"][0]["id"]
    sandbox.delete_project(str(project["id"]))
    sandbox.delete_table(str(node))
    meltano(["run", "--state-id-suffix", suffix, *PIPELINE], env)

    after = truth_entities(sandbox)
    assert str(project["id"]) not in after["projects"]
    assert str(node) not in after["table_nodes"]
    with opened(postgres, database) as wh:
        check_entities(wh, after)  # exactly what MapTable has now, each once
