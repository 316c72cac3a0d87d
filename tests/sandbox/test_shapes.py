"""Documented cell shapes, per-table faults, unknown cursors, jitter and segment counts.

Over real HTTP, as the tap sees them: a sample table that lacks a documented shape, or a fault that
answers differently from what the README says, would let the tap's tests pass for nothing.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager

import pytest
import requests

from maptable_sandbox import Sandbox, SandboxConfig
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
