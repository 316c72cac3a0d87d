"""SIGTERM and Ctrl-C: the tap stops within seconds, in one line, with nothing half-written or lost.

Like the SIGKILL tests (`test_crash_resume.py`), each case runs the `tap-maptable` command against a
sandbox that answers slowly, and signals it after its N-th stdout line: at the first line, in the
middle of the first table, and further on; with background fetches of upcoming tables (the default
`max_parallel_requests`) and with one request at a time. What must hold:
- it exits within a few seconds of the signal, with 128 + the signal number (143, 130);
- the last stderr line is the one line `tap-maptable: error: stopped by ...`, and no traceback;
- stdout holds whole JSON lines only (a message is never cut in half);
- a rerun from the last STATE it emitted completes, and the two runs together deliver every
  workspace, project, table node and row.
And a stop during discovery, while first segments are read in parallel, does not wait for the
reads still queued.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tap_maptable import stopping
from tap_maptable.reading.reader import QUEUE_DEPTH
from tap_maptable.stopping import StopRequestedError
from tap_maptable.table_rows import TableRowsStream
from tap_maptable.tap import TapMapTable
from tests.hardening.support import ERROR_PREFIX, assert_no_tokens, record_key, truth
from tests.helpers import VENV_BIN, discover, is_row_stream, tap_config

if TYPE_CHECKING:
    from maptable_sandbox import Sandbox

# The budget paces the run (5 requests per 0.3 s window, plus the budget's 0.2 s margin: about
# 10 a second), so that a run lasts about two seconds and a signal lands while it works.
LIMIT, WINDOW = 5, 0.3
EXIT_BOUND_S = 5.0
STOP_AT_SEGMENT = 3
LAST_SEGMENT = 4  # of a table of 40 rows in segments of 10
STOP_LINE = {
    signal.SIGTERM: "stopped by SIGTERM; the next run resumes from the last STATE emitted",
    signal.SIGINT: "stopped by Ctrl-C (SIGINT); the next run resumes from the last STATE emitted",
}


@dataclass
class Attempt:
    """One run of the command, as a target reading its stdout would have seen it."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    returncode: int | None = None
    stderr: str = ""
    exit_after_signal_s: float | None = None

    def last_state(self) -> dict[str, Any] | None:
        states = [m["value"] for m in self.messages if m.get("type") == "STATE"]
        return states[-1] if states else None

    def record_keys(self) -> set[tuple[str, Any]]:
        return {
            (m["stream"], record_key(m["stream"], m["record"]))
            for m in self.messages
            if m.get("type") == "RECORD"
        }


def _make_paced_sandbox(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """Three tables of four segments, every answer 50 ms late."""
    return make_sandbox(
        workspaces=1,
        projects_per_workspace=1,
        tables_per_project=3,
        rows_per_table=40,
        segment_size=10,
        latency_s=0.05,
    )


def _run(
    argv: list[str],
    stderr_path: Path,
    *,
    stop_after: int | None = None,
    signum: int = signal.SIGTERM,
) -> Attempt:
    """Run the command; send `signum` right after its `stop_after`-th stdout line arrives."""
    attempt = Attempt()
    chunks: list[bytes] = []
    signalled_at: float | None = None
    with (
        stderr_path.open("w") as stderr,
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr) as proc,
    ):
        assert proc.stdout is not None
        for count, line in enumerate(proc.stdout, start=1):
            chunks.append(line)
            if count == stop_after:
                proc.send_signal(signum)
                signalled_at = time.monotonic()
        attempt.returncode = proc.wait(timeout=60)
    if signalled_at is not None:
        attempt.exit_after_signal_s = time.monotonic() - signalled_at
    attempt.stderr = stderr_path.read_text()
    for line in chunks:
        assert line.endswith(b"\n"), f"a message was cut in half: {line[-80:]!r}"
        message = json.loads(line)
        assert isinstance(message, dict), line[:80]
        assert message.get("type"), line[:80]
        attempt.messages.append(message)
    return attempt


def _assert_stopped(attempt: Attempt, signum: int) -> None:
    assert attempt.exit_after_signal_s is not None, "the run ended before the signal was sent"
    assert attempt.returncode == 128 + signum, (
        f"exit code {attempt.returncode}; stderr ends {attempt.stderr[-500:]!r}"
    )
    assert attempt.exit_after_signal_s < EXIT_BOUND_S, (
        f"{attempt.exit_after_signal_s:.1f} s from the signal to the exit"
    )
    assert "Traceback" not in attempt.stderr
    lines = attempt.stderr.strip().splitlines()
    assert lines, "no stderr at all"
    assert lines[-1] == ERROR_PREFIX + STOP_LINE[signal.Signals(signum)], lines[-1][:300]
    assert sum(line.startswith(ERROR_PREFIX) for line in lines) == 1


@pytest.mark.parametrize(
    ("signum", "parallel", "stop_after"),
    [
        # None: the default max_parallel_requests (upcoming tables fetched in the background)
        (signal.SIGTERM, None, 1),  # the first line: the first table's SCHEMA
        (signal.SIGTERM, None, 20),  # in the middle of the first table
        (signal.SIGTERM, None, 65),  # in the middle of the second table
        (signal.SIGTERM, 1, 1),
        (signal.SIGTERM, 1, 50),  # just after the first table's STATE
        (signal.SIGINT, None, 30),
        (signal.SIGINT, 1, 70),
    ],
    ids=lambda value: "default" if value is None else getattr(value, "name", str(value)),
)
def test_a_stopped_sync_exits_at_once_in_one_line_and_resumes_with_nothing_lost(
    make_sandbox, tmp_path, signum, parallel, stop_after
) -> None:
    sandbox = _make_paced_sandbox(make_sandbox)
    extra: dict[str, Any] = {"requests_per_minute": LIMIT, "rate_limit_window_seconds": WINDOW}
    if parallel is not None:
        extra["max_parallel_requests"] = parallel
    config = tap_config(sandbox, **extra)
    paths = {name: tmp_path / f"{name}.json" for name in ("config", "catalog", "state")}
    paths["config"].write_text(json.dumps(config))
    # The catalog does not depend on the pacing: discover without it, at full speed.
    paths["catalog"].write_text(json.dumps(discover(tap_config(sandbox))))
    argv = [str(VENV_BIN / "tap-maptable"), "--config", str(paths["config"])]
    argv += ["--catalog", str(paths["catalog"])]

    stopped = _run(argv, tmp_path / "stopped.err", stop_after=stop_after, signum=signum)
    _assert_stopped(stopped, signum)

    # The rerun needs no pacing and no latency: it only has to finish.
    sandbox.set_latency(0.0)
    paths["resume"] = tmp_path / "resume.json"
    paths["resume"].write_text(
        json.dumps(tap_config(sandbox, **{**extra, "requests_per_minute": 600}))
    )
    resume_argv = [str(VENV_BIN / "tap-maptable"), "--config", str(paths["resume"])]
    resume_argv += ["--catalog", str(paths["catalog"])]
    state = stopped.last_state()
    if state is not None:
        paths["state"].write_text(json.dumps(state))
        resume_argv += ["--state", str(paths["state"])]
    resumed = _run(resume_argv, tmp_path / "resumed.err")
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    delivered: dict[str, set[Any]] = {}
    for stream, key in stopped.record_keys() | resumed.record_keys():
        delivered.setdefault(stream, set()).add(key)
    for stream, keys in truth(sandbox).items():
        missing = keys - delivered.get(stream, set())
        assert not missing, f"{stream}: {len(missing)} of {len(keys)} records never delivered"
    assert_no_tokens(sandbox, stopped.stderr, resumed.stderr)


def test_a_stop_during_discovery_does_not_wait_for_the_queued_reads(make_sandbox, tmp_path) -> None:
    # Forty tables: discovery reads their first segments, `workers` at a time, paced by the
    # budget. A stop must end the run there, not after every queued read has been sent.
    workers = 4
    sandbox = make_sandbox(
        workspaces=1,
        projects_per_workspace=2,
        tables_per_project=20,
        rows_per_table=5,
        latency_s=0.05,
    )
    config = tap_config(
        sandbox,
        requests_per_minute=LIMIT,
        rate_limit_window_seconds=WINDOW,
        max_parallel_requests=workers,
    )
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    argv = [str(VENV_BIN / "tap-maptable"), "--config", str(config_path)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        deadline = time.monotonic() + 20
        while sum(e.kind == "rows" for e in sandbox.requests) < 3:
            assert time.monotonic() < deadline, "discovery never started reading segments"
            assert proc.poll() is None, "the run ended before discovery read a segment"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        signalled_wall, signalled = time.time(), time.monotonic()
        _, stderr = proc.communicate(timeout=60)
        seconds = time.monotonic() - signalled
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-500:]
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == ERROR_PREFIX + STOP_LINE[signal.SIGTERM]
    sent_after = sum(e.kind == "rows" and e.t > signalled_wall for e in sandbox.requests)
    total = sum(e.kind == "rows" for e in sandbox.requests)
    assert sent_after <= workers, (
        f"{sent_after} first-segment reads were sent after SIGTERM ({total} of 40 in all)"
    )
    assert seconds < 3, f"{seconds:.1f} s from SIGTERM to the exit"


def _tap_with_workers(
    make_sandbox: Callable[..., Sandbox], *, tables: int, rows: int
) -> tuple[Sandbox, TapMapTable]:
    """A sandbox of `tables` tables of `rows` rows in segments of 10, and a tap with 4 workers."""
    sandbox = make_sandbox(
        workspaces=1,
        projects_per_workspace=1,
        tables_per_project=tables,
        rows_per_table=rows,
        segment_size=10,
    )
    config = tap_config(sandbox, requests_per_minute=100_000, max_parallel_requests=4)
    return sandbox, TapMapTable(config=config, catalog=discover(config))


def _after_segment(
    monkeypatch: pytest.MonkeyPatch, segment: int, action: Callable[[TableRowsStream], None]
) -> None:
    """Run `action` in the writing thread once a table's `segment`-th segment is sent."""
    original = TableRowsStream._checkpoint

    def checkpoint(self: TableRowsStream, detail: dict[str, Any], segments: int) -> None:
        original(self, detail, segments)
        if segments == segment:
            action(self)

    monkeypatch.setattr(TableRowsStream, "_checkpoint", checkpoint)


def _capture(run: Callable[[], Any]) -> list[dict[str, Any]]:
    """The messages `run` writes to stdout (a stop ends it: StopRequestedError expected)."""
    buffer = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    with contextlib.redirect_stdout(buffer), pytest.raises(StopRequestedError):
        run()
    buffer.flush()
    return [json.loads(line) for line in buffer.buffer.getvalue().decode().splitlines()]


def _row_stream(messages: list[dict[str, Any]]) -> str:
    return next(
        str(m["stream"]) for m in messages if m["type"] == "RECORD" and is_row_stream(m["stream"])
    )


@pytest.mark.parametrize("signals", [1, 2], ids=["one signal", "a second signal"])
def test_a_stop_first_writes_the_segments_already_answered(
    make_sandbox: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch, signals: int
) -> None:
    # A busy writer: the table's next segments are answered and waiting when SIGTERM comes.
    # Dropped, the next run would ask for them again; so they are written first, with their
    # STATE, and the stop takes effect at the first segment not yet answered. A second signal
    # stops at once.
    _, tap = _tap_with_workers(make_sandbox, tables=1, rows=120)
    waiting: list[int] = []

    def stop_when_segments_wait(stream: TableRowsStream) -> None:
        read = tap.reader.read_of(stream.name)
        assert read is not None
        deadline = time.monotonic() + 10
        while len(read.queue) < QUEUE_DEPTH and time.monotonic() < deadline:
            time.sleep(0.01)
        waiting.append(len(read.queue))
        for _ in range(signals):
            signal.raise_signal(signal.SIGTERM)

    _after_segment(monkeypatch, STOP_AT_SEGMENT, stop_when_segments_wait)
    messages = _capture(tap.sync_all)
    assert waiting == [QUEUE_DEPTH]
    stream = _row_stream(messages)
    rows = sum(m["type"] == "RECORD" and m["stream"] == stream for m in messages)
    assert messages[-1]["type"] == "STATE"
    vouched = messages[-1]["value"]["bookmarks"][stream]["resume"]["segments"]
    assert rows == vouched * 10
    if signals == 1:
        assert vouched >= STOP_AT_SEGMENT + QUEUE_DEPTH
    else:
        assert vouched == STOP_AT_SEGMENT
    assert stopping.requested() is None


def test_a_stop_noted_as_a_table_ends_completes_it_then_takes_effect_at_the_next_message(
    make_sandbox: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGTERM while the last segment of the last table is written: the table is completed (its
    # STATE says so) and the stop takes effect at the next message, before the workspace list
    # is read (the SDK writes `workspaces` after the table streams), not at the run's end.
    sandbox, tap = _tap_with_workers(make_sandbox, tables=1, rows=40)
    signalled: list[float] = []

    def stop(_stream: TableRowsStream) -> None:
        signalled.append(time.time())
        signal.raise_signal(signal.SIGTERM)

    _after_segment(monkeypatch, LAST_SEGMENT, stop)
    messages = _capture(tap.sync_all)
    stream = _row_stream(messages)
    last = messages[-1]
    assert last["type"] == "STATE"
    assert last["value"]["bookmarks"][stream].get("read_in_run")
    assert not [m for m in messages if m.get("stream") == "workspaces" and m["type"] == "RECORD"]
    assert signalled
    assert not [e for e in sandbox.requests if e.t > signalled[0]]
    assert not stopping.stopping()


def test_a_dry_run_leaves_no_stop_pending_and_a_later_signal_stops_at_once(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    # `--test` leaves its tables before their end: the drain it began must end with it, or a
    # later SIGTERM would only be noted and never take effect.
    _, tap = _tap_with_workers(make_sandbox, tables=2, rows=40)
    buffer = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    with contextlib.redirect_stdout(buffer):
        assert tap.run_sync_dry_run(1)
    assert not stopping.stopping()
    with pytest.raises(StopRequestedError):
        signal.raise_signal(signal.SIGTERM)
