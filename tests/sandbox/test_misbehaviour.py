"""The sandbox's opt-in misbehaviours, over real HTTP: drift, paging caps, 429s, tokens, latency."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from maptable_sandbox import FaultPlan, RequestLogEntry, Sandbox, SandboxConfig
from maptable_sandbox.cli import _parser, build_config, main
from maptable_sandbox.config import REQUEST_KINDS

API = "/open/api/v1"
ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running(**kwargs):
    with Sandbox(SandboxConfig(**kwargs)) as sb:
        yield sb


def token_pair(url):
    r = requests.post(
        f"{url}{API}/auth/", json={"appId": "app-1", "appSecret": "secret-1"}, timeout=5
    )
    detail = r.json()["detail"]
    return detail["token"], detail["refreshToken"]


def get(url, path, token, **params):
    return requests.get(
        f"{url}{API}{path}", headers={"Authorization": token}, params=params, timeout=10
    )


def refresh(url, refresh_token):
    return requests.post(
        f"{url}{API}/token/refresh/",
        headers={"Authorization": refresh_token},
        json={"refreshtoken": refresh_token},
        timeout=5,
    )


def segments(url, token, table_id):
    """Every segment of a table, in order."""
    out, cursor = [], None
    for _ in range(1000):
        params: dict[str, str] = {"lastSegmentRowID": cursor} if cursor else {}
        detail = get(url, f"/tablenodes/{table_id}/partial/", token, **params).json()["detail"]
        out.append(detail)
        if not detail["more"]:
            return out
        cursor = detail["rows"][-1]["id"]
    pytest.fail("never ended")


def served_rows(url, token, table_id):
    return [row for s in segments(url, token, table_id) for row in s["rows"]]


def admin(sb, method, path, body=None):
    return requests.request(method, f"{sb.url}/_sandbox/{path}", json=body, timeout=10)


def claims(token):
    body = token.removeprefix("Bearer ").split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def amount_ids(sb, table_id):
    return [c["id"] for c in sb.data.columns(table_id) if c["name"] == "Amount"]


def typed_amount_ids(sb, table_id):
    """(number column id, text column id) of the table with a number and a text "Amount"."""
    by_type = {c["type"]: c["id"] for c in sb.data.columns(table_id) if c["name"] == "Amount"}
    return by_type["number"], by_type["singleLineText"]


def numeric(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


# ----- sample data ------------------------------------------------------------------------------


def test_one_sample_table_has_a_number_and_a_text_amount():
    with running(rows_per_table=400) as sb:
        token, _ = token_pair(sb.url)
        shapes = {}
        for table in sb.data.tables():
            columns = segments(sb.url, token, table.table_id)[0]["columns"]
            shapes[table.table_id] = [c["type"] for c in columns if c["name"] == "Amount"]
        mixed = [t for t, types in shapes.items() if sorted(types) == ["number", "singleLineText"]]
        assert mixed == [sb.data.tables()[1].table_id]
        assert all(types == ["number", "number"] for t, types in shapes.items() if t not in mixed)
        number_id, text_id = typed_amount_ids(sb, mixed[0])
        assert text_id > number_id  # the smallest id of a repeated name is still a number
        rows = served_rows(sb.url, token, mixed[0])
        values = [r["cells"][text_id] for r in rows if text_id in r["cells"]]
        assert all(isinstance(v, str) for v in values)
        assert any(numeric(v) for v in values)
        assert any(not numeric(v) for v in values)


# ----- column drift -----------------------------------------------------------------------------


def test_reorder_columns_reversed_over_admin_then_given_order_in_python():
    with running() as sb:
        token, _ = token_pair(sb.url)
        table_id = sb.data.tables()[0].table_id
        before = segments(sb.url, token, table_id)[0]["columns"]
        r = admin(sb, "POST", f"tables/{table_id}/columns/order", {"reverse": True})
        assert r.status_code == 200
        assert r.json() == before[::-1]
        assert segments(sb.url, token, table_id)[0]["columns"] == before[::-1]
        order = [c["id"] for c in before]
        order = order[1:] + order[:1]  # primary last
        assert [c["id"] for c in sb.reorder_columns(table_id, order)] == order
        assert [c["id"] for c in segments(sb.url, token, table_id)[0]["columns"]] == order
        for bad in ({"order": order[1:]}, {"order": [*order, "fldNope00"]}, {}, {"order": "x"}):
            assert admin(sb, "POST", f"tables/{table_id}/columns/order", bad).status_code == 400


def test_rename_column_by_id_keeps_id_and_cells():
    with running() as sb:
        token, _ = token_pair(sb.url)
        table_id = sb.data.tables()[0].table_id
        rows_before = served_rows(sb.url, token, table_id)
        notes_id = next(c["id"] for c in sb.data.columns(table_id) if c["name"] == "Notes")
        r = admin(sb, "POST", f"tables/{table_id}/columns/{notes_id}/rename", {"name": "Amount"})
        assert r.json()["id"] == notes_id
        assert r.json()["name"] == "Amount"
        first = segments(sb.url, token, table_id)[0]
        assert next(c["id"] for c in first["columns"] if c["name"] == "Amount") == notes_id
        assert served_rows(sb.url, token, table_id) == rows_before
        assert sb.rename_column(table_id, notes_id, "备注 Notes")["name"] == "备注 Notes"
        assert (
            admin(sb, "POST", f"tables/{table_id}/columns/{notes_id}/rename", {}).status_code == 400
        )


def test_retype_number_to_text_and_text_to_number_in_every_segment():
    with running(rows_per_table=450, segment_size=100, rate_limit=0) as sb:
        token, _ = token_pair(sb.url)
        table_id = sb.data.tables()[1].table_id  # the number + text "Amount" table
        number_id, text_id = typed_amount_ids(sb, table_id)
        before = {r["id"]: r["cells"] for r in served_rows(sb.url, token, table_id)}
        r = admin(
            sb, "POST", f"tables/{table_id}/columns/{number_id}/retype", {"type": "singleLineText"}
        )
        assert (r.json()["id"], r.json()["type"]) == (number_id, "singleLineText")
        sb.retype_column(table_id, text_id, "number", {"precision": 0})
        pages = segments(sb.url, token, table_id)
        assert len(pages) == 5
        types = {c["id"]: c["type"] for c in pages[0]["columns"]}
        assert (types[number_id], types[text_id]) == ("singleLineText", "number")
        after = {r["id"]: r["cells"] for p in pages for r in p["rows"]}
        assert after.keys() == before.keys()
        became_text, stayed_text = 0, 0
        for row_id, cells in after.items():
            old_number, new_number = before[row_id].get(number_id), cells.get(number_id)
            if isinstance(old_number, (int, float)):
                assert isinstance(new_number, str)
                assert float(new_number) == old_number
                assert not new_number.endswith(".0")
                became_text += 1
            else:
                assert new_number == old_number  # text stays text, a missing cell stays missing
            old_text, new_text = before[row_id].get(text_id), cells.get(text_id)
            if isinstance(old_text, str) and numeric(old_text):
                assert not isinstance(new_text, str)
                assert new_text == float(old_text)
            else:
                assert new_text == old_text
                stayed_text += old_text is not None
        assert became_text > 300
        assert stayed_text > 0  # cells that no longer fit their column
        assert admin(sb, "GET", f"tables/{table_id}/columns").json() == pages[0]["columns"]


def test_add_column_with_a_taken_name_fills_every_row():
    with running(rows_per_table=120, segment_size=50) as sb:
        token, _ = token_pair(sb.url)
        table_id = sb.data.tables()[0].table_id
        old_ids = {c["id"] for c in sb.data.columns(table_id)}
        r = admin(sb, "POST", f"tables/{table_id}/columns", {"name": "Amount", "type": "number"})
        assert r.status_code == 201
        added = r.json()
        assert added["id"] not in old_ids
        assert added["id"].startswith("fld")
        const = sb.add_column(table_id, "Amount", "singleLineText", fill="x", position=1)
        assert const["id"] not in old_ids | {added["id"]}
        pages = segments(sb.url, token, table_id)
        names = [c["name"] for c in pages[0]["columns"]]
        assert names.count("Amount") == 4
        assert pages[0]["columns"][1]["id"] == const["id"]
        assert pages[0]["columns"][-1]["id"] == added["id"]
        rows = [r for p in pages for r in p["rows"]]
        assert len(rows) == 120
        assert [r["cells"][added["id"]] for r in rows] == list(range(1, 121))
        assert all(r["cells"][const["id"]] == "x" for r in rows)
        bad = admin(sb, "POST", f"tables/{table_id}/columns", {"name": "X"})
        assert bad.status_code == 400


def test_delete_column_removes_its_cells_everywhere():
    with running(rows_per_table=250, segment_size=100) as sb:
        token, _ = token_pair(sb.url)
        table_id = sb.data.tables()[0].table_id
        notes_id = next(c["id"] for c in sb.data.columns(table_id) if c["name"] == "Notes")
        assert any(notes_id in r["cells"] for r in served_rows(sb.url, token, table_id))
        row_id = sb.data.row_id(table_id, 7)
        assert admin(sb, "DELETE", f"tables/{table_id}/columns/{notes_id}").status_code == 200
        pages = segments(sb.url, token, table_id)
        assert notes_id not in {c["id"] for c in pages[0]["columns"]}
        assert all(notes_id not in r["cells"] for p in pages for r in p["rows"])
        edit = admin(sb, "POST", f"tables/{table_id}/rows/{row_id}", {"cells": {notes_id: "x"}})
        assert edit.status_code == 400
        assert admin(sb, "DELETE", f"tables/{table_id}/columns/{notes_id}").status_code == 404
        assert admin(sb, "DELETE", f"tables/tblNope/columns/{notes_id}").status_code == 404
        assert admin(sb, "GET", f"tables/{table_id}/columns/{notes_id}/rename").status_code == 405
        added = sb.add_column(table_id, "Notes", "multiLineText")
        assert added["id"] != notes_id  # ids are never reused


def test_drift_reaches_edited_and_inserted_rows():
    with running(rows_per_table=20) as sb:
        token, _ = token_pair(sb.url)
        table_id = sb.data.tables()[0].table_id
        amount_id = amount_ids(sb, table_id)[0]
        row_id = sb.data.row_id(table_id, 3)
        sb.data.update_row(table_id, row_id, {amount_id: 12.5})
        sb.retype_column(table_id, amount_id, "singleLineText")
        inserted = sb.data.insert_row(table_id, {amount_id: "7"})
        sb.retype_column(table_id, amount_id, "number")
        rows = {r["id"]: r for r in served_rows(sb.url, token, table_id)}
        assert rows[row_id]["cells"][amount_id] == 12.5
        assert rows[inserted["id"]]["cells"][amount_id] == 7
        assert rows == {r["id"]: r for r in sb.data.rows(table_id)}


def test_drift_mid_table_shows_in_later_segments():
    with running(rows_per_table=300, segment_size=100, columns_every_segment=True) as sb:
        token, _ = token_pair(sb.url)
        table_id = sb.data.tables()[0].table_id
        amount_id = amount_ids(sb, table_id)[0]
        path = f"/tablenodes/{table_id}/partial/"
        first = get(sb.url, path, token).json()["detail"]
        sb.retype_column(table_id, amount_id, "singleLineText")
        sb.rename_column(table_id, amount_id, "Amount (text)")
        cursor = first["rows"][-1]["id"]
        second = get(sb.url, path, token, lastSegmentRowID=cursor).json()["detail"]
        assert second["segmentType"] == "segmentFrame"
        column = next(c for c in second["columns"] if c["id"] == amount_id)
        assert (column["name"], column["type"]) == ("Amount (text)", "singleLineText")
        assert "views" in second
        assert all(isinstance(r["cells"].get(amount_id, ""), str) for r in second["rows"])
        assert any(isinstance(r["cells"].get(amount_id), float) for r in first["rows"])


def test_drift_on_a_million_row_table_stays_lazy():
    with running(rows_per_table=5) as probe:
        big_id = probe.data.tables()[0].table_id
    with running(table_rows={big_id: 1_000_000}, segment_size=1000) as sb:
        token, _ = token_pair(sb.url)
        start = time.monotonic()
        amount_id = amount_ids(sb, big_id)[0]
        notes_id = next(c["id"] for c in sb.data.columns(big_id) if c["name"] == "Notes")
        sb.retype_column(big_id, amount_id, "singleLineText")
        sb.delete_column(big_id, notes_id)
        added = sb.add_column(big_id, "New", "number")
        sb.reorder_columns(big_id, reverse=True)
        near_end = sb.data.row_id(big_id, 1_000_000 - 501)
        path = f"/tablenodes/{big_id}/partial/"
        last = get(sb.url, path, token, lastSegmentRowID=near_end).json()["detail"]
        assert time.monotonic() - start < 3
        assert len(last["rows"]) == 500
        assert last["more"] is False
        assert last["rows"][-1]["cells"][added["id"]] == 1_000_000
        assert all(notes_id not in r["cells"] for r in last["rows"])
        assert all(isinstance(r["cells"].get(amount_id, ""), str) for r in last["rows"])
        assert sb.data.row_count(big_id) == 1_000_000
        assert not sb.data._tables[big_id].overlay  # nothing materialised


def test_concurrent_drift_never_splits_columns_from_cells():
    with running(rows_per_table=200, segment_size=50, rate_limit=0) as sb:
        token, _ = token_pair(sb.url)
        table_id = sb.data.tables()[0].table_id
        amount_id = amount_ids(sb, table_id)[0]
        stop = threading.Event()

        def drift():
            n = 0
            while not stop.is_set() and n < 100:
                column = sb.add_column(table_id, f"c{n}", "number")
                sb.retype_column(table_id, amount_id, ("singleLineText", "number")[n % 2])
                sb.delete_column(table_id, column["id"])
                n += 1
                time.sleep(0.002)

        worker = threading.Thread(target=drift)
        worker.start()
        try:
            for _ in range(40):
                first = segments(sb.url, token, table_id)[0]
                ids = {c["id"] for c in first["columns"]}
                assert all(set(r["cells"]) <= ids for r in first["rows"])
                text = next(
                    c["type"] == "singleLineText" for c in first["columns"] if c["id"] == amount_id
                )
                values = [r["cells"][amount_id] for r in first["rows"] if amount_id in r["cells"]]
                if text:
                    assert all(isinstance(v, str) for v in values)
                else:
                    assert sum(isinstance(v, str) for v in values) < len(values) / 2
        finally:
            stop.set()
            worker.join()


# ----- paging -----------------------------------------------------------------------------------


def test_page_size_cap_honours_page_but_caps_its_size():
    with running(workspaces=25, page_size_cap=10, projects_per_workspace=0) as sb:
        token, _ = token_pair(sb.url)

        def page(**params):
            return [w["id"] for w in get(sb.url, "/workspaces/", token, **params).json()["detail"]]

        pages = [page(page=p, pageSize=100) for p in (1, 2, 3, 4)]
        assert [len(p) for p in pages] == [10, 10, 5, 0]
        assert [w for p in pages for w in p] == list(range(164, 189))
        assert page(page=2, pageSize=3) == [167, 168, 169]
        assert len(page()) == 10  # an unpaged request gets the first page
        assert admin(sb, "POST", "settings", {"page_size_cap": 4}).json()["page_size_cap"] == 4
        assert page(page=2, pageSize=50) == [168, 169, 170, 171]
        sb.set_page_size_cap(None)
        assert len(page(page=1, pageSize=100)) == 25
        assert admin(sb, "POST", "settings", {"page_size_cap": 0}).status_code == 400
    with running(workspaces=5, page_size_cap=2, paging="ignore") as sb:
        token, _ = token_pair(sb.url)
        assert len(get(sb.url, "/workspaces/", token, page=2).json()["detail"]) == 2
    with pytest.raises(ValueError, match="page_size_cap"):
        SandboxConfig(page_size_cap=0)


# ----- 429 with any Retry-After -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "1e9",
        "inf",
        "nan",
        "-5",
        "2099-01-01T00:00:00Z",
        "Thu, 01 Jan 2099 00:00:00 GMT",
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "garbage",
        "",
        None,
    ],
)
def test_429_fault_sends_retry_after_verbatim(value):
    with running() as sb:
        token, _ = token_pair(sb.url)
        sb.set_faults(FaultPlan(schedule={1: "429"}, retry_after=value))
        r = get(sb.url, "/workspaces/", token)
        assert r.status_code == 429
        assert r.json()["code"] == 42900
        assert r.headers.get("Retry-After") == value
        entry = sb.requests[-1]
        assert (entry.fault, entry.rate_limited) == ("429", False)
        assert get(sb.url, "/workspaces/", token).status_code == 200


def test_throttle_next_n_requests_of_any_kind_without_the_limiter():
    with running(rate_limit=3, rate_window=60) as sb:
        sb.throttle(4, retry_after="nan")
        auth = requests.post(
            f"{sb.url}{API}/auth/", json={"appId": "app-1", "appSecret": "secret-1"}, timeout=5
        )
        assert (auth.status_code, auth.headers["Retry-After"]) == (429, "nan")
        answers = [requests.get(f"{sb.url}{API}/workspaces/", timeout=5) for _ in range(3)]
        assert [a.status_code for a in answers] == [429, 429, 429]
        token, _ = token_pair(sb.url)  # the 5th request: the faults are spent
        codes = [get(sb.url, "/workspaces/", token).status_code for _ in range(3)]
        assert codes == [200, 200, 429]  # the limiter counted only the admitted requests
        assert sb.requests[-1].rate_limited


def test_throttle_requests_of_given_kinds_over_admin():
    with running(rows_per_table=10) as sb:
        token, _ = token_pair(sb.url)
        plan = FaultPlan.throttled(kinds=("rows",), retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
        assert FaultPlan.from_json(plan.to_json()) == plan
        assert admin(sb, "POST", "faults", json.loads(plan.to_json())).status_code == 200
        table_id = sb.data.tables()[0].table_id
        for _ in range(3):
            assert get(sb.url, "/workspaces/", token).status_code == 200
            r = get(sb.url, f"/tablenodes/{table_id}/partial/", token)
            assert r.status_code == 429
            assert r.headers["Retry-After"] == "Wed, 21 Oct 2015 07:28:00 GMT"
        assert admin(sb, "POST", "faults", {}).status_code == 200
        assert get(sb.url, f"/tablenodes/{table_id}/partial/", token).status_code == 200


def test_retry_after_round_trips_and_is_checked():
    for value in ("1", "", "inf", None):
        plan = FaultPlan(schedule={2: "429"}, retry_after=value)
        assert FaultPlan.from_json(plan.to_json()) == plan
    assert FaultPlan.from_json("{}").retry_after == "1"
    assert FaultPlan.throttled(2).kinds_for == REQUEST_KINDS
    for bad in ("1\r\nX-Evil: 1", "1\n", "秒"):
        with pytest.raises(ValueError, match="retry_after"):
            FaultPlan(retry_after=bad)


# ----- tokens -----------------------------------------------------------------------------------


def test_tokens_carry_iat_and_exp():
    with running(token_ttl=600) as sb:
        now = time.time()
        token, refresh_token = token_pair(sb.url)
        access, refresh_claims = claims(token), claims(refresh_token)
        assert abs(access["iat"] - now) < 5
        assert access["exp"] - access["iat"] in (599, 600, 601)
        assert refresh_claims["exp"] > access["exp"]


def test_used_refresh_token_refused_and_its_access_token_revoked():
    with running(revoke_access_on_refresh=True) as sb:
        token, refresh_token = token_pair(sb.url)
        other, _ = token_pair(sb.url)
        first = refresh(sb.url, refresh_token)
        assert first.status_code == 200
        again = refresh(sb.url, refresh_token)
        assert again.status_code == 401
        assert set(again.json()) == {"code", "message", "detail", "extra", "requestID"}
        assert again.json()["code"] == 40102
        old = get(sb.url, "/workspaces/", token)
        assert (old.status_code, old.json()["code"]) == (401, 40104)
        assert get(sb.url, "/workspaces/", other).status_code == 200  # another pair lives
        new_token, new_refresh = first.json()["detail"].values()
        assert get(sb.url, "/workspaces/", new_token).status_code == 200
        assert refresh(sb.url, new_refresh).status_code == 200
        assert get(sb.url, "/workspaces/", new_token).json()["code"] == 40104


def test_lenient_server_accepts_a_used_refresh_token_again():
    with running(revoke_used_refresh_tokens=False) as sb:
        token, refresh_token = token_pair(sb.url)
        assert refresh(sb.url, refresh_token).status_code == 200
        assert refresh(sb.url, refresh_token).status_code == 200
        assert get(sb.url, "/workspaces/", token).status_code == 200


def test_token_clock_skew_stamps_claims_but_not_validity():
    skew = 3 * 3600.0
    with running(token_ttl=1, token_clock_skew_s=skew) as sb:
        now = time.time()
        token, _ = token_pair(sb.url)
        stamped = claims(token)
        assert abs(stamped["iat"] - (now + skew)) < 5
        assert stamped["exp"] - stamped["iat"] in (0, 1, 2)
        assert get(sb.url, "/workspaces/", token).status_code == 200
        time.sleep(1.1)
        late = get(sb.url, "/workspaces/", token)  # exp claim still hours ahead: expired anyway
        assert (late.status_code, late.json()["code"]) == (401, 40103)
    with running(token_ttl=60) as sb:
        assert admin(sb, "POST", "settings", {"token_clock_skew_s": -skew}).status_code == 200
        assert admin(sb, "GET", "settings").json()["token_clock_skew_s"] == -skew
        now = time.time()
        token, _ = token_pair(sb.url)
        assert claims(token)["exp"] < now  # the claim says long expired ...
        assert get(sb.url, "/workspaces/", token).status_code == 200  # ... the server disagrees
        sb.set_token_clock_skew(0)
        assert abs(claims(token_pair(sb.url)[0])["iat"] - time.time()) < 5
        assert admin(sb, "POST", "settings", {"token_clock_skew_s": "nan"}).status_code == 400


# ----- latency and the request log --------------------------------------------------------------


def test_latency_is_per_request_and_logged_as_overlapping_intervals(tmp_path):
    log = tmp_path / "log.jsonl"
    with running(latency_s=0.5, rate_limit=0, request_log_path=log) as sb:
        token, _ = token_pair(sb.url)
        sb.reset_log()
        statuses: list[int] = []

        def one():
            statuses.append(get(sb.url, "/workspaces/", token).status_code)

        threads = [threading.Thread(target=one) for _ in range(6)]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - start
        assert statuses == [200] * 6
        assert 0.5 <= elapsed < 2.0  # 6 x 0.5 s in sequence would take 3 s
        entries = sb.requests
        assert len(entries) == 6
        assert all(e.t == e.t_start for e in entries)
        assert all(e.t_end - e.t_start >= 0.49 for e in entries)
        assert max(e.t_start for e in entries) < min(e.t_end for e in entries)  # all overlap
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        assert {"t", "t_start", "t_end"} <= set(lines[-1])
        assert [RequestLogEntry.from_json(json.dumps(x)) for x in lines[1:]] == entries
        quick = time.monotonic()
        assert admin(sb, "GET", "settings").json()["latency_s"] == 0.5  # admin is not delayed
        assert time.monotonic() - quick < 0.4
        assert admin(sb, "POST", "settings", {"latency_s": 0}).status_code == 200
        quick = time.monotonic()
        get(sb.url, "/workspaces/", token)
        assert time.monotonic() - quick < 0.4
        sb.set_latency(0.2)
        get(sb.url, "/workspaces/", token)
        assert sb.requests[-1].t_end - sb.requests[-1].t_start >= 0.19
        for bad in ({"latency_s": -1}, {"latency_s": "x"}, {"nope": 1}):
            assert admin(sb, "POST", "settings", bad).status_code == 400


def test_timeout_fault_and_latency_add_up_in_t_end():
    with running(latency_s=0.2) as sb:
        token, _ = token_pair(sb.url)
        sb.set_faults(FaultPlan(schedule={1: "timeout"}, timeout_delay=0.3))
        assert get(sb.url, "/workspaces/", token).status_code == 200
        entry = sb.requests[-1]
        assert entry.fault == "timeout"
        assert entry.t_end - entry.t_start >= 0.49
        sb.set_faults(FaultPlan(schedule={1: "timeout"}, timeout_delay=2))
        with pytest.raises(requests.Timeout):
            requests.get(
                f"{sb.url}{API}/workspaces/", headers={"Authorization": token}, timeout=0.5
            )
        entry = sb.requests[-1]  # logged although its answer is still due
        assert entry.fault == "timeout"
        assert entry.t_end >= entry.t_start + 2.2
        assert entry.t_end > time.time()


def test_body_delay_sends_the_headers_first_and_the_body_after():
    # A slow download: the answer's status and headers come at once, its body after.
    with running(body_delay_s=1.0) as sb:
        token, _ = token_pair(sb.url)
        started = time.monotonic()
        with requests.get(
            f"{sb.url}{API}/workspaces/", headers={"Authorization": token}, stream=True, timeout=5
        ) as response:
            headers_at = time.monotonic() - started
            body = response.content
        whole = time.monotonic() - started
        assert response.status_code == 200
        assert json.loads(body)["code"] == 0
        assert headers_at < 0.5, headers_at
        assert whole >= 0.99, whole
        entry = sb.requests[-1]
        assert entry.t_end - entry.t_start >= 0.99  # the log's answer time includes the body
        sb.set_faults(FaultPlan(schedule={1: "drop"}))
        with pytest.raises(requests.ConnectionError):
            get(sb.url, "/workspaces/", token)
        dropped = sb.requests[-1]
        assert dropped.fault == "drop"
        assert dropped.t_end - dropped.t_start < 0.5  # nothing written: no body to delay
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="body_delay_s"):
            SandboxConfig(body_delay_s=bad)
    assert build_config(_parser().parse_args(["--body-delay", "1.5"])).body_delay_s == 1.5


# ----- CLI --------------------------------------------------------------------------------------


def test_cli_help_describes_every_option_and_its_default(capsys):
    parser = _parser()
    for action in parser._actions:
        if action.dest == "help":
            continue
        assert action.help, action.dest
        assert "default" in action.help, action.dest
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for flag in (
        "--latency",
        "--page-size-cap",
        "--token-clock-skew",
        "--keep-used-refresh-tokens",
        "--revoke-access-on-refresh",
        "--columns-every-segment",
        "--refresh-ttl",
        "--latency-jitter",
        "--table-fault",
        "--deleted-cursor",
    ):
        assert flag in text
    assert "(default: 60)" in text
    assert "README.md" in text
    assert "request log" in text.lower()


def test_cli_flags_build_the_config():
    args = _parser().parse_args(
        [
            "--latency",
            "0.25",
            "--page-size-cap",
            "7",
            "--token-clock-skew",
            "-90",
            "--keep-used-refresh-tokens",
            "--revoke-access-on-refresh",
            "--columns-every-segment",
            "--refresh-ttl",
            "100",
        ]
    )
    config = build_config(args)
    assert config.latency_s == 0.25
    assert config.page_size_cap == 7
    assert config.token_clock_skew_s == -90
    assert config.revoke_used_refresh_tokens is False
    assert config.revoke_access_on_refresh is True
    assert config.columns_every_segment is True
    assert config.refresh_ttl == 100
    default = build_config(_parser().parse_args([]))
    assert default == SandboxConfig()


def test_cli_process_with_new_options():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "maptable_sandbox",
            "--latency",
            "0.3",
            "--workspaces",
            "3",
            "--page-size-cap",
            "1",
            "--token-clock-skew",
            "600",
            "--faults",
            '{"schedule": {"2": "429"}, "retry_after": "inf"}',
            "--latency-jitter",
            "0.05",
            "--deleted-cursor",
            "404",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    try:
        url = proc.stdout.readline().split()[-1]
        start = time.time()
        token, _ = token_pair(url)
        assert time.time() - start >= 0.3
        assert abs(claims(token)["iat"] - (start + 600)) < 10
        throttled = get(url, "/workspaces/", token)
        assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "inf")
        workspaces = get(url, "/workspaces/", token, page=3, pageSize=10).json()["detail"]
        assert [w["id"] for w in workspaces] == [166]
        settings = requests.get(f"{url}/_sandbox/settings", timeout=5).json()
        assert settings == {
            "latency_s": 0.3,
            "latency_jitter_s": 0.05,
            "page_size_cap": 1,
            "token_clock_skew_s": 600.0,
            "deleted_cursor": "404",
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert proc.returncode == 0
