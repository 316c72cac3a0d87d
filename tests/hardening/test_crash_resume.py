"""SIGKILL the tap at random points of a multi-table sync, resume from its last STATE, repeat.

What must hold (and why exactly this):
- At least once: the union of every run's records covers every row of every table (and every
  workspace, project and table node).
- A table stream writes a STATE after the segments it sent (at most one a second), holding
  where its read continues (`resume.after_row`: the last row of the last segment fully sent),
  and the SDK writes one when a stream ends. So a record a killed run emitted *before its last
  STATE* is either of a finished stream, which the resumed run must not send again except the
  re-sends the tap's filter allows by design (`TableRowsStream.post_process` keeps rows updated
  at or after the bookmark: rows with a null `_updated_at`, and rows whose `_updated_at` equals
  the bookmark), or of the stream in progress, at or before its resume point, which the resumed
  run continues after that point and must not send again at all. Records emitted *after* the
  last STATE may come again. The fixed streams (workspaces, projects, table_nodes) are
  FULL_TABLE and re-sent every run.
- A run given the STATE of a stopped run continues it: the tables that run finished are not read
  again (`read_in_run`), the one it was reading continues after its resume point.
- A resumed run sends exactly the rows those rules say, no more, no fewer.

Pacing (20 requests per second, segments of 10 rows) makes a sync last a few seconds, so a kill
lands while the tap is working, not after it has written everything into the pipe.
Scenarios: TAP_MAPTABLE_KILL_SCENARIOS (default 4), each killed KILLS_PER_SCENARIO times.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tap_maptable.columns import parse_datetime
from tests.hardening.support import (
    FIXED_STREAMS,
    assert_no_tokens,
    record_key,
    stream_of,
    truth,
)
from tests.helpers import VENV_BIN, discover, is_row_stream, tap_config

SCENARIOS = int(os.environ.get("TAP_MAPTABLE_KILL_SCENARIOS", "4"))
KILLS_PER_SCENARIO = 3
PACE = 20  # requests per second, on both sides
# Never aim a kill at the last records of a run: the tap could finish before the signal lands.
# (At the pace above, this many records take several paced requests to arrive.)
END_MARGIN = 60


@dataclass
class Attempt:
    """One run of the command: what a target would have received before it ended."""

    state_in: dict[str, Any] | None
    messages: list[dict[str, Any]] = field(default_factory=list)
    returncode: int | None = None
    stderr: str = ""

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    def last_state_index(self) -> int:
        """Index of the last STATE message (-1: none)."""
        indexes = [i for i, m in enumerate(self.messages) if m.get("type") == "STATE"]
        return indexes[-1] if indexes else -1

    def last_state(self) -> dict[str, Any] | None:
        index = self.last_state_index()
        return self.messages[index]["value"] if index >= 0 else None

    def record_keys(self, messages: list[dict[str, Any]] | None = None) -> set[tuple[str, Any]]:
        return {
            (m["stream"], record_key(m["stream"], m["record"]))
            for m in (self.messages if messages is None else messages)
            if m.get("type") == "RECORD"
        }

    def records(self) -> list[tuple[str, dict[str, Any]]]:
        return [(m["stream"], m["record"]) for m in self.messages if m.get("type") == "RECORD"]


def _bookmark(state: dict[str, Any] | None, stream: str) -> str | None:
    entry = ((state or {}).get("bookmarks") or {}).get(stream) or {}
    value = entry.get("replication_key_value")
    return str(value) if value is not None else None


def _resume_point(state: dict[str, Any] | None, stream: str) -> str | None:
    entry = ((state or {}).get("bookmarks") or {}).get(stream) or {}
    after = (entry.get("resume") or {}).get("after_row")
    return str(after) if after is not None else None


def _to_send(updated: dict[str, str | None], state: dict[str, Any] | None, stream: str) -> set[str]:
    """The rows a run given `state` sends of `stream`: after its resume point, by its filter.

    None of a table the stopped run had finished: the run given its STATE continues it.
    """
    run = (state or {}).get("run") or {}
    entry = ((state or {}).get("bookmarks") or {}).get(stream) or {}
    if run.get("complete") is False and entry.get("read_in_run") == run.get("started_at"):
        return set()
    after = _resume_point(state, stream)
    rows = {r for r in updated if after is None or r > after}  # row ids sort in table order
    bookmark = _bookmark(state, stream)
    if bookmark is None:
        return rows
    if after is None:
        return rows & _allowed_resends(updated, bookmark)
    return {r for r in rows if updated[r] is None or str(updated[r]) >= bookmark}


def _update_times(sandbox) -> dict[str, dict[str, str | None]]:
    """Every row's `_updated_at` as the tap computes it, by stream and row id, from the truth."""
    return {
        stream_of(table.table_id): {
            str(row["id"]): parse_datetime(row["meta"]["updateTime"])
            for row in sandbox.data.rows(table.table_id)
        }
        for table in sandbox.data.tables()
    }


def _allowed_resends(updated: dict[str, str | None], bookmark: str) -> set[str]:
    """Rows of a bookmarked stream the tap re-sends by design: null or equal update time."""
    return {row_id for row_id, at in updated.items() if at is None or at == bookmark}


def _expected_count(
    expected: dict[str, set[Any]], times: dict[str, dict[str, str | None]], state
) -> int:
    """How many records a run given `state` emits if nothing kills it."""
    total = sum(len(expected[s]) for s in FIXED_STREAMS)
    for stream, updated in times.items():
        total += len(_to_send(updated, state, stream))
    return total


def _run(paths: dict[str, Path], state: dict[str, Any] | None, kill_after: int | None) -> Attempt:
    """Run the tap; SIGKILL it right after its `kill_after`-th RECORD line reaches us."""
    argv = [
        str(VENV_BIN / "tap-maptable"),
        "--config",
        str(paths["config"]),
        "--catalog",
        str(paths["catalog"]),
    ]
    if state is not None:
        paths["state"].write_text(json.dumps(state))
        argv += ["--state", str(paths["state"])]
    attempt = Attempt(state_in=state)
    seen = 0
    with (
        paths["stderr"].open("w") as stderr,
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.endswith("\n"):  # cut off by the kill: a target would drop it too
                break
            message = json.loads(line)
            attempt.messages.append(message)
            if message.get("type") == "RECORD":
                seen += 1
                if seen == kill_after:
                    os.kill(proc.pid, signal.SIGKILL)
            # After the kill, keep reading: what was already in the pipe was emitted.
        attempt.returncode = proc.wait(timeout=60)
    attempt.stderr = paths["stderr"].read_text()
    return attempt


def _check_resume(
    previous: Attempt, resumed: Attempt, times: dict[str, dict[str, str | None]]
) -> None:
    """What `resumed` (given `previous`'s last STATE) may send again of `previous`'s records."""
    state = resumed.state_in
    cut = previous.last_state_index()
    before = previous.record_keys(previous.messages[: cut + 1]) if cut >= 0 else set()
    after = previous.record_keys(previous.messages[cut + 1 :])
    again = resumed.record_keys() & previous.record_keys()
    for stream, key in again:
        if stream in FIXED_STREAMS:
            continue  # FULL_TABLE: re-sent every run
        if (stream, key) in after and (stream, key) not in before:
            continue  # sent after the last STATE: the resumed run sends it again
        resume_after = _resume_point(state, stream)
        if resume_after is not None:
            assert str(key) > resume_after, (
                f"{stream}: row {key} was sent before the last STATE, at or before its resume "
                f"point {resume_after}, and sent again by the run that continued the table"
            )
            continue
        bookmark = _bookmark(state, stream)
        assert bookmark is not None, (
            f"{stream}: a record sent before the last STATE was sent again, but that STATE "
            "has no bookmark for its stream"
        )
        assert key in _allowed_resends(times[stream], bookmark), (
            f"{stream}: row {key} (updated {times[stream][key]}) was sent "
            f"before the last STATE and again after resuming from bookmark {bookmark}"
        )
    # Every row stream with records before the STATE is bookmarked in it, or has a resume point.
    for stream in {s for s, _ in before if is_row_stream(s)}:
        marked = _bookmark(state, stream) is not None or _resume_point(state, stream) is not None
        assert marked, f"{stream} sent rows before the last STATE, which records none of it"


def _check_bookmarked_streams_resend_exactly(
    resumed: Attempt, times: dict[str, dict[str, str | None]]
) -> None:
    """In a completed run, a bookmarked stream sends exactly the rows its filter allows."""
    sent: dict[str, set[str]] = {}
    for stream, record in resumed.records():
        sent.setdefault(stream, set()).add(str(record_key(stream, record)))
    for stream, updated in times.items():
        wanted = _to_send(updated, resumed.state_in, stream)
        assert sent.get(stream, set()) == wanted, f"{stream}: wrong rows after resuming"


@pytest.mark.parametrize("scenario", range(SCENARIOS))
def test_killed_syncs_resume_at_least_once_and_resend_only_after_the_last_state(
    make_sandbox, tmp_path, scenario
) -> None:
    rng = random.Random(f"crash-resume:{scenario}")
    sandbox = make_sandbox(segment_size=10, rate_limit=PACE, rate_window=1.0)
    config = tap_config(sandbox, requests_per_minute=PACE, rate_limit_window_seconds=1)
    catalog = discover(config)
    sandbox.reset_log()
    paths = {
        "config": tmp_path / "config.json",
        "catalog": tmp_path / "catalog.json",
        "state": tmp_path / "state.json",
        "stderr": tmp_path / "stderr.txt",
    }
    paths["config"].write_text(json.dumps(config))
    paths["catalog"].write_text(json.dumps(catalog))

    expected = truth(sandbox)
    times = _update_times(sandbox)
    attempts: list[Attempt] = []
    state: dict[str, Any] | None = None
    kills = 0
    while kills < KILLS_PER_SCENARIO:
        planned = _expected_count(expected, times, state)
        if planned <= END_MARGIN:
            break
        attempt = _run(paths, state, kill_after=rng.randint(1, planned - END_MARGIN))
        attempts.append(attempt)
        if not attempt.killed:  # finished before the signal landed: a complete run
            break
        kills += 1
        state = attempt.last_state() or state
    if not attempts or attempts[-1].killed:
        attempts.append(_run(paths, state, kill_after=None))
    final = attempts[-1]
    assert final.returncode == 0, final.stderr[-2000:]
    assert kills >= 1
    for attempt in attempts:
        for stream, record in attempt.records():
            if is_row_stream(stream):
                assert record["_updated_at"] == times[stream][record["_row_id"]]

    # At least once: everything was delivered by some run.
    delivered: dict[str, set[Any]] = {}
    for attempt in attempts:
        for stream, key in attempt.record_keys():
            delivered.setdefault(stream, set()).add(key)
    for stream, keys in expected.items():
        missing = keys - delivered.get(stream, set())
        assert not missing, f"{stream}: {len(missing)} rows never delivered"

    # Re-sends: only what came after the last STATE, or what the bookmark filter allows.
    for previous, resumed in itertools.pairwise(attempts):
        _check_resume(previous, resumed, times)
    _check_bookmarked_streams_resend_exactly(final, times)
    assert_no_tokens(sandbox, *(a.stderr for a in attempts))
