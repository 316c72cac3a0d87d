"""The sandbox over real HTTP: it must be strict and realistic, or the tap's tests prove nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from maptable_sandbox import FaultPlan, RequestLogEntry, Sandbox, SandboxConfig

API = "/open/api/v1"
ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running(**kwargs):
    with Sandbox(SandboxConfig(**kwargs)) as sb:
        yield sb


def auth(sb, app_id="app-1", secret="secret-1"):  # noqa: S107
    return requests.post(
        f"{sb.url}{API}/auth/", json={"appId": app_id, "appSecret": secret}, timeout=5
    )


def token_pair(sb):
    detail = auth(sb).json()["detail"]
    return detail["token"], detail["refreshToken"]


def get(sb, path, token, **params):
    return requests.get(
        f"{sb.url}{API}{path}", headers={"Authorization": token}, params=params, timeout=10
    )


def all_rows(sb, token, table_id, **extra):
    rows, segments, cursor = [], [], None
    for _ in range(10_000):
        params = dict(extra)
        if cursor:
            params["lastSegmentRowID"] = cursor
        detail = get(sb, f"/tablenodes/{table_id}/partial/", token, **params).json()["detail"]
        segments.append(detail)
        rows.extend(detail["rows"])
        if not detail["more"]:
            return rows, segments
        cursor = detail["rows"][-1]["id"]
    pytest.fail("never ended")


# ----- auth -------------------------------------------------------------------------------------


def test_auth_ok_returns_bearer_jwts_in_envelope():
    with running() as sb:
        r = auth(sb)
        body = r.json()
        assert r.status_code == 200
        assert set(body) == {"code", "message", "detail", "extra", "requestID"}
        assert body["code"] == 0
        assert body["extra"] is None
        assert isinstance(body["requestID"], str)
        assert body["detail"]["token"].startswith("Bearer ey")
        assert body["detail"]["refreshToken"].startswith("Bearer ey")
        assert body["detail"]["token"] in sb.issued_secrets()
        assert body["detail"]["token"].removeprefix("Bearer ") in sb.issued_secrets()
        assert "secret-1" in sb.issued_secrets()
        assert r.headers["Content-Length"] == str(len(r.content))
        assert auth(sb).json()["requestID"] != body["requestID"]


@pytest.mark.parametrize(
    "payload",
    [{"appId": "app-1", "appSecret": "nope"}, {"appId": "x", "appSecret": "secret-1"}, {}],
)
def test_auth_wrong_credentials_401(payload):
    with running() as sb:
        r = requests.post(f"{sb.url}{API}/auth/", json=payload, timeout=5)
        assert r.status_code == 401
        assert r.json()["code"] == 40101
        assert r.json()["message"] == "invalid appId or appSecret"


def test_refresh_rotates_and_old_refresh_dies():
    with running() as sb:
        token, refresh = token_pair(sb)
        url = f"{sb.url}{API}/token/refresh/"
        r = requests.post(
            url, headers={"Authorization": refresh}, json={"refreshtoken": refresh}, timeout=5
        )
        assert r.status_code == 200
        new_token, new_refresh = r.json()["detail"]["token"], r.json()["detail"]["refreshToken"]
        assert new_token != token
        assert new_refresh != refresh
        again = requests.post(
            url, headers={"Authorization": refresh}, json={"refreshtoken": refresh}, timeout=5
        )
        assert again.status_code == 401
        assert again.json()["code"] == 40102
        assert get(sb, "/workspaces/", token).status_code == 200  # old access token still valid
        assert get(sb, "/workspaces/", new_token).status_code == 200
        as_refresh = requests.post(
            url, headers={"Authorization": token}, json={"refreshtoken": token}, timeout=5
        )
        assert as_refresh.json()["code"] == 40102


def test_expired_token_401_even_without_exp_claim():
    with running(token_ttl=1, include_exp=False) as sb:
        token, _ = token_pair(sb)
        assert get(sb, "/workspaces/", token).status_code == 200
        time.sleep(1.1)
        r = get(sb, "/workspaces/", token)
        assert r.status_code == 401
        assert r.json()["code"] == 40103


@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        (lambda t: "Bearer " + t, 40104),
        (lambda t: t.removeprefix("Bearer "), 40104),
        (lambda t: t[:-3] + "abc", 40104),
        (lambda _t: "Bearer not-a-jwt", 40104),
        (lambda _t: "", 40100),
    ],
)
def test_bad_tokens_401(mangle, code):
    with running() as sb:
        token, refresh = token_pair(sb)
        r = get(sb, "/workspaces/", mangle(token))
        assert r.status_code == 401
        assert r.json()["code"] == code
        assert get(sb, "/workspaces/", refresh).json()["code"] == 40104


def test_revoke_tokens():
    with running() as sb:
        token, _ = token_pair(sb)
        sb.revoke_tokens()
        assert get(sb, "/workspaces/", token).json()["code"] == 40104
        assert get(sb, "/workspaces/", token_pair(sb)[0]).status_code == 200


# ----- workspaces -------------------------------------------------------------------------------


def test_workspaces_paging_honour_and_ignore():
    with running(workspaces=5) as sb:
        token, _ = token_pair(sb)
        everything = get(sb, "/workspaces/", token).json()["detail"]
        assert [w["id"] for w in everything] == [164, 165, 166, 167, 168]
        assert {w["type"] for w in everything} == {"user", "org"}
        pages = [
            get(sb, "/workspaces/", token, page=p, pageSize=2).json()["detail"]
            for p in (1, 2, 3, 4)
        ]
        assert [len(p) for p in pages] == [2, 2, 1, 0]
        assert [w for page in pages for w in page] == everything
        for bad in ({"page": 0}, {"pageSize": "x"}, {"page": -1, "pageSize": 2}):
            r = get(sb, "/workspaces/", token, **bad)
            assert r.status_code == 400
            assert r.json()["code"] == 40000
    with running(workspaces=5, paging="ignore") as sb:
        token, _ = token_pair(sb)
        assert len(get(sb, "/workspaces/", token, page=2, pageSize=2).json()["detail"]) == 5


def test_workspace_detail_roles_and_404():
    with running() as sb:
        token, _ = token_pair(sb)
        ws = get(sb, "/workspaces/", token).json()["detail"][1]
        detail = get(sb, f"/workspaces/{ws['type']}/{ws['id']}/", token).json()["detail"]
        assert {"currentUser", "projects", "recycleProjects", "dataFiles"} <= set(detail)
        node_types = {n["type"] for p in detail["projects"] for n in p["tableNodes"]}
        assert node_types == {"table", "bigTable", "group"}
        roles = get(sb, f"/workspaces/{ws['type']}/{ws['id']}/roles/", token).json()["detail"]
        assert {r["type"] for r in roles} >= {"project", "table"}
        for path in (f"/workspaces/user/{ws['id']}/", "/workspaces/org/999/", "/nope/"):
            r = get(sb, path, token)
            assert r.status_code == 404
            assert r.json()["code"] == 40400


# ----- rows -------------------------------------------------------------------------------------


def test_segments_cover_every_row_once():
    with running(rows_per_table=250, segment_size=100) as sb:
        token, _ = token_pair(sb)
        table = sb.data.tables()[1]
        rows, segments = all_rows(sb, token, table.table_id, viewId="whatever")
        assert [len(s["rows"]) for s in segments] == [100, 100, 50]
        assert segments[0]["segmentType"] == "segmentStart"
        assert {"columns", "views"} <= set(segments[0])
        for later in segments[1:]:
            assert later["segmentType"] == "segmentFrame"
            assert "columns" not in later
            assert "views" not in later
        assert [s["more"] for s in segments] == [True, True, False]
        ids = [r["id"] for r in rows]
        assert ids == sorted(ids)
        assert len(set(ids)) == 250
        assert rows == list(sb.data.rows(table.table_id))
        names = [c["name"] for c in segments[0]["columns"]]
        assert names.count("Amount") == 2
        assert "" in names
        assert "status" in names  # odd table: collides with "Status"


def test_rows_errors():
    with running() as sb:
        token, _ = token_pair(sb)
        table_id = sb.data.tables()[0].table_id
        bad = get(sb, f"/tablenodes/{table_id}/partial/", token, lastSegmentRowID="zz")
        assert (bad.status_code, bad.json()["code"]) == (400, 40001)
        other = sb.data.tables()[1].table_id
        foreign = sb.data.row_id(other, 3)
        assert (
            get(sb, f"/tablenodes/{table_id}/partial/", token, lastSegmentRowID=foreign).json()[
                "code"
            ]
            == 40001
        )
        assert get(sb, "/tablenodes/tblnope/partial/", token).status_code == 404
        ws = get(sb, "/workspaces/", token).json()["detail"][0]
        detail = get(sb, f"/workspaces/{ws['type']}/{ws['id']}/", token).json()["detail"]
        group = next(n for n in detail["projects"][0]["tableNodes"] if n["type"] == "group")
        r = get(sb, f"/tablenodes/{group['id']}/partial/", token)
        assert r.status_code == 400
        assert r.json()["code"] != 0


def test_mutations_and_deleted_cursor():
    with running(rows_per_table=30, segment_size=10) as sb:
        token, _ = token_pair(sb)
        table_id = sb.data.tables()[0].table_id
        first = get(sb, f"/tablenodes/{table_id}/partial/", token).json()["detail"]
        cursor = first["rows"][-1]["id"]
        before = first["rows"][0]
        primary = next(c["id"] for c in first["columns"] if c["isPrimary"])
        admin = f"{sb.url}/_sandbox/tables/{table_id}/rows"
        updated = requests.post(
            f"{admin}/{before['id']}", json={"cells": {primary: "changed"}}, timeout=5
        ).json()
        assert updated["cells"][primary] == "changed"
        assert updated["meta"]["updateTime"] > before["meta"]["updateTime"]
        assert updated["meta"]["updateTime"].endswith("Z")
        assert requests.delete(f"{admin}/{cursor}", timeout=5).status_code == 200
        inserted = requests.post(admin, json={"cells": {primary: "new"}}, timeout=5).json()
        nxt = get(sb, f"/tablenodes/{table_id}/partial/", token, lastSegmentRowID=cursor).json()
        assert nxt["detail"]["rows"][0]["id"] > cursor
        rows, _ = all_rows(sb, token, table_id)
        assert len(rows) == 30 == sb.data.row_count(table_id)
        assert rows[-1]["id"] == inserted["id"]
        assert rows[0]["cells"][primary] == "changed"
        assert cursor not in {r["id"] for r in rows}
        assert sb.requests  # admin calls are not logged, API calls are
        assert all(not e.path.startswith("/_sandbox") for e in sb.requests)


def test_million_row_table_is_lazy():
    with running(rows_per_table=10, segment_size=1000, table_rows={}) as probe:
        big_id = probe.data.tables()[0].table_id
    with running(table_rows={big_id: 1_000_000}, segment_size=1000) as sb:
        token, _ = token_pair(sb)
        start = time.monotonic()
        first = get(sb, f"/tablenodes/{big_id}/partial/", token).json()["detail"]
        near_end = sb.data.row_id(big_id, 1_000_000 - 501)
        last = get(sb, f"/tablenodes/{big_id}/partial/", token, lastSegmentRowID=near_end)
        assert time.monotonic() - start < 3
        assert len(first["rows"]) == 1000
        assert first["more"] is True
        assert len(last.json()["detail"]["rows"]) == 500
        assert last.json()["detail"]["more"] is False
        assert sb.data.row_count(big_id) == 1_000_000


def test_data_quirks_present():
    with running(rows_per_table=2000) as sb:
        table_id = sb.data.tables()[0].table_id
        columns = {c["id"]: c for c in sb.data.columns(table_id)}
        rows = list(sb.data.rows(table_id))
        values = [(columns[k]["type"], v) for r in rows for k, v in r["cells"].items()]
        assert any(t == "number" and isinstance(v, str) for t, v in values)
        assert any(t == "datetime" and v == "0001-01-01T00:00:00Z" for t, v in values)
        dates = [v for t, v in values if t == "datetime"]
        assert any(isinstance(v, str) and v.endswith("+08:00") for v in dates)
        assert any(isinstance(v, str) and v.endswith("Z") and v[0] == "2" for v in dates)
        assert any(isinstance(v, str) and v[-3] == ":" and "+" not in v[10:] for v in dates)
        epoch_ms = [v for v in dates if isinstance(v, int)]
        assert len(epoch_ms) > 0.8 * len(dates)  # documented: epoch milliseconds
        assert all(1_704_067_200_000 <= v < 1_767_225_600_000 for v in epoch_ms)
        assert any(r["meta"]["updateTime"] == "0001-01-01T00:00:00Z" for r in rows)
        assert any(len(r["cells"]) < len(columns) for r in rows)
        ok = [
            r["meta"]
            for r in rows
            if "0001" not in r["meta"]["createTime"] + r["meta"]["updateTime"]
        ]
        assert all(m["updateTime"] >= m["createTime"] for m in ok)
        assert list(Sandbox(SandboxConfig(rows_per_table=2000)).data.rows(table_id)) == rows


# ----- rate limit -------------------------------------------------------------------------------


def test_rate_limit_sliding_window():
    with running(rate_limit=5, rate_window=1.0) as sb:
        token, _ = token_pair(sb)  # request 1
        codes = [get(sb, "/workspaces/", token).status_code for _ in range(4)]
        assert codes == [200] * 4
        r = get(sb, "/workspaces/", token)
        assert r.status_code == 429
        assert r.json()["code"] == 42900
        assert int(r.headers["Retry-After"]) >= 1
        assert sb.requests[-1].rate_limited
        time.sleep(1.05)
        assert get(sb, "/workspaces/", token).status_code == 200


def test_rate_limit_disabled_and_per_app():
    with running(rate_limit=2, rate_window=10, apps={"a": "1", "b": "2"}) as sb:
        assert auth(sb, app_id="a", secret="1").status_code == 200
        assert auth(sb, app_id="a", secret="1").status_code == 200
        assert auth(sb, app_id="a", secret="1").status_code == 429
        assert auth(sb, app_id="b", secret="2").status_code == 200
    with running(rate_limit=0) as sb:
        assert all(auth(sb).status_code == 200 for _ in range(70))


# ----- faults -----------------------------------------------------------------------------------


def _raw(sb, token):
    return requests.get(f"{sb.url}{API}/workspaces/", headers={"Authorization": token}, timeout=10)


@pytest.mark.parametrize(
    ("kind", "status", "check"),
    [
        ("500", 500, lambda r: r.json()["code"] == 50000),
        ("503", 503, lambda r: r.json()["code"] != 0),
        ("html502", 502, lambda r: r.headers["Content-Type"].startswith("text/html")),
        ("code", 200, lambda r: r.json()["code"] == 50001 and r.json()["detail"] is None),
        ("429", 429, lambda r: r.headers["Retry-After"] == "1"),
        ("401", 401, lambda r: r.json()["code"] == 40103),
    ],
)
def test_answer_faults(kind, status, check):
    with running() as sb:
        token, _ = token_pair(sb)
        sb.set_faults(FaultPlan(schedule={1: kind}))
        r = _raw(sb, token)
        assert r.status_code == status
        assert check(r)
        assert sb.requests[-1].fault == kind
        assert _raw(sb, token).status_code == 200


def test_truncate_drop_timeout_and_refresh_reject():
    with running() as sb:
        token, refresh = token_pair(sb)
        sb.set_faults(
            FaultPlan(schedule={1: "truncate", 2: "drop", 3: "timeout"}, timeout_delay=0.5)
        )
        r = _raw(sb, token)
        assert r.status_code == 200
        assert r.headers["Content-Length"] == str(len(r.content))
        with pytest.raises(json.JSONDecodeError):
            json.loads(r.content)
        with pytest.raises(requests.ConnectionError):
            _raw(sb, token)
        assert sb.requests[-1].status == 0
        with pytest.raises(requests.Timeout):
            requests.get(
                f"{sb.url}{API}/workspaces/", headers={"Authorization": token}, timeout=0.2
            )
        sb.set_faults(FaultPlan(schedule={1: "refresh_reject"}))
        url = f"{sb.url}{API}/token/refresh/"
        body = {"refreshtoken": refresh}
        r = requests.post(url, headers={"Authorization": refresh}, json=body, timeout=5)
        assert r.json()["code"] == 40102
        r = requests.post(url, headers={"Authorization": refresh}, json=body, timeout=5)
        assert r.status_code == 200  # the rejected refresh did not consume the token


def test_fault_rates_deterministic_and_capped():
    def run():
        with running(rate_limit=0) as sb:
            token, _ = token_pair(sb)
            sb.set_faults(FaultPlan(rates={"500": 0.3, "code": 0.2}, seed=7, max_faults=5))
            [_raw(sb, token) for _ in range(40)]
            return [e.fault for e in sb.requests[1:]]

    first = run()
    assert first == run()
    assert sum(f is not None for f in first) == 5


@pytest.mark.parametrize("mode", ["repeat", "cycle"])
def test_segment_loops(mode):
    with running(rows_per_table=100, segment_size=10, faults=FaultPlan(segment_loop=mode)) as sb:
        token, _ = token_pair(sb)
        table_id = sb.data.tables()[0].table_id
        path = f"/tablenodes/{table_id}/partial/"
        seen, cursor = [], None
        for _ in range(8):
            params: dict[str, str] = {"lastSegmentRowID": cursor} if cursor else {}
            detail = get(sb, path, token, **params).json()["detail"]
            assert detail["more"] is True
            seen.append(tuple(r["id"] for r in detail["rows"]))
            cursor = detail["rows"][-1]["id"]
        if mode == "repeat":
            assert len(set(seen)) == 1
        else:
            assert seen[3] == seen[1]
            assert seen[4] == seen[2]
            assert len(set(seen)) == 3


# ----- log, admin, CLI --------------------------------------------------------------------------


def test_request_log_file_and_admin(tmp_path):
    log = tmp_path / "req.jsonl"
    with running(request_log_path=log) as sb:
        token, _ = token_pair(sb)
        get(sb, "/workspaces/", token, page=1, pageSize=5)
        entries = [RequestLogEntry.from_json(line) for line in log.read_text().splitlines()]
        assert entries == sb.requests
        assert entries[1].query == {"page": "1", "pageSize": "5"}
        assert [e.kind for e in entries] == ["auth", "workspaces"]
        assert entries[0].app_id == "app-1"
        admin = requests.get(f"{sb.url}/_sandbox/requests", timeout=5).json()
        assert len(admin) == 2
        secrets = set(requests.get(f"{sb.url}/_sandbox/secrets", timeout=5).json())
        assert token in secrets
        tables = requests.get(f"{sb.url}/_sandbox/tables", timeout=5).json()
        assert tables[0]["table_id"] == sb.data.tables()[0].table_id
        requests.post(
            f"{sb.url}/_sandbox/faults", data=FaultPlan(schedule={1: "500"}).to_json(), timeout=5
        )
        assert _raw(sb, token).status_code == 500
        requests.post(f"{sb.url}/_sandbox/reset-log", timeout=5)
        assert sb.requests == []
        requests.post(f"{sb.url}/_sandbox/revoke", timeout=5)
        assert _raw(sb, token).status_code == 401
    assert token not in log.read_text()


def test_fault_plan_json_round_trip():
    plan = FaultPlan(rates={"drop": 0.1}, schedule={3: "500"}, kinds_for=("rows",), max_faults=2)
    assert FaultPlan.from_json(plan.to_json()) == plan
    with pytest.raises(ValueError):
        FaultPlan(rates={"explode": 0.5})


def test_cli_serves_and_stops_on_sigterm(tmp_path):
    ready = tmp_path / "url"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "maptable_sandbox",
            "--app",
            "cli:s3cret",
            "--big-table-rows",
            "1234",
            "--ready-file",
            str(ready),
            "--faults",
            '{"schedule": {"2": "500"}}',
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline()
        assert line.startswith("maptable-sandbox listening on http://127.0.0.1:")
        url = line.split()[-1]
        for _ in range(50):
            if ready.exists():
                break
            time.sleep(0.05)
        assert ready.read_text().strip() == url
        r = requests.post(
            f"{url}{API}/auth/", json={"appId": "cli", "appSecret": "s3cret"}, timeout=5
        )
        token = r.json()["detail"]["token"]
        assert (
            requests.get(
                f"{url}{API}/workspaces/", headers={"Authorization": token}, timeout=5
            ).status_code
            == 500
        )
        tables = requests.get(f"{url}/_sandbox/tables", timeout=5).json()
        rows = requests.get(
            f"{url}/_sandbox/tables/{tables[0]['table_id']}/rows", timeout=10
        ).json()
        assert len(rows) == 1234
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out == ""
    assert "s3cret" not in err
    assert token not in err


def test_cli_bad_option_exits_2():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "maptable_sandbox", "--app", "nocolon"],
        capture_output=True,
        text=True,
        env=env,
        timeout=20,
        check=False,
    )
    assert proc.returncode == 2
    assert "ID:SECRET" in proc.stderr
