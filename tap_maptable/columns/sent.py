"""What the warehouse was given for a table: each property sent and the column it carried.

A sync that sends only rows updated since the bookmark leaves every other row as the warehouse
last got it. That is right only while each property still carries the same MapTable column: add a
filled column, delete one and add another of the same name, retype one, select one more, and the
rows not sent again keep NULL (or a deleted column's values) under a property whose meaning
changed. Editing columns changes no row's update time, so the bookmark cannot see it.

So the STATE keeps, per table, the properties sent on the last complete read, each with the id
and type of the column whose values it carried (`columns_sent`). When the columns about to be
sent differ (`what_changed`), the table is read as a backfill: every row is sent (the tap reads
every segment anyway, so it costs no request), and the bookmark moves on as usual.

The record is a list of `[property, column id, column type]` triples (id and type null for a
property whose column is gone), sorted: a list, because Meltano deep-merges the dictionaries of
a state and a dictionary's removed keys would survive the merge.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tap_maptable.columns.rows import Column

SentColumn = tuple[str, str | None, str | None]
"""A property sent, and the id and type of the column whose values it carried (None: none)."""

# The key of a table stream's bookmark that holds its `columns_sent` record.
STATE_KEY: Final = "columns_sent"
_LISTED: Final = 3


def columns_sent(columns: Iterable[Column], missing: Iterable[str]) -> list[SentColumn]:
    """The record of a read: each column's property with its column, each missing property bare."""
    # A column type is one of a few words: one string for all tables, not one per column.
    sent: list[SentColumn] = [(c.prop_name, c.id, sys.intern(c.type)) for c in columns]
    sent.extend((prop, None, None) for prop in missing)
    return sorted(sent, key=lambda item: item[0])


def to_state(sent: list[SentColumn]) -> list[SentColumn]:
    """The record for the STATE: the read's own triples (JSON arrays once written).

    Not copied into lists: the STATE holds every table's record for the whole run, and the
    SDK deep-copies the STATE it last wrote, which returns a tuple of strings as it is: at
    1,000 tables, lists were 35,000 objects twice over (about 3 MB of a run's peak).
    """
    return list(sent)


def from_state(value: Any) -> list[SentColumn] | None:
    """The record a STATE holds; None when it holds none (a first run, or an older version).

    Lists when read from a file; tuples when a caller hands a finished tap's `state` to the next.
    """
    if not isinstance(value, list):
        return None
    sent: list[SentColumn] = []
    for item in value:
        if not (isinstance(item, list | tuple) and len(item) == 3 and isinstance(item[0], str)):  # noqa: PLR2004
            return None
        prop, column_id, column_type = item
        sent.append(
            (
                prop,
                column_id if isinstance(column_id, str) else None,
                column_type if isinstance(column_type, str) else None,
            )
        )
    return sent


def what_changed(before: list[SentColumn] | None, now: list[SentColumn]) -> str | None:
    """Why every row must be sent again (None: the properties carry what they carried).

    A rename alone changes nothing here (the property still carries the same column) unless it
    renames the property, which then counts as one property added and one no longer sent.
    """
    if before is None:
        return "no record of the columns sent before (a first run of this version)"
    if before == now:
        return None
    old = {prop: (column_id, column_type) for prop, column_id, column_type in before}
    new = {prop: (column_id, column_type) for prop, column_id, column_type in now}
    changes = [f"{prop!r} added" for prop in new if prop not in old]
    changes += [f"{prop!r} no longer sent" for prop in old if prop not in new]
    for prop in (p for p in new if p in old and new[p] != old[p]):
        changes.append(_change(prop, old[prop], new[prop]))
    if not changes:
        return None
    listed = "; ".join(changes[:_LISTED])
    more = len(changes) - _LISTED
    return listed + (f"; and {more} more" if more > 0 else "")


def _change(
    prop: str, old: tuple[str | None, str | None], new: tuple[str | None, str | None]
) -> str:
    (old_id, old_type), (new_id, new_type) = old, new
    if new_id is None:
        return f"{prop!r} has no column any more (was {old_id})"
    if old_id is None:
        return f"{prop!r} has column {new_id} ({new_type}) again"
    if old_id != new_id:
        return f"{prop!r} now holds column {new_id} ({new_type}), was {old_id} ({old_type})"
    return f"{prop!r} changed type ({old_type} -> {new_type})"
