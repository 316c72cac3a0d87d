"""The sandbox's dataset: workspaces, projects, table nodes, columns and rows.

Structure (workspaces, projects, tables, columns) is small and built eagerly from the seed. Rows are
never stored: row ``i`` of a table is derived on demand from keyed BLAKE2b digests of ``i``, so a
million-row table costs nothing until a segment of it is asked for, and any row can be produced
without producing the ones before it. Mutations (update, delete, insert) live in a small per-table
overlay that shadows the generated rows.

Column drift (reorder, rename, retype, add, delete) edits the column list; the changes that rewrite
cells (retype, add, delete) are also kept as a per-table list of ``_Drift`` steps, replayed on each
generated row as it is produced and applied once to the overlay's rows when the change is made. So
drift never materialises a table, and column ids stay stable across it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import re
import struct
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from maptable_sandbox.config import SandboxConfig

ZERO_TIME = "0001-01-01T00:00:00Z"
START_2024 = 1_704_067_200  # 2024-01-01T00:00:00Z
SPAN_SECONDS = 2 * 365 * 86400  # through the end of 2025
END_2025_MS = (START_2024 + SPAN_SECONDS) * 1000
FIRST_WORKSPACE_ID = 164
ROW_ID_LENGTH = 24
SANDBOX_USER = "usr-sandbox"
HEX_DIGITS = frozenset("0123456789abcdef")
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
FILES_URL = "https://files.example.invalid/"

# A byte below these thresholds triggers the rare case (13/256 ~ 5 %, 5/256 ~ 2 %, 3/256 ~ 1 %).
MISSING_BELOW = 13
RARE_BELOW = 5
RARER_BELOW = 3

TABLE_NAMES = ("订单 Orders", "客户 Customers", "门店 Stores", "库存 Inventory", "巡检 Inspections")
NOTES = (
    "first line\nsecond line",
    "备注:需要回访",
    "Call back on Monday",
    "包含 emoji 🚚 and tabs\tinside",
    "quotes \"double\" and 'single'",
    "",
)
BLANK_TEXT = ("alpha", "beta", "γάμμα", "", "  padded  ", "多字节")
#: Columns of the vendor's documented types, after the original ones in every table: (role, name,
#: type, typeOptions). "Quantity" holds ``BIG_INTEGERS``, "Reference" ``ODD_NUMERIC_TEXT``.
TYPED_COLUMNS: tuple[tuple[str, str, str, Any], ...] = (
    ("done", "Done", "boolean", None),
    ("website", "Website", "hyperlink", None),
    ("discount", "Discount", "number", {"format": "percentage", "precision": 1}),
    ("cost", "Cost", "number", {"format": "currency", "currency": "CNY", "precision": 2}),
    ("quantity", "Quantity", "number", {"format": "commaNumber", "precision": 0}),
    ("reference", "Reference", "singleLineText", None),
)
CHOICES = ("待处理 Pending", "进行中 In progress", "已完成 Done", "Cancelled")
LOWER_STATUS = ("open", "closed", "OPEN", "n/a")
USERS = ("usr0001", "usr0002", "usr0003", "usr0004")
BAD_NUMBERS = ("n/a", "12,5")
TEXT_AMOUNTS = ("n/a", "12,5", "≈100", "")  # the non-numeric ~5 % of the text "Amount" column
#: Table (by creation order) whose second "Amount" column is text, not a number.
TEXT_AMOUNT_ORDINAL = 1
#: Column types whose cells are text, and the other types ``retype_column`` converts to or from.
TEXT_TYPES = frozenset({"singleLineText", "multiLineText"})
NUMBER_TYPE = "number"
BOOLEAN_TYPE = "boolean"
DATETIME_TYPE = "datetime"
HYPERLINK_TYPE = "hyperlink"
ATTACHMENT_TYPE = "attachment"
# ASCII digits only: a server parsing numbers the way Go or JavaScript does leaves "١٢٣" as text.
_NUMERIC_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_INTEGER_TEXT = re.compile(r"[+-]?\d+", re.ASCII)
BOOLEAN_TEXT = {"true": True, "false": False}
#: Workspace time zone of the sample data (Asia/Shanghai): datetimes without an offset are in it.
WORKSPACE_UTC_OFFSET_S = 8 * 3600
WORKSPACE_OFFSET_TEXT = "+08:00"
WORKSPACE_TZ = timezone(timedelta(seconds=WORKSPACE_UTC_OFFSET_S))
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: Default fill of an added ``hyperlink`` column: this URL plus the row's number.
FILL_URL = "https://sandbox.example.invalid/rows/"

# The documented column types (boolean, hyperlink, percentage/currency/commaNumber numbers) and the
# odd values a tap must carry through unchanged. Rows are placed by index ("anchor" rows), so every
# table of a few dozen rows has each case, and a test can find them without scanning.
ANCHOR_EVERY = 10
#: index % 10 == 3: "Website" is a {"link", "text"} object; == 8: a plain URL (never missing).
LINK_OBJECT_AT, LINK_URL_AT = 3, 8
#: index % 5 == 2: "Reference" holds one of ``ODD_NUMERIC_TEXT`` (never missing), in turn, so
#: the first 50 rows hold all ten.
ODD_TEXT_EVERY, ODD_TEXT_AT = 5, 2
ODD_NUMERIC_TEXT = (
    "12345678901234567890",
    "1_000",
    "١٢٣",
    "NaN",
    "1e3",
    " 12 ",
    "-0",
    "Infinity",
    "0x1F",
    "1,000",
)
#: index % 10 == 6: "Quantity" holds one of ``BIG_INTEGERS`` (never missing), in turn, as a JSON
#: number: beyond 2**53 (a float64 cannot hold them), 2**63 (beyond int64) and beyond 2**64.
BIG_AT = 6
BIG_INTEGERS = (
    9_007_199_254_740_993,
    9_223_372_036_854_775_808,
    -9_007_199_254_740_993,
    123_456_789_012_345_678_901_234_567_890,
)
WEBSITES = (
    "https://www.example.com/",
    "https://shop.example.invalid/items/42?ref=sandbox&lang=zh-CN",
    "http://例子.example.invalid/路径/页面",
    "https://example.invalid/a%20b/c#frag",
)
LINK_TEXTS = ("官网 Homepage", "Order page", "🚚 Tracking")
#: Share of "Due date" cells that are ISO-8601 text rather than epoch milliseconds (the byte is
#: below this; below ``RARE_BELOW`` it is Go's zero time instead): about 13 %.
ISO_DUE_BELOW = 38
#: Table-node types: a table added at run time is a plain ``table``; groups have no rows.
TABLE_TYPE, GROUP_TYPE = "table", "group"
#: The current user's role on a project added at run time (its creator administers it).
CREATOR_ROLE = "admin"
#: Who created a project added at run time: the sandbox's user, as ``currentUser`` shows it.
SANDBOX_CREATOR = {"id": SANDBOX_USER, "name": "Sandbox 机器人", "avatar": None}


@dataclass(frozen=True)
class TableInfo:
    """Where a table node lives; what a test needs to know to check the tap's output."""

    table_id: str
    name: str
    type: str
    project_id: str
    project_name: str
    workspace_id: int
    workspace_type: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the admin endpoint."""
        return asdict(self)


@dataclass
class _Table:
    """A table's fixed shape plus its mutation overlay (index -> row, ``None`` = deleted)."""

    info: TableInfo
    key: bytes
    prefix: str
    base_count: int
    ordinal: int
    columns: list[dict[str, Any]]
    col: dict[str, str]
    views: list[dict[str, Any]]
    overlay: dict[int, dict[str, Any] | None] = field(default_factory=dict)
    next_index: int = 0
    drift: tuple[_Drift, ...] = ()  # replaced, never mutated: readers snapshot it without a copy


@dataclass(frozen=True)
class _Drift:
    """One cell-rewriting column change, replayed on a row's cells (``op``: retype, add, delete)."""

    op: str
    column_id: str
    type: str = ""
    name: str = ""
    fill: Any = None
    from_type: str = ""

    def apply(self, cells: dict[str, Any], index: int) -> None:
        """Rewrite ``cells`` (of the row at ``index``) in place."""
        if self.op == "delete":
            cells.pop(self.column_id, None)
        elif self.op == "retype":
            if self.column_id in cells:
                cells[self.column_id] = convert_cell(
                    cells[self.column_id], self.type, self.from_type
                )
        elif self.fill is not None:
            cells[self.column_id] = copy.deepcopy(self.fill)
        else:
            cells[self.column_id] = default_fill(self.type, self.name, index)


def convert_cell(value: Any, to_type: str, from_type: str = "") -> Any:
    """A cell's value after its column is retyped from ``from_type`` to ``to_type``.

    MapTable converts cells on retype; the sandbox does what a careful server would, so that a tap
    sees realistic leftovers. To a text type: numbers become their text (``12.0`` -> ``"12"``),
    booleans ``"true"``/``"false"``, a hyperlink object its URL, epoch milliseconds of a
    ``datetime`` column ISO-8601 UTC text, attachments their file names (comma-separated), other
    objects and lists their JSON text. To ``number``: numeric ASCII text (spaces trimmed) becomes a
    number, booleans 1/0. To ``boolean``: ``"true"``/``"false"`` (any case) and numbers (non-zero
    is true). To ``datetime``: ISO-8601 text becomes epoch milliseconds (no offset: the
    workspace's +08:00). Anything else keeps its value, so it may no longer fit its column.
    """
    if to_type in TEXT_TYPES:
        return _as_text(value, from_type)
    converter = _CONVERTERS.get(to_type)
    return value if converter is None else converter(value)


def _as_text(value: Any, from_type: str = "") -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number_text(value, from_type)
    return _structured_text(value, from_type)


def _number_text(value: float, from_type: str) -> str:
    if from_type == DATETIME_TYPE and isinstance(value, int):
        return _epoch_ms_text(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:  # noqa: PLR2004
        return str(int(value))
    return repr(value)


def _structured_text(value: Any, from_type: str) -> str:
    """A hyperlink object's URL, attachments' file names, or any other value's JSON text."""
    if isinstance(value, dict) and isinstance(value.get("link"), str):
        return str(value["link"])
    if from_type == ATTACHMENT_TYPE and isinstance(value, list):
        return ", ".join(str(f.get("name", "")) for f in value if isinstance(f, dict))
    return _js(value)


def _epoch_ms_text(epoch_ms: int) -> str:
    """ISO-8601 UTC text of epoch milliseconds; the number's text if no date can hold it."""
    try:
        return _iso_ms(epoch_ms)
    except (OverflowError, OSError, ValueError):
        return str(epoch_ms)


def _to_number(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        return _as_number(value)
    return value


def _as_number(text: str) -> Any:
    stripped = text.strip()
    if _INTEGER_TEXT.fullmatch(stripped):
        return int(stripped)
    if _NUMERIC_TEXT.fullmatch(stripped):
        number = float(stripped)
        if math.isfinite(number):
            return number
    return text


def _to_boolean(value: Any) -> Any:
    if isinstance(value, str):
        return BOOLEAN_TEXT.get(value.strip().lower(), value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0
    return value


def _to_datetime(value: Any) -> Any:
    if not isinstance(value, str) or value == ZERO_TIME:
        return value
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=WORKSPACE_TZ)
    return (parsed - EPOCH) // timedelta(milliseconds=1)  # exact, unlike timestamp() * 1000


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    NUMBER_TYPE: _to_number,
    BOOLEAN_TYPE: _to_boolean,
    DATETIME_TYPE: _to_datetime,
}


def default_fill(column_type: str, name: str, index: int) -> Any:
    """The cell an added column gets in row ``index`` when no ``fill`` is given.

    A value of the column's type, so that a test adding a column sees it typed: the row's number
    (``number``), true on odd row numbers (``boolean``), midnight UTC of the row's day in 2024 as
    epoch milliseconds (``datetime``), a URL (``hyperlink``), no file (``attachment``), else
    ``"<name> <number>"``.
    """
    number = index + 1
    if column_type == NUMBER_TYPE:
        return number
    if column_type == BOOLEAN_TYPE:
        return index % 2 == 0
    if column_type == DATETIME_TYPE:
        return (START_2024 + index % 366 * 86400) * 1000
    if column_type == HYPERLINK_TYPE:
        return f"{FILL_URL}{number}"
    if column_type == ATTACHMENT_TYPE:
        return []
    return f"{name} {number}"


_HOUR_PREFIX: dict[int, str] = {}
_MMSS = tuple(f"{m:02d}:{sec:02d}" for m in range(60) for sec in range(60))
_MILLIS_Z = tuple(f".{ms:03d}Z" for ms in range(1000))
_GENERATED: dict[str, Any] = {}  # sentinel: "no overlay entry, generate the row"


def _iso_seconds(seconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` for an epoch second.

    Hour prefixes are cached and minutes:seconds precomputed, because ``datetime`` formatting
    dominated row generation (two years are only 17,520 hours).
    """
    hour, rem = divmod(seconds, 3600)
    prefix = _HOUR_PREFIX.get(hour)
    if prefix is None:
        prefix = datetime.fromtimestamp(hour * 3600, timezone.utc).strftime("%Y-%m-%dT%H:")
        _HOUR_PREFIX[hour] = prefix
    return prefix + _MMSS[rem]


def _iso_ms(epoch_ms: int) -> str:
    """Format like the API: ``2025-01-02T03:04:05.123Z``."""
    seconds, millis = divmod(epoch_ms, 1000)
    return _iso_seconds(seconds) + _MILLIS_Z[millis]


def now_iso_ms() -> str:
    """Current time in the API's meta format, millisecond precision, UTC."""
    return _iso_ms(int(datetime.now(timezone.utc).timestamp() * 1000))


def _alnum(rng: random.Random, n: int) -> str:
    """Random alphanumeric string, for column/view ids that look like the vendor's."""
    return "".join(rng.choice(ALNUM) for _ in range(n))


def _hex_id(rng: random.Random, prefix: str) -> str:
    """``prefix`` + 10 hex chars: project and table-node ids."""
    return f"{prefix}{rng.getrandbits(40):010x}"


# The 64-byte row digest read as 16 bytes, 8 shorts and 8 ints in one C call.
_DIGEST = struct.Struct(">16B8H8I")
# A second, 32-byte digest for the documented-type columns added later: the first digest's fields
# all drive existing cells, which must not change.
_TYPED_DIGEST = struct.Struct(">8B4H4I")
TYPED_PERSON = b"typed-cells"


def _js(value: Any) -> str:
    """Compact JSON text, as the wire carries it (UTF-8, not ASCII-escaped)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


NOTES_JS = tuple(_js(v) for v in NOTES)
BLANK_JS = tuple(_js(v) for v in BLANK_TEXT)
CHOICES_JS = tuple(_js(v) for v in CHOICES)
LOWER_JS = tuple(_js(v) for v in LOWER_STATUS)
BAD_NUMBERS_JS = tuple(_js(v) for v in BAD_NUMBERS)
URL_JS = tuple(_js(v) for v in WEBSITES)
LINK_JS = tuple(_js({"link": url, "text": text}) for url in WEBSITES for text in LINK_TEXTS)
ODD_TEXT_JS = tuple(_js(v) for v in ODD_NUMERIC_TEXT)
BIG_JS = tuple(str(v) for v in BIG_INTEGERS)
BOOLEAN_JS = ("false", "true")
#: "Discount" (a percentage column) holds fractions with 3 decimals: 0.15 shows as 15.0 %.
DISCOUNT_JS = tuple(repr(n / 1000) for n in range(1001))


class _RowMaker:
    """Derives row ``i`` of one table from ``blake2b(i, key=table key)``; pure and thread-safe.

    Rows are produced directly as JSON text: serving a segment is then a string join, which is what
    lets the sandbox stream a 200,000-row table quickly. The dict form is parsed back from the same
    text, so the truth and the wire cannot disagree. Each digest field drives one decision, so rows
    are independent of each other and of the order they are asked for in.
    """

    def __init__(self, table: _Table) -> None:
        self._key = table.key
        self._prefix = table.prefix
        self._k = {role: f"{_js(column_id)}:" for role, column_id in table.col.items()}
        self._label = _js(table.info.name)[:-1]  # without the closing quote: "#n" follows
        self._lower = "status_lower" in table.col
        self._typed_keys = tuple(self._k[role] for role, *_ in TYPED_COLUMNS)
        types = {c["id"]: c["type"] for c in table.columns}
        self._amount, self._amount2 = (
            _amount_text if types[table.col[role]] in TEXT_TYPES else _number
            for role in ("amount", "amount2")
        )

    def make(self, index: int) -> dict[str, Any]:
        """The generated (unmutated) row at ``index`` as a dict."""
        row: dict[str, Any] = json.loads(self.make_json(index))
        return row

    def make_json(self, index: int) -> str:
        """The generated (unmutated) row at ``index`` as compact JSON text."""
        raw = index.to_bytes(8, "big")
        f = _DIGEST.unpack(hashlib.blake2b(raw, key=self._key, digest_size=64).digest())
        g = _TYPED_DIGEST.unpack(
            hashlib.blake2b(
                raw, key=self._key, digest_size=_TYPED_DIGEST.size, person=TYPED_PERSON
            ).digest()
        )
        return (
            f'{{"id":"{self._prefix}{index:016x}","cells":{{{self._cells(f, g, index)}}},'
            f'"meta":{_meta(f)}}}'
        )

    def _cells(self, f: tuple[int, ...], g: tuple[int, ...], index: int) -> str:
        # f[0:16] bytes, f[16:24] shorts, f[24:32] ints; f[0:10] decide which cells are missing.
        k = self._k
        out = [f'{k["primary"]}{self._label} #{index + 1}"']
        if f[0] >= MISSING_BELOW:
            out.append(k["notes"] + NOTES_JS[f[10] % len(NOTES_JS)])
        if f[1] >= MISSING_BELOW:
            out.append(k["amount"] + self._amount(f[11], f[24] % 16_777_216 / 100))
        if f[2] >= MISSING_BELOW:
            out.append(k["amount2"] + self._amount2(f[12], f[16] - 1000))
        if f[3] >= MISSING_BELOW:
            out.append(k["due"] + _due_date(f[13], f[25], g[9] % 1000))
        if f[4] >= MISSING_BELOW:
            out.append(k["status"] + CHOICES_JS[f[14] % len(CHOICES_JS)])
        if f[5] >= MISSING_BELOW:
            # micro-degrees / 1e6: at most 6 decimals without calling round()
            lng = (f[17] * 360_000_000 // 65535 - 180_000_000) / 1e6
            lat = (f[18] * 180_000_000 // 65535 - 90_000_000) / 1e6
            out.append(f'{k["location"]}{{"lng":{lng!r},"lat":{lat!r}}}')
        if f[6] >= MISSING_BELOW:
            out.append(k["blank"] + BLANK_JS[f[15] % len(BLANK_JS)])
        if f[7] >= MISSING_BELOW:
            out.append(k["price"] + _number(f[23] & 0xFF, f[19] * 1000 // 7 / 1000))
        self._more_cells(f, index, out)
        self._typed_cells(g, index, out)
        return ",".join(out)

    def _more_cells(self, f: tuple[int, ...], index: int, out: list[str]) -> None:
        k = self._k
        if f[8] >= MISSING_BELOW:
            out.append(k["files"] + _files(f[20], f[28], index))
        if self._lower and f[9] >= MISSING_BELOW:
            out.append(k["status_lower"] + LOWER_JS[(f[23] >> 8) % len(LOWER_JS)])

    def _typed_cells(self, g: tuple[int, ...], index: int, out: list[str]) -> None:
        # g[0:8] bytes (g[0:6] decide which cells are missing), g[8:12] shorts, g[12:16] ints.
        # Anchor rows (index % 10) always carry their odd value; see the constants.
        done, website, discount, cost, quantity, reference = self._typed_keys
        anchor = index % ANCHOR_EVERY
        if g[0] >= MISSING_BELOW:
            out.append(done + BOOLEAN_JS[g[6] & 1])
        if anchor in (LINK_OBJECT_AT, LINK_URL_AT) or g[1] >= MISSING_BELOW:
            out.append(website + _website(g[7], anchor))
        if g[2] >= MISSING_BELOW:
            out.append(discount + DISCOUNT_JS[g[8] % len(DISCOUNT_JS)])
        if g[3] >= MISSING_BELOW:
            out.append(f"{cost}{g[12] % 10_000_000 / 100!r}")
        if anchor == BIG_AT:
            out.append(quantity + BIG_JS[index // ANCHOR_EVERY % len(BIG_JS)])
        elif g[4] >= MISSING_BELOW:
            out.append(f"{quantity}{g[13] % 10_000_000}")
        if index % ODD_TEXT_EVERY == ODD_TEXT_AT:
            out.append(reference + ODD_TEXT_JS[index // ODD_TEXT_EVERY % len(ODD_TEXT_JS)])
        elif g[5] >= MISSING_BELOW:
            out.append(f'{reference}"{g[14] % 100_000_000:08d}"')


def _meta(f: tuple[int, ...]) -> str:
    """Row meta: updateTime >= createTime, rare Go zero times (~2 % update, ~1 % create)."""
    create_ms = START_2024 * 1000 + f[26] * 16 % (SPAN_SECONDS * 1000)
    update_ms = min(create_ms + f[27] * 4, END_2025_MS)
    created = ZERO_TIME if (f[21] >> 8) < RARER_BELOW else _iso_ms(create_ms)
    updated = ZERO_TIME if (f[21] & 0xFF) < RARE_BELOW else _iso_ms(update_ms)
    creator, updater = USERS[f[22] % len(USERS)], USERS[(f[22] >> 8) % len(USERS)]
    return (
        f'{{"createTime":"{created}","updateTime":"{updated}",'
        f'"creatorID":"{creator}","updaterID":"{updater}"}}'
    )


def _any_live_from(start: int, base: int, overlay: dict[int, dict[str, Any] | None]) -> bool:
    """Whether any live row has index >= ``start``, in O(len(overlay)) rather than O(rows)."""
    deleted_base = sum(1 for i, r in overlay.items() if r is None and start <= i < base)
    if base - max(start, 0) > deleted_base:
        return True
    return any(r is not None and i >= start for i, r in overlay.items())


def _number(flag: int, value: float) -> str:
    """A number, or (~2 %) one of the wrong-typed strings real tables contain (JSON text)."""
    if flag < RARE_BELOW:
        return BAD_NUMBERS_JS[flag % len(BAD_NUMBERS_JS)]
    return repr(value)


def _amount_text(flag: int, value: float) -> str:
    """A text "Amount": the number's text, or (~5 %) text that is no number (JSON text)."""
    if flag < MISSING_BELOW:
        return _js(TEXT_AMOUNTS[flag % len(TEXT_AMOUNTS)])
    return f'"{value!r}"'


def _due_date(flag: int, raw: int, millis: int) -> str:
    """A "Due date" cell (JSON text), in each of the shapes a datetime arrives in.

    Epoch milliseconds (~85 %, as documented); ISO-8601 text (~13 %, older rows): UTC with "Z",
    with "+08:00", or without an offset (the workspace's Asia/Shanghai wall time), each naming the
    same instant to the second; or (~2 %) Go's zero time.
    """
    if flag < RARE_BELOW:
        return f'"{ZERO_TIME}"'
    seconds = START_2024 + raw % SPAN_SECONDS
    if flag >= ISO_DUE_BELOW:
        return str(seconds * 1000 + millis)
    form = flag % 3
    if form == 0:
        return f'"{_iso_seconds(seconds)}Z"'
    local = _iso_seconds(seconds + WORKSPACE_UTC_OFFSET_S)
    return f'"{local}{WORKSPACE_OFFSET_TEXT}"' if form == 1 else f'"{local}"'


def _website(bits: int, anchor: int) -> str:
    """A hyperlink cell (JSON text): a plain URL, or a ``{"link", "text"}`` object.

    The form is the anchor's (``LINK_OBJECT_AT``, ``LINK_URL_AT``) or else decided by a bit.
    """
    as_object = anchor == LINK_OBJECT_AT or (anchor != LINK_URL_AT and bits & 1)
    if as_object:
        return LINK_JS[(bits >> 1) % len(LINK_JS)]
    return URL_JS[(bits >> 1) % len(URL_JS)]


def _files(bits: int, size: int, index: int) -> str:
    """Values of a column type the tap does not know: a list of dicts (JSON text)."""
    count = bits % 3
    if not count:
        return "[]"
    hx = f"{index:x}"
    items = [
        f'{{"id":"att{hx}n{n}","name":"scan-{(bits >> (4 * n)) & 0xF}.pdf",'
        f'"size":{size >> (8 * n)},"url":"{FILES_URL}{hx}/{n}.pdf"}}'
        for n in range(count)
    ]
    return f"[{','.join(items)}]"


class Dataset:
    """The sandbox's truth; thread-safe.

    Mutations take the lock; reads of the structure (workspace details, roles, the table list)
    copy it under the lock, and row reads snapshot the overlay under it, so a project or table
    deleted or added meanwhile is either wholly there or wholly gone.
    """

    def __init__(self, config: SandboxConfig) -> None:
        """Build the structure deterministically from ``config.seed``."""
        self._lock = threading.Lock()
        self._rng = random.Random(f"maptable-sandbox:{config.seed}")
        self._config = config
        self._workspaces: list[dict[str, Any]] = []
        self._details: dict[tuple[str, int], dict[str, Any]] = {}
        self._roles: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._tables: dict[str, _Table] = {}
        self._makers: dict[str, _RowMaker] = {}
        self._groups: set[str] = set()
        # Where each project and table node lives, for deleting and adding them.
        self._project_workspace: dict[str, tuple[str, int]] = {}
        self._node_project: dict[str, str] = {}
        # Every project and node id ever issued (deleted ones too): ids are never reused.
        self._used_ids: set[str] = set()
        self._next_ordinal = 0  # tables built so far, deleted ones included
        self._added = 0  # ids drawn for projects and tables added at run time
        for w in range(config.workspaces):
            self._build_workspace(w)

    # ----- structure -------------------------------------------------------------------------

    def _build_workspace(self, w: int) -> None:
        rng = self._rng
        ws_type = "user" if w % 2 == 0 else "org"
        ws_id = FIRST_WORKSPACE_ID + w
        avatar = None if w % 2 == 0 else f"https://avatars.example.invalid/ws/{ws_id}.png"
        name = f"{rng.randint(100, 999)}****{rng.randint(1000, 9999)}"
        plan = "pro" if w % 3 == 1 else "base"
        self._workspaces.append(
            {"id": ws_id, "name": name, "type": ws_type, "avatar": avatar, "plan": plan}
        )
        projects = [
            self._build_project(ws_id, ws_type, w, p)
            for p in range(self._config.projects_per_workspace)
        ]
        for project in projects:
            self._project_workspace[project["id"]] = (ws_type, ws_id)
            self._used_ids.add(project["id"])
            for node in project["tableNodes"]:
                self._node_project[node["id"]] = project["id"]
                self._used_ids.add(node["id"])
        self._details[(ws_type, ws_id)] = {
            "currentUser": {"id": SANDBOX_USER, "name": "Sandbox 机器人", "avatar": None},
            "projects": projects,
            "recycleProjects": [],
            "dataFiles": None,
            "recycleDataFiles": None,
            "unreadNotificationsCount": w * 3,
        }
        self._roles[(ws_type, ws_id)] = self._build_roles(ws_type, ws_id, projects)

    @staticmethod
    def _build_roles(
        ws_type: str, ws_id: int, projects: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        levels = ("admin", "editable", "readonly")
        roles: list[dict[str, Any]] = []
        if ws_type == "org":
            roles.append({"id": str(ws_id), "type": "org", "role": "admin"})
        for i, project in enumerate(projects):
            roles.append({"id": project["id"], "type": "project", "role": levels[i % 3]})
            roles.extend(
                {"id": node["id"], "type": "table", "role": levels[(i + j + 1) % 3]}
                for j, node in enumerate(project["tableNodes"])
                if node["type"] != "group"
            )
        return roles

    def _stamp(self) -> str:
        return _iso_ms(START_2024 * 1000 + self._rng.randrange(SPAN_SECONDS * 1000))

    def _build_project(self, ws_id: int, ws_type: str, w: int, p: int) -> dict[str, Any]:
        rng = self._rng
        project_id = _hex_id(rng, "prj")
        name = f"项目 Project {w + 1}-{p + 1}"
        created, updated = sorted((self._stamp(), self._stamp()))
        nodes = []
        for t in range(self._config.tables_per_project):
            ordinal = self._next_ordinal
            table = self._build_table(
                TableInfo(
                    table_id=_hex_id(rng, "tbl"),
                    name=f"{TABLE_NAMES[ordinal % len(TABLE_NAMES)]} {ordinal + 1}",
                    type=TABLE_TYPE if t % 2 == 0 else "bigTable",
                    project_id=project_id,
                    project_name=name,
                    workspace_id=ws_id,
                    workspace_type=ws_type,
                )
            )
            nodes.append(self._node(table.info.table_id, table.info.name, table.info.type))
        group_id = _hex_id(rng, "tbl")
        self._groups.add(group_id)
        nodes.append(self._node(group_id, f"分组 Group {w + 1}-{p + 1}", GROUP_TYPE))
        return {
            "id": project_id,
            "name": name,
            "desc": "" if p % 2 else "Sandbox project — 测试项目",
            "icon": "folder" if p % 2 else None,
            "updateTime": updated,
            "createTime": created,
            "memberCount": 1 + rng.randrange(9),
            "creator": {"id": USERS[p % len(USERS)], "name": f"用户 {p}", "avatar": None},
            "tableNodes": nodes,
        }

    def _node(self, node_id: str, name: str, node_type: str) -> dict[str, Any]:
        rng = self._rng
        return {
            "id": node_id,
            "name": name,
            "type": node_type,
            "subscribed": rng.getrandbits(1) == 1,
            "published": rng.randrange(3) == 0,
            "createTime": self._stamp(),
        }

    def _build_table(
        self, info: TableInfo, rng: random.Random | None = None, rows: int | None = None
    ) -> _Table:
        """Build a table's columns, views and row key, and register it.

        Args:
            info: Where it lives.
            rng: Source of its column, view and row-id prefix draws; ``None``: the shared RNG
                (the tables built from the config, in order). A table added at run time brings
                its own, seeded by its id, so it does not depend on what else was drawn.
            rows: Its generated rows; ``None``: ``table_rows`` or ``rows_per_table``.
        """
        rng = self._rng if rng is None else rng
        ordinal = self._next_ordinal
        self._next_ordinal += 1
        col, columns = _build_columns(
            rng,
            with_lower_status=ordinal % 2 == 1,
            text_amount=ordinal == TEXT_AMOUNT_ORDINAL,
        )
        # Their own RNG: drawing from the shared one would shift every id generated after them.
        typed_rng = random.Random(f"maptable-sandbox:{self._config.seed}:{info.table_id}:typed")
        _add_typed_columns(typed_rng, col, columns)
        base = (
            rows
            if rows is not None
            else self._config.table_rows.get(info.table_id, self._config.rows_per_table)
        )
        table = _Table(
            info=info,
            key=f"{self._config.seed}:{info.table_id}".encode()[:64],
            prefix=f"6{rng.getrandbits(28):07x}",
            base_count=base,
            ordinal=ordinal,
            columns=columns,
            col=col,
            views=[
                {"id": f"viw{_alnum(rng, 6)}", "name": "Grid view"},
                {"id": f"viw{_alnum(rng, 6)}", "name": "地图视图 Map"},
            ],
            next_index=base,
        )
        self._tables[info.table_id] = table
        self._makers[info.table_id] = _RowMaker(table)
        return table

    # ----- read API --------------------------------------------------------------------------

    def workspaces(self) -> list[dict[str, Any]]:
        """Workspace list in the API's shape (a copy)."""
        return copy.deepcopy(self._workspaces)

    def has_workspace(self, ws_type: str, ws_id: int) -> bool:
        """Whether the workspace ``ws_type``/``ws_id`` exists."""
        return (ws_type, ws_id) in self._details

    def workspace_detail(self, ws_type: str, ws_id: int) -> dict[str, Any]:
        """Workspace detail in the API's shape; ``KeyError`` if unknown."""
        with self._lock:
            return copy.deepcopy(self._details[(ws_type, ws_id)])

    def workspace_roles(self, ws_type: str, ws_id: int) -> list[dict[str, Any]]:
        """Roles of the current user in a workspace; ``KeyError`` if unknown."""
        with self._lock:
            return copy.deepcopy(self._roles[(ws_type, ws_id)])

    def tables(self) -> list[TableInfo]:
        """Every live table node that has rows, in creation order (groups excluded)."""
        with self._lock:
            return [t.info for t in self._tables.values()]

    def is_group(self, node_id: str) -> bool:
        """Whether ``node_id`` is a live group node (which has no rows)."""
        with self._lock:
            return node_id in self._groups

    def has_table(self, table_id: str) -> bool:
        """Whether ``table_id`` is a live table with rows."""
        with self._lock:
            return table_id in self._tables

    def table_info(self, table_id: str) -> TableInfo:
        """``TableInfo`` of one table; ``KeyError`` if unknown."""
        with self._lock:
            return self._tables[table_id].info

    def columns(self, table_id: str) -> list[dict[str, Any]]:
        """Column definitions, primary first unless drift reordered them (a copy)."""
        table = self._tables[table_id]
        with self._lock:
            return copy.deepcopy(table.columns)

    def views(self, table_id: str) -> list[dict[str, Any]]:
        """Views of a table (a copy)."""
        return copy.deepcopy(self._tables[table_id].views)

    def parse_row_id(self, table_id: str, row_id: str) -> int | None:
        """Index encoded in ``row_id``, or ``None`` if it is not a well-formed id of this table."""
        table = self._tables[table_id]
        if (
            len(row_id) != ROW_ID_LENGTH
            or not row_id.startswith(table.prefix)
            or not set(row_id) <= HEX_DIGITS
        ):
            return None
        return int(row_id[len(table.prefix) :], 16)

    def row_id(self, table_id: str, index: int) -> str:
        """The id of row ``index``, whether or not it exists."""
        return f"{self._tables[table_id].prefix}{index:016x}"

    def segment(self, table_id: str, after: int, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``limit`` rows with index > ``after`` (as dicts) and whether more rows follow."""
        parts, more, _last = self.segment_json(table_id, after, limit)
        return [json.loads(p) for p in parts], more

    def segment_json(
        self,
        table_id: str,
        after: int,
        limit: int,
        stop: int | None = None,
        *,
        columns_out: list[dict[str, Any]] | None = None,
    ) -> tuple[list[str], bool, int]:
        """The serving fast path: rows as JSON text.

        Args:
            table_id: The table.
            after: Only rows with a larger index.
            limit: At most this many rows.
            stop: Only rows with a smaller index (used by the segment-loop faults).
            columns_out: If given, extended with the columns the rows were read with (taken in
                the same snapshot, so concurrent column drift cannot split rows from columns).

        Returns:
            The rows' JSON texts, whether any live row follows the last one examined, and the
            index of the last row returned (``after`` if none).
        """
        with self._lock:  # table and maker together: a table deleted meanwhile is a KeyError
            table = self._tables[table_id]
            maker = self._makers[table_id]
            overlay = dict(table.overlay)
            end = table.next_index
            drift = table.drift
            if columns_out is not None:
                columns_out.extend(copy.deepcopy(table.columns))
        base = table.base_count
        high = end if stop is None else min(end, stop)
        i = max(after + 1, 0)
        if not overlay:  # the common case: a contiguous run of generated rows
            upto = min(i + limit, high, base)
            if drift:
                parts = [_drifted_json(maker, drift, j) for j in range(i, upto)]
            else:
                parts = [maker.make_json(j) for j in range(i, upto)]
            last = upto - 1 if parts else after
            return parts, upto < base, last
        parts, last = [], after
        while i < high and len(parts) < limit:
            row = overlay.get(i, _GENERATED) if i in overlay or i < base else None
            if row is _GENERATED:
                parts.append(_drifted_json(maker, drift, i))
                last = i
            elif row is not None:
                parts.append(_js(row))
                last = i
            i += 1
        return parts, _any_live_from(i, base, overlay), last

    def rows(self, table_id: str) -> Iterator[dict[str, Any]]:
        """Every row, in id order, after mutations; lazily, a segment at a time."""
        after = -1
        while True:
            rows, more = self.segment(table_id, after, 1000)
            yield from rows  # freshly parsed dicts: callers may mutate them
            if not more or not rows:
                return
            after = self._index_of(table_id, rows[-1]["id"])

    def row_count(self, table_id: str) -> int:
        """Number of live rows, computed from the overlay without generating any row."""
        table = self._tables[table_id]
        with self._lock:
            overlay = dict(table.overlay)
        deleted_base = sum(1 for i, r in overlay.items() if r is None and i < table.base_count)
        inserted = sum(1 for i, r in overlay.items() if r is not None and i >= table.base_count)
        return table.base_count - deleted_base + inserted

    def segment_count(self, table_id: str, segment_size: int | None = None) -> int:
        """How many segments an honest read of the table takes now (an empty table: one).

        Args:
            table_id: The table.
            segment_size: Rows per segment; ``None``: the configured ``segment_size``.
        """
        size = self._config.segment_size if segment_size is None else segment_size
        return max(1, -(-self.row_count(table_id) // size))

    def is_live(self, table_id: str, index: int) -> bool:
        """Whether row ``index`` exists now (not deleted, not beyond the last row ever made)."""
        table = self._tables[table_id]
        with self._lock:
            if index in table.overlay:
                return table.overlay[index] is not None
        return 0 <= index < table.base_count

    def get_row(self, table_id: str, row_id: str) -> dict[str, Any]:
        """One live row by id (a copy); ``KeyError`` if absent or deleted."""
        index = self._index_of(table_id, row_id)
        return copy.deepcopy(self._current(table_id, index))

    # ----- mutations -------------------------------------------------------------------------

    def update_row(self, table_id: str, row_id: str, cells: dict[str, Any]) -> dict[str, Any]:
        """Merge ``cells`` into a row (``None`` clears a cell) and stamp its meta as updated now."""
        table = self._tables[table_id]
        known = {c["id"] for c in table.columns}
        unknown = set(cells) - known
        if unknown:
            msg = f"unknown column id(s): {sorted(unknown)}"
            raise ValueError(msg)
        index = self._index_of(table_id, row_id)
        with self._lock:
            row = copy.deepcopy(self._current_locked(table, index))
            for column_id, value in cells.items():
                if value is None:
                    row["cells"].pop(column_id, None)
                else:
                    row["cells"][column_id] = value
            row["meta"]["updateTime"] = now_iso_ms()
            row["meta"]["updaterID"] = SANDBOX_USER
            table.overlay[index] = row
        return copy.deepcopy(row)

    def touch_row(self, table_id: str, row_id: str) -> dict[str, Any]:
        """Stamp a row as updated now without changing its cells."""
        return self.update_row(table_id, row_id, {})

    def delete_row(self, table_id: str, row_id: str) -> None:
        """Delete a row; its id is never reused. ``KeyError`` if absent."""
        table = self._tables[table_id]
        index = self._index_of(table_id, row_id)
        with self._lock:
            self._current_locked(table, index)
            table.overlay[index] = None

    def insert_row(self, table_id: str, cells: dict[str, Any]) -> dict[str, Any]:
        """Append a row whose id is larger than every existing one."""
        table = self._tables[table_id]
        known = {c["id"] for c in table.columns}
        if set(cells) - known:
            msg = f"unknown column id(s): {sorted(set(cells) - known)}"
            raise ValueError(msg)
        now = now_iso_ms()
        with self._lock:
            index = table.next_index
            table.next_index += 1
            row = {
                "id": f"{table.prefix}{index:016x}",
                "cells": {k: v for k, v in cells.items() if v is not None},
                "meta": {
                    "createTime": now,
                    "updateTime": now,
                    "creatorID": SANDBOX_USER,
                    "updaterID": SANDBOX_USER,
                },
            }
            table.overlay[index] = row
        return copy.deepcopy(row)

    # ----- helpers ---------------------------------------------------------------------------

    def _index_of(self, table_id: str, row_id: str) -> int:
        index = self.parse_row_id(table_id, row_id)
        if index is None:
            raise KeyError(row_id)
        return index

    def _current(self, table_id: str, index: int) -> dict[str, Any]:
        with self._lock:
            return self._current_locked(self._tables[table_id], index)

    def _current_locked(self, table: _Table, index: int) -> dict[str, Any]:
        if index in table.overlay:
            row = table.overlay[index]
            if row is None:
                raise KeyError(index)
            return row
        if index >= table.base_count:
            raise KeyError(index)
        row = self._makers[table.info.table_id].make(index)
        for step in table.drift:
            step.apply(row["cells"], index)
        return row

    # ----- structure changes -----------------------------------------------------------------

    def add_project(self, ws_type: str, ws_id: int, name: str) -> dict[str, Any]:
        """Add a project without table nodes to a workspace, as a user creating one does.

        It goes last in the workspace detail's ``projects``, created and updated now by the
        sandbox's user, who administers it (its role). Its id is drawn from the seed and the
        number of projects and tables added so far, so a replayed test gets the same id.

        Returns:
            The new project, in the detail's shape (a copy).

        Raises:
            KeyError: No such workspace.
            TypeError: ``name`` is not a string.
        """
        _check_name(name)
        now = now_iso_ms()
        with self._lock:
            detail = self._details[(ws_type, ws_id)]
            project_id = self._new_id_locked("prj")
            project: dict[str, Any] = {
                "id": project_id,
                "name": name,
                "desc": "",
                "icon": None,
                "updateTime": now,
                "createTime": now,
                "memberCount": 1,
                "creator": dict(SANDBOX_CREATOR),
                "tableNodes": [],
            }
            detail["projects"] = [*detail["projects"], project]
            self._project_workspace[project_id] = (ws_type, ws_id)
            self._roles[(ws_type, ws_id)].append(
                {"id": project_id, "type": "project", "role": CREATOR_ROLE}
            )
            return copy.deepcopy(project)

    def add_table(self, project_id: str, name: str, rows: int | None = None) -> TableInfo:
        """Add a table node to a project: a generated table with every sample table's columns.

        Its id is drawn like ``add_project``'s; its columns, views, row-id prefix and rows come
        from the seed and that id alone, so the same id always holds the same table. It goes
        last in the project's ``tableNodes`` (type ``table``, created now), takes the project's
        role, and counts as the next table in creation order for the columns that depend on it
        (``status`` in every other table).

        Args:
            project_id: The project.
            name: The table's name (also the primary cells' prefix).
            rows: Generated rows; ``None``: ``rows_per_table``.

        Raises:
            KeyError: No such project.
            TypeError: ``name`` is not a string.
            ValueError: ``rows`` is not an integer >= 0.
        """
        _check_name(name)
        if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
            msg = "rows must be an integer >= 0"
            raise ValueError(msg)
        now = now_iso_ms()
        with self._lock:
            ws_type, ws_id = self._project_workspace[project_id]
            project = self._project_locked(project_id)
            table_id = self._new_id_locked("tbl")
            info = TableInfo(
                table_id=table_id,
                name=name,
                type=TABLE_TYPE,
                project_id=project_id,
                project_name=project["name"],
                workspace_id=ws_id,
                workspace_type=ws_type,
            )
            rng = random.Random(f"maptable-sandbox:{self._config.seed}:{table_id}")
            self._build_table(info, rng, rows)
            node = {
                "id": table_id,
                "name": name,
                "type": TABLE_TYPE,
                "subscribed": False,
                "published": False,
                "createTime": now,
            }
            project["tableNodes"] = [*project["tableNodes"], node]
            self._node_project[table_id] = project_id
            roles = self._roles[(ws_type, ws_id)]
            role = next((r["role"] for r in roles if r["id"] == project_id), CREATOR_ROLE)
            roles.append({"id": table_id, "type": "table", "role": role})
            return info

    def delete_project(self, project_id: str) -> dict[str, Any]:
        """Delete a project and every table node in it, as a user deleting it does.

        It leaves its workspace's detail and roles; its tables leave ``tables()``, and their
        rows, columns and overlays are dropped (the segment endpoint answers 404). Its id and
        theirs are never reused.

        Returns:
            The deleted project as the detail last showed it.

        Raises:
            KeyError: No such project.
        """
        with self._lock:
            key = self._project_workspace[project_id]
            project = self._project_locked(project_id)
            detail = self._details[key]
            detail["projects"] = [p for p in detail["projects"] if p["id"] != project_id]
            gone = {project_id}
            for node in project["tableNodes"]:
                self._forget_node_locked(node["id"])
                gone.add(node["id"])
            del self._project_workspace[project_id]
            self._roles[key] = [r for r in self._roles[key] if r["id"] not in gone]
            return copy.deepcopy(project)

    def delete_table(self, node_id: str) -> dict[str, Any]:
        """Delete one table node (a table or a group) from its project.

        It leaves the project's ``tableNodes`` and the workspace's roles; a table also leaves
        ``tables()`` with its rows (the segment endpoint answers 404). Its id is never reused.

        Returns:
            The deleted node as ``tableNodes`` last showed it.

        Raises:
            KeyError: No such node.
        """
        with self._lock:
            project_id = self._node_project[node_id]
            key = self._project_workspace[project_id]
            project = self._project_locked(project_id)
            node = next(n for n in project["tableNodes"] if n["id"] == node_id)
            project["tableNodes"] = [n for n in project["tableNodes"] if n["id"] != node_id]
            self._forget_node_locked(node_id)
            self._roles[key] = [r for r in self._roles[key] if r["id"] != node_id]
            return copy.deepcopy(node)

    def _project_locked(self, project_id: str) -> dict[str, Any]:
        """The live project dict in its workspace's detail; ``KeyError`` if there is none."""
        detail = self._details[self._project_workspace[project_id]]
        project: dict[str, Any]
        for project in detail["projects"]:
            if project["id"] == project_id:
                return project
        raise KeyError(project_id)

    def _forget_node_locked(self, node_id: str) -> None:
        """Drop a node's table (rows, columns, overlay) or group membership."""
        self._node_project.pop(node_id, None)
        self._tables.pop(node_id, None)
        self._makers.pop(node_id, None)
        self._groups.discard(node_id)

    def _new_id_locked(self, prefix: str) -> str:
        """A fresh ``prefix`` id, from the seed and the count of ids added, never one used."""
        while True:
            rng = random.Random(f"maptable-sandbox:{self._config.seed}:added:{self._added}")
            self._added += 1
            new_id = _hex_id(rng, prefix)
            if new_id not in self._used_ids:
                self._used_ids.add(new_id)
                return new_id

    # ----- column drift ----------------------------------------------------------------------

    def reorder_columns(
        self, table_id: str, order: list[str] | None = None, *, reverse: bool = False
    ) -> list[dict[str, Any]]:
        """Put a table's columns in ``order`` (every column id once), or reverse them.

        Returns:
            The new column list (a copy).
        """
        table = self._tables[table_id]
        if (order is None) == (not reverse):
            msg = "give either an order of column ids or reverse=True"
            raise ValueError(msg)
        with self._lock:
            by_id = {c["id"]: c for c in table.columns}
            if order is None:
                table.columns = table.columns[::-1]
            elif sorted(order) != sorted(by_id):
                msg = f"order must name every column id once: {sorted(by_id)}"
                raise ValueError(msg)
            else:
                table.columns = [by_id[column_id] for column_id in order]
            return copy.deepcopy(table.columns)

    def rename_column(self, table_id: str, column_id: str, name: str) -> dict[str, Any]:
        """Rename a column (any name, even one another column has); its id stays."""
        if not isinstance(name, str):
            msg = "a column name must be a string"
            raise TypeError(msg)
        table = self._tables[table_id]
        with self._lock:
            column = _column(table, column_id)
            column["name"] = name
            return copy.deepcopy(column)

    def retype_column(
        self, table_id: str, column_id: str, column_type: str, type_options: Any = None
    ) -> dict[str, Any]:
        """Change a column's type and convert its cells in every row (see ``convert_cell``)."""
        _check_type(column_type)
        table = self._tables[table_id]
        with self._lock:
            column = _column(table, column_id)
            step = _Drift("retype", column_id, type=column_type, from_type=column["type"])
            column["type"] = column_type
            column["typeOptions"] = copy.deepcopy(type_options)
            self._drift_locked(table, step)
            return copy.deepcopy(column)

    def add_column(  # noqa: PLR0913 - mirrors the admin endpoint's body
        self,
        table_id: str,
        name: str,
        column_type: str,
        *,
        type_options: Any = None,
        fill: Any = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        """Add a column with a fresh id (its name may repeat another's) and a cell in every row.

        Args:
            table_id: The table.
            name: The column's name.
            column_type: The column's type, e.g. ``number`` or ``singleLineText``.
            type_options: Its ``typeOptions``.
            fill: The value of the new cell in every existing row; ``None``: per row, the row's
                number (1-based index) for ``number`` columns, else ``"<name> <number>"``.
            position: Where in the column list (Python list index); ``None``: last.

        Returns:
            The new column (a copy).
        """
        _check_type(column_type)
        if not isinstance(name, str):
            msg = "a column name must be a string"
            raise TypeError(msg)
        table = self._tables[table_id]
        with self._lock:
            used = {c["id"] for c in table.columns} | {d.column_id for d in table.drift}
            rng = random.Random(f"{table.key!r}:{len(table.drift)}")
            column_id = f"fld{_alnum(rng, 6)}"
            while column_id in used:
                column_id = f"fld{_alnum(rng, 6)}"
            column = {
                "id": column_id,
                "name": name,
                "type": column_type,
                "typeOptions": copy.deepcopy(type_options),
                "isPrimary": False,
            }
            at = len(table.columns) if position is None else position
            table.columns = [*table.columns[:at], column, *table.columns[at:]]
            step = _Drift("add", column_id, type=column_type, name=name, fill=copy.deepcopy(fill))
            self._drift_locked(table, step)
            return copy.deepcopy(column)

    def delete_column(self, table_id: str, column_id: str) -> None:
        """Delete a column: it leaves the column list and its cells leave every row."""
        table = self._tables[table_id]
        with self._lock:
            _column(table, column_id)
            table.columns = [c for c in table.columns if c["id"] != column_id]
            # Earlier steps on this column no longer matter: drop them, so that add-and-delete
            # cycles do not slow row generation down. The delete step stays (and keeps the id
            # from being reused).
            table.drift = tuple(d for d in table.drift if d.column_id != column_id)
            self._drift_locked(table, _Drift("delete", column_id))

    @staticmethod
    def _drift_locked(table: _Table, step: _Drift) -> None:
        """Record ``step`` for generated rows and apply it to the overlay's rows (new objects)."""
        table.drift = (*table.drift, step)
        for index, row in list(table.overlay.items()):
            if row is not None:
                new = copy.deepcopy(row)
                step.apply(new["cells"], index)
                table.overlay[index] = new


def _drifted_json(maker: _RowMaker, drift: tuple[_Drift, ...], index: int) -> str:
    """Generated row ``index`` after the table's column drift, as JSON text."""
    text = maker.make_json(index)
    if not drift:
        return text
    row = json.loads(text)
    for step in drift:
        step.apply(row["cells"], index)
    return _js(row)


def _column(table: _Table, column_id: str) -> dict[str, Any]:
    """The live column dict with ``column_id``; ``KeyError`` if the table has none."""
    for column in table.columns:
        if column["id"] == column_id:
            return column
    raise KeyError(column_id)


def _check_name(name: object) -> None:
    """``TypeError`` unless ``name`` is a string (any string: names may repeat or be empty)."""
    if not isinstance(name, str):
        msg = "a name must be a string"
        raise TypeError(msg)


def _check_type(column_type: object) -> None:
    if not isinstance(column_type, str) or not column_type:
        msg = "a column type must be a non-empty string"
        raise ValueError(msg)


def _build_columns(
    rng: random.Random, *, with_lower_status: bool, text_amount: bool
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Columns every table has, with the awkward cases a tap must survive.

    Every table has two columns named "Amount", both numbers except in one table
    (``text_amount``), where the one with the larger column id is ``singleLineText``: a client
    that gives a repeated name to the column with the smallest id still finds a number there.
    Returns the role -> column id map used by the row maker, and the API column list.
    """
    specs: list[tuple[str, str, str, Any]] = [
        ("primary", "名称", "singleLineText", None),
        ("notes", "Notes", "multiLineText", None),
        ("amount", "Amount", "number", {"precision": 2}),
        ("amount2", "Amount", "number", {"precision": 0}),
        (
            "due",
            "Due date",
            "datetime",
            {"format": "YYYY-MM-DD HH:mm", "timeZone": "Asia/Shanghai"},
        ),
        ("status", "Status", "singleChoice", {"choices": _choices(rng)}),
        ("location", "Location", "coordinate", {}),
        ("blank", "", "singleLineText", None),
        ("price", "单价", "number", {"precision": 3}),
        ("files", "Files", "attachment", {"maxCount": 5}),
    ]
    if with_lower_status:
        specs.append(("status_lower", "status", "singleLineText", None))
    col: dict[str, str] = {}
    columns: list[dict[str, Any]] = []
    for role, name, col_type, options in specs:
        column_id = f"fld{_alnum(rng, 6)}"
        col[role] = column_id
        columns.append(
            {
                "id": column_id,
                "name": name,
                "type": col_type,
                "typeOptions": options,
                "isPrimary": role == "primary",
            }
        )
    if text_amount:
        text_id = max(col["amount"], col["amount2"])
        text_column = next(c for c in columns if c["id"] == text_id)
        text_column |= {"type": "singleLineText", "typeOptions": None}
    return col, columns


def _add_typed_columns(
    rng: random.Random, col: dict[str, str], columns: list[dict[str, Any]]
) -> None:
    """Append the documented-type columns (``TYPED_COLUMNS``), with ids from their own ``rng``."""
    for role, name, col_type, options in TYPED_COLUMNS:
        column_id = f"fld{_alnum(rng, 6)}"
        while column_id in col.values():
            column_id = f"fld{_alnum(rng, 6)}"
        col[role] = column_id
        columns.append(
            {
                "id": column_id,
                "name": name,
                "type": col_type,
                "typeOptions": copy.deepcopy(options),
                "isPrimary": False,
            }
        )


def _choices(rng: random.Random) -> list[dict[str, str]]:
    """SingleChoice options; cells hold the choice name."""
    colors = ("#F5222D", "#FAAD14", "#52C41A", "#8C8C8C")
    return [
        {"id": f"cho{_alnum(rng, 6)}", "name": name, "color": color}
        for name, color in zip(CHOICES, colors, strict=True)
    ]
