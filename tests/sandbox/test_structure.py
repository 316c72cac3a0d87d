"""Projects and table nodes deleted and added as a MapTable user does, and per-workspace faults.

Over real HTTP, as the tap sees them: the workspace detail, the roles and the segment endpoint must
agree with each other and with ``GET /_sandbox/tables`` after every change, or a tap test of
"a table vanished" or "a workspace went forbidden" would test nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from maptable_sandbox import FaultPlan, Sandbox, SandboxConfig
from maptable_sandbox.cli import _parser, build_config, main

API = "/open/api/v1"
ROOT = Path(__file__).resolve().parents[2]
USER_WS, ORG_WS = ("user", 164), ("org", 165)


@contextmanager
def running(**kwargs):
    with Sandbox(SandboxConfig(**kwargs)) as sb:
        yield sb


def token_of(url):
    r = requests.post(
        f"{url}{API}/auth/", json={"appId": "app-1", "appSecret": "secret-1"}, timeout=5
    )
    return r.json()["detail"]["token"]


def get(url, token, path, **params):
    return requests.get(
        f"{url}{API}{path}", headers={"Authorization": token}, params=params, timeout=10
    )


def detail_of(url, token, ws=USER_WS):
    r = get(url, token, f"/workspaces/{ws[0]}/{ws[1]}/")
    assert (r.status_code, r.json()["code"]) == (200, 0)
    return r.json()["detail"]


def roles_of(url, token, ws=USER_WS):
    return get(url, token, f"/workspaces/{ws[0]}/{ws[1]}/roles/").json()["detail"]


def segment(url, token, table_id, cursor=None):
    params = {"lastSegmentRowID": cursor} if cursor else {}
    return get(url, token, f"/tablenodes/{table_id}/partial/", **params)


def all_rows(url, token, table_id):
    rows, cursor = [], None
    for _ in range(100):
        detail = segment(url, token, table_id, cursor).json()["detail"]
        rows.extend(detail["rows"])
        if not detail["more"]:
            return rows, detail
        cursor = detail["rows"][-1]["id"]
    pytest.fail("never ended")


def admin(url, method, path, body=None):
    return requests.request(method, f"{url}/_sandbox/{path}", json=body, timeout=10)


def listed(url):
    return {t["table_id"]: t for t in admin(url, "GET", "tables").json()}


def node_ids(project, kind=None):
    """Ids of a project's nodes: all, "group" nodes, or "table" nodes (tables and big tables)."""
    return [
        n["id"]
        for n in project["tableNodes"]
        if kind is None or (n["type"] == "group") == (kind == "group")
    ]


def shape(columns):
    return [(c["name"], c["type"], c["isPrimary"]) for c in columns]


# ----- deleting -----------------------------------------------------------------------------------


def test_delete_project_over_admin_takes_its_tables_along():
    with running(rows_per_table=20) as sb:
        token = token_of(sb.url)
        doomed, kept = detail_of(sb.url, token)["projects"]
        tables = node_ids(doomed)
        assert all(segment(sb.url, token, t).status_code in (200, 400) for t in tables)
        r = admin(sb.url, "DELETE", f"projects/{doomed['id']}")
        assert r.json() == {"deleted": doomed["id"], "tableNodes": tables}
        assert detail_of(sb.url, token)["projects"] == [kept]
        role_ids = {role["id"] for role in roles_of(sb.url, token)}
        assert role_ids.isdisjoint({doomed["id"], *tables})
        assert {kept["id"], *node_ids(kept, "table")} <= role_ids
        for table_id in tables:  # the group node too, which answered 400 before
            gone = segment(sb.url, token, table_id)
            assert (gone.status_code, gone.json()["code"]) == (404, 40400)
        assert set(listed(sb.url)).isdisjoint(tables)
        assert len(listed(sb.url)) == 6
        assert [t.project_id for t in sb.data.tables()].count(doomed["id"]) == 0
        survivor = node_ids(kept, "table")[0]
        assert len(all_rows(sb.url, token, survivor)[0]) == 20
        assert admin(sb.url, "DELETE", f"projects/{doomed['id']}").status_code == 404
        assert admin(sb.url, "GET", f"projects/{kept['id']}").status_code == 405
        # In Python, a project of the other workspace.
        other = detail_of(sb.url, token, ORG_WS)["projects"][1]
        removed = sb.delete_project(other["id"])
        assert removed == other
        assert other["id"] not in [p["id"] for p in detail_of(sb.url, token, ORG_WS)["projects"]]
        assert len(sb.data.tables()) == 4
        with pytest.raises(KeyError):
            sb.delete_project(other["id"])


def test_delete_table_and_group_nodes():
    with running(rows_per_table=20) as sb:
        token = token_of(sb.url)
        project = detail_of(sb.url, token)["projects"][0]
        first, second = node_ids(project, "table")
        (group,) = node_ids(project, "group")
        sb.set_table_fault(first, "403")
        r = admin(sb.url, "DELETE", f"tables/{first}")
        assert r.json() == {"deleted": first}
        nodes = detail_of(sb.url, token)["projects"][0]["tableNodes"]
        assert [n["id"] for n in nodes] == [second, group]
        gone = segment(sb.url, token, first)
        assert (gone.status_code, gone.json()["code"]) == (404, 40400)
        assert sb.requests[-1].fault is None  # not found, not refused: its fault went with it
        assert sb.table_fault(first) is None
        assert admin(sb.url, "GET", f"tables/{first}/fault").status_code == 404
        assert admin(sb.url, "GET", f"tables/{first}/rows").status_code == 404
        assert first not in listed(sb.url)
        assert first not in {role["id"] for role in roles_of(sb.url, token)}
        assert segment(sb.url, token, group).status_code == 400
        assert sb.delete_table(group)["type"] == "group"
        assert segment(sb.url, token, group).status_code == 404
        assert node_ids(detail_of(sb.url, token)["projects"][0]) == [second]
        assert len(all_rows(sb.url, token, second)[0]) == 20
        assert admin(sb.url, "DELETE", f"tables/{first}").status_code == 404
        assert admin(sb.url, "DELETE", "tables/tblnope").status_code == 404
        assert admin(sb.url, "GET", f"tables/{second}").status_code == 405
        with pytest.raises(KeyError):
            sb.data.delete_table(group)


def test_a_table_deleted_mid_read_answers_404_never_a_broken_answer():
    with running(rows_per_table=2000, segment_size=50) as sb:
        token = token_of(sb.url)
        table_id = sb.data.tables()[0].table_id
        answers: list[tuple[int, int]] = []
        stop = threading.Event()

        def read():
            with requests.Session() as session:
                session.headers["Authorization"] = token
                while not stop.is_set():
                    r = session.get(f"{sb.url}{API}/tablenodes/{table_id}/partial/", timeout=10)
                    answers.append((r.status_code, r.json()["code"]))

        readers = [threading.Thread(target=read) for _ in range(2)]
        for reader in readers:
            reader.start()
        while len(answers) < 4:
            stop.wait(0.01)
        sb.delete_table(table_id)
        count = len(answers)
        while len(answers) < count + 4:
            stop.wait(0.01)
        stop.set()
        for reader in readers:
            reader.join(timeout=10)
        assert set(answers) <= {(200, 0), (404, 40400)}
        assert answers[0] == (200, 0)
        assert answers[-1] == (404, 40400)


# ----- adding -------------------------------------------------------------------------------------


def test_add_project_and_tables_over_admin():
    with running(rows_per_table=30, segment_size=100) as sb:
        token = token_of(sb.url)
        r = admin(sb.url, "POST", "workspaces/user/164/projects", {"name": "新项目 New"})
        assert r.status_code == 201
        project = r.json()
        assert project["name"] == "新项目 New"
        assert project["tableNodes"] == []
        assert project["id"].startswith("prj")
        assert project["createTime"] == project["updateTime"]
        assert detail_of(sb.url, token)["projects"][-1] == project
        assert {"id": project["id"], "type": "project", "role": "admin"} in roles_of(sb.url, token)
        r = admin(sb.url, "POST", f"projects/{project['id']}/tables", {"name": "新表 T", "rows": 7})
        assert r.status_code == 201
        added = r.json()
        table_id = added["table_id"]
        assert added == {
            "table_id": table_id,
            "name": "新表 T",
            "type": "table",
            "project_id": project["id"],
            "project_name": "新项目 New",
            "workspace_id": 164,
            "workspace_type": "user",
            "row_count": 7,
            "segment_count": 1,
            "fault": None,
        }
        assert listed(sb.url)[table_id] == added
        (node,) = detail_of(sb.url, token)["projects"][-1]["tableNodes"]
        assert (node["id"], node["name"], node["type"]) == (table_id, "新表 T", "table")
        assert {"id": table_id, "type": "table", "role": "admin"} in roles_of(sb.url, token)
        rows, last = all_rows(sb.url, token, table_id)
        assert [r["cells"][sb.data.columns(table_id)[0]["id"]] for r in rows] == [
            f"新表 T #{n}" for n in range(1, 8)
        ]
        assert rows == list(sb.data.rows(table_id))
        first = segment(sb.url, token, table_id).json()["detail"]
        assert first["type"] == "table"
        model = sb.data.tables()[0].table_id  # the first sample table: no lowercase "status"
        assert shape(first["columns"]) == shape(sb.data.columns(model))
        assert len({c["id"] for c in first["columns"]}) == len(first["columns"])
        assert last["more"] is False
        # Rows default to rows_per_table; a table can go into a sample project too.
        sample = detail_of(sb.url, token, ORG_WS)["projects"][0]
        second = admin(sb.url, "POST", f"projects/{sample['id']}/tables", {"name": "Two"}).json()
        assert (second["row_count"], second["workspace_type"]) == (30, "org")
        assert node_ids(detail_of(sb.url, token, ORG_WS)["projects"][0])[-1] == second["table_id"]
        columns = segment(sb.url, token, second["table_id"]).json()["detail"]["columns"]
        assert "status" in [c["name"] for c in columns]  # the 10th table: every other one has it
        assert len(listed(sb.url)) == 10
        # Mutations and drift work on added tables as on the others.
        sb.data.insert_row(table_id, {})
        assert listed(sb.url)[table_id]["row_count"] == 8


def test_added_ids_and_tables_follow_the_seed_and_are_never_reused():
    def build(seed):
        with running(seed=seed, rows_per_table=5) as sb:
            token = token_of(sb.url)
            old = {t.table_id for t in sb.data.tables()}
            project = sb.add_project("org", 165, "P")
            info = sb.add_table(project["id"], "T", rows=12)
            sb.delete_table(info.table_id)
            again = sb.add_table(project["id"], "T", rows=12)
            rows, _ = all_rows(sb.url, token, again.table_id)
            first = segment(sb.url, token, again.table_id).json()["detail"]
            assert info.table_id not in old
            assert again.table_id not in {info.table_id, *old}
            return project["id"], info.table_id, again.table_id, rows, first["columns"]

    one, two, other = build(3), build(3), build(4)
    assert one == two
    assert one[:3] != other[:3]
    assert one[3] != other[3]


def test_adding_is_checked():
    with running() as sb:
        project_id = sb.data.tables()[0].project_id
        bad = [
            ("workspaces/user/999/projects", {"name": "x"}, 404),
            ("workspaces/nope/164/projects", {"name": "x"}, 404),
            ("workspaces/user/abc/projects", {"name": "x"}, 404),
            ("workspaces/user/164/projects", {"name": 5}, 400),
            ("workspaces/user/164/projects", {}, 400),
            ("projects/prjnope/tables", {"name": "x"}, 404),
            (f"projects/{project_id}/tables", {"name": "x", "rows": -1}, 400),
            (f"projects/{project_id}/tables", {"name": "x", "rows": "5"}, 400),
            (f"projects/{project_id}/tables", {"name": "x", "rows": True}, 400),
            (f"projects/{project_id}/tables", {"rows": 5}, 400),
        ]
        for path, body, status in bad:
            assert admin(sb.url, "POST", path, body).status_code == status, (path, body)
        assert admin(sb.url, "GET", "workspaces/user/164/projects").status_code == 405
        assert admin(sb.url, "GET", f"projects/{project_id}/tables").status_code == 405
        assert len(sb.data.tables()) == 8
        with pytest.raises(KeyError):
            sb.add_project("user", 165, "wrong type")
        with pytest.raises(ValueError, match="rows"):
            sb.add_table(project_id, "x", rows=-1)
        with pytest.raises(TypeError):
            sb.add_table(project_id, None)
        sb.delete_project(project_id)
        assert admin(
            sb.url, "POST", f"projects/{project_id}/tables", {"name": "x"}
        ).status_code == (404)


# ----- per-workspace faults -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status", "code"), [("403", 403, 40300), ("404", 404, 40400), ("code", 200, 40300)]
)
def test_workspace_fault_refuses_that_workspace_only(mode, status, code):
    with running(workspace_faults={"user/164": mode}) as sb:
        token = token_of(sb.url)
        for path in ("/workspaces/user/164/", "/workspaces/user/164/roles/"):
            refused = get(sb.url, token, path)
            assert refused.status_code == status
            body = refused.json()
            assert (body["code"], body["detail"]) == (code, None)
            if code == 40300:
                assert body["message"] == "no permission to access this workspace"
        assert detail_of(sb.url, token, ORG_WS)["projects"]
        assert roles_of(sb.url, token, ORG_WS)
        assert get(sb.url, token, "/workspaces/").json()["detail"][0]["id"] == 164
        table_id = sb.data.tables()[0].table_id  # its tables are still readable
        assert segment(sb.url, token, table_id).json()["code"] == 0
        log = sb.requests[-6:]
        assert [(e.kind, e.fault, e.status) for e in log[:2]] == [
            ("workspace", f"workspace:{mode}", status),
            ("roles", f"workspace:{mode}", status),
        ]
        assert {e.fault for e in log[2:]} == {None}
        assert sb.workspace_fault("user", 164) == mode
        assert sb.workspace_fault("org", 165) is None


def test_workspace_fault_set_and_cleared_at_run_time():
    with running() as sb:
        token = token_of(sb.url)
        r = admin(sb.url, "POST", "workspaces/org/165/fault", {"mode": "403"})
        assert r.json() == {"workspace_type": "org", "workspace_id": 165, "mode": "403"}
        assert get(sb.url, token, "/workspaces/org/165/").status_code == 403
        assert admin(sb.url, "GET", "workspaces/org/165/fault").json()["mode"] == "403"
        sb.set_workspace_fault("org", 165, "code")
        answer = get(sb.url, token, "/workspaces/org/165/")
        assert (answer.status_code, answer.json()["code"]) == (200, 40300)
        cleared = admin(sb.url, "POST", "workspaces/org/165/fault", {"mode": None})
        assert cleared.json()["mode"] is None
        assert detail_of(sb.url, token, ORG_WS)["projects"]
        sb.set_workspace_fault("user", 164, "404")
        sb.set_workspace_fault("user", 164, None)
        assert detail_of(sb.url, token)["projects"]
        assert [e.fault for e in sb.requests[-4:]] == [
            "workspace:403",
            "workspace:code",
            None,
            None,
        ]


def test_workspace_faults_do_not_count_against_max_faults():
    with running() as sb:
        token = token_of(sb.url)
        sb.set_workspace_fault("user", 164, "403")
        sb.set_faults(FaultPlan(rates={"500": 1.0}, kinds_for=("rows",), max_faults=1))
        assert get(sb.url, token, "/workspaces/user/164/").status_code == 403
        table_id = sb.data.tables()[0].table_id
        assert segment(sb.url, token, table_id).status_code == 500
        assert segment(sb.url, token, table_id).status_code == 200


def test_workspace_faults_are_checked():
    with running() as sb:
        assert (
            admin(sb.url, "POST", "workspaces/user/999/fault", {"mode": "403"}).status_code == 404
        )
        assert admin(sb.url, "GET", "workspaces/org/164/fault").status_code == 404
        for body in ({"mode": "500"}, {"mode": 403}, {}, {"mode": "403_after_first"}):
            assert admin(sb.url, "POST", "workspaces/user/164/fault", body).status_code == 400
        assert admin(sb.url, "DELETE", "workspaces/user/164/fault").status_code == 405
        with pytest.raises(KeyError):
            sb.set_workspace_fault("org", 164, "403")
        with pytest.raises(ValueError, match="workspace fault mode"):
            sb.set_workspace_fault("user", 164, "bad_columns")
        assert sb.workspace_fault("user", 164) is None
    with pytest.raises(ValueError, match="workspace fault mode"):
        SandboxConfig(workspace_faults={"user/164": "500"})
    for key in ("user164", "user/", "/164", "user/x"):
        with pytest.raises(ValueError, match="TYPE/ID"):
            SandboxConfig(workspace_faults={key: "403"})
    with pytest.raises(ValueError, match="names no workspace"):
        Sandbox(SandboxConfig(workspace_faults={"org/164": "403"}))


# ----- CLI --------------------------------------------------------------------------------------


def test_cli_workspace_fault_flag(capsys):
    args = ["--workspace-fault", "user/164=403", "--workspace-fault", "org/165=code"]
    config = build_config(_parser().parse_args(args))
    assert config.workspace_faults == {"user/164": "403", "org/165": "code"}
    assert build_config(_parser().parse_args([])).workspace_faults == {}
    for bad in ("user/164=500", "user164=403", "user/x=403", "=403"):
        with pytest.raises(SystemExit) as exit_info:
            main(["--workspace-fault", bad])
        assert exit_info.value.code == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["--workspace-fault", "org/164=404"])
    assert exit_info.value.code == 2
    assert "names no workspace" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--workspace-fault TYPE/ID=MODE" in help_text


def test_cli_process_structure_and_workspace_fault_over_admin():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "maptable_sandbox", "--workspace-fault", "org/165=404"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    try:
        url = proc.stdout.readline().split()[-1]
        token = token_of(url)
        assert get(url, token, "/workspaces/org/165/").status_code == 404
        project = admin(url, "POST", "workspaces/user/164/projects", {"name": "P"}).json()
        table = admin(url, "POST", f"projects/{project['id']}/tables", {"name": "T", "rows": 3})
        table_id = table.json()["table_id"]
        assert len(all_rows(url, token, table_id)[0]) == 3
        assert table_id in listed(url)
        assert admin(url, "DELETE", f"projects/{project['id']}").json()["tableNodes"] == [table_id]
        assert segment(url, token, table_id).status_code == 404
        assert table_id not in listed(url)
        assert admin(url, "POST", "workspaces/org/165/fault", {"mode": None}).status_code == 200
        assert detail_of(url, token, ORG_WS)["projects"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert proc.returncode == 0
