"""`tap-maptable --about` as plain text: every setting with its type, default and purpose.

singer-sdk's text form lists each setting's name, JSON types and environment variable only: what
a setting is for and what it defaults to were in `--format=markdown` and `--format=json`, which
nobody reads in a terminal. This formatter keeps the SDK's header and layout and adds, for each
setting, its type in words, its default (or that it is required) and the first sentence of its
description. `--format=json` and `--format=markdown` are the SDK's, unchanged.

The SDK picks formatters by name from `AboutFormatter`'s registry, which every subclass joins;
this one joins under its own name, so the SDK's `text` formatter stays as it is for any other
plugin in the process, and `TapMapTable.print_about` asks for this one when no format is given.
"""

from __future__ import annotations

import json
import re
from typing import Any

from singer_sdk.about import AboutInfo, TextFormatter

FORMAT_NAME = "tap-maptable-text"

_DEFAULT = "default: "
_SENTENCE_START = re.compile(r"[A-Z0-9'\"`\[]")


class SettingsTextFormatter(TextFormatter, format_name=FORMAT_NAME):
    """The SDK's text `--about`, with each setting's default and one-line description."""

    def format_about(self, about_info: AboutInfo) -> str:
        """Render the SDK's header, then one block per setting."""
        header, _, _ = super().format_about(about_info).partition("\nSettings:\n")
        schema = about_info.settings
        required = set(schema.get("required", []))
        lines = [header, "Settings:"]
        for name, prop in schema.get("properties", {}).items():
            description = str(prop.get("description") or "")
            lines += [
                f"  - Name: {name}",
                f"    Type: {type_in_words(prop)}",
                f"    Default: {default_in_words(prop, required=name in required)}",
                f"    Environment Variable: {about_info.env_var_prefix}{name.upper()}",
                f"    Description: {first_sentence(description)}",
            ]
        return "\n".join(lines) + "\n"


def type_in_words(prop: dict[str, Any]) -> str:
    """`string`, `integer`, `string (date-time)`, `array of string`; `secret` when it is one."""
    words = _types(prop)
    if prop.get("format"):
        words += f" ({prop['format']})"
    items = prop.get("items")
    if words == "array" and isinstance(items, dict) and items.get("type"):
        words += f" of {_types(items)}"
    return words + (", secret" if prop.get("secret") else "")


def _types(prop: dict[str, Any]) -> str:
    """A schema's JSON types without null (every optional setting may be null)."""
    types = prop.get("type") or "any"
    return " or ".join(t for t in ([types] if isinstance(types, str) else types) if t != "null")


def default_in_words(prop: dict[str, Any], *, required: bool) -> str:
    """The schema's default; else `none (required)`; else what the description says it is."""
    if "default" in prop:
        value = prop["default"]
        return value if isinstance(value, str) else json.dumps(value)
    if required:
        return "none (required)"
    for sentence in sentences(str(prop.get("description") or "")):
        found = _default_in(sentence)
        if found:
            return found
    return "none"


def _default_in(sentence: str) -> str | None:
    """`every table` from "Default: every table.", `x/<v>` from "... (default: x/<v>)."."""
    at = sentence.lower().find(_DEFAULT)
    if at < 0 or (at > 0 and sentence[at - 1] != "("):
        return None
    value = sentence[at + len(_DEFAULT) :]
    if at > 0:  # "(default: ...)": up to the bracket that closes it
        depth = 0
        for index, char in enumerate(value):
            if char == "(":
                depth += 1
            elif char == ")":
                if not depth:
                    return value[:index].strip()
                depth -= 1
    return value.strip().rstrip(".")


def first_sentence(text: str) -> str:
    """The description's first sentence: what the setting is for, on one line."""
    found = sentences(text)
    return found[0] if found else ""


def sentences(text: str) -> list[str]:
    """Split at a full stop followed by a space and a capital (or digit), outside brackets.

    Brackets hold URLs and examples (`'sqlite:///<path>'`, `(RFC 3339)`) that must stay whole.
    """
    text = " ".join(text.split())
    found, start, depth = [], 0, 0
    for index, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(depth - 1, 0)
        elif (
            char == "."
            and depth == 0
            and text[index + 1 : index + 2] == " "
            and _SENTENCE_START.match(text[index + 2 : index + 3])
        ):
            found.append(text[start : index + 1])
            start = index + 2
    if text[start:].strip():
        found.append(text[start:].strip())
    return found
