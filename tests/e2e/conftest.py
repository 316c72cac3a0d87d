"""End-to-end fixtures: Meltano's plugins installed once, and a private PostgreSQL server.

Every test here runs Meltano, which keeps its state, plugins and catalogs in the project's
`.meltano/`: each module marks its tests `xdist_group("meltano")`, and `support.meltano_lock`
keeps Meltano commands from different test processes apart.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts import plugins
from tests.e2e.support import MELTANO, REPO, meltano, meltano_lock

INSTALL_HINT = "apt-get install postgresql"


@pytest.fixture(scope="session")
def meltano_project() -> Path:
    """The project root, with Meltano's plugins installed (once per session, only if missing)."""
    if not MELTANO.exists():
        pytest.fail(f"{MELTANO} is missing: run `make meltano` first")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MELTANO_")}
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    with meltano_lock():  # another test process may be installing them right now
        if plugins.need_install():  # missing, or pyproject.toml / meltano.yml changed
            meltano(["install"], env, timeout=900)
            plugins.mark_installed()
    return REPO


# -- PostgreSQL ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Postgres:
    """A running PostgreSQL server that trusts local connections."""

    host: str
    port: int
    user: str

    def dsn(self, database: str) -> str:
        """A libpq connection string for `database`."""
        return f"host={self.host} port={self.port} user={self.user} dbname={database}"

    def create_database(self, name: str) -> str:
        """Create an empty database; return its name."""
        import psycopg  # noqa: PLC0415 - only the PostgreSQL tests need the driver

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name


def _pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A private PostgreSQL server on a free port, started by this fixture and stopped after.

    Without PostgreSQL's binaries the tests skip, except under CI=true, where they fail.
    """
    bindir = _pg_bindir()
    if bindir is None:
        reason = f"PostgreSQL server binaries not found: install them with `{INSTALL_HINT}`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    as_root = os.geteuid() == 0
    runner = ["runuser", "-u", "postgres", "--"] if as_root else []
    tmp = Path(tempfile.mkdtemp(prefix="tap-maptable-pg-"))
    data, sockets = tmp / "data", tmp / "sock"
    data.mkdir()
    sockets.mkdir()
    if as_root:
        shutil.chown(tmp, "postgres")
        for path in (data, sockets):
            shutil.chown(path, "postgres", "postgres")
    port = _free_port()
    user = "postgres" if as_root else os.environ.get("USER", "postgres")

    def run(*argv: str) -> None:
        result = subprocess.run(
            [*runner, *argv], capture_output=True, text=True, check=False, timeout=120
        )
        assert result.returncode == 0, f"{argv[0]} failed: {result.stdout}{result.stderr}"

    run(str(bindir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8")
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(tmp / "log"),
        "-w",
        "start",
    )
    try:
        server = Postgres(host="127.0.0.1", port=port, user=user)
        _wait_ready(server)
        yield server
    finally:
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(tmp, ignore_errors=True)


def _wait_ready(server: Postgres) -> None:
    import psycopg  # noqa: PLC0415

    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(server.dsn("postgres"), connect_timeout=2):
                return
        except psycopg.OperationalError:  # noqa: PERF203 - retried until the server is up
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
