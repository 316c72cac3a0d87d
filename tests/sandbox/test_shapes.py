"""Documented cell shapes, per-table faults, unknown cursors, jitter and segment counts.

Over real HTTP, as the tap sees them: a sample table that lacks a documented shape, or a fault that
answers differently from what the README says, would let the tap's tests pass for nothing.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager

import pytest
import requests

from maptable_sandbox import FaultPlan, Sandbox, SandboxConfig
from maptable_sandbox.api import ApiApp
from maptable_sandbox.cli import _parser, build_config, main
from maptable_sandbox.data import BIG_INTEGERS, ODD_NUMERIC_TEXT, ZERO_TIME, convert_cell

API = "/open/api/v1"
TYPED = {
    "Done": ("boolean", None),
    "Website": ("hyperlink", None),
    "Discount": ("number", {"format": "percentage", "precision": 1}),
    "Cost": ("number", {"format": "currency", "currency": "CNY", "precision": 2}),
    "Quantity": ("number", {"format": "commaNumber", "precision": 0}),
    "Reference": ("singleLineText", None),
}


@contextmanager
def running(**kwargs):
    with Sandbox(SandboxConfig(**kwargs)) as sb:
        yield sb


def token_of(url):
    r = requests.post(
        f"{url}{API}/auth/", json={"appId": "app-1", "appSecret": "secret-1"}, timeout=5
    )
    return r.json()["detail"]["token"]


def rows_url(sb, table_id):
    return f"{sb.url}{API}/tablenodes/{table_id}/partial/"


def get_segment(sb, token, table_id, cursor=None):
    params = {"lastSegmentRowID": cursor} if cursor else {}
    return requests.get(
        rows_url(sb, table_id), headers={"Authorization": token}, params=params, timeout=10
    )


def segments(sb, token, table_id):
    out, cursor = [], None
    for _ in range(1000):
        detail = get_segment(sb, token, table_id, cursor).json()["detail"]
        out.append(detail)
        if not detail["more"]:
            return out
        cursor = detail["rows"][-1]["id"]
    pytest.fail("never ended")


def admin(sb, method, path, body=None):
    return requests.request(method, f"{sb.url}/_sandbox/{path}", json=body, timeout=10)


def by_name(columns):
    return {c["name"]: c for c in columns if c["name"] in TYPED}


def cells_of(rows, column_id):
    return [r["cells"][column_id] for r in rows if column_id in r["cells"]]


# ----- documented column types ------------------------------------------------------------------


def test_every_table_has_each_documented_shape_in_its_first_50_rows():
    with running() as sb:  # 50 rows per table, the default
        token = token_of(sb.url)
        for table in sb.data.tables():
            first = get_segment(sb, token, table.table_id)
            detail = first.json()["detail"]
            columns = by_name(detail["columns"])
            assert {n: (c["type"], c["typeOptions"]) for n, c in columns.items()} == TYPED
            assert list(columns) == list(TYPED)  # after the original columns, in this order
            assert [c["name"] for c in detail["columns"][-6:]] == list(TYPED)
            rows = detail["rows"]
            done = cells_of(rows, columns["Done"]["id"])
            assert set(done) == {True, False}
            assert all(type(v) is bool for v in done)
            links = cells_of(rows, columns["Website"]["id"])
            assert any(isinstance(v, str) and v.startswith("http") for v in links)
            objects = [v for v in links if isinstance(v, dict)]
            assert objects
            assert all(set(v) == {"link", "text"} and v["text"] for v in objects)
            discounts = cells_of(rows, columns["Discount"]["id"])
            assert all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in discounts)
            assert any(0 < v < 1 for v in discounts)  # fractions: 0.15 is 15 %
            costs = cells_of(rows, columns["Cost"]["id"])
            assert all(isinstance(v, (int, float)) and round(v, 2) == v for v in costs)
            quantities = cells_of(rows, columns["Quantity"]["id"])
            assert all(type(v) is int for v in quantities)
            assert set(BIG_INTEGERS) <= set(quantities)
            assert "9007199254740993" in first.text  # a JSON number, not a string
            references = cells_of(rows, columns["Reference"]["id"])
            assert all(isinstance(v, str) for v in references)
            assert set(ODD_NUMERIC_TEXT) <= set(references)


def test_odd_values_sit_in_documented_rows():
    with running(rows_per_table=100) as sb:
        table_id = sb.data.tables()[0].table_id
        columns = by_name(sb.data.columns(table_id))
        rows = list(sb.data.rows(table_id))
        quantity, reference = columns["Quantity"]["id"], columns["Reference"]["id"]
        website = columns["Website"]["id"]
        assert rows[6]["cells"][quantity] == 9_007_199_254_740_993  # row 7
        assert [rows[i]["cells"][quantity] for i in (6, 16, 26, 36)] == list(BIG_INTEGERS)
        assert [rows[i]["cells"][reference] for i in range(2, 50, 5)] == list(ODD_NUMERIC_TEXT)
        assert all(isinstance(rows[i]["cells"][website], dict) for i in range(3, 100, 10))
        assert all(isinstance(rows[i]["cells"][website], str) for i in range(8, 100, 10))
        ordinary = [rows[i]["cells"].get(reference) for i in range(100) if i % 5 != 2]
        assert all(v is None or (len(v) == 8 and v.isdigit()) for v in ordinary)


def test_big_integers_and_odd_text_survive_the_wire_exactly():
    with running(rows_per_table=50) as sb:
        token = token_of(sb.url)
        table_id = sb.data.tables()[0].table_id
        raw = get_segment(sb, token, table_id).text
        for big in BIG_INTEGERS:
            assert f":{big}" in raw
        for text in ODD_NUMERIC_TEXT:
            assert json.dumps(text, ensure_ascii=False) in raw
        assert json.loads(raw)["detail"]["rows"] == list(sb.data.rows(table_id))


def test_due_dates_are_mostly_epoch_ms_some_iso_and_rare_zero_time():
    with running(rows_per_table=3000) as sb:
        table_id = sb.data.tables()[2].table_id
        due = next(c["id"] for c in sb.data.columns(table_id) if c["name"] == "Due date")
        values = cells_of(sb.data.rows(table_id), due)
        ints = [v for v in values if type(v) is int]
        texts = [v for v in values if isinstance(v, str)]
        assert 0.8 < len(ints) / len(values) < 0.9
        assert any(v % 1000 for v in ints)  # milliseconds, not whole seconds
        assert ZERO_TIME in texts
        iso = [v for v in texts if v != ZERO_TIME]
        assert {v[19:] for v in iso} == {"Z", "+08:00", ""}  # UTC, offset, workspace wall time
        assert len(ints) + len(texts) == len(values)


def test_cells_go_missing_in_new_columns_too():
    with running(rows_per_table=1000) as sb:
        table_id = sb.data.tables()[0].table_id
        columns = by_name(sb.data.columns(table_id))
        rows = list(sb.data.rows(table_id))
        for name in ("Done", "Website", "Discount", "Cost", "Quantity", "Reference"):
            present = len(cells_of(rows, columns[name]["id"]))
            assert 0.9 * len(rows) < present < len(rows), name


def test_existing_ids_did_not_move_when_columns_were_added():
    # Pinned for seed 0: the typed columns draw their ids from their own RNG, so every id drawn
    # before them (tables, original columns, row-id prefixes) is what it always was.
    with running() as sb:
        tables = sb.data.tables()
        assert [t.table_id for t in tables[:2]] == ["tbla2190a629a", "tbl9977c482d5"]
        ids = [c["id"] for c in sb.data.columns(tables[0].table_id)]
        assert ids[:10] == [
            "fldLQunTX",
            "fldXfvIuM",
            "fld8q6ntM",
            "fldAG4wnb",
            "fld1a5hrY",
            "fldtNxweY",
            "fldxfAAZr",
            "fldodqN1l",
            "fldfwwo9e",
            "fldmkT2KU",
        ]
        assert len(set(ids)) == len(ids) == 16
        assert sb.data.row_id(tables[0].table_id, 0) == "6c9a93dc0000000000000000"
        again = Sandbox(SandboxConfig()).data
        assert again.columns(tables[0].table_id) == sb.data.columns(tables[0].table_id)


# ----- drift with the new types -----------------------------------------------------------------


def test_retype_new_types_converts_cells_sensibly():
    with running(rows_per_table=60, segment_size=25) as sb:
        token = token_of(sb.url)
        table_id = sb.data.tables()[0].table_id
        columns = {c["name"]: c["id"] for c in sb.data.columns(table_id)}
        before = list(sb.data.rows(table_id))
        for name in ("Done", "Website"):
            path = f"tables/{table_id}/columns/{columns[name]}/retype"
            assert admin(sb, "POST", path, {"type": "multiLineText"}).ok
        for name in ("Due date", "Files"):
            sb.retype_column(table_id, columns[name], "singleLineText")
        sb.retype_column(table_id, columns["Reference"], "number")
        rows = [r for s in segments(sb, token, table_id) for r in s["rows"]]
        for old, new in zip(before, rows, strict=True):
            cells = new["cells"]
            if columns["Done"] in old["cells"]:
                assert cells[columns["Done"]] == str(old["cells"][columns["Done"]]).lower()
            link = old["cells"].get(columns["Website"])
            if link is not None:
                assert cells[columns["Website"]] == (
                    link if isinstance(link, str) else link["link"]
                )
            due = old["cells"].get(columns["Due date"])
            if isinstance(due, int):
                second = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(due // 1000))
                assert cells[columns["Due date"]] == f"{second}.{due % 1000:03d}Z"
            files = old["cells"].get(columns["Files"])
            if files:
                assert cells[columns["Files"]] == ", ".join(f["name"] for f in files)
            ref = old["cells"].get(columns["Reference"])
            if ref in ("١٢٣", "NaN", "1_000", "0x1F", "Infinity", "1,000"):
                assert cells[columns["Reference"]] == ref  # not a number to a careful server
            elif ref is not None:
                number = ref.strip()
                expected = int(number) if number.lstrip("-").isdigit() else float(number)
                assert cells[columns["Reference"]] == expected


def test_retype_text_to_boolean_and_datetime():
    assert convert_cell(" True ", "boolean") is True
    assert convert_cell("false", "boolean") is False
    assert convert_cell("yes", "boolean") == "yes"
    assert convert_cell(0, "boolean") is False
    assert convert_cell("2024-01-01T08:00:00", "datetime") == 1_704_067_200_000  # +08:00
    assert convert_cell("2024-01-01T00:00:00.5Z", "datetime") == 1_704_067_200_500
    assert convert_cell(ZERO_TIME, "datetime") == ZERO_TIME
    assert convert_cell(True, "number") == 1
    assert convert_cell(1_704_067_200_000, "singleLineText", "number") == "1704067200000"


def test_admin_adds_columns_of_new_types_and_takes_their_values():
    with running(rows_per_table=12, segment_size=5) as sb:
        token = token_of(sb.url)
        table_id = sb.data.tables()[1].table_id
        added = {}
        for name, column_type, options in (
            ("Paid", "boolean", None),
            ("Shop", "hyperlink", None),
            ("Share", "number", {"format": "percentage", "precision": 2}),
            ("Shipped", "datetime", {"dateFormat": "YYYY-MM-DD"}),
            ("Scans", "attachment", {"maxCount": 5}),
        ):
            body = {"name": name, "type": column_type, "typeOptions": options}
            r = admin(sb, "POST", f"tables/{table_id}/columns", body)
            assert r.status_code == 201
            assert r.json()["typeOptions"] == options
            added[name] = r.json()["id"]
        rows = [r for s in segments(sb, token, table_id) for r in s["rows"]]
        assert [r["cells"][added["Paid"]] for r in rows[:3]] == [True, False, True]
        assert rows[0]["cells"][added["Shop"]].startswith("https://")
        assert rows[0]["cells"][added["Share"]] == 1
        assert type(rows[0]["cells"][added["Shipped"]]) is int
        assert rows[0]["cells"][added["Scans"]] == []
        values = {
            added["Paid"]: False,
            added["Shop"]: {"link": "https://example.com/x", "text": "示例"},
            added["Share"]: 0.125,
            added["Shipped"]: 1_735_660_800_123,
            added["Scans"]: [{"id": "att1", "name": "a.pdf", "size": 1, "url": "https://x/a"}],
        }
        row_id = rows[7]["id"]
        r = admin(sb, "POST", f"tables/{table_id}/rows/{row_id}", {"cells": values})
        assert r.status_code == 200
        quantity = next(c["id"] for c in sb.data.columns(table_id) if c["name"] == "Quantity")
        big = 2**64 + 1
        # The JSON body carries the integer exactly; requests' json= would too.
        body = '{"cells": {"' + quantity + '": ' + str(big) + "}}"
        r = requests.post(
            f"{sb.url}/_sandbox/tables/{table_id}/rows/{row_id}", data=body, timeout=5
        )
        assert r.status_code == 200
        segment = get_segment(sb, token, table_id, rows[6]["id"])
        assert f'"{quantity}":{big}' in segment.text
        served = segment.json()["detail"]["rows"][0]
        assert served["id"] == row_id
        assert {k: served["cells"][k] for k in values} == values
        assert served["cells"][quantity] == big


# ----- per-table access faults ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status", "code"), [("403", 403, 40300), ("404", 404, 40400), ("code", 200, 40300)]
)
def test_table_fault_refuses_that_table_only(mode, status, code):
    with running() as probe:
        table_id, other = (t.table_id for t in probe.data.tables()[:2])
    with running(table_faults={table_id: mode}) as sb:
        token = token_of(sb.url)
        refused = get_segment(sb, token, table_id)
        assert refused.status_code == status
        body = refused.json()
        assert body["code"] == code
        assert body["detail"] is None
        if code == 40300:
            assert body["message"] == "no permission to read this table"
        assert get_segment(sb, token, other).json()["code"] == 0
        assert [e.fault for e in sb.requests[-2:]] == [f"table:{mode}", None]
        assert sb.requests[-2].status == status
        assert sb.table_fault(table_id) == mode


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        ("403_after_first", 403, 40300),
        ("404_after_first", 404, 40400),
        ("code_after_first", 200, 40300),
    ],
)
def test_after_first_faults_serve_the_first_segment_and_refuse_the_next(mode, status, code):
    with running(rows_per_table=250) as sb:
        token = token_of(sb.url)
        table_id = sb.data.tables()[0].table_id
        r = admin(sb, "POST", f"tables/{table_id}/fault", {"mode": mode})
        assert r.json() == {"table_id": table_id, "mode": mode}
        first = get_segment(sb, token, table_id)
        assert first.status_code == 200
        detail = first.json()["detail"]
        assert len(detail["rows"]) == 100
        assert detail["more"] is True
        cursor = detail["rows"][-1]["id"]
        second = get_segment(sb, token, table_id, cursor)
        assert (second.status_code, second.json()["code"]) == (status, code)
        assert [e.fault for e in sb.requests[-2:]] == [None, f"table:{mode}"]
        assert admin(sb, "GET", f"tables/{table_id}/fault").json()["mode"] == mode
        cleared = admin(sb, "POST", f"tables/{table_id}/fault", {"mode": None})
        assert cleared.json() == {"table_id": table_id, "mode": None}
        assert len(get_segment(sb, token, table_id, cursor).json()["detail"]["rows"]) == 100


def test_bad_columns_faults_answer_ok_with_unusable_columns():
    with running(rows_per_table=30, segment_size=10) as sb:
        token = token_of(sb.url)
        table_id, other = (t.table_id for t in sb.data.tables()[:2])
        sb.set_table_fault(table_id, "bad_columns")
        sb.set_table_fault(other, "columns_without_id")
        r = get_segment(sb, token, table_id)
        assert (r.status_code, r.json()["code"]) == (200, 0)
        detail = r.json()["detail"]
        assert detail["columns"] == "columns unavailable"
        assert detail["rows"] == list(sb.data.rows(table_id))[:10]
        assert isinstance(detail["views"], list)
        assert sb.requests[-1].fault == "table:bad_columns"
        later = get_segment(sb, token, table_id, detail["rows"][-1]["id"])
        assert "columns" not in later.json()["detail"]
        assert sb.requests[-1].fault is None  # no columns, nothing spoilt
        columns = get_segment(sb, token, other).json()["detail"]["columns"]
        assert columns
        assert all("id" not in c and "name" in c and "type" in c for c in columns)
        assert sb.requests[-1].fault == "table:columns_without_id"
    with running(columns_every_segment=True, rows_per_table=30, segment_size=10) as sb:
        token = token_of(sb.url)
        table_id = sb.data.tables()[0].table_id
        sb.set_table_fault(table_id, "bad_columns")
        first = get_segment(sb, token, table_id).json()["detail"]
        later = get_segment(sb, token, table_id, first["rows"][-1]["id"]).json()["detail"]
        assert later["columns"] == "columns unavailable"


def test_table_faults_are_checked_and_listed():
    with running(rows_per_table=10) as sb:
        table_id = sb.data.tables()[0].table_id
        assert admin(sb, "POST", "tables/tblnope/fault", {"mode": "403"}).status_code == 404
        assert admin(sb, "GET", "tables/tblnope/fault").status_code == 404
        for body in ({"mode": "401"}, {"mode": 403}, {}, {"mode": "bad_columns_after_first"}):
            assert admin(sb, "POST", f"tables/{table_id}/fault", body).status_code == 400
        assert admin(sb, "DELETE", f"tables/{table_id}/fault").status_code == 405
        token = token_of(sb.url)
        ws = requests.get(
            f"{sb.url}{API}/workspaces/", headers={"Authorization": token}, timeout=5
        ).json()["detail"][0]
        detail = requests.get(
            f"{sb.url}{API}/workspaces/{ws['type']}/{ws['id']}/",
            headers={"Authorization": token},
            timeout=5,
        ).json()["detail"]
        group = next(n for n in detail["projects"][0]["tableNodes"] if n["type"] == "group")
        assert admin(sb, "POST", f"tables/{group['id']}/fault", {"mode": "403"}).status_code == 404
        with pytest.raises(KeyError):
            sb.set_table_fault("tblnope", "403")
        with pytest.raises(ValueError, match="table fault mode"):
            sb.set_table_fault(table_id, "500")
        sb.set_table_fault(table_id, "code")
        listed = {t["table_id"]: t for t in admin(sb, "GET", "tables").json()}
        assert listed[table_id]["fault"] == "code"
        assert {t["fault"] for i, t in listed.items() if i != table_id} == {None}
    with pytest.raises(ValueError, match="table fault mode"):
        SandboxConfig(table_faults={table_id: "nope"})
    with pytest.raises(ValueError, match="names no table"):
        Sandbox(SandboxConfig(table_faults={"tblnope": "403"}))


# ----- a cursor naming no live row --------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status", "code"), [("error", 400, 40001), ("code", 200, 40001), ("404", 404, 40400)]
)
def test_deleted_cursor_refused(mode, status, code):
    with running(rows_per_table=30, segment_size=10, deleted_cursor=mode) as sb:
        token = token_of(sb.url)
        table_id = sb.data.tables()[0].table_id
        first = get_segment(sb, token, table_id).json()["detail"]
        live = first["rows"][-2]["id"]
        cursor = first["rows"][-1]["id"]
        assert len(get_segment(sb, token, table_id, live).json()["detail"]["rows"]) == 10
        assert sb.requests[-1].fault is None
        sb.data.delete_row(table_id, cursor)
        r = get_segment(sb, token, table_id, cursor)
        assert (r.status_code, r.json()["code"]) == (status, code)
        assert r.json()["detail"] is None
        assert sb.requests[-1].fault == f"deleted_cursor:{mode}"
        never = sb.data.row_id(table_id, 10**6)  # well-formed, but no such row ever
        assert get_segment(sb, token, table_id, never).status_code == status
        assert get_segment(sb, token, table_id, "zz").status_code == 400  # malformed: as ever
        assert sb.requests[-1].fault is None


def test_deleted_cursor_continue_and_restart():
    with running(rows_per_table=30, segment_size=10) as sb:
        token = token_of(sb.url)
        table_id = sb.data.tables()[0].table_id
        first = get_segment(sb, token, table_id).json()["detail"]
        cursor = first["rows"][-1]["id"]
        sb.data.delete_row(table_id, cursor)
        after = get_segment(sb, token, table_id, cursor).json()["detail"]
        assert after["segmentType"] == "segmentFrame"
        assert after["rows"][0]["id"] == sb.data.row_id(table_id, 10)  # continue: the default
        assert sb.requests[-1].fault is None
        sb.set_deleted_cursor("restart")
        again = get_segment(sb, token, table_id, cursor).json()["detail"]
        assert again["segmentType"] == "segmentStart"
        assert again["columns"] == sb.data.columns(table_id)
        assert [r["id"] for r in again["rows"]] == [r["id"] for r in first["rows"][:-1]] + [
            sb.data.row_id(table_id, 10)
        ]
        assert sb.requests[-1].fault == "deleted_cursor:restart"
        inserted = sb.data.insert_row(table_id, {})
        assert get_segment(sb, token, table_id, inserted["id"]).json()["detail"]["rows"] == []
        sb.data.delete_row(table_id, inserted["id"])
        restarted = get_segment(sb, token, table_id, inserted["id"]).json()["detail"]
        assert restarted["segmentType"] == "segmentStart"


def test_deleted_cursor_setting_at_run_time_and_checked():
    with running() as sb:
        assert admin(sb, "GET", "settings").json()["deleted_cursor"] == "continue"
        r = admin(sb, "POST", "settings", {"deleted_cursor": "404"})
        assert r.json()["deleted_cursor"] == "404"
        assert admin(sb, "POST", "settings", {"deleted_cursor": "skip"}).status_code == 400
        with pytest.raises(ValueError, match="deleted_cursor"):
            sb.set_deleted_cursor("skip")
    with pytest.raises(ValueError, match="deleted_cursor"):
        SandboxConfig(deleted_cursor="skip")


def test_segment_loop_ignore_always_serves_the_first_segment():
    with running(rows_per_table=30, segment_size=10) as sb:
        token = token_of(sb.url)
        table_id = sb.data.tables()[0].table_id
        first = get_segment(sb, token, table_id).json()["detail"]
        sb.set_faults(FaultPlan(segment_loop="ignore"))
        for cursor in (first["rows"][-1]["id"], sb.data.row_id(table_id, 25), "zz"):
            again = get_segment(sb, token, table_id, cursor).json()["detail"]
            assert again["segmentType"] == "segmentStart"
            assert again["rows"] == first["rows"]
            assert again["more"] is True
            assert sb.requests[-1].fault == "segment_loop:ignore"
    plan = FaultPlan(segment_loop="ignore")
    assert FaultPlan.from_json(plan.to_json()) == plan


# ----- jittered latency -------------------------------------------------------------------------


def test_latency_jitter_varies_each_wait_within_bounds():
    with running(latency_s=0.05, latency_jitter_s=0.3, rate_limit=0) as sb:
        token = token_of(sb.url)
        sb.reset_log()
        took = []
        for _ in range(8):
            start = time.monotonic()
            get_segment(sb, token, sb.data.tables()[0].table_id)
            took.append(time.monotonic() - start)
        waits = [e.t_end - e.t_start for e in sb.requests]
        assert all(0.05 <= w < 0.45 for w in waits)
        assert max(waits) - min(waits) > 0.05  # jittered, not fixed
        assert all(t >= w - 0.01 for t, w in zip(took, waits, strict=True))
        assert all(e.t == e.t_start for e in sb.requests)
        settings = admin(sb, "GET", "settings").json()
        assert (settings["latency_s"], settings["latency_jitter_s"]) == (0.05, 0.3)
        assert (
            admin(sb, "POST", "settings", {"latency_jitter_s": 0}).json()["latency_jitter_s"] == 0
        )
        for bad in (-1, "x", None):
            assert admin(sb, "POST", "settings", {"latency_jitter_s": bad}).status_code == 400
        with pytest.raises(ValueError, match="latency_jitter_s"):
            sb.set_latency_jitter(float("nan"))
        sb.set_latency(0)
        sb.set_latency_jitter(0.2)
        get_segment(sb, token, sb.data.tables()[0].table_id)
        assert 0 <= sb.requests[-1].t_end - sb.requests[-1].t_start < 0.3


def test_latency_jitter_draws_are_seeded():
    config = SandboxConfig(latency_s=1.0, latency_jitter_s=0.5, seed=3)
    one, two = ApiApp(config), ApiApp(config)
    draws = [one.next_latency() for _ in range(20)]
    assert draws == [two.next_latency() for _ in range(20)]
    assert all(1.0 <= d <= 1.5 for d in draws)
    assert len(set(draws)) == 20
    other = ApiApp(SandboxConfig(latency_s=1.0, latency_jitter_s=0.5, seed=4))
    assert draws != [other.next_latency() for _ in range(20)]
    assert ApiApp(SandboxConfig(latency_s=0.25)).next_latency() == 0.25
    for app in (one, two, other):
        app.close()


def test_jittered_answers_overtake_each_other():
    with running(latency_jitter_s=0.4, rate_limit=0, seed=1) as sb:
        token = token_of(sb.url)
        sb.reset_log()
        threads = [
            threading.Thread(target=get_segment, args=(sb, token, sb.data.tables()[0].table_id))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
            time.sleep(0.01)
        for thread in threads:
            thread.join()
        entries = sorted(sb.requests, key=lambda e: e.t)
        ends = [e.t_end for e in entries]
        assert ends != sorted(ends)  # a later request was answered first


# ----- segment counts ---------------------------------------------------------------------------


def test_segment_counts_match_what_is_served():
    with running(rows_per_table=250, table_rows={}, segment_size=100) as sb:
        token = token_of(sb.url)
        table_id = sb.data.tables()[0].table_id
        assert sb.data.segment_count(table_id) == 3
        assert sb.data.segment_count(table_id, 50) == 5
        assert len(segments(sb, token, table_id)) == 3
        for index in range(200, 250):
            sb.data.delete_row(table_id, sb.data.row_id(table_id, index))
        assert sb.data.segment_count(table_id) == 2
        assert len(segments(sb, token, table_id)) == 2
        sb.data.insert_row(table_id, {})
        assert sb.data.segment_count(table_id) == 3
        listed = {t["table_id"]: t for t in admin(sb, "GET", "tables").json()}
        assert (listed[table_id]["row_count"], listed[table_id]["segment_count"]) == (201, 3)
        other = sb.data.tables()[1].table_id
        assert (listed[other]["row_count"], listed[other]["segment_count"]) == (250, 3)
    with running(rows_per_table=0) as sb:
        table_id = sb.data.tables()[0].table_id
        assert sb.data.segment_count(table_id) == 1  # an empty table still answers one segment
        assert len(segments(sb, token_of(sb.url), table_id)) == 1


# ----- CLI --------------------------------------------------------------------------------------


def test_cli_flags_for_faults_cursor_and_jitter(capsys):
    table_id = Sandbox(SandboxConfig()).data.tables()[0].table_id
    args = _parser().parse_args(
        [
            "--latency-jitter",
            "0.5",
            "--deleted-cursor",
            "restart",
            "--table-fault",
            f"{table_id}=403_after_first",
            "--table-fault",
            "tblother=bad_columns",
        ]
    )
    config = build_config(args)
    assert config.latency_jitter_s == 0.5
    assert config.deleted_cursor == "restart"
    assert config.table_faults == {table_id: "403_after_first", "tblother": "bad_columns"}
    for bad in (["--table-fault", "tbl=nope"], ["--deleted-cursor", "skip"]):
        with pytest.raises(SystemExit) as exit_info:
            main(bad)
        assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["--table-fault", "tblnope=403"])
    assert exit_info.value.code == 2
    assert "names no table" in capsys.readouterr().err
