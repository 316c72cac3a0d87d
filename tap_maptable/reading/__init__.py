"""Reading tables: one reader for every segment of a run, and where each table's read continues.

- `reader`: the run's one reader (workers, the order of requests, the segments for each stream);
- `schedule`: which table's request may go next (the table being written first);
- `segments`: the segment cursor and what each answer means (loops, refused resume points);
- `holding`: segments fetched ahead, in memory up to a size, then in a temporary file;
- `resume`: where a table's read continues, as its bookmark records it.
"""

from tap_maptable.reading.holding import Hold
from tap_maptable.reading.reader import Reader, ReadPlan, TableRead
from tap_maptable.reading.resume import Resume, read_resume, write_resume
from tap_maptable.reading.schedule import Latency

__all__ = [
    "Hold",
    "Latency",
    "ReadPlan",
    "Reader",
    "Resume",
    "TableRead",
    "read_resume",
    "write_resume",
]
