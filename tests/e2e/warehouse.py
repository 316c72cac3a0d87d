"""Read what landed in DuckDB or PostgreSQL, in one shape, to compare with the sandbox's truth."""

# ruff: noqa: S608 - table names in SQL come from the sandbox or the warehouse, not from users

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tap_maptable.columns import parse_timestamp

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SCHEMA = "maptable"
FIXED_STREAMS = ("workspaces", "projects", "table_nodes")


class Warehouse:
    """A DB-API connection plus the few queries the tests need."""

    def __init__(
        self, conn: Any, *, lower_names: bool, empty_text_is_null: bool, exact_numbers: bool
    ) -> None:
        """Wrap `conn`, saying how the target that filled it is known to alter values.

        Args:
            conn: A DB-API connection.
            lower_names: The target folds column names to lower case.
            empty_text_is_null: The target loads an empty string as NULL.
            exact_numbers: The target keeps every digit of a number (NUMERIC, not DOUBLE).
        """
        self.conn = conn
        self.lower_names = lower_names
        self.empty_text_is_null = empty_text_is_null
        self.exact_numbers = exact_numbers

    def column(self, name: str) -> str:
        """The warehouse's name of a record property, quoted."""
        return '"' + (name.lower() if self.lower_names else name).replace('"', '""') + '"'

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query."""
        cur = self.conn.cursor()
        cur.execute(sql, params) if params else cur.execute(sql)
        rows: list[tuple[Any, ...]] = cur.fetchall()
        return rows

    def tables(self) -> set[str]:
        """Tables in the target schema."""
        rows = self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'maptable'"
        )
        return {str(r[0]) for r in rows}

    def column_types(self, table: str) -> dict[str, str]:
        """Column name -> SQL type name (upper case) of one table."""
        rows = self.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = 'maptable' AND table_name = '{table}'"
        )
        return {str(name): str(kind).upper() for name, kind in rows}

    def values(self, table: str, *props: str, where: str = "") -> list[tuple[Any, ...]]:
        """`props` of every row of `table`."""
        columns = ", ".join(self.column(p) for p in props)
        return self.query(f'SELECT {columns} FROM {SCHEMA}."{table}" {where}')

    def keyed(self, table: str, key: str, *props: str) -> dict[Any, tuple[Any, ...]]:
        """Key -> the other `props`, failing if a key is there twice."""
        rows = self.values(table, key, *props)
        keys = [r[0] for r in rows]
        dupes = {k for k in keys if keys.count(k) > 1}
        assert not dupes, (
            f"{table}: {len(dupes)} key(s) landed more than once, e.g. {sorted(dupes)[:3]}"
        )
        return {r[0]: tuple(r[1:]) for r in rows}


def as_number(value: Any) -> float | None:
    """A numeric column's value as a float."""
    if value is None:
        return None
    assert isinstance(value, (int, float, Decimal)), f"not a number: {value!r}"
    return float(value)


def as_utc(value: Any) -> datetime | None:
    """A timestamp column's value as an aware UTC datetime (naive values are UTC)."""
    if value is None:
        return None
    assert isinstance(value, datetime), f"not a timestamp: {value!r}"
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def as_json(value: Any) -> Any:
    """A JSON column's value, decoded (DuckDB returns text, psycopg decoded objects)."""
    return json.loads(value) if isinstance(value, str) else value


def expected_time(text: str | None) -> datetime | None:
    """A record's date-time string as an aware datetime."""
    return None if text is None else parse_timestamp(text)


def as_boolean(value: Any) -> bool | None:
    """A BOOLEAN column's value."""
    assert value is None or isinstance(value, bool), f"not a boolean: {value!r}"
    return value


def as_exact(value: Any) -> Any:
    """A numeric column's value as it is (Decimal from NUMERIC, float from DOUBLE)."""
    assert value is None or isinstance(value, (int, float, Decimal)), f"not a number: {value!r}"
    return value


# The properties every row table is checked on, and how to read each.
ROW_CHECKS: dict[str, Any] = {
    "名称": str,
    "Notes": lambda v: v,
    "Amount": as_number,
    "Due date": as_utc,
    "Location": as_json,
    "单价": as_number,
    "Done": as_boolean,
    "Website": as_json,
    "Files": as_json,
    "Discount": as_number,
    "Quantity": as_exact,
    "_updated_at": as_utc,
    "_created_at": as_utc,
}
TIMES = frozenset({"Due date", "_updated_at", "_created_at"})
NUMBERS = frozenset({"Amount", "单价", "Discount"})


def expected_cell(wh: Warehouse, prop: str, value: Any) -> Any:
    """The expected warehouse value of a record property, in the same form as ROW_CHECKS."""
    if value == "" and wh.empty_text_is_null:
        return None
    if prop in TIMES:
        return expected_time(value)
    if prop in NUMBERS:
        return None if value is None else float(value)
    if prop == "Quantity" and value is not None:
        # Every digit in a NUMERIC column; a DOUBLE column holds what a float can.
        return Decimal(value) if wh.exact_numbers else float(value)
    return value


def check_rows(wh: Warehouse, table: str, truth: dict[str, dict[str, Any]]) -> None:
    """Every row of `truth` is in `table` exactly once, with the checked values."""
    props = list(ROW_CHECKS)
    landed = wh.keyed(table, "_row_id", *props)
    assert set(landed) == set(truth), (
        f"{table}: {len(set(truth) - set(landed))} row(s) missing, "
        f"{len(set(landed) - set(truth))} unexpected"
    )
    for row_id, record in truth.items():
        got = {p: ROW_CHECKS[p](v) for p, v in zip(props, landed[row_id], strict=True)}
        want = {p: expected_cell(wh, p, record[p]) for p in props}
        assert got == want, f"{table} row {row_id}: landed {got}, expected {want}"


def check_entities(wh: Warehouse, truth: dict[str, set[str]]) -> None:
    """Every workspace, project and table node exactly once."""
    workspaces = wh.values("workspaces", "type", "id")
    keys = [f"{t}/{i}" for t, i in workspaces]
    assert sorted(keys) == sorted(truth["workspaces"])
    for table in ("projects", "table_nodes"):
        ids = [str(r[0]) for r in wh.values(table, "id")]
        assert sorted(ids) == sorted(truth[table]), f"{table}: ids differ from the sandbox's"


@contextlib.contextmanager
def opened_duckdb(path: Path) -> Iterator[Warehouse]:
    """A DuckDB warehouse file, read-only (the target has exited)."""
    import duckdb  # noqa: PLC0415 - only the DuckDB tests need it

    conn = duckdb.connect(str(path), read_only=True)
    try:
        # target-duckdb folds names to lower case and loads empty strings as NULL (CSV import).
        yield Warehouse(conn, lower_names=True, empty_text_is_null=True, exact_numbers=False)
    finally:
        conn.close()
