"""Segments fetched before their table is written: held in memory up to a size, then on disk.

A run reads ahead: segments of the tables after the one being written (and, when discovery runs
in the same process, every table's first segment). Kept in memory without a bound, that grows
with the number of tables: 2.5 GB at 1,000 tables of 1,000-row segments. Dropped, they would be
fetched twice, and requests are the tap's real cost. So the hold keeps segments in memory up to
`memory_bytes`, as the answers' bytes (a parsed segment takes about five times its answer's
size: the cap is what the memory holds), and writes the rest to one temporary file (deleted
when the hold is closed, or by the OS if the process dies). A held answer is parsed again when
its table's turn comes. Only the table being written keeps its next segments parsed (at most
`QUEUE_DEPTH`, beyond the cap).

Bytes held in memory are compressed (zlib, its fastest level: JSON answers shrink several times
for about a millisecond each). The cap still counts the answers' own sizes, so which segments
wait in memory and which on disk is what it was; the memory they take is a fraction of the cap.
"""

from __future__ import annotations

import tempfile
import threading
import zlib
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass
class Held:
    """One segment: parsed (`detail`), as its answer's bytes (`body`, compressed), or on disk.

    `size`: the answer's own size (what the cap counts); `offset` >= 0: on disk, there.
    """

    size: int
    detail: Any = None
    body: bytes | None = None
    offset: int = -1  # >= 0: on disk, at this offset, `size` bytes


class Hold:
    """Where segments wait: memory up to `memory_bytes`, then one temporary file."""

    def __init__(self, memory_bytes: int, *, parse: Callable[[bytes], Any]) -> None:
        """`parse` turns an answer's bytes back into its detail (for segments read from disk)."""
        self.memory_bytes = memory_bytes
        self._parse = parse
        self._lock = threading.Lock()
        self._in_memory = 0
        self._file: IO[bytes] | None = None
        self._end = 0
        self.spilled = 0  # segments written to disk

    @property
    def in_memory(self) -> int:
        """Bytes of answers held in memory now."""
        return self._in_memory

    def has_room(self, size: int) -> bool:
        """Whether `size` more bytes fit in memory."""
        with self._lock:
            return self._in_memory + size <= self.memory_bytes

    def keep(self, detail: Any, body: bytes, *, in_memory: bool = False) -> Held:
        """Hold one segment: parsed if `in_memory` (the table being written), else as bytes.

        The bytes wait in memory while they fit under the cap, else on disk.
        """
        size = len(body)
        if in_memory:
            return Held(size=size, detail=detail)
        with self._lock:
            fits = self._in_memory + size <= self.memory_bytes
            if fits:
                self._in_memory += size
        if fits:
            # Compressed outside the lock: every worker's next choice asks `has_room`.
            return Held(size=size, body=zlib.compress(body, 1))
        with self._lock:
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="tap-maptable-")  # noqa: SIM115 - closed in close()
            self._file.seek(self._end)
            self._file.write(body)
            held = Held(size=size, offset=self._end)
            self._end += size
            self.spilled += 1
            return held

    def take(self, held: Held) -> Any:
        """The segment's detail (parsed again if it waited as bytes); its memory is freed."""
        if held.detail is not None:
            detail, held.detail = held.detail, None
            return detail
        if held.body is not None:
            body, held.body = held.body, None
            with self._lock:
                self._in_memory -= held.size
            return self._parse(zlib.decompress(body))
        with self._lock:
            assert self._file is not None  # noqa: S101 - a segment on disk means a file
            self._file.seek(held.offset)
            body = self._file.read(held.size)
        return self._parse(body)

    def drop(self, held: Held) -> None:
        """Forget a segment nobody will take (its table was abandoned)."""
        held.detail = None
        if held.body is not None:
            held.body = None
            with self._lock:
                self._in_memory -= held.size

    def close(self) -> None:
        """Delete the temporary file, if there is one."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
