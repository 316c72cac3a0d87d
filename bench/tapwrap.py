"""Run tap-maptable as `tap-maptable` would, with bench-only variations.

    python -m bench.tapwrap [--writer tap|sdk-json|sdk-msgspec] [--conform] \
        [--profile FILE.prof] -- --config ...

The tap writes with its own msgspec writer (`tap_maptable.output.SingerOutput`, records
buffered) and skips the SDK's type conformance for row streams. To measure what that gained,
`--writer sdk-json` runs a subclass with the SDK's default writer (stdlib json, a flush per
message), `--writer sdk-msgspec` one with the SDK's `MsgSpecWriter` (a flush per message), and
`--conform` puts the row streams back on the SDK's default `TYPE_CONFORMANCE_LEVEL`
(RECURSIVE). `--profile` runs the whole command under cProfile and dumps the stats.
"""

from __future__ import annotations

import argparse
import cProfile
import sys
from typing import Any

from tap_maptable import cli
from tap_maptable.tap import TapMapTable


def _tap_class(writer: str) -> type[TapMapTable]:
    if writer == "tap":
        return TapMapTable
    if writer == "sdk-json":
        from singer_sdk.io_base import SingerWriter  # noqa: PLC0415

        chosen: Any = SingerWriter
    else:
        from singer_sdk.contrib.msgspec import MsgSpecWriter  # noqa: PLC0415 - needs msgspec

        chosen = MsgSpecWriter

    class TapMapTableWriter(TapMapTable):
        """The tap, writing Singer messages with one of the SDK's own writers."""

        message_writer_class = chosen

    return TapMapTableWriter


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tapwrap")
    parser.add_argument("--writer", choices=("tap", "sdk-json", "sdk-msgspec"), default="tap")
    parser.add_argument("--conform", action="store_true")
    parser.add_argument("--profile", metavar="FILE")
    args, tap_args = parser.parse_known_args()
    if tap_args[:1] == ["--"]:
        tap_args = tap_args[1:]
    # tap_maptable.cli.main runs `TapMapTable.cli`; point that name at the variant.
    cli.TapMapTable = _tap_class(args.writer)  # type: ignore[misc]
    if args.conform:
        from singer_sdk.helpers.conform import TypeConformanceLevel  # noqa: PLC0415

        from tap_maptable.table_rows import TableRowsStream  # noqa: PLC0415

        TableRowsStream.TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.RECURSIVE
    if not args.profile:
        cli.main(tap_args)
        return
    profiler = cProfile.Profile()
    code = 0
    profiler.enable()
    try:
        cli.main(tap_args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    finally:
        profiler.disable()
        sys.stdout.flush()
        profiler.dump_stats(args.profile)
    sys.exit(code)


if __name__ == "__main__":
    main()
