"""`tap-maptable --about` in plain text lists every setting's type, default and purpose.

The JSON form is the reference (tests/test_plugin_definition.py checks it against meltano.yml
and the Hub file): the text form must say the same thing of every setting, in words.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from typing import Any

import pytest
from singer_sdk.about import AboutFormatter, TextFormatter

from tap_maptable.about import default_in_words, first_sentence, sentences, type_in_words


def about(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_MAPTABLE_")}
    result = subprocess.run(
        [sys.executable, "-m", "tap_maptable", "--about", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert not result.stderr, result.stderr
    return result.stdout


@cache
def as_json() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(about("--format=json"))
    return parsed


@cache
def text_blocks() -> dict[str, dict[str, str]]:
    """The plain text's settings: name -> {"Type": ..., "Default": ..., ...}."""
    text = about()
    _, marker, settings = text.partition("\nSettings:\n")
    assert marker, text
    blocks: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in settings.splitlines():
        if line.startswith("  - Name: "):
            current = blocks.setdefault(line.removeprefix("  - Name: "), {})
        elif line.startswith("    "):
            key, _, value = line.strip().partition(": ")
            current[key] = value
    return blocks


def test_the_header_is_the_sdks() -> None:
    text = about()
    info = as_json()
    assert text.startswith(f"Name: {info['name']}\nDescription: {info['description']}\n")
    assert f"Version: {info['version']}\n" in text
    for capability in info["capabilities"]:
        assert f"  - {capability}\n" in text


def test_every_setting_has_its_type_default_and_first_sentence() -> None:
    settings = as_json()["settings"]
    blocks = text_blocks()
    assert list(blocks) == list(settings["properties"])
    for name, prop in settings["properties"].items():
        block = blocks[name]
        assert set(block) == {"Type", "Default", "Environment Variable", "Description"}, name
        assert block["Environment Variable"] == f"TAP_MAPTABLE_{name.upper()}"
        assert block["Type"] == type_in_words(prop)
        if "default" in prop:
            assert block["Default"] == str(json.dumps(prop["default"])).strip('"'), name
        description = " ".join(str(prop.get("description", "")).split())
        assert block["Description"], f"{name} has no description"
        assert description.startswith(block["Description"]), name


def test_what_the_text_says_of_some_settings() -> None:
    blocks = text_blocks()
    assert blocks["app_id"] == {
        "Type": "string",
        "Default": "none (required)",
        "Environment Variable": "TAP_MAPTABLE_APP_ID",
        "Description": "The MapTable app's id (from the app's profile page).",
    }
    assert blocks["app_secret"]["Type"] == "string, secret"
    assert blocks["requests_per_minute"]["Default"] == "60"
    assert blocks["requests_per_minute"]["Description"] == (
        "The app's request budget, over every endpoint (token calls included)."
    )
    assert blocks["api_url"]["Default"] == "https://maptable.com"
    assert blocks["cache_tokens"]["Default"] == "true"
    assert blocks["start_date"]["Type"] == "string (date-time)"
    assert blocks["start_date"]["Default"] == "none"
    assert blocks["table_ids"] == {
        "Type": "array of string",
        "Default": "every table the app can see",
        "Environment Variable": "TAP_MAPTABLE_TABLE_IDS",
        "Description": ("Only discover and sync these tables (ids of table or bigTable nodes)."),
    }
    assert blocks["user_agent"]["Default"] == "tap-maptable/<version>"
    assert blocks["rate_limit_store"]["Default"] == (
        "a SQLite file in the user's cache directory (memory if that cannot be written)"
    )


def test_json_and_markdown_stay_the_sdks() -> None:
    assert as_json()["settings"]["properties"]["page_size"]["default"] == 100
    markdown = about("--format=markdown")
    assert markdown.startswith("# `tap-maptable`")
    assert "| Setting | Required | Default | Description |" in markdown
    assert "Environment Variable:" not in markdown


def test_the_sdks_text_formatter_is_not_replaced_for_other_plugins() -> None:
    import tap_maptable.tap  # noqa: F401, PLC0415 - importing the tap registers its formatter

    assert AboutFormatter.formats["text"] is TextFormatter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two.", ["One.", "Two."]),
        ("Earliest (RFC 3339). Rows with none.", ["Earliest (RFC 3339).", "Rows with none."]),
        ("Kept (a. B) and [c. D] whole. Next", ["Kept (a. B) and [c. D] whole.", "Next"]),
        ("Version 1.2 is fine. 1 sends one.", ["Version 1.2 is fine.", "1 sends one."]),
        ("", []),
    ],
)
def test_sentences(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_first_sentence_and_defaults_from_words() -> None:
    assert first_sentence("Seconds to wait.\n  More here.") == "Seconds to wait."
    described = {"type": ["string", "null"], "description": "X. Default: all of it (b)."}
    assert default_in_words(described, required=False) == "all of it (b)"
    bracketed = {"type": ["string"], "description": "Header (default: a/<v> (x))."}
    assert default_in_words(bracketed, required=False) == "a/<v> (x)"
    off = {"type": ["boolean"], "description": "Off by default: it would leak."}
    assert default_in_words(off, required=False) == "none"
    assert default_in_words({"type": ["integer"], "default": 0}, required=True) == "0"
