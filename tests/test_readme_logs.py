"""README's Logs section shows lines the tap prints: they follow the formats the code logs with.

The lines were copied from a real run; this keeps them from drifting away from the code (the
README once showed "12 have no update time and are sent on every run" long after the tap had
started to say "2 without an update time, sent on every run").
"""

from __future__ import annotations

import re
from pathlib import Path

from tap_maptable.logs import TABLE_DONE_FORMAT, rows_sent

README = Path(__file__).resolve().parents[1] / "README.md"
CONVERSIONS = {"%s": "(.*?)", "%d": r"\d+", "%.1f": r"\d+\.\d", "%g": r"[\d.]+"}


def pattern_of(printf_format: str) -> re.Pattern[str]:
    """A regex that matches what `printf_format` can produce."""
    parts = re.split(r"(%\.1f|%[sdg])", printf_format)
    return re.compile("".join(CONVERSIONS.get(part, re.escape(part)) for part in parts) + "$")


def logs_example() -> list[str]:
    """The messages (after the logger's columns) of the Logs section's example."""
    section = README.read_text(encoding="utf-8").split("\n## Logs\n", 1)[1]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    return [line.rsplit(" | ", 1)[-1] for line in block.splitlines() if line.strip()]


PROGRESS = re.compile(
    r"Progress: \d+ of \d+ tables, [\d,]+ rows sent, [\d,]+ requests \(\d+ x 429\) in .+; "
    r"(about|at least) .+ left.*: (?:at least )?[\d,]+ request\(s\) to go at \d+ per [\d.]+ s\."
)
SUMMARY = re.compile(
    r"Run complete: \d+ of \d+ tables, [\d,]+ rows sent, [\d,]+ requests, \d+ x 429, in .+\."
)


def test_the_logs_example_is_what_the_tap_prints() -> None:
    version, budget, *rest = logs_example()
    # Any version: a release must not have to re-run the example (the SDK prints this line).
    assert re.fullmatch(r"tap-maptable v[0-9][\w.]*, Meltano SDK v[0-9][\w.]*", version), version
    assert pattern_of("Request budget: %d per %g s, kept in %s.").match(budget), budget
    table_done = pattern_of(TABLE_DONE_FORMAT)
    waiting = pattern_of(
        "Request budget in use: %d requests per %g s reached; %s (this is normal pacing, not "
        "an error)."
    )
    kinds = []
    for line in rest:
        if table_done.match(line):
            assert rows_sent(line) is not None
            kinds.append("table")
        elif PROGRESS.fullmatch(line):
            kinds.append("progress")
        elif SUMMARY.fullmatch(line):
            kinds.append("summary")
        else:
            assert waiting.match(line), line
            kinds.append("wait")
    assert kinds[-1] == "summary"
    assert {"table", "progress"} <= set(kinds)
    source = (Path(__file__).resolve().parents[1] / "tap_maptable").rglob("*.py")
    code = "\n".join(path.read_text(encoding="utf-8") for path in source)
    for words in ("without an update time, sent on every run", "updated since", "Progress: "):
        assert words in code
