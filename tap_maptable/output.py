"""How Singer messages leave the tap: msgspec-encoded, flushed at each non-record message.

A 1,000,000-row table is a million RECORD lines. The SDK's default writer encodes each with the
standard JSON library and flushes stdout after every one (a system call per row). Ours encodes with
msgspec and lets records collect in stdout's buffer, flushing whenever a STATE (or SCHEMA,
ACTIVATE_VERSION, ...) message is written: a target never sees a STATE before the records it
covers, and a killed tap loses only records that no emitted STATE vouched for.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib.encoding.base import SingerMessageType

from tap_maptable.stopping import whole_message

if TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message


class SingerOutput(MsgSpecWriter):
    """msgspec encoding; records are buffered, every other message flushes."""

    # The STATE bytes written so far, and the last STATE line's size (see checkpoints.py).
    state_bytes_written = 0
    last_state_bytes = 0

    def write_message(self, message: Message) -> None:
        """Write one message line to stdout."""
        line = self.format_message(message)
        with whole_message():
            sys.stdout.buffer.write(line)
            if message.type != SingerMessageType.RECORD:
                sys.stdout.flush()
        if message.type == SingerMessageType.STATE:
            self.state_bytes_written += len(line)
            self.last_state_bytes = len(line)
