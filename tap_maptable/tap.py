"""The MapTable tap: its command line's inputs, the run's shared objects, and its streams."""

from __future__ import annotations

import contextlib
import copy
import logging
import sys
import time
from contextvars import ContextVar
from datetime import datetime, timezone
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any, cast

import click
from singer_sdk import Tap
from singer_sdk.plugin_base import PluginBase
from singer_sdk.singerlib import Catalog, CatalogEntry

from tap_maptable import logs, stopping
from tap_maptable.about import FORMAT_NAME as ABOUT_TEXT
from tap_maptable.catalog_text import catalog_pieces
from tap_maptable.checkpoints import PacedStateWriter
from tap_maptable.columns import (
    UnmappableColumnsError,
    live_columns,
    name_columns,
    parse_timestamp,
    row_schema,
)
from tap_maptable.connection import MapTableConnection, tap_version
from tap_maptable.discovery import (
    STREAM_PREFIX,
    UNREADABLE_MARK,
    Directory,
    TableRef,
    select_tables,
    table_id_for,
    unreadable_reason,
)
from tap_maptable.envelope import parse_detail
from tap_maptable.errors import TABLE_ERRORS, TablesSkippedError, one_line
from tap_maptable.inputs import (
    InputFile,
    check_catalog,
    keep_identity,
    normalise_state,
    read_input_files,
    streams_read,
)
from tap_maptable.output import SingerOutput
from tap_maptable.progress import Pace, Progress, discovery_line
from tap_maptable.reading import Hold, Reader, TableRead
from tap_maptable.reading.resume import RUN_KEY, begin_run, end_run, run_to_continue
from tap_maptable.reading.segments import as_segment
from tap_maptable.settings import (
    DEFAULT_PARALLEL_REQUESTS,
    DEFAULT_RESUME_WITHIN_HOURS,
    DEFAULT_SEGMENT_MEMORY_MB,
    SETTINGS_SCHEMA,
    check_config,
    meltano_plugin,
    read_config_files,
)
from tap_maptable.sharing import (
    SchemaDict,
    catalog_of,
    discovered_catalog,
    discovered_entries,
    share_map_schemas,
    share_schemas,
)
from tap_maptable.stopping import StopRequestedError
from tap_maptable.streams import ProjectsStream, TableNodesStream, WorkspacesStream
from tap_maptable.table_rows import TableRowsStream

LOGGER = logging.getLogger("tap_maptable")


def utc_text(epoch_s: float) -> str:
    """An epoch time as RFC 3339 UTC text."""
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).isoformat().replace("+00:00", "Z")


MIB = 1024 * 1024
# What makes discovery skip one table (with a WARNING) rather than fail: see TABLE_ERRORS.
DISCOVERY_SKIPS: tuple[type[Exception], ...] = (UnmappableColumnsError, *TABLE_ERRORS)

# Streams whose names are not `table_<tableId>`, although one of them starts the same way.
FIXED_STREAMS = frozenset(
    {WorkspacesStream.name, ProjectsStream.name, TableNodesStream.name},
)
# Each stream's key and bookmark, for catalog entries that leave them out (`keep_identity`).
IDENTITIES: dict[str, tuple[list[str], str | None]] = {
    WorkspacesStream.name: (WorkspacesStream.primary_keys, WorkspacesStream.replication_key),
    ProjectsStream.name: (ProjectsStream.primary_keys, ProjectsStream.replication_key),
    TableNodesStream.name: (TableNodesStream.primary_keys, TableNodesStream.replication_key),
}
TABLE_IDENTITY = (TableRowsStream.primary_keys, TableRowsStream.replication_key)
# Set while the command line runs `--discover`, which only writes the catalog: `run_discovery`
# then keeps no copy of the text to return.
_CATALOG_TEXT_UNUSED: ContextVar[bool] = ContextVar("catalog_text_unused", default=False)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from singer_sdk.streams import Stream


HELP = """Extract MapTable into any Singer target: workspaces, projects, table nodes and every row
of every table (one stream per table, incremental on _updated_at), within MapTable's 60 requests
per minute per app.

\b
Settings (in the --config JSON file, or with --config ENV from TAP_MAPTABLE_<NAME>):
  app_id, app_secret        the MapTable app (required; the secret is never logged)
  api_url                   https://maptable.com, or your MapTable's URL
  start_date                earliest row update time on the first run (RFC 3339)
  table_ids                 only these tables
  requests_per_minute       the app's budget (60), shared through rate_limit_store
  max_parallel_requests     requests in flight at once: 8, up to this (16) on a slow link
  request_timeout, max_tries, page_size, user_agent, cache_tokens, ...

\b
  tap-maptable --config config.json --discover > catalog.json
  tap-maptable --config config.json --catalog catalog.json --state state.json | target-...
  tap-maptable --about                      every setting, its default and what it does

Everything else (Meltano, warehouses, the request budget, when tables change,
troubleshooting): README.md in the tap's source, also the package's long description.
"""


@contextlib.contextmanager
def _unread_inputs_noted(ctx: click.Context, option: str, why: str) -> Iterator[None]:
    """One WARNING naming the `--catalog`/`--state` that `option` did not read, if it ran.

    The SDK's callbacks end a successful `--discover` or `--test` with `ctx.exit()` (code 0);
    any other end (an error, the option not given) says nothing. Under Meltano, which hands
    its saved state to discovery itself, the line is DEBUG: nobody there can act on it, and a
    WARNING in every incremental run's log would teach people to skip warnings.
    """
    try:
        yield
    except click.exceptions.Exit as done:
        unread = [f"--{name}" for name in ("catalog", "state") if ctx.params.get(name) is not None]
        if done.exit_code == 0 and unread:
            level = logging.DEBUG if meltano_plugin() else logging.WARNING
            LOGGER.log(level, "%s not read with %s: %s.", " and ".join(unread), option, why)
        raise


class TapMapTable(Tap):
    """Singer tap for MapTable: workspaces, projects, table nodes and every table's rows."""

    name = "tap-maptable"
    message_writer_class = SingerOutput

    config_jsonschema = SETTINGS_SCHEMA

    @classmethod
    def get_plugin_version(cls) -> str:
        """`tap_maptable.__version__`: never the stale metadata of an old editable install."""
        return tap_version()

    @classmethod
    def print_about(cls, output_format: str | None = None) -> None:
        """`--about`: in plain text, each setting's default and purpose too (`about.py`)."""
        super().print_about(output_format or ABOUT_TEXT)

    @classmethod
    def get_singer_command(cls) -> click.Command:
        """The SDK's command line, with help that says what this tap does.

        `--catalog` and `--state` are read and closed as they are parsed (`InputFile`): the
        SDK's `click.File` left them open when a later option failed.
        """
        command = super().get_singer_command()
        command.help = HELP
        for param in command.params:
            if param.name in {"catalog", "state"}:
                param.type = InputFile(param.name)
                # Taken before `--discover` and `--test` act, wherever they stand on the line, so
                # that those can say the file is not read. Harmless: nothing is read here.
                param.is_eager = True
        return command

    @classmethod
    def cb_discover(cls, ctx: click.Context, param: click.Option, value: bool) -> None:  # noqa: FBT001
        """`--discover`, as the SDK runs it; then say if a `--catalog` or `--state` was not read.

        Discovery always reads every table's columns from MapTable: a user who hands it the
        last catalog (to keep its selection, say) is told so rather than left to find out. Once
        discovery succeeded: a failed run ends with its one error line, nothing after it.
        """
        unused = _CATALOG_TEXT_UNUSED.set(True)
        try:
            with _unread_inputs_noted(
                ctx, "--discover", "discovery reads everything from MapTable"
            ):
                super().cb_discover(ctx, param, value)
        finally:
            _CATALOG_TEXT_UNUSED.reset(unused)

    @classmethod
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """`--test`, as the SDK runs it; then say if a `--catalog` or `--state` was not read."""
        with _unread_inputs_noted(ctx, "--test", "the test reads everything from MapTable"):
            super().cb_test(ctx, param, value)

    # -- what the user hands us, checked before any request ----------------------------------

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Check the catalog and state before the SDK builds streams (which may send requests)."""
        catalog = kwargs.get("catalog")
        if isinstance(catalog, dict) and not isinstance(catalog, Catalog):
            # A parsed catalog (the command line hands a `Catalog` already, `invoke`): the SDK
            # takes a `Catalog` as it is, and ours keeps each schema as one dict (`catalog_of`).
            check_catalog(catalog)
            kwargs["catalog"] = catalog_of(catalog["streams"])
        state = kwargs.get("state")
        if isinstance(state, dict):
            catalog = kwargs.get("catalog")
            read = streams_read(catalog if isinstance(catalog, Catalog) else None)
            kwargs["state"] = normalise_state(state, read)
        self._skipped: list[tuple[str, str]] = []
        self._planned_reader: Reader | None = None
        super().__init__(*args, **kwargs)
        logs.for_people()

    @classmethod
    def cb_config(
        cls,
        ctx: click.Context,
        param: click.Option,
        value: tuple[str, ...],
    ) -> Any:
        """Read `--config` files once, with a one-line error naming the file.

        Instead of the SDK's callback, which reads them again: a file that can be read only
        once (a named pipe, `<(...)`) was empty the second time. `invoke` takes what this
        returns as it takes the SDK's (its `config` and `parse_env`).
        """
        del ctx, param
        return read_config_files(value)

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: Any = None,
        state: IO[str] | None = None,
        catalog: IO[str] | None = None,
    ) -> None:
        """Read the catalog and state files once, with clear errors; then run as the SDK does.

        The SDK's `Tap.invoke` parses the files' text into dicts and `Tap.__init__` builds its
        `Catalog` from the catalog's: at 1,000 tables the text, the parsed document and the catalog
        (with the parser's leftovers) were tens of MB alive at once, and the memory the parse took
        stayed taken for the whole run. This does what `Tap.invoke` does, in its order (`--about`
        in the `PluginBase` part, the version line, the tap, `sync_all`; the files are read after
        `--about`, which needs neither), from files parsed once, handing `Tap.__init__` a `Catalog`
        (`catalog_of`), which the SDK takes as it is; the catalog's entries are parsed one at a
        time (`inputs.load_catalog`), each let go once `catalog_of` has its copy.
        """
        super(Tap, cls).invoke(about=about, about_format=about_format)  # `--about` exits here
        input_catalog, parsed_state = read_input_files(catalog, state, catalog_of)
        cls.print_version(print_fn=cls.logger.info)
        tap = cls(
            config=config.config if config is not None else {},
            state=parsed_state,
            catalog=input_catalog,
            parse_env_config=config is not None and config.parse_env,
            validate_config=True,
        )
        tap.sync_all()

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Refuse bad settings in one line each (unknown names too), before any request.

        Overrides the SDK's private check because its messages span several log lines and can
        repeat a secret's value, and because the SDK only warns during discovery, while our
        discovery sends requests with these settings. The SDK's pass still runs after ours, to
        fill in defaults.
        """
        schema = copy.deepcopy(self.config_jsonschema)
        self.append_builtin_config(schema)
        check_config(dict(self._config), schema)
        return super()._validate_config(raise_errors=raise_errors)

    def setup_mapper(self) -> None:
        """The SDK's stream maps, registered one stream at a time, each keeping one schema.

        What `Tap.setup_mapper` does (the plugin's mapper, then every catalog stream registered
        through the mapper's public `register_raw_streams_from_catalog`), except that each
        stream's maps are made to share one schema (`share_map_schemas`) before the next stream
        is registered: registered all at once, the SDK's two deep copies per stream are a peak
        of tens of megabytes at 1,000 tables. Without an input catalog the streams already
        exist and each entry is made from its stream as it is registered (`discovered_entries`),
        not kept in a catalog, and the maps keep the stream's own schema; with one, the maps
        keep the catalog entry's schema, which each table's stream is then built with (the
        fixed streams keep their own); and an entry that leaves out the stream's key or
        bookmark gets the stream's own first (`keep_identity`), for the maps and the stream.
        """
        PluginBase.setup_mapper(self)
        if self.input_catalog is None:
            # Each stream's entry made, registered and let go in turn: the SDK's working catalog
            # (`Tap.catalog`) kept a second copy of every schema until the sync began, the peak
            # of a 1,000-table discover+sync. The maps get the entry's copy, as the SDK's do (the
            # schemas they derive keep its key order), then the stream's own where equal.
            streams = list(self.streams.values())
            for stream, (_, entry) in zip(streams, discovered_entries(streams), strict=True):
                self._register_maps(entry, stream.schema)
            return
        for entry in self.catalog.streams:
            keep_identity(entry, *IDENTITIES.get(entry.tap_stream_id, TABLE_IDENTITY))
            # an input catalog's (`catalog_of`): the dict the table's stream is built with
            schema = entry.schema.to_dict() if isinstance(entry.schema, SchemaDict) else None
            self._register_maps(entry, schema)

    def _register_maps(self, entry: CatalogEntry, schema: dict[str, Any] | None) -> None:
        """Register `entry`'s stream maps, each keeping `schema` where equal (`sharing`)."""
        self.mapper.register_raw_streams_from_catalog(Catalog([(entry.tap_stream_id, entry)]))
        name = entry.stream or entry.tap_stream_id
        share_map_schemas(self.mapper.stream_maps.get(name, []), schema)

    @property
    def _singer_catalog(self) -> Catalog:
        """The catalog of the tap's own streams, each entry's schema one dict (`sharing`).

        Overrides the SDK's private property (what `Tap.catalog` and `--discover` use): it made
        every stream's entry, each schema a tree of `Schema` objects, all alive at once, the
        peak of a 1,000-table run without an input catalog. The same entries and output,
        one entry at a time (`discovered_catalog`).
        """
        return discovered_catalog(self.streams.values())

    _catalog_coverage_checked = False
    _discovery_only = False
    _progress: Progress | None = None
    run_started = ""  # the run this process continues or begins (RFC 3339; see reading.resume)

    # -- the run ---------------------------------------------------------------------------------

    def sync_all(self) -> None:  # type: ignore[misc]
        """Plan the run's reading, sync every selected stream, end the reading; say what it did.

        The tap, not a stream, starts and ends the reading: every table's read is planned
        before the first record, in the order the SDK writes the streams, so the reader can
        fetch for the table being written first and the next ones with what is left. The
        summary, and the skipped tables (`TablesSkippedError`), come after the SDK wrote the
        last STATE, so every table extracted is committed. (The SDK marks `sync_all` final but
        has no hook around a whole run; the SDK's own `sync_all` runs unchanged inside this one.)
        """
        self._skipped = []
        try:
            self.warn_tables_not_in_catalog()
            self._plan_reading()
            super().sync_all()
        except StopRequestedError:
            # Stopped between two messages: the STATE as it is now vouches for every segment
            # sent, so the next run redoes none of them.
            self.state_writer.write_state(self.state, force=True)
            raise
        except Exception:
            # Failed: the same, if the output still takes it (it may be what failed). STATEs
            # are paced, so the last one written may be many tables old.
            with contextlib.suppress(Exception):
                self.state_writer.write_state(self.state, force=True)
            raise
        finally:
            self._end_reading()
            # A stop noted while draining that never took effect: every table was written.
            stop = stopping.take_requested()
        end_run(self._state_dict)
        self.state_writer.write_state(self.state, force=True)
        LOGGER.info("%s", self.progress.summary())
        if stop is not None:
            raise StopRequestedError(stop)
        if self._skipped:
            raise TablesSkippedError(self._skipped)

    def run_sync_dry_run(  # type: ignore[misc]
        self, dry_run_record_limit: int | None = 1, streams: Iterable[Stream] | None = None
    ) -> bool:
        """The SDK's dry run (`--test`), then the reading ended as after a sync.

        A dry run leaves its tables before their end: without this, its workers and a stop
        noted while a table was written would outlive it.
        """
        try:
            result = super().run_sync_dry_run(dry_run_record_limit, streams)
        finally:
            self._end_reading()
            stop = stopping.take_requested()
        if stop is not None:
            raise StopRequestedError(stop)
        return result

    def run_discovery(self) -> str:
        """`--discover`: first segments are read for their columns only, and not kept.

        The catalog is written one entry at a time (`catalog_text`), not made whole first as
        the SDK does; the same text, which is returned too, except when the command line runs
        discovery: it only writes the catalog, and the text (11 MB at 1,000 tables) is not kept.
        """
        self._discovery_only = True
        try:
            streams = list(self.streams.values())  # discovery: minutes, and stoppable
            entries = (entry for _, entry in discovered_entries(streams))
            kept: list[str] = []
            keep = not _CATALOG_TEXT_UNUSED.get()
            with stopping.whole_message():
                for piece in catalog_pieces(entries):
                    sys.stdout.write(piece)
                    if keep:
                        kept.append(piece)
                sys.stdout.write("\n")
                sys.stdout.flush()
            return "".join(kept)
        finally:
            self._end_reading()

    def load_state(self, state: dict[str, Any]) -> None:
        """The SDK's bookmarks, and the run the state records (to continue it if it stopped)."""
        super().load_state(state)
        if RUN_KEY in state:
            self._state_dict[RUN_KEY] = state[RUN_KEY]

    @property
    def _state_dict(self) -> dict[str, Any]:
        """The tap's state, as the plain dict it is (the SDK types it with its known keys)."""
        return cast("dict[str, Any]", self.state)

    @property
    def process_started(self) -> str:
        """When this process began (RFC 3339 UTC): no row it reads is older."""
        return utc_text(self.initialized_at / 1000)

    def table_skipped(self, stream_name: str, reason: str) -> None:
        """Note a table the run could not read (its stream has said why in the log)."""
        self._skipped.append((stream_name, reason))

    def checkpoint(self) -> None:
        """Write a STATE now, unless STATE output is over its pace (see `checkpoints.py`).

        Table streams call it after each segment they sent. For an app of up to about a hundred
        tables that is a STATE per segment, so a killed run's next run redoes at most the
        requests that were in flight; with more tables less often, because every STATE holds
        every table's bookmark.
        """
        self.state_writer.write_state(self.state)

    @cached_property
    def state_writer(self) -> PacedStateWriter:  # type: ignore[override]
        """The SDK's state writer, paced: the SDK's streams write through it too.

        Overrides the SDK's property (a public one) so that the STATE the SDK writes after each
        stream is paced like ours: at 1,000 tables, a STATE per table is a gigabyte of STATE.
        """
        output = self.message_writer
        return PacedStateWriter(
            super().state_writer,
            state_output=lambda: (
                getattr(output, "state_bytes_written", 0),
                getattr(output, "last_state_bytes", 0),
            ),
        )

    def _setup_signal_handlers(self) -> None:
        """Stop on SIGTERM/Ctrl-C with a non-zero exit and no half-written message.

        Overrides a private SDK method (no public hook exists): the SDK's handler writes a STATE
        from inside the signal handler, possibly between two halves of a message, and exits 0,
        which tells Meltano a cancelled run succeeded.
        """
        stopping.install()

    # -- the run's shared objects: one connection, one reader, one directory --------------------

    @cached_property
    def connection(self) -> MapTableConnection:
        """The run's one connection to MapTable: every request goes through it."""
        return MapTableConnection(self.config)

    @cached_property
    def reader(self) -> Reader:
        """The run's one reader of tables (and of the workspace details, in parallel)."""
        memory = int(self.config.get("segment_memory_mb", DEFAULT_SEGMENT_MEMORY_MB)) * MIB
        return Reader(
            self.connection,
            workers=self.parallel_requests,
            hold=Hold(memory, parse=lambda body: as_segment(parse_detail(body))),
            latency=self.connection.latency,
            keep_first=not self._discovery_only,
            on_wait=self.state_writer.write_held_back,
        )

    @cached_property
    def directory(self) -> Directory:
        """What the run has learned about workspaces and tables."""
        return Directory(
            self.connection,
            self.reader,
            page_size=int(self.config.get("page_size", 100)),
            table_ids=self.config.get("table_ids"),
        )

    @property
    def parallel_requests(self) -> int:
        """`max_parallel_requests`: requests for different tables in flight at once."""
        return int(self.config.get("max_parallel_requests", DEFAULT_PARALLEL_REQUESTS))

    @property
    def progress(self) -> Progress:
        """The run's counts and its progress lines (planned with the reading)."""
        if self._progress is None:
            self._plan_reading()
        assert self._progress is not None  # noqa: S101 - set by _plan_reading
        return self._progress

    def read_of(self, stream: TableRowsStream) -> TableRead:
        """The planned read of a table stream (planning the run's reading if nobody has)."""
        read = self.reader.read_of(stream.name)
        if read is None:
            self._plan_reading()
            read = self.reader.read_of(stream.name)
        assert read is not None  # noqa: S101 - every selected table stream is planned
        return read

    def _plan_reading(self) -> None:
        """Every selected table, in the order the SDK writes them, and where each starts.

        Once per reader (a sync's, or a dry run's made on first use).
        """
        if self._planned_reader is self.reader:
            return
        self._planned_reader = self.reader
        self._share_schemas()
        tables = [s for s in self.streams.values() if isinstance(s, TableRowsStream) and s.selected]
        unreadable = [
            s
            for s in self.streams.values()
            if isinstance(s, TableRowsStream) and s.unreadable and s.wanted
        ]
        continued = self._run_to_continue()
        self.run_started = continued or self.process_started
        begin_run(self._state_dict, self.run_started)
        self.reader.plan([table.read_plan(continuing=continued is not None) for table in tables])
        connection, reader = self.connection, self.reader
        self._progress = Progress(
            tables=len(tables) + len(unreadable),
            pace=lambda: self._pace_of(reader),
            work_left=reader.work_left,
            requests=lambda: (connection.budget.acquired, connection.budget.rate_limited),
            window=connection.budget.window_view,
            elapsed=self._elapsed_s(),
        )
        self._progress.start()
        for table in unreadable:
            table.report_unreadable()

    def _share_schemas(self) -> None:
        """Drop what the streams no longer need once built: equal schema copies.

        Once per sync, before the first record: the streams and the stream maps exist by then
        in both ways of running (with a catalog, and discovering in the same process).
        """
        shared = share_schemas(self.streams.values(), self.mapper)
        LOGGER.debug("%d schema copies shared with their streams", shared)

    def _run_to_continue(self) -> str | None:
        """The stopped run this one continues, if the STATE has one recent enough."""
        stopped = run_to_continue(self._state_dict)
        if stopped is None:
            return None
        hours = int(self.config.get("resume_within_hours", DEFAULT_RESUME_WITHIN_HOURS))
        age_h = (self.initialized_at / 1000 - parse_timestamp(stopped).timestamp()) / 3600
        if age_h >= hours:
            LOGGER.info(
                "The run that began at %s was stopped %.0f h ago (resume_within_hours: %d): "
                "starting a new run, which reads every table.",
                stopped,
                age_h,
                hours,
            )
            return None
        LOGGER.info(
            "Continuing the run that began at %s and was stopped: the tables it finished are "
            "not read again.",
            stopped,
        )
        return stopped

    def _end_reading(self) -> None:
        """Stop the reader's workers and the progress lines; a later sync reads anew."""
        if self._progress is not None:
            self._progress.stop()
        if "reader" in self.__dict__:
            self.reader.close()
            del self.__dict__["reader"]
            self.__dict__.pop("directory", None)

    # -- discovery -----------------------------------------------------------------------------

    def discover_streams(self) -> Sequence[Stream]:
        """The fixed streams, then one stream per table.

        With an input catalog, table streams are built from it and nothing is asked of the API:
        the SDK calls this method even when a catalog is given, and re-discovering every table
        would cost one request per table on every run.
        """
        streams: list[Stream] = [
            WorkspacesStream(self),
            ProjectsStream(self),
            TableNodesStream(self),
        ]
        if self.input_catalog is not None:
            streams.extend(self._table_streams_from_catalog())
        else:
            streams.extend(self._discover_table_streams())
        return streams

    def _elapsed_s(self) -> float:
        """Seconds since the tap began: a run's time counts its discovery too."""
        return time.time() - self.initialized_at / 1000

    def _pace_of(self, reader: Reader) -> Pace:
        """What sets the run's pace now: the budget, the answer time, `reader`'s workers."""
        connection = self.connection
        return Pace(
            connection.budget.limit,
            connection.window_s,
            connection.latency.estimate_s,
            reader.workers,
        )

    def _log_discovery(self, done: int, total: int) -> None:
        """One line per budget window while discovery reads the tables' first segments."""
        connection = self.connection
        budget = connection.budget
        LOGGER.info(
            "%s",
            discovery_line(
                done=done,
                total=total,
                requests=(budget.acquired, budget.rate_limited),
                elapsed=self._elapsed_s(),
                pace=self._pace_of(self.reader),
                window=budget.window_view(),
            ),
        )

    def _discover_table_streams(self) -> list[TableRowsStream]:
        streams = []
        tables = self.directory.tables()
        firsts = self.reader.first_columns(
            [table.table_id for table in tables],
            report=self._log_discovery,
            every_s=self.connection.window_s,
        )
        for table in tables:
            try:
                live = firsts[table.table_id]
                if isinstance(live, BaseException):
                    raise live
                columns = name_columns(live_columns(live))
            except DISCOVERY_SKIPS as exc:
                # Discovering hundreds of tables takes minutes: one deleted meanwhile, or not
                # readable by this app, must not stop the others from being extracted. It stays
                # in the catalog, marked, so that the sync reports it as skipped.
                reason = one_line(str(exc))
                self.logger.warning(
                    "Skipping table %s during discovery: %s", table.table_id, reason
                )
                schema = row_schema([])
                schema["description"] = table.description + UNREADABLE_MARK + reason
                streams.append(TableRowsStream(self, table, schema=schema, unreadable=reason))
                continue
            schema = row_schema(columns)
            schema["description"] = table.description
            streams.append(TableRowsStream(self, table, schema=schema, columns=live))
        return streams

    def warn_tables_not_in_catalog(self) -> None:
        """Name, once per run, every table the app has that the input catalog lacks.

        A catalog is a snapshot: a table created since it was written is not extracted, and a
        data engineer must hear of it rather than find it missing in the warehouse months later.
        The first table stream to sync asks. It costs no request of its own: when the projects
        or table_nodes stream is selected (as by default) the run reads every workspace detail
        anyway, and reading them now only moves those requests earlier (the SDK syncs the
        `table_*` streams before `workspaces` and its children); a run that selects neither
        reads no detail, and says so once at INFO. A catalog that selects no stream at all is
        warned of instead, and nothing is read for the check: the run reads nothing.
        """
        if self.input_catalog is None or self._catalog_coverage_checked:
            return
        self._catalog_coverage_checked = True
        if not any(stream.selected for stream in self.streams.values()):
            # An empty `streams` list, or every entry deselected: a scheduled run did nothing,
            # and said only "Skipping deselected stream" for streams the catalog never named.
            self.logger.warning(
                "The catalog selects no stream: this run reads nothing. Select streams in it, "
                "or run discovery again (under Meltano: `meltano select tap-maptable --list`)."
            )
            return
        named = {
            table_id_for(name) for name in self.input_catalog if name.startswith(STREAM_PREFIX)
        }
        structure = (self.streams.get(ProjectsStream.name), self.streams.get(TableNodesStream.name))
        reads_details = any(stream is not None and stream.selected for stream in structure)
        tables = self.directory.tables() if reads_details else self.directory.tables_if_read()
        if tables is None:
            self.logger.info(
                "Tables added to MapTable since the catalog was written are not looked for: "
                "select the projects or table_nodes stream to be warned of them."
            )
            return
        for table in (t for t in tables if t.table_id not in named):
            self.logger.warning(
                "%s is not in the catalog, so its rows were not extracted; run discovery again "
                "to add it (under Meltano: `meltano run --refresh-catalog ...`). %s",
                table.stream_name,
                table.description,
            )

    def _table_streams_from_catalog(self) -> list[TableRowsStream]:
        assert self.input_catalog is not None  # noqa: S101 - checked by the caller
        tables = []
        for entry in self.input_catalog.values():
            if entry.tap_stream_id in FIXED_STREAMS or not entry.tap_stream_id.startswith(
                STREAM_PREFIX
            ):
                continue
            schema = entry.schema.to_dict()
            maps = self.mapper.stream_maps.get(entry.tap_stream_id) or []
            if maps and maps[0].raw_schema == schema:
                schema = maps[0].raw_schema  # one dict for the stream and its map
            table = TableRef.from_description(
                table_id_for(entry.tap_stream_id), str(schema.get("description") or "")
            )
            tables.append((table, schema))
        wanted = {
            t.table_id
            for t in select_tables(
                [t for t, _ in tables], self.config.get("table_ids"), "in the catalog"
            )
        }
        return [
            TableRowsStream(
                self,
                table,
                schema=schema,
                unreadable=unreadable_reason(str(schema.get("description") or "")),
            )
            for table, schema in tables
            if table.table_id in wanted
        ]


if __name__ == "__main__":
    TapMapTable.cli()
