"""The MapTable tap: settings, the run's shared HTTP machinery, and stream discovery."""

from __future__ import annotations

import atexit
import copy
import io
import json
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from singer_sdk import Tap
from singer_sdk import typing as th

from tap_maptable.auth import MapTableAuthenticator, TokenCache
from tap_maptable.budget_store import budget_key, open_store
from tap_maptable.columns import name_columns, row_schema
from tap_maptable.discovery import STREAM_PREFIX, Directory, TableRef, table_id_for
from tap_maptable.errors import MapTableAPIError
from tap_maptable.output import SingerOutput
from tap_maptable.settings import (
    check_catalog,
    check_config,
    check_config_files,
    normalise_state,
    parse_json_file,
)
from tap_maptable.streams import ProjectsStream, TableNodesStream, WorkspacesStream
from tap_maptable.table_rows import TableRowsStream
from tap_maptable.throttle import BudgetSpec, RequestBudget, throttled_session

# Streams whose names are not `table_<tableId>`, although one of them starts the same way.
FIXED_STREAMS = frozenset(
    {WorkspacesStream.name, ProjectsStream.name, TableNodesStream.name},
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import click
    import requests
    from singer_sdk.streams import Stream


def _version() -> str:
    try:
        return metadata.version("tap-maptable")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


class TapMapTable(Tap):
    """Singer tap for MapTable: workspaces, projects, table nodes and every table's rows."""

    name = "tap-maptable"
    message_writer_class = SingerOutput

    config_jsonschema = th.PropertiesList(
        th.Property(
            "app_id",
            th.StringType(min_length=1),
            required=True,
            title="App ID",
            description="The MapTable app's id (from the app's profile page).",
        ),
        th.Property(
            "app_secret",
            th.StringType(min_length=1),
            required=True,
            secret=True,
            title="App secret",
            description="The MapTable app's secret. Never logged or printed.",
        ),
        th.Property(
            "api_url",
            th.URIType,
            default="https://maptable.com",
            title="API URL",
            description="Base URL of the MapTable API (another host for self-hosted or "
            "regional MapTable, or the sandbox).",
        ),
        th.Property(
            "requests_per_minute",
            th.IntegerType(minimum=1),
            default=60,
            title="Requests per minute",
            description="The app's request budget, over every endpoint (token calls "
            "included). MapTable allows 60 per app; lower it to leave room for other clients.",
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1, maximum=1000),
            default=100,
            title="Page size",
            description="Workspaces asked for per page.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            title="Start date",
            description="Earliest row update time to extract on the first run (RFC 3339). "
            "Rows with no update time are always extracted.",
        ),
        th.Property(
            "user_agent",
            th.StringType,
            title="User agent",
            description="User-Agent header to send (default: tap-maptable/<version>).",
        ),
        th.Property(
            "table_ids",
            th.ArrayType(th.StringType(min_length=1)),
            title="Table ids",
            description="Only discover and sync these tables (ids of table or bigTable "
            "nodes). Default: every table the app can see.",
        ),
        th.Property(
            "request_timeout",
            th.IntegerType(minimum=1),
            default=60,
            title="Request timeout",
            description="Seconds to wait for an answer before a request counts as failed "
            "and is retried.",
        ),
        th.Property(
            "max_tries",
            th.IntegerType(minimum=1, maximum=20),
            default=6,
            title="Tries per request",
            description="How often a request that failed transiently (5xx, proxy error page, "
            "dropped connection, timeout, cut-off JSON) is tried before the run fails. Rate "
            "limiting (429) is waited out and never counts as a try.",
        ),
        th.Property(
            "rate_limit_store",
            th.StringType(min_length=1),
            secret=True,
            title="Rate limit store",
            description="Where the app's request budget is kept, so that every process of "
            "the same app shares it: 'memory' (this process only), 'sqlite:///<path>' (every "
            "process on this host naming the file), or 'redis://[user:password@]host:port/db' "
            "('rediss://' for TLS; every host; needs tap-maptable[redis]). Default: a SQLite "
            "file in the user's cache directory (memory if that cannot be written).",
        ),
        th.Property(
            "cache_tokens",
            th.BooleanType,
            default=True,
            title="Cache tokens",
            description="Keep the token pair between runs in the user's cache directory "
            "(owner-only file, never in the Singer state), saving a login per run.",
        ),
        th.Property(
            "allow_insecure_http",
            th.BooleanType,
            default=False,
            title="Allow plain http",
            description="Allow an http:// api_url on a host other than this machine. Off by "
            "default: the app secret and tokens would cross the network unencrypted.",
        ),
        th.Property(
            "rate_limit_window_seconds",
            th.NumberType(exclusive_minimum=0),
            default=60,
            title="Rate limit window",
            description="Length of the rate-limit window in seconds. MapTable's is 60; "
            "change it only to test against a sandbox with a scaled-down window.",
        ),
    ).to_dict()

    # -- what the user hands us, checked before any request ----------------------------------

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Check the catalog and state before the SDK builds streams (which may send requests)."""
        catalog = kwargs.get("catalog")
        if isinstance(catalog, dict):
            check_catalog(catalog)
        state = kwargs.get("state")
        if isinstance(state, dict):
            kwargs["state"] = normalise_state(state)
        super().__init__(*args, **kwargs)

    @classmethod
    def cb_config(
        cls,
        ctx: click.Context,
        param: click.Option,
        value: tuple[str, ...],
    ) -> Any:
        """Read `--config` files with a one-line error naming the file, then as the SDK does."""
        check_config_files(value)
        return super().cb_config(ctx, param, value)

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
        """Read the catalog and state files with clear errors, then run as the SDK does."""
        if catalog is not None:
            parsed = parse_json_file(catalog.read(), "catalog")
            check_catalog(parsed)
            catalog = io.StringIO(json.dumps(parsed))
        if state is not None:
            state = io.StringIO(json.dumps(parse_json_file(state.read(), "state")))
        super().invoke(
            about=about, about_format=about_format, config=config, state=state, catalog=catalog
        )

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

    # -- the run's shared machinery: one budget, one session, one authenticator ---------------

    @cached_property
    def budget(self) -> RequestBudget:
        """The app's request budget: every HTTP request of the run passes it."""
        spec = BudgetSpec(
            limit=int(self.config.get("requests_per_minute", 60)),
            window_s=float(self.config.get("rate_limit_window_seconds", 60)),
            key=budget_key(self.app_key),
        )
        store = open_store(self.config.get("rate_limit_store"), spec.rate, self.app_key)
        self.logger.info(
            "Request budget: %d per %g s, kept in %s.", spec.limit, spec.window_s, store.description
        )
        budget = RequestBudget(spec, store)
        # Leave the shared registry at exit (the SDK's sync_all is final); a killed process's
        # entry simply expires.
        atexit.register(budget.close)
        return budget

    @cached_property
    def http_session(self) -> requests.Session:
        """The session every stream sends its requests through."""
        return throttled_session(self.budget, before_send=self.authenticator.refresh_header)

    @cached_property
    def authenticator(self) -> MapTableAuthenticator:
        """The one authenticator of the run, shared by every stream (one login per run)."""
        return MapTableAuthenticator(
            api_url=self.api_url,
            app_id=str(self.config["app_id"]),
            app_secret=str(self.config["app_secret"]),
            session=throttled_session(self.budget),
            timeout=float(self.config.get("request_timeout", 60)),
            cache=self._token_cache(),
            tries=int(self.config.get("max_tries", 6)),
        )

    def _token_cache(self) -> TokenCache | None:
        if not self.config.get("cache_tokens", True):
            return None
        from platformdirs import user_cache_dir  # noqa: PLC0415

        return TokenCache(
            Path(user_cache_dir("tap-maptable")) / "tokens",
            self.api_url,
            str(self.config["app_id"]),
            str(self.config["app_secret"]),
        )

    @cached_property
    def directory(self) -> Directory:
        """What the run has learned about workspaces and tables."""
        return Directory(self)

    @property
    def api_url(self) -> str:
        """The API root without a trailing slash."""
        return str(self.config.get("api_url") or "https://maptable.com").rstrip("/")

    @property
    def app_key(self) -> str:
        """Who the budget belongs to: the API's scheme, host and port, and the app id."""
        parts = urlsplit(self.api_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.scheme}://{parts.hostname}:{port}/{self.config['app_id']}"

    @property
    def page_size(self) -> int:
        """Workspaces per page."""
        return int(self.config.get("page_size", 100))

    @property
    def user_agent(self) -> str:
        """The User-Agent of every request."""
        return str(self.config.get("user_agent") or f"tap-maptable/{_version()}")

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

    def _discover_table_streams(self) -> list[TableRowsStream]:
        streams = []
        for table in self.directory.tables():
            try:
                first = self.directory.first_segment(table)
            except MapTableAPIError as exc:
                if not exc.client_error:
                    raise
                # Discovering hundreds of tables takes minutes: one deleted meanwhile, or not
                # readable by this app, must not stop the others from being extracted.
                self.logger.warning("Skipping table %s during discovery: %s", table.table_id, exc)
                continue
            columns = name_columns(list(first.get("columns") or []))
            schema = row_schema(columns)
            schema["description"] = table.description
            streams.append(TableRowsStream(self, table, schema=schema, columns=columns))
        return streams

    def _table_streams_from_catalog(self) -> list[TableRowsStream]:
        assert self.input_catalog is not None  # noqa: S101 - checked by the caller
        tables = []
        for entry in self.input_catalog.values():
            if entry.tap_stream_id in FIXED_STREAMS or not entry.tap_stream_id.startswith(
                STREAM_PREFIX
            ):
                continue
            schema = entry.schema.to_dict()
            table = TableRef(
                table_id=table_id_for(entry.tap_stream_id),
                name=str(schema.get("description") or ""),
            )
            tables.append((table, schema))
        wanted = {
            t.table_id for t in self.limit_to_table_ids([t for t, _ in tables], "in the catalog")
        }
        return [
            TableRowsStream(self, table, schema=schema)
            for table, schema in tables
            if table.table_id in wanted
        ]

    def limit_to_table_ids(self, tables: list[TableRef], what: str) -> list[TableRef]:
        """Keep the tables named by `table_ids` (all when unset); warn about unknown ids."""
        wanted = self.config.get("table_ids")
        if not wanted:
            return tables
        known = {table.table_id for table in tables}
        for missing in sorted(set(wanted) - known):
            self.logger.warning(
                "table_ids names table %s, which is not %s; skipping it (the other tables "
                "are extracted as usual).",
                missing,
                what,
            )
        return [table for table in tables if table.table_id in set(wanted)]


if __name__ == "__main__":
    TapMapTable.cli()
