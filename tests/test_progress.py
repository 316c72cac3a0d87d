"""How far a run is and how long it has left: one line per budget window, and a summary.

Counts, not timings: the lines' numbers are checked against the sandbox's request log and the
records sent; how close the time-left estimate comes is a benchmark (bench figure 14).
"""

from __future__ import annotations

import logging
import math
import re
import time
from typing import Any

import pytest

from tap_maptable.budget.limiter import BudgetSpec
from tap_maptable.progress import Pace, WorkLeft, duration, seconds_left, typical_size
from tests.helpers import discover, sync, tap_config

LIMIT, WINDOW = 10, 1.0
PROGRESS = re.compile(
    r"Progress: (?P<done>\d+) of (?P<tables>\d+) tables, (?P<rows>[\d,]+) rows sent, "
    r"[\d,]+ requests \(\d+ x 429\) in .+; (?P<estimate>about|at least) .+ left"
    r"(?: \(\d+ table\(s\) of unknown size(?: counted at (?P<typical>\d+) segment\(s\), "
    r"(?P<basis>the mean of those read|the most a table being read has so far)"
    r"(?:; (?P<at_count>\d+) being read reached that and may need more)?)?\))?: "
    r"(?P<to_go>(?:at least )?[\d,]+) request\(s\) to go"
)
WAIT = re.compile(
    rf"Request budget in use: {LIMIT} requests per {WINDOW:g} s reached; the next slot frees in "
    r"(?P<seconds>\d+) s \(this is normal pacing, not an error\)\."
)
BEING_READ = "the most a table being read has so far"
SUMMARY = re.compile(
    r"Run complete: (?P<done>\d+) of (?P<tables>\d+) tables, (?P<rows>[\d,]+) rows sent, "
    r"(?P<requests>[\d,]+) requests, (?P<limited>\d+) x 429, in .+\."
)


def _lines(caplog: pytest.LogCaptureFixture, pattern: re.Pattern[str]) -> list[re.Match[str]]:
    return [m for r in caplog.records if (m := pattern.search(r.getMessage()))]


def _paced(make_sandbox: Any, **options: Any) -> tuple[Any, dict[str, Any]]:
    """A strict sandbox at LIMIT per WINDOW (segments of 10 rows, 0.02 s an answer), and a
    tap paced to match."""
    defaults = {"rate_limit": LIMIT, "rate_window": WINDOW, "segment_size": 10, "latency_s": 0.02}
    sandbox = make_sandbox(**{**defaults, **options})
    return sandbox, tap_config(sandbox, requests_per_minute=LIMIT, rate_limit_window_seconds=WINDOW)


def _written_order(make_sandbox: Any, **data: Any) -> list[str]:
    """The table ids of this data set in the order a sync writes them (unthrottled, aside)."""
    probe = make_sandbox(**data, segment_size=10, rate_limit=0)
    run = sync(tap_config(probe, requests_per_minute=6000))
    streams = [m["stream"] for m in run.messages if m["type"] == "SCHEMA"]
    return [s.removeprefix("table_") for s in streams if s.startswith("table_t")]


def test_a_run_longer_than_a_window_says_how_far_it_is_and_ends_with_a_summary(
    make_sandbox, caplog
) -> None:
    sandbox, config = _paced(make_sandbox, rows_per_table=50)
    with caplog.at_level(logging.INFO, logger="tap_maptable"):
        first = sync(config)
    tables = len(sandbox.data.tables())
    progress = _lines(caplog, PROGRESS)
    assert progress, "no progress line in a run of several windows"
    assert all(int(m["tables"]) == tables for m in progress)
    # A first run: sizes unknown until a table is read whole; then counted at the mean size.
    # Before, at the most a table being read has so far ("at least" before any segment).
    early = [m for m in progress if m["done"] == "0"]
    assert all(m["estimate"] == "at least" for m in early if not m["typical"])
    later = [m for m in progress if m["done"] != "0"]
    assert later, "no progress line after the first table"
    assert all(m["basis"] != BEING_READ for m in later)
    # "at least" says so of the requests to go too.
    assert all(m["to_go"].startswith("at least") == (m["estimate"] == "at least") for m in progress)
    segments = {e.path for e in sandbox.requests if e.kind == "rows"}  # one path per table
    sizes = [sum(1 for e in sandbox.requests if e.path == path) for path in segments]
    assert len(set(sizes)) == 1  # the data set's tables are all of one size
    assert all(m["estimate"] == "about" for m in later)
    counted = [int(m["typical"]) for m in later if m["typical"]]  # none once all are fetched
    assert counted, later
    assert set(counted) == {sizes[0]}
    done = [int(m["done"]) for m in progress]
    assert done == sorted(done)
    (summary,) = _lines(caplog, SUMMARY)
    rows = sum(len(r) for r in first.rows.values())
    assert (int(summary["done"]), int(summary["tables"])) == (tables, tables)
    assert int(summary["rows"].replace(",", "")) == rows
    assert int(summary["requests"].replace(",", "")) == len(sandbox.requests)
    assert summary["limited"] == "0"

    # The next run knows every table's size from the STATE: "about", not "at least".
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tap_maptable"):
        sync(config, state=first.last_state)
    assert _lines(caplog, PROGRESS)
    assert all(m["estimate"] == "about" for m in _lines(caplog, PROGRESS))


def test_a_full_window_says_when_its_next_slot_frees(make_sandbox, caplog) -> None:
    # A wait can last a whole window with nothing else in the log.
    sandbox = make_sandbox(rate_limit=LIMIT, rate_window=WINDOW, rows_per_table=50, segment_size=10)
    config = tap_config(sandbox, requests_per_minute=LIMIT, rate_limit_window_seconds=WINDOW)
    with caplog.at_level(logging.INFO, logger="tap_maptable"):
        sync(config)
    waits = [m for r in caplog.records if (m := WAIT.search(r.getMessage()))]
    assert waits, "the budget was used up but no wait was said"
    span = WINDOW + BudgetSpec(LIMIT, WINDOW).margin_s  # a slot frees a window (and margin) on
    assert all(1 <= int(m["seconds"]) <= math.ceil(span) for m in waits)


def test_before_any_table_is_read_whole_the_tables_being_read_give_the_size(
    make_sandbox, caplog
) -> None:
    # A first run whose first table is large: for as long as it was read, every line said
    # "at least" with one request per table left, whatever the tables being read had shown.
    _, config = _paced(
        make_sandbox,
        workspaces=1,
        projects_per_workspace=1,
        tables_per_project=3,
        rows_per_table=300,
    )
    with caplog.at_level(logging.INFO, logger="tap_maptable"):
        sync(config)
    early = [m for m in _lines(caplog, PROGRESS) if m["basis"] == BEING_READ]
    assert early, [m.string for m in _lines(caplog, PROGRESS)]
    assert {m["done"] for m in early} == {"0"}
    counted = [int(m["typical"]) for m in early]
    assert counted == sorted(counted), counted  # it grows as the reads go on
    assert max(counted) > 1
    # The table that sets the count is counted at one more request: the line says it may need
    # more (it said "about 1 s left" for a whole table when it was the only one left).
    assert all(m["at_count"] == "1" for m in early), [m.string for m in early]


def test_a_continued_run_counts_its_unknown_tables_at_the_size_of_those_already_finished(
    make_sandbox, caplog
) -> None:
    # The STATE of a stopped run that had finished two tables of four: the continuation reads
    # only the other two, of unknown size, and used to say "at least 1 s left" for them although
    # the STATE gives the finished tables' sizes.
    _, config = _paced(
        make_sandbox,
        workspaces=1,
        projects_per_workspace=2,
        tables_per_project=2,
        rows_per_table=200,
    )
    state = sync(config).last_state
    assert state is not None
    state["run"]["complete"] = False
    tables = sorted(s for s in state["bookmarks"] if s.startswith("table_t"))
    assert {state["bookmarks"][s]["segments_last_read"] for s in tables} == {20}
    for stream in tables[2:]:  # not finished, never read whole before: size unknown
        del state["bookmarks"][stream]["read_in_run"]
        del state["bookmarks"][stream]["segments_last_read"]
    caplog.clear()
    time.sleep(WINDOW)  # the first run's requests out of the sandbox's window
    with caplog.at_level(logging.INFO, logger="tap_maptable"):
        sync(config, state=state)
    progress = _lines(caplog, PROGRESS)
    assert progress, "no progress line in a run of several windows"
    assert any(m["typical"] == "20" for m in progress), [m.string for m in progress]
    assert all(m["estimate"] == "about" for m in progress), [m.string for m in progress]


def test_a_run_shorter_than_a_window_logs_only_the_summary(sandbox, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="tap_maptable"):
        sync(tap_config(sandbox))
    assert not _lines(caplog, PROGRESS)
    assert len(_lines(caplog, SUMMARY)) == 1


def test_the_time_left_follows_the_budget_or_the_answers_whichever_is_slower() -> None:
    budget = Pace(limit=60, window_s=60.0, latency_s=0.1, parallel=8)
    work = WorkLeft(requests=120, unknown_tables=0, longest_table=10)
    # The budget's bound, plus the last request's answer (0.1 s).
    assert seconds_left(work, budget, free_slots=0) == pytest.approx(120.1)  # one a second
    assert seconds_left(work, budget, free_slots=60) == pytest.approx(60.1)  # 60 go at once
    slow = Pace(limit=60, window_s=60.0, latency_s=4.0, parallel=2)
    assert seconds_left(work, slow, free_slots=0) == 120 * 4.0 / 2  # answers, two at a time
    assert seconds_left(WorkLeft(30, 0, 30), slow, free_slots=60) == 30 * 4.0  # one long table
    # The window as it is: 60 slots taken over 5 s, a minute ago; 103 requests to go. Sixty go
    # as those slots free (within 5 s), the other 43 a window later: not 103 s at one a second.
    frees_in = tuple(i * 5 / 60 for i in range(60))
    assert seconds_left(WorkLeft(103, 0, 5), budget, 0, frees_in) == pytest.approx(
        42 * 5 / 60 + 60.0 + 0.1
    )
    # all free: 60 now, 60 a window later
    assert seconds_left(work, budget, 60, ()) == pytest.approx(60.1)
    # A view that does not add up to the limit (a shared limit lowered): the steady rate.
    assert seconds_left(work, budget, 0, frees_in[:30]) == pytest.approx(120.1)
    # Budget-bound on a slow link: the last request sent still takes its answer's time.
    wide = Pace(limit=60, window_s=60.0, latency_s=2.0, parallel=16)
    assert seconds_left(work, wide, free_slots=0) == pytest.approx(120.0 + 2.0)
    assert duration(7530) == "2 h 05 min"
    assert duration(250) == "4 min 10 s"
    assert duration(12.4) == "12 s"


def test_the_run_s_time_counts_its_discovery_too(make_sandbox, caplog) -> None:
    # The summary counts discovery's requests; its time started only when the reading was
    # planned, after discovery: "in 27 s" for a run of 33 s at 2 s an answer.
    sandbox = make_sandbox(
        workspaces=1, projects_per_workspace=1, tables_per_project=2, latency_s=0.5
    )
    started = time.monotonic()
    with caplog.at_level(logging.INFO):
        sync(tap_config(sandbox))
    wall = time.monotonic() - started
    (summary,) = _lines(caplog, SUMMARY)
    said = re.search(r", in (\d+) s\.$", summary.string)
    assert said is not None, summary.string
    # Discovery alone is four answers one after another (login, workspaces, details, first
    # segments): 2 s at 0.5 s each. The summary may round down by half a second.
    assert int(said[1]) >= wall - 1.0, (summary.string, wall)


DISCOVERY = re.compile(
    r"Discovery: (?P<done>[\d,]+) of (?P<total>[\d,]+) tables' columns read, [\d,]+ requests "
    r"\(\d+ x 429\) in .+; about .+ left: (?P<left>[\d,]+) request\(s\) to go at \d+ per "
    r"[\d.]+ s\."
)


def test_a_discovery_longer_than_a_window_says_how_far_it_is(make_sandbox, caplog) -> None:
    # 1,000 tables at 60 a minute: 17 minutes of discovery that said nothing.
    sandbox = make_sandbox(
        workspaces=2,
        projects_per_workspace=2,
        tables_per_project=6,
        rate_limit=8,
        rate_window=2.0,
        latency_s=0.02,
    )
    config = tap_config(sandbox, requests_per_minute=8, rate_limit_window_seconds=2.0)
    with caplog.at_level(logging.INFO):
        discover(config)
    lines = _lines(caplog, DISCOVERY)
    assert lines, "no discovery line in a discovery of several windows"
    done = [int(m["done"]) for m in lines]
    assert done == sorted(done)
    assert all(int(m["total"]) == 24 for m in lines)
    assert all(int(m["left"]) == 24 - int(m["done"]) for m in lines)
    assert done[-1] < 24  # lines while it lasts, none after


def test_a_discovery_shorter_than_a_window_says_nothing_of_it(sandbox, caplog) -> None:
    with caplog.at_level(logging.INFO):
        discover(tap_config(sandbox))
    assert not _lines(caplog, DISCOVERY)


def test_a_large_table_half_read_raises_the_size_unknown_tables_are_counted_at() -> None:
    # Tables are read in the order they are written: when small ones are read whole first,
    # their mean (1 segment) said minutes where hours were left, while a table being read had
    # already fetched 40 segments.
    assert typical_size([1, 1, 1], [41]) == 11  # (1 + 1 + 1 + 41) / 4
    assert typical_size([20, 20], [6, 12]) == 20  # a part read below the mean says nothing
    assert typical_size([20, 20], [6, 30]) == 24  # (20 + 20 + 30) / 3, rounded up
    # Nothing read whole yet: the largest part read (a first table of 300 segments said "at
    # least" for minutes; the others being read have mostly their first segment only); nothing
    # read at all: None, "at least".
    assert typical_size([], [41]) == 41
    assert typical_size([], [2, 2, 12]) == 12
    assert typical_size([], []) is None


def test_after_small_tables_a_large_one_being_read_lengthens_the_time_left(
    make_sandbox, caplog
) -> None:
    # The first two tables written have one segment, the others 20. Once the small ones were
    # read whole the tables not yet read were counted at their mean, one segment, for as long
    # as the first large one was being read.
    data = {"workspaces": 1, "projects_per_workspace": 1, "tables_per_project": 4}
    tables = _written_order(make_sandbox, **data, rows_per_table=200)
    _, config = _paced(
        make_sandbox, **data, rows_per_table=200, table_rows={tables[0]: 5, tables[1]: 5}
    )
    with caplog.at_level(logging.INFO, logger="tap_maptable"):
        sync(config)
    while_large = [m for m in _lines(caplog, PROGRESS) if m["done"] == "2" and m["typical"]]
    assert while_large, [m.string for m in _lines(caplog, PROGRESS)]
    assert max(int(m["typical"]) for m in while_large) > 1, [m.string for m in while_large]


def test_a_table_being_read_past_the_size_counted_is_named_in_the_line(
    make_sandbox, caplog
) -> None:
    # The last table written is 12 times the others: once it had fetched more segments than
    # the tables were counted at, every line said "about 1 s left" for a minute. The count is a
    # guess, not a bound ("at least" would be false of the others): the line says that table
    # may need more.
    data = {"workspaces": 1, "projects_per_workspace": 1, "tables_per_project": 4}
    last = _written_order(make_sandbox, **data, rows_per_table=50)[-1]
    _, config = _paced(make_sandbox, **data, rows_per_table=50, table_rows={last: 600})
    with caplog.at_level(logging.INFO, logger="tap_maptable"):
        sync(config)
    while_last = [m for m in _lines(caplog, PROGRESS) if m["done"] == "3"]
    assert len(while_last) >= 3, [m.string for m in _lines(caplog, PROGRESS)]
    # Segments of the last table written (each of 10 rows) are fewer than those fetched.
    past = [
        m
        for m in while_last
        if m["typical"] and (int(m["rows"].replace(",", "")) - 150) // 10 >= int(m["typical"])
    ]
    assert past, [m.string for m in while_last]
    assert all(m["at_count"] == "1" for m in past), [m.string for m in past]
    assert all(m["estimate"] == "about" for m in past)
