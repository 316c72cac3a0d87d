"""The tap's settings: what each one means, and the checks every value passes before a request.

Each problem becomes one line that names it (the setting, the file), so that a scheduled load
fails at once and says why, instead of failing later or after wasting requests. Values of secret
settings are never repeated in a message.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from singer_sdk import typing as th
from singer_sdk.plugin_base import JSONSchemaValidator

from tap_maptable.api import API_PREFIX
from tap_maptable.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from jsonschema import ValidationError

# The most requests in flight at once. A run starts with 8 (`reading.reader.FIRST_WORKERS`:
# enough for 60 a minute at 4 s an answer, bench figure 8) and adds workers only when the
# measured answer time needs them: 16 keep 60 a minute busy up to 8 s an answer.
DEFAULT_PARALLEL_REQUESTS = 16
DEFAULT_SEGMENT_MEMORY_MB = 16
DEFAULT_RESUME_WITHIN_HOURS = 12

SETTINGS_SCHEMA: dict[str, Any] = th.PropertiesList(
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
    th.Property(
        "max_parallel_requests",
        th.IntegerType(minimum=1, maximum=32),
        default=DEFAULT_PARALLEL_REQUESTS,
        title="Parallel requests",
        description="The most requests for different tables (and workspace details) in "
        "flight at once. A run starts with up to 8 and adds more, up to this number, when "
        "MapTable takes 1 s or more to answer and 8 cannot keep the request budget busy (that "
        "takes twice the budget's requests a second times the answer time). Every one still "
        "passes the budget. 1 sends one request at a time.",
    ),
    th.Property(
        "segment_memory_mb",
        th.IntegerType(minimum=1),
        default=DEFAULT_SEGMENT_MEMORY_MB,
        title="Segment memory (MB)",
        description="How many megabytes of MapTable's answers the tap keeps in memory ahead of "
        "the table it is writing (segments of later tables, first segments read by discovery); "
        "more waits in a temporary file, so memory stays flat whatever the number of tables.",
    ),
    th.Property(
        "resume_within_hours",
        th.IntegerType(minimum=0),
        default=DEFAULT_RESUME_WITHIN_HOURS,
        title="Resume within (hours)",
        description="A run given the STATE of a run that was stopped less than this many hours "
        "after it began continues it (tables it finished are not read again, the table it was "
        "reading continues where it stopped); an older stopped run is not continued, so a "
        "scheduled run the next day reads every table. 0: never continue.",
    ),
).to_dict()

# The tap's own settings, named before anything can add to the schema: the SDK appends its
# built-in settings (stream maps, flattening, batch) to `config_jsonschema` in place.
OWN_SETTINGS: frozenset[str] = frozenset(SETTINGS_SCHEMA["properties"])
SECRET_SETTINGS = frozenset({"app_secret", "rate_limit_store"})
_JSON_TYPES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


def check_config(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Raise ConfigurationError naming every problem with the settings, in one line."""
    strict = {**schema, "additionalProperties": False}
    problems = [_describe(error) for error in JSONSchemaValidator(strict).iter_errors(config)]
    if not problems:
        problems = _semantic_problems(config)
    if problems:
        raise ConfigurationError("invalid config: " + "; ".join(sorted(set(problems))))


def _did_you_mean(unknown: list[str], known: Iterable[str]) -> str:
    """The known setting each unknown one is most likely a typo of (`page_sise`: `page_size`)."""
    names = list(known)
    matches = {
        name: close[0] for name in unknown if (close := difflib.get_close_matches(name, names, 1))
    }
    if not matches:
        return ""
    if len(unknown) == 1:
        return f"; did you mean {next(iter(matches.values()))!r}?"
    return "; did you mean " + ", ".join(f"{m!r} for {n!r}" for n, m in matches.items()) + "?"


def _describe(error: ValidationError) -> str:
    path = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        extra = sorted(set(error.instance) - set(known))
        names = ", ".join(repr(name) for name in extra)
        text = f"unknown setting {names}" if len(extra) == 1 else f"unknown settings {names}"
        return text + _how_to_unset(extra) + _did_you_mean(extra, known)
    if error.validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else error.message
        return f"missing required setting {missing!r}" + _how_to_set(missing, missing=True)
    hint = _how_to_set(path.split(".")[0])
    if error.validator == "type":
        expected = error.validator_value
        kinds = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_JSON_TYPES.get(k, k) for k in kinds if k != "null")
        return f"{path} must be {wanted}, not {json_type(error.instance)}{hint}"
    if path.split(".")[0] in SECRET_SETTINGS:
        return f"{path} is invalid ({error.validator}){hint}"
    if isinstance(error.instance, Decimal):
        return (
            f"{path}: {error.instance} is not allowed ({error.validator} {error.validator_value})"
            + hint
        )
    return f"{path}: {error.message}{hint}"


# -- how to fix a setting: standalone, or under Meltano ----------------------------------------

# Meltano 4 sets MELTANO_EXTRACTOR_NAME (and _NAMESPACE, _VARIANT) in the environment of the
# extractor it invokes, to the plugin's name in the project (a plugin that inherits from
# tap-maptable has a name of its own, and its own environment variables), and
# MELTANO_ENVIRONMENT to the active environment, if any.
MELTANO_PLUGIN_ENV = "MELTANO_EXTRACTOR_NAME"
MELTANO_ENVIRONMENT_ENV = "MELTANO_ENVIRONMENT"
STANDALONE_NAME = "tap-maptable"


def meltano_plugin() -> str | None:
    """The extractor's name in the Meltano project that runs the tap; None when run standalone."""
    return os.environ.get(MELTANO_PLUGIN_ENV) or None


def _meltano_config(command: str, plugin: str) -> str:
    """`meltano [--environment=E] config COMMAND PLUGIN`, in the environment that ran the tap.

    The environment matters: a value an environment sets in `meltano.yml` (this project's `dev`
    sets `app_id: $TAP_MAPTABLE_APP_ID`) wins over one set without `--environment`, so that
    command alone would change nothing the run sees.
    """
    environment = os.environ.get(MELTANO_ENVIRONMENT_ENV)
    option = f"--environment={environment} " if environment else ""
    return f"meltano {option}config {command} {plugin}"


def env_var(setting: str, plugin: str = STANDALONE_NAME) -> str:
    """The environment variable a setting is read from (Meltano's rule and the SDK's agree)."""
    return "_".join(re.sub(r"[^A-Za-z0-9]", "_", part).upper() for part in (plugin, setting))


def _how_to_set(setting: str, *, missing: bool = False) -> str:
    """Where to give a setting, in the words of whoever runs the tap.

    Under Meltano the tap's `--config` is a file Meltano writes for each run, so "give --config"
    would send a user to the wrong place: Meltano's own commands set the value, and a secret
    belongs in the environment (or the project's `.env`, where Meltano keeps sensitive values),
    never in `meltano.yml`. Standalone, only a missing setting gets a hint: a wrong value is
    already named in the file the user wrote.
    """
    plugin = meltano_plugin()
    if plugin is None:
        if not missing:
            return ""
        return f" (give --config FILE, or --config ENV with {env_var(setting)} set)"
    variable = env_var(setting, plugin)
    command = f"`{_meltano_config('set', plugin)} {setting}"
    if setting in SECRET_SETTINGS:
        return (
            f" (export {variable}=<secret>, or {command} <secret>`, which keeps it in the "
            "project's .env)"
        )
    # The variable first: `meltano config set` rewrites meltano.yml (indentation, comments).
    return f" (export {variable}=<value>, or {command} <value>`, which rewrites meltano.yml)"


def _how_to_unset(names: list[str]) -> str:
    """Under Meltano, the command that removes settings the tap does not have."""
    plugin = meltano_plugin()
    if plugin is None:
        return ""
    commands = "; ".join(f"`{_meltano_config('unset', plugin)} {name}`" for name in names)
    return f" (remove with {commands})"


def json_type(value: Any) -> str:
    """How a user would name the JSON type of `value` (the SDK reads numbers as Decimal)."""
    if value is None:
        return "null"
    if isinstance(value, Decimal):  # the SDK reads JSON numbers as Decimal
        return "an integer" if value == value.to_integral_value() else "a number"
    return {
        bool: "true/false",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _semantic_problems(config: dict[str, Any]) -> list[str]:
    problems = []
    start = config.get("start_date")
    if start is not None and not is_datetime(start):
        problems.append(
            f"start_date: {start!r} is not an RFC 3339 date-time{_how_to_set('start_date')}"
        )
    url = str(config.get("api_url") or "https://maptable.com")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        problems.append(f"api_url: {url!r} is not an http(s) URL{_how_to_set('api_url')}")
    elif API_PREFIX in parts.path:
        # The tap adds the API's paths itself: a URL copied from an endpoint doubled them, and
        # the login's 404 read as "authentication failed: not found".
        # From the parts, never the netloc: a user:password in the URL is not echoed.
        port = f":{parts.port}" if parts.port else ""
        root = (
            f"{parts.scheme}://{parts.hostname}{port}{parts.path[: parts.path.index(API_PREFIX)]}"
        )
        problems.append(
            f"api_url: give the API's root, {root!r}, without {API_PREFIX!r} (the tap adds the "
            f"paths itself){_how_to_set('api_url')}"
        )
    elif (
        parts.scheme == "http"
        and not config.get("allow_insecure_http")
        and not _is_loopback(parts.hostname)
    ):
        problems.append(
            f"api_url: refusing plain http to {parts.hostname} (the app secret and tokens "
            "would travel in clear text); use https, or set allow_insecure_http to true"
            + _how_to_set("allow_insecure_http")
        )
    return problems


def is_datetime(value: Any) -> bool:
    """Whether `value` reads as an RFC 3339 date-time (a `start_date` or a bookmark)."""
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ConfigFiles:
    """The `--config` arguments, read: what `TapMapTable.invoke` builds the tap from."""

    config: dict[str, Any]  # every file's settings, merged in order (a later file wins)
    parse_env: bool  # `--config ENV` was given: settings from TAP_MAPTABLE_* too


def read_config_files(paths: tuple[str, ...]) -> ConfigFiles:
    """Read each `--config` file once, or say in one line which one is not a JSON object.

    Once: a file that can be read only once (`--config <(vault read ...)`, a named pipe) keeps
    a secret off the disk, and reading it a second time, as the SDK's own callback would,
    found it empty.
    """
    config: dict[str, Any] = {}
    for path in paths:
        if path == "ENV":
            continue
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            msg = f"invalid config: cannot read {path}: {exc.strerror or type(exc).__name__}"
            raise ConfigurationError(msg) from None
        config |= parse_json_file(text, "config", path)
    return ConfigFiles(config=config, parse_env="ENV" in paths)


def parse_json_file(
    text: str, what: str, path: str | None = None, **options: Any
) -> dict[str, Any]:
    """Parse a config, catalog or state file, or raise one line naming it and the problem.

    `options` go to `json.loads` (`parse_float`, ...).
    """
    source = f"{path} is " if path else ""
    if not text or text.isspace():
        msg = f"invalid {what}: {path or 'the file'} is empty; expected a JSON object"
        raise ConfigurationError(msg)
    try:
        value = json.loads(text, **options)
    except RecursionError:
        raise ConfigurationError(_TOO_DEEP.format(what=what)) from None
    except ValueError as exc:
        msg = f"invalid {what}: {source}not valid JSON ({exc})"
        if isinstance(exc, json.JSONDecodeError) and exc.msg == "Extra data":
            # One value, then more: Singer message lines, most likely.
            where = path or "the file"
            msg = f"invalid {what}: {where} holds several JSON values; expected one object"
            if what == "state":
                msg += " (of a target's or the tap's STATE lines, give only the last one)"
        raise ConfigurationError(msg) from None
    if not isinstance(value, dict):
        where = f"{path}: " if path else ""
        msg = f"invalid {what}: {where}expected a JSON object, got {json_type(value)}"
        raise ConfigurationError(msg)
    if too_deep(value):
        raise ConfigurationError(_TOO_DEEP.format(what=what))
    return value


# Deeper than any config, catalog or state the tap writes or reads (a schema nests a few levels
# per object column): what is deeper would overflow Python's recursion in the SDK's schema code
# and end the run with a traceback instead of a line.
MAX_DEPTH: Final = 100
_TOO_DEEP = f"invalid {{what}}: nested more than {MAX_DEPTH} levels deep"


def too_deep(value: Any) -> bool:
    """Whether parsed JSON nests more than MAX_DEPTH objects and arrays (counted in a loop)."""
    level: list[Any] = [value]
    for _ in range(MAX_DEPTH):
        level = [
            item
            for node in level
            for item in (node.values() if isinstance(node, dict) else node)
            if isinstance(item, dict | list)
        ]
        if not level:
            return False
    return True
