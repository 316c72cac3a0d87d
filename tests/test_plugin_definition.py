"""The tap, meltano.yml and the Meltano Hub definition agree; the wheel holds the tap alone.

Three descriptions of the same extractor must never drift apart:

- the tap itself, as `python -m tap_maptable --about --format=json` reports it (its settings'
  JSON schema, with the SDK's own settings added, its capabilities and its version);
- the `tap-maptable` extractor in `meltano.yml` (what `meltano install` and `meltano config` use
  in this project);
- the Meltano Hub definition, `meltano-hub/extractors/tap-maptable/maptable.yml` (what
  `meltano add tap-maptable` will use once it is on the Hub).

They must have the same setting names, kinds consistent with the JSON types, the same defaults,
labels and sensitivity (a `secret` setting is `kind: password` and `sensitive: true`), the
required settings as `settings_group_validation`, and exactly the same capabilities.

Adding, renaming or removing a setting of the tap (say `max_parallel_requests`) therefore means
adding, renaming or removing it in `meltano.yml` AND in the Hub file, in the same commit: until
then these tests fail and name the setting. The SDK's own settings (`stream_maps`,
`flattening_*`, `batch_config`, ...) are listed in both files too, as Hub definitions of SDK taps
do; `SDK_SETTINGS` names them, so that a new SDK version that adds one fails here instead of
going unnoticed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.version import Version

import tap_maptable
from tap_maptable.settings import OWN_SETTINGS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the tests run on 3.11+; tomli is there on 3.10 if they do not
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
HUB_FILE = REPO / "meltano-hub" / "extractors" / "tap-maptable" / "maptable.yml"
LOADER_FILE = REPO / "meltano-hub" / "loaders" / "target-duckdb.yml"
MELTANO = REPO / ".venv-meltano" / "bin" / "meltano"
DEFINITIONS = ("meltano.yml", "hub")

# Settings the Singer SDK adds to every tap's schema (they are not in TapMapTable's own).
SDK_SETTINGS = frozenset(
    {
        "stream_maps",
        "stream_map_config",
        "faker_config",
        "flattening_enabled",
        "flattening_max_depth",
        "flattening_max_key_length",
        "flattening_separator",
        "batch_config",
    }
)

# Settings whose Meltano kind deliberately differs from what their JSON type calls for.
KIND_EXCEPTIONS = {
    # Meltano 4.4.1 turns a `decimal` setting read from an environment variable into a Decimal,
    # then fails to write the tap's config ("Object of type Decimal is not JSON serializable").
    "rate_limit_window_seconds": ("number", "integer"),
}

# What the Meltano Hub's JSON schemas (github.com/meltano/hub, schemas/) allow.
HUB_REQUIRED_KEYS = {"name", "namespace", "variant", "label"}
HUB_KEYS = HUB_REQUIRED_KEYS | {
    "pip_url",
    "executable",
    "description",
    "repo",
    "logo_url",
    "domain_url",
    "docs",
    "keywords",
    "capabilities",
    "settings",
    "settings_group_validation",
    "settings_preamble",
    "usage",
    "prereq",
    "next_steps",
    "definition",
    "maintenance_status",
    "quality",
    "select",
    "metadata",
    "schema",
    "hidden",
    "commands",
    "requires",
}
SETTING_KEYS = {
    "name",
    "aliases",
    "label",
    "value",
    "placeholder",
    "kind",
    "description",
    "tooltip",
    "documentation",
    "env",
    "value_processor",
    "value_post_processor",
    "oauth",
    "options",
    "docs",
    "hidden",
    "sensitive",
}
# The kinds Meltano knows (meltano.core.setting_definition.SettingKind).
MELTANO_KINDS = {
    "string",
    "integer",
    "boolean",
    "decimal",
    "date_iso8601",
    "email",
    "password",
    "oauth",
    "options",
    "file",
    "array",
    "object",
    "hidden",
}
HUB_CAPABILITIES = {
    "properties",
    "catalog",
    "discover",
    "state",
    "about",
    "stream-maps",
    "schema-flattening",
    "activate-version",
    "batch",
    "test",
    "log-based",
    "structured-logging",
}


@cache
def about() -> dict[str, Any]:
    """`python -m tap_maptable --about --format=json`, run as a user would run it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_MAPTABLE_")}
    result = subprocess.run(
        [sys.executable, "-m", "tap_maptable", "--about", "--format=json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def about_settings() -> dict[str, dict[str, Any]]:
    """The tap's settings, by name, as `--about` lists them (the SDK's included)."""
    properties: dict[str, dict[str, Any]] = about()["settings"]["properties"]
    return properties


@cache
def meltano_plugin() -> dict[str, Any]:
    """The `tap-maptable` extractor of `meltano.yml`."""
    project = yaml.safe_load((REPO / "meltano.yml").read_text(encoding="utf-8"))
    (plugin,) = (p for p in project["plugins"]["extractors"] if p["name"] == "tap-maptable")
    return dict(plugin)


@cache
def hub_plugin() -> dict[str, Any]:
    """The Meltano Hub definition."""
    return dict(yaml.safe_load(HUB_FILE.read_text(encoding="utf-8")))


def definition(source: str) -> dict[str, Any]:
    """`meltano.yml`'s plugin or the Hub's, by name."""
    return meltano_plugin() if source == "meltano.yml" else hub_plugin()


def settings_of(source: str) -> dict[str, dict[str, Any]]:
    """A definition's settings by name; a name listed twice fails."""
    settings = definition(source).get("settings") or []
    names = [setting["name"] for setting in settings]
    twice = sorted({name for name in names if names.count(name) > 1})
    assert not twice, f"{source} lists these settings more than once: {twice}"
    return {setting["name"]: setting for setting in settings}


def json_types(prop: dict[str, Any]) -> set[str]:
    """A property's JSON types, without null (every optional setting may be null)."""
    types = prop.get("type")
    assert types, f"no JSON type: {prop}"
    return ({types} if isinstance(types, str) else set(types)) - {"null"}


def expected_kind(name: str, prop: dict[str, Any]) -> str:
    """The Meltano kind a setting of this JSON schema should have."""
    if prop.get("secret"):
        return "password"
    (json_type,) = json_types(prop)  # a setting of several types has no one Meltano kind
    if name in KIND_EXCEPTIONS:
        schema_type, kind = KIND_EXCEPTIONS[name]
        assert json_type == schema_type, (
            f"{name} is now {json_type}, not {schema_type}: remove it from KIND_EXCEPTIONS"
        )
        return kind
    if json_type == "string":
        if prop.get("enum"):
            return "options"
        return {"date-time": "date_iso8601", "date": "date_iso8601", "email": "email"}.get(
            prop.get("format", ""), "string"
        )
    return {"number": "decimal"}.get(json_type, json_type)


# -- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize("source", DEFINITIONS)
def test_setting_names_agree_with_the_tap(source: str) -> None:
    tap = set(about_settings())
    listed = set(settings_of(source))
    assert not tap - listed, (
        f"settings of the tap missing from {source}: {sorted(tap - listed)} "
        "(add them there, and to the other definition)"
    )
    assert not listed - tap, f"settings in {source} that the tap does not have: {listed - tap}"


def test_the_sdk_settings_are_the_ones_listed_here() -> None:
    """Every setting is the tap's own (TapMapTable.config_jsonschema) or in SDK_SETTINGS."""
    own = set(OWN_SETTINGS)  # not config_jsonschema: the SDK adds its settings to it in place
    added_by_sdk = set(about_settings()) - own
    assert added_by_sdk == SDK_SETTINGS, (
        "the SDK's settings changed (a new singer-sdk?): list "
        f"{sorted(added_by_sdk - SDK_SETTINGS)} in meltano.yml and the Hub file, drop "
        f"{sorted(SDK_SETTINGS - added_by_sdk)}, and update SDK_SETTINGS"
    )
    assert not own & SDK_SETTINGS


@pytest.mark.parametrize("source", DEFINITIONS)
def test_secret_settings_are_sensitive_passwords(source: str) -> None:
    settings = settings_of(source)
    for name, prop in about_settings().items():
        setting = settings.get(name, {})
        secret = bool(prop.get("secret"))
        assert bool(setting.get("sensitive")) == secret, (
            f"{source}: {name} must {'' if secret else 'not '}be `sensitive: true`"
        )
        assert (setting.get("kind") == "password") == secret, (
            f"{source}: {name} is {'' if secret else 'not '}secret in the tap, so its kind "
            f"must {'' if secret else 'not '}be password (it is {setting.get('kind')})"
        )


@pytest.mark.parametrize("source", DEFINITIONS)
def test_kinds_follow_the_json_types(source: str) -> None:
    settings = settings_of(source)
    for name, prop in about_settings().items():
        kind = settings.get(name, {}).get("kind")
        assert kind in MELTANO_KINDS, f"{source}: {name} has no kind Meltano knows: {kind}"
        assert kind == expected_kind(name, prop), (
            f"{source}: {name} is {sorted(json_types(prop))} "
            f"(format {prop.get('format')}) in the tap, so its kind should be "
            f"{expected_kind(name, prop)}, not {kind}"
        )
        if kind == "options":
            values = [option["value"] for option in settings[name]["options"]]
            assert values == prop["enum"], f"{source}: {name}'s options are not the tap's"


@pytest.mark.parametrize("source", DEFINITIONS)
def test_defaults_agree(source: str) -> None:
    settings = settings_of(source)
    for name, prop in about_settings().items():
        setting = settings.get(name, {})
        if "default" in prop:
            assert setting.get("value") == prop["default"], (
                f"{source}: {name} must have `value: {prop['default']!r}`, the tap's default"
            )
        else:
            assert "value" not in setting, f"{source}: {name} has a value the tap does not"


@pytest.mark.parametrize("source", DEFINITIONS)
def test_labels_are_the_titles_and_every_setting_is_described(source: str) -> None:
    settings = settings_of(source)
    for name, prop in about_settings().items():
        setting = settings.get(name, {})
        assert setting.get("label") == prop.get("title"), (
            f"{source}: {name}'s label should be the tap's title {prop.get('title')!r}"
        )
        assert str(setting.get("description", "")).strip(), f"{source}: describe {name}"
        assert not set(setting) - SETTING_KEYS, f"{source}: {name}: {set(setting) - SETTING_KEYS}"


@pytest.mark.parametrize("source", DEFINITIONS)
def test_required_settings_are_the_group_validation(source: str) -> None:
    required = set(about()["settings"].get("required", []))
    groups = definition(source).get("settings_group_validation") or []
    assert [set(group) for group in groups] == ([required] if required else []), (
        f"{source}: settings_group_validation should be [{sorted(required)}]"
    )


# -- capabilities and identity --------------------------------------------------------------


@pytest.mark.parametrize("source", DEFINITIONS)
def test_capabilities_are_exactly_the_taps(source: str) -> None:
    declared = about()["capabilities"]
    listed = definition(source).get("capabilities") or []
    assert len(listed) == len(set(listed)), f"{source} lists a capability twice"
    assert sorted(listed) == sorted(declared), (
        f"{source}'s capabilities should be exactly what `tap-maptable --about` declares: "
        f"missing {sorted(set(declared) - set(listed))}, "
        f"not declared {sorted(set(listed) - set(declared))}"
    )


def test_both_definitions_name_the_same_plugin() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    scripts = pyproject["project"]["scripts"]
    for source in DEFINITIONS:
        plugin = definition(source)
        assert plugin["name"] == about()["name"] == "tap-maptable"
        assert plugin["namespace"] == "tap_maptable"
        assert plugin["executable"] in scripts, f"{source}: no such command"
    assert hub_plugin()["pip_url"].startswith(pyproject["project"]["name"])


def test_hub_definition_has_the_hubs_format() -> None:
    hub = hub_plugin()
    assert not HUB_REQUIRED_KEYS - set(hub), f"missing {HUB_REQUIRED_KEYS - set(hub)}"
    assert not set(hub) - HUB_KEYS, f"keys the Hub does not know: {set(hub) - HUB_KEYS}"
    assert set(hub["capabilities"]) <= HUB_CAPABILITIES
    assert hub["variant"] == HUB_FILE.stem, "the Hub names the file after the variant"
    assert hub["name"] == HUB_FILE.parent.name, "...and its directory after the plugin"
    for key in ("description", "label", "repo", "pip_url", "domain_url"):
        assert str(hub.get(key, "")).strip(), f"the Hub definition needs a {key}"


def test_meltano_adds_the_hub_definition(tmp_path: Path) -> None:
    """`meltano add --from-ref` takes the Hub file as the Hub would serve it."""
    if not MELTANO.exists():
        pytest.fail(f"{MELTANO} is missing: run `make meltano` first")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_MAPTABLE", "MELTANO_"))}
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"

    def meltano(*args: str, cwd: Path) -> str:
        result = subprocess.run(
            [str(MELTANO), *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"meltano {' '.join(args)}:\n{result.stderr[-2000:]}"
        return result.stdout

    meltano("init", "project", "--no_usage_stats", cwd=tmp_path)
    project = tmp_path / "project"
    # README's command. Not `add extractor tap-maptable`: Meltano 4 reads `extractor` as a
    # second plugin name and adds the definition again, as a utility named tap-maptable.
    meltano("add", "tap-maptable", "--from-ref", str(HUB_FILE), "--no-install", cwd=project)
    added = yaml.safe_load((project / "meltano.yml").read_text(encoding="utf-8"))["plugins"]
    assert set(added) == {"extractors"}, f"meltano add added more than an extractor: {added}"
    (extractor,) = added["extractors"]
    assert extractor["name"] == "tap-maptable"
    for key in ("namespace", "pip_url", "executable", "capabilities", "settings_group_validation"):
        assert extractor[key] == hub_plugin()[key], f"meltano.yml's {key} is not the Hub's"
    assert [s["name"] for s in extractor["settings"]] == list(settings_of("hub"))
    env.update(TAP_MAPTABLE_APP_ID="app-1", TAP_MAPTABLE_APP_SECRET="secret-1")
    config = json.loads(meltano("config", "print", "tap-maptable", "--format=json", cwd=project))
    assert config.pop("app_secret") != "secret-1", "Meltano must redact the sensitive secret"
    defaults = {name: p["default"] for name, p in about_settings().items() if "default" in p}
    assert config == {"app_id": "app-1", **defaults}


# -- version --------------------------------------------------------------------------------


def test_version_is_single_sourced() -> None:
    """`__version__` is what pyproject.toml, the installed metadata and `--about` report."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["hatch"]["version"]["path"] == "tap_maptable/__init__.py"
    installed = metadata.version("tap-maptable")
    assert installed == tap_maptable.__version__, (
        f"the installed metadata says {installed}: reinstall (pip install -e .) after a bump"
    )
    assert about()["version"] == tap_maptable.__version__


def test_changelog_has_the_version() -> None:
    """A released version has its section; a .devN one only Unreleased (its release is not out)."""
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    version = Version(tap_maptable.__version__)
    if version.is_devrelease or version.is_prerelease:
        assert "## [Unreleased]" in changelog
        assert f"## [{version.base_version}]" not in changelog, (
            f"{version.base_version} is in CHANGELOG.md as released, but the version is {version}"
        )
    else:
        assert f"## [{version}]" in changelog, f"CHANGELOG.md has no section for {version}"


# -- the wheel ------------------------------------------------------------------------------


def test_wheel_holds_the_tap_alone(tmp_path: Path) -> None:
    """The production wheel: the tap's package, its licence, one command; no sandbox."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("tap_maptable-*.whl")
    assert wheel.name.startswith(f"tap_maptable-{tap_maptable.__version__}-py3-none-any")
    dist_info = f"tap_maptable-{tap_maptable.__version__}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
        wheel_metadata = archive.read(f"{dist_info}/METADATA").decode()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"tap_maptable", dist_info}, f"the wheel holds more than the tap: {tops}"
    assert not [name for name in names if "sandbox" in name]
    assert "tap_maptable/__main__.py" in names
    assert f"{dist_info}/licenses/LICENSE" in names
    assert "maptable-sandbox" not in entry_points
    assert "tap-maptable = tap_maptable.cli:main" in entry_points
    assert "License-Expression: Apache-2.0" in wheel_metadata


def test_the_loader_file_other_projects_add_is_this_project_s_target_duckdb() -> None:
    # README's "Adding it to another Meltano project" adds the loader from this file: it must
    # be the definition this project runs (its pinned duckdb, its batch settings), not a copy
    # that drifts from it.
    project = yaml.safe_load((REPO / "meltano.yml").read_text(encoding="utf-8"))
    (ours,) = [p for p in project["plugins"]["loaders"] if p["name"] == "target-duckdb"]
    added = yaml.safe_load(LOADER_FILE.read_text(encoding="utf-8"))
    assert {k: v for k, v in added.items() if k not in {"variant", "label"}} == ours
