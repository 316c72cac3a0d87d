"""A Meltano user's first day: the README's `meltano add` commands, run as written.

README's "Adding it to another Meltano project" gives four commands. Each test here checks that
they are still in README (and the `meltano add` one in docs/releasing.md), runs them verbatim in
a brand-new project (`meltano init`, the pinned Meltano) with one kind of `pip_url` (a checkout,
a `git+file://` clone, a wheel), and looks at the result: one extractor named tap-maptable and
nothing else in `meltano.yml`, `meltano install` exiting 0, and the installed tap answering
`--about`. Meltano 4.4.1 installs with uv, from its cache when warm: each test takes seconds.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import tap_maptable
from tests.e2e.support import MELTANO, REPO, truth_rows
from tests.e2e.warehouse import opened_duckdb
from tests.helpers import APP_ID, APP_SECRET

pytestmark = pytest.mark.slow

CHECKOUT = "<checkout>"
PIP_URL = "<pip_url>"
# The commands exactly as README shows them; `<checkout>` and `<pip_url>` are filled in here.
ADD = (
    "meltano add tap-maptable --from-ref "
    "<checkout>/meltano-hub/extractors/tap-maptable/maptable.yml --no-install"
)
SET_PIP_URL = "sed -i 's|^    pip_url: tap-maptable$|    pip_url: <pip_url>|' meltano.yml"
INSTALL = "meltano install"
ABOUT = "meltano invoke tap-maptable --about"
# Then a loader and a first run.
ADD_LOADER = "meltano add target-duckdb --from-ref <checkout>/meltano-hub/loaders/target-duckdb.yml"
RUN = "meltano run tap-maptable target-duckdb"
ADD_JOB = 'meltano job add maptable-to-duckdb --tasks "tap-maptable target-duckdb"'
README_COMMANDS = (ADD, SET_PIP_URL, INSTALL, ABOUT, ADD_LOADER, RUN, ADD_JOB)


def meltano_env() -> dict[str, str]:
    """The caller's environment without its own Meltano or tap variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_MAPTABLE", "MELTANO_"))}
    env.update(MELTANO_SEND_ANONYMOUS_USAGE_STATS="false", NO_COLOR="1")
    return env


def run(
    command: str,
    cwd: Path,
    *,
    timeout: float = 300,
    code: int = 0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one README command (`meltano` is the pinned one); fail the test on another exit."""
    argv = shlex.split(command)
    if argv[0] == "meltano":
        argv[0] = str(MELTANO)
    result = subprocess.run(
        argv,
        cwd=cwd,
        env={**meltano_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    tail = result.stderr[-3000:]
    assert result.returncode == code, f"{command}: exit {result.returncode}\n{tail}"
    return result


def plugins_of(project: Path) -> dict[str, list[dict[str, Any]]]:
    """`meltano.yml`'s plugins, by type."""
    loaded = yaml.safe_load((project / "meltano.yml").read_text(encoding="utf-8"))
    return dict(loaded.get("plugins") or {})


def new_project(tmp_path: Path) -> Path:
    """A brand-new Meltano project, as `meltano init` makes it."""
    if not MELTANO.exists():
        pytest.fail(f"{MELTANO} is missing: run `make meltano` first")
    run("meltano init project --no_usage_stats", cwd=tmp_path)
    return tmp_path / "project"


def pip_url_for(kind: str, tmp_path: Path) -> str:
    """Where the tap is installed from: this checkout, a local git clone, or a wheel of it."""
    if kind == "checkout":
        return str(REPO)
    if kind == "git":
        clone = tmp_path / "clone"
        run(f"git clone --quiet {shlex.quote(str(REPO))} {shlex.quote(str(clone))}", cwd=tmp_path)
        return f"git+file://{clone}"
    dist = tmp_path / "dist"
    wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)]
    built = subprocess.run(wheel, capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stderr[-2000:]
    (path,) = dist.glob("tap_maptable-*.whl")
    return str(path)


def test_readme_and_releasing_doc_give_these_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for command in README_COMMANDS:
        assert command in readme, f"README no longer says {command!r}: update this test with it"
    releasing = (REPO / "docs" / "releasing.md").read_text(encoding="utf-8")
    assert ADD in releasing
    for text in (readme, releasing):
        commands = "\n".join(re.findall(r"```console\n(.*?)```", text, flags=re.DOTALL))
        for word in ("add", "install", "remove"):
            for kind in ("extractor", "loader", "utility"):
                assert f"meltano {word} {kind}" not in commands, (
                    f"`meltano {word} {kind} ...`: Meltano 4 reads {kind!r} as a plugin name"
                )


@pytest.mark.parametrize("kind", ["checkout", "git", "wheel"])
def test_readme_commands_add_install_and_run_the_tap(kind: str, tmp_path: Path) -> None:
    project = new_project(tmp_path)
    run(ADD.replace(CHECKOUT, str(REPO)), cwd=project)

    plugins = plugins_of(project)
    assert set(plugins) == {"extractors"}, f"meltano add added more than an extractor: {plugins}"
    (extractor,) = plugins["extractors"]
    assert extractor["name"] == "tap-maptable"
    assert extractor["pip_url"] == "tap-maptable"  # the line the sed command edits

    run(SET_PIP_URL.replace(PIP_URL, pip_url_for(kind, tmp_path)), cwd=project)
    (extractor,) = plugins_of(project)["extractors"]
    assert extractor["pip_url"] != "tap-maptable", "the sed line changed nothing"

    run(INSTALL, cwd=project)
    about = run(ABOUT, cwd=project).stdout
    assert "Name: tap-maptable" in about
    assert f"Version: {tap_maptable.__version__}" in about
    as_json = run(f"{ABOUT} --format=json", cwd=project).stdout
    assert json.loads(as_json)["name"] == "tap-maptable"


def test_readme_loader_and_first_run_land_every_row_in_duckdb(make_sandbox, tmp_path: Path) -> None:
    project = new_project(tmp_path)
    run(ADD.replace(CHECKOUT, str(REPO)), cwd=project)
    run(SET_PIP_URL.replace(PIP_URL, str(REPO)), cwd=project)
    run(INSTALL, cwd=project)
    run(ADD_LOADER.replace(CHECKOUT, str(REPO)), cwd=project)
    (loader,) = plugins_of(project)["loaders"]
    assert loader["pip_url"] == "target-duckdb==0.8.0 duckdb==1.1.3"

    sandbox = make_sandbox()
    env = {
        "TAP_MAPTABLE_API_URL": sandbox.url,
        "TAP_MAPTABLE_APP_ID": APP_ID,
        "TAP_MAPTABLE_APP_SECRET": APP_SECRET,
    }
    run(RUN, cwd=project, env=env)
    truth = truth_rows(sandbox)
    with opened_duckdb(project / "output" / "warehouse.duckdb") as wh:
        for stream, rows in truth.items():
            sql = f'SELECT _row_id FROM maptable."{stream}"'  # noqa: S608 - a sandbox table
            ids = [row_id for (row_id,) in wh.query(sql)]
            assert sorted(ids) == sorted(rows), stream
    # The same pipeline as a named job, as README says to add it: an incremental run.
    run(ADD_JOB, cwd=project)
    second = run("meltano run maptable-to-duckdb", cwd=project, env=env)
    assert "Run complete" in second.stdout + second.stderr


def test_under_meltano_a_missing_setting_names_the_meltano_command(tmp_path: Path) -> None:
    """The tap sees that Meltano runs it, and in which environment (`meltano init`: dev)."""
    project = new_project(tmp_path)
    run(ADD.replace(CHECKOUT, str(REPO)), cwd=project)
    run(SET_PIP_URL.replace(PIP_URL, str(REPO)), cwd=project)
    run(INSTALL, cwd=project)
    failed = run("meltano invoke tap-maptable --discover", cwd=project, code=1)
    output = failed.stdout + failed.stderr
    assert (
        "missing required setting 'app_id' (export TAP_MAPTABLE_APP_ID=<value>, or "
        "`meltano --environment=dev config set tap-maptable app_id <value>`, which rewrites "
        "meltano.yml)"
    ) in output, output[-2000:]
    assert "export TAP_MAPTABLE_APP_SECRET=<secret>" in output
    assert "--config ENV" not in output
