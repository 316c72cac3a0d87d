"""STATE pacing: a STATE per segment for a small app, no flood of STATE for a large one."""

from __future__ import annotations

import contextlib
import io
import json
import signal
from typing import Any

import pytest

from tap_maptable.checkpoints import STATE_BURST_BYTES, STATE_BYTES_PER_S, PacedStateWriter
from tap_maptable.stopping import StopRequestedError
from tap_maptable.table_rows import TableRowsStream
from tap_maptable.tap import TapMapTable
from tests.helpers import discover, is_row_stream, sync, tap_config


class _Output:
    """The SDK's writer and the output under it: what was written, when, and how big."""

    def __init__(self) -> None:
        self.now = 100.0
        self.total = 0
        self.last_bytes = 0
        self.written: list[Any] = []

    def write_state(self, state: Any) -> None:
        self.written.append(state)
        self.total += self.last_bytes

    def paced(self) -> PacedStateWriter:
        return PacedStateWriter(
            self,
            state_output=lambda: (self.total, self.last_bytes),
            clock=lambda: self.now,
        )


def test_small_states_go_out_after_every_segment_even_in_a_burst() -> None:
    # The budget frees slots in bursts: five segments answered within a tenth of a second
    # each get their STATE while STATE is small (a killed run redoes none of them).
    output = _Output()
    writer = output.paced()
    output.last_bytes = 4_000
    for n in range(5):
        writer.write_state(n)
        output.now += 0.02
    assert output.written == [0, 1, 2, 3, 4]


def test_a_state_is_skipped_when_state_output_is_over_its_pace_unless_forced() -> None:
    output = _Output()
    writer = output.paced()
    output.last_bytes = STATE_BURST_BYTES // 2
    writer.write_state("a")  # the bucket was full: half of it left
    writer.write_state("b")  # the other half
    writer.write_state("c")  # empty: skipped
    writer.write_state("d", force=True)  # the end of a run, a stop, a failure: never skipped
    output.now += (STATE_BURST_BYTES // 2) / STATE_BYTES_PER_S * 0.9
    writer.write_state("e")  # not refilled enough yet (and "d" is still a debt)
    output.now += (STATE_BURST_BYTES // 2) / STATE_BYTES_PER_S * 1.2
    writer.write_state("f")
    assert output.written == ["a", "b", "d", "f"]


def test_a_state_larger_than_the_burst_waits_as_long_as_its_size_takes() -> None:
    output = _Output()
    writer = output.paced()
    output.last_bytes = 10 * STATE_BYTES_PER_S  # a 10-s STATE (1,000 tables: about 1 MB)
    writer.write_state("a")
    output.now += 9.0
    writer.write_state("b")  # still in debt
    output.now += 5.0  # debt paid and the bucket full again
    writer.write_state("c")
    # A STATE written around this writer (the SDK's first) is paid for too.
    output.total += output.last_bytes
    output.written.append("(the SDK's)")
    output.now += 1.0
    writer.write_state("d")
    assert output.written == ["a", "c", "(the SDK's)"]


def test_a_state_held_back_goes_out_when_due_while_the_writer_waits() -> None:
    output = _Output()
    writer = output.paced()
    output.last_bytes = STATE_BURST_BYTES
    writer.write_state("a")  # the whole bucket
    output.now += 0.2
    writer.write_state("b")  # a table's last STATE, too soon: held back
    writer.write_held_back()  # the writer waits for the next table, still too soon
    output.now += STATE_BURST_BYTES / STATE_BYTES_PER_S
    writer.write_held_back()  # due now: it goes out without waiting for the next segment
    writer.write_held_back()  # once
    assert output.written == ["a", "b"]


def test_many_tables_get_a_few_states_and_the_last_holds_every_bookmark(
    make_sandbox: Any,
) -> None:
    # 60 tables: a STATE after every table (the SDK's) and every segment (ours) would be about
    # 120 STATE lines each holding all 60 bookmarks.
    sandbox = make_sandbox(
        workspaces=2, projects_per_workspace=3, tables_per_project=10, rows_per_table=20
    )
    run = sync(tap_config(sandbox, requests_per_minute=100_000))
    states = run.of_type("STATE")
    tables = [stream for stream in run.rows if is_row_stream(stream)]
    assert len(tables) == 60
    assert len(states) < len(tables), len(states)
    last = states[-1]["value"]
    assert set(tables) <= set(last["bookmarks"])
    assert last["run"]["complete"] is True


@pytest.mark.parametrize(
    "error",
    [RuntimeError("not a table's error"), StopRequestedError(signal.SIGTERM)],
    ids=["failure", "SIGTERM"],
)
def test_a_run_that_fails_or_is_stopped_ends_with_a_state_of_every_table_it_sent(
    make_sandbox: Any, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    # 60 tables; the run ends at the 50th (an error that is not one table's, or a stop). The
    # STATE written at the end names all 49 tables sent, not those of the last paced STATE.
    sandbox = make_sandbox(
        workspaces=2, projects_per_workspace=3, tables_per_project=10, rows_per_table=20
    )
    config = tap_config(sandbox, requests_per_minute=100_000)
    catalog = discover(config)
    started = [0]
    original = TableRowsStream.get_records

    def get_records(self: TableRowsStream, context: Any) -> Any:
        started[0] += 1
        if started[0] == 50:
            raise error
        yield from original(self, context)

    monkeypatch.setattr(TableRowsStream, "get_records", get_records)
    buffer = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    with contextlib.redirect_stdout(buffer), pytest.raises(type(error)):
        TapMapTable(config=config, catalog=catalog).sync_all()
    buffer.flush()
    messages = [json.loads(line) for line in buffer.buffer.getvalue().decode().splitlines()]
    sent = {m["stream"] for m in messages if m["type"] == "RECORD" and is_row_stream(m["stream"])}
    assert len(sent) == 49
    last = next(m for m in reversed(messages) if m["type"] == "STATE")["value"]
    assert messages[-1]["type"] == "STATE"
    done = {stream for stream, mark in last["bookmarks"].items() if mark.get("read_in_run")}
    assert sent <= done, sorted(sent - done)
    assert last["run"]["complete"] is False
