"""Checking what the user hands the tap (settings, catalog, state) before any request is sent.

Each problem becomes one line that names it (the setting, the file, the stream), so that a
scheduled load fails at once and says why, instead of failing later or after wasting requests.
Values of secret settings are never repeated in a message.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from singer_sdk.plugin_base import JSONSchemaValidator

from tap_maptable.columns import UPDATED_AT
from tap_maptable.errors import ConfigurationError

if TYPE_CHECKING:
    from jsonschema import ValidationError

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


def _describe(error: ValidationError) -> str:
    path = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        names = ", ".join(repr(name) for name in extra)
        return f"unknown setting {names}" if len(extra) == 1 else f"unknown settings {names}"
    if error.validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else error.message
        return f"missing required setting {missing!r}"
    if error.validator == "type":
        expected = error.validator_value
        kinds = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_JSON_TYPES.get(k, k) for k in kinds if k != "null")
        return f"{path} must be {wanted}, not {_json_type(error.instance)}"
    if path.split(".")[0] in SECRET_SETTINGS:
        return f"{path} is invalid ({error.validator})"
    if isinstance(error.instance, Decimal):
        return (
            f"{path}: {error.instance} is not allowed ({error.validator} {error.validator_value})"
        )
    return f"{path}: {error.message}"


def _json_type(value: Any) -> str:
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
    if start is not None and not _is_datetime(start):
        problems.append(f"start_date: {start!r} is not an RFC 3339 date-time")
    url = str(config.get("api_url") or "https://maptable.com")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        problems.append(f"api_url: {url!r} is not an http(s) URL")
    elif (
        parts.scheme == "http"
        and not config.get("allow_insecure_http")
        and not _is_loopback(parts.hostname)
    ):
        problems.append(
            f"api_url: refusing plain http to {parts.hostname} (the app secret and tokens "
            "would travel in clear text); use https, or set allow_insecure_http to true"
        )
    return problems


def _is_datetime(value: Any) -> bool:
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


def parse_json_file(text: str, what: str, path: str | None = None) -> dict[str, Any]:
    """Parse a config, catalog or state file, or raise one line naming it and the problem."""
    source = f"{path} is " if path else ""
    try:
        value = json.loads(text) if text.strip() else None
    except ValueError as exc:
        msg = f"invalid {what}: not valid JSON ({exc})".replace(
            "invalid config file", "invalid config: file"
        )
        raise ConfigurationError(msg) from None
    if not isinstance(value, dict):
        msg = f"invalid {what}: {source}expected a JSON object, got {_json_type(value)}"
        raise ConfigurationError(msg)
    return value


def check_config_files(paths: tuple[str, ...]) -> None:
    """Each `--config` file must exist and hold a JSON object: say which one does not."""
    for path in paths:
        if path == "ENV":
            continue
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            msg = f"invalid config: cannot read {path}: {exc.strerror or type(exc).__name__}"
            raise ConfigurationError(msg) from None
        parse_json_file(text, "config", path)


def check_catalog(catalog: dict[str, Any]) -> None:
    """Raise one line if the catalog lacks what the tap needs from every entry."""
    streams = catalog.get("streams")
    if not isinstance(streams, list):
        msg = "invalid catalog: no 'streams' list"
        raise ConfigurationError(msg)
    for index, entry in enumerate(streams):
        if not isinstance(entry, dict):
            msg = f"invalid catalog: streams[{index}] is not an object"
            raise ConfigurationError(msg)
        name = entry.get("tap_stream_id")
        if not isinstance(name, str) or not name:
            msg = f"invalid catalog: streams[{index}] has no tap_stream_id"
            raise ConfigurationError(msg)
        schema = entry.get("schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
            msg = f"invalid catalog: stream {name!r} has no schema properties"
            raise ConfigurationError(msg)
        if not isinstance(entry.get("metadata", []), list):
            msg = f"invalid catalog: stream {name!r} has metadata that is not a list"
            raise ConfigurationError(msg)
        if (
            name.startswith("table_")
            and name != "table_nodes"
            and (UPDATED_AT not in schema["properties"] or "_row_id" not in schema["properties"])
        ):
            msg = (
                f"invalid catalog: stream {name!r} lacks '_row_id' or {UPDATED_AT!r}; "
                "run discovery again"
            )
            raise ConfigurationError(msg)


def normalise_state(state: dict[str, Any]) -> dict[str, Any]:
    """Accept a tap state (or a STATE message wrapping one); raise one line for anything else.

    A row stream's bookmark must be on `_updated_at` with a readable time: a bookmark on
    another key (written by another version or another tap) is refused rather than guessed at,
    because guessing wrong would silently skip rows.
    """
    if state.get("type") == "STATE" and isinstance(state.get("value"), dict):
        state = state["value"]
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        msg = "invalid state: 'bookmarks' is not an object"
        raise ConfigurationError(msg)
    for stream, bookmark in bookmarks.items():
        if not isinstance(bookmark, dict):
            msg = f"invalid state: the bookmark of stream {stream!r} is not an object"
            raise ConfigurationError(msg)
        _check_row_bookmark(stream, bookmark)
    return state


def _check_row_bookmark(stream: str, bookmark: dict[str, Any]) -> None:
    key = bookmark.get("replication_key")
    value = bookmark.get("replication_key_value")
    if key is None and value is None:
        return
    if key != UPDATED_AT:
        msg = (
            f"invalid state: stream {stream!r} is bookmarked on {key!r}, but this version of "
            f"tap-maptable bookmarks {UPDATED_AT!r}; clear that stream's state (for example "
            "`meltano state clear`) to re-read it from start_date"
        )
        raise ConfigurationError(msg)
    if value is not None and not _is_datetime(value):
        msg = f"invalid state: stream {stream!r} has an unreadable bookmark {value!r:.60}"
        raise ConfigurationError(msg)
