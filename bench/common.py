"""What every benchmark shares: the sandbox as a process, measured child processes, the log."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import Self

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / "work"  # ignored by .gitignore (bench/work/)
APP_ID = "bench-app"
APP_SECRET = "bench-secret-7d1e"  # a sandbox-only credential


def venv_bin(name: str) -> str:
    """A console script of the interpreter running the bench (the project's, or bench's venv)."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        msg = f"{name} not found next to {sys.executable} nor on PATH"
        raise FileNotFoundError(msg)
    return found


PLUGIN_VENV = WORK_DIR / "plugin-venv"


def plugin_tap() -> str:
    """`tap-maptable` in a venv that holds the tap and its dependencies only, as Meltano has it.

    For memory figures: the bench's own venv holds matplotlib, hence numpy, which joblib (a
    singer-sdk dependency) imports when it is there: 17 MiB more in every tap process, none of
    it in a plugin's venv. Made once (an editable install: the tap's code is the checkout's);
    delete bench/work/plugin-venv after changing the tap's dependencies.
    """
    tap = PLUGIN_VENV / "bin" / "tap-maptable"
    if not tap.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PLUGIN_VENV)], check=True)
        pip = [str(PLUGIN_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "-e", str(ROOT)], check=True)
    return str(tap)


def work_dir(name: str) -> Path:
    """A fresh directory for one scenario's files (configs, logs, outputs)."""
    path = WORK_DIR / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# -- the sandbox -----------------------------------------------------------------------------


class Sandbox:
    """`maptable-sandbox` as a subprocess, with its JSONL request log."""

    def __init__(self, workdir: Path, *args: str, name: str = "sandbox") -> None:
        """Options as on the command line (`--rate-limit 0`, `--segment-size 10`, ...)."""
        self.workdir = workdir
        self.args = list(args)
        self.log_path = workdir / f"{name}-requests.jsonl"
        self.ready = workdir / f"{name}.ready"
        self.stderr_path = workdir / f"{name}.stderr"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> Self:
        """Start it and wait until it listens."""
        self.ready.unlink(missing_ok=True)
        argv = [
            sys.executable,
            "-m",
            "maptable_sandbox",
            "--app",
            f"{APP_ID}:{APP_SECRET}",
            "--request-log",
            str(self.log_path),
            "--ready-file",
            str(self.ready),
            *self.args,
        ]
        with self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 60
        while not self.ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                msg = f"sandbox did not start: {self.stderr_path.read_text()[-500:]}"
                raise RuntimeError(msg)
            time.sleep(0.05)
        self.url = self.ready.read_text().strip()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop it (SIGTERM, then SIGKILL)."""
        stop_process(self.proc)
        self.proc = None

    def entries(self) -> list[dict[str, Any]]:
        """Every API request logged so far (t, method, path, query, status, kind, ...)."""
        if not self.log_path.exists():
            return []
        with self.log_path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def token(self) -> str:
        """Log in once (one request of the budget) and return the access token as issued."""
        import requests  # noqa: PLC0415 - only the peer benchmark needs it

        response = requests.post(
            f"{self.url}/open/api/v1/auth/",
            json={"appId": APP_ID, "appSecret": APP_SECRET},
            timeout=30,
        )
        response.raise_for_status()
        return str(response.json()["detail"]["token"])


def stop_process(proc: subprocess.Popen[bytes] | subprocess.Popen[str] | None) -> None:
    """Stop a helper server: SIGTERM, then SIGKILL after 10 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tap_config(url: str, **extra: Any) -> dict[str, Any]:
    """A tap-maptable config for a bench sandbox."""
    return {"app_id": APP_ID, "app_secret": APP_SECRET, "api_url": url, **extra}


def write_json(path: Path, data: Any) -> Path:
    """Write `data` as JSON and return the path."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


# -- measured child processes ----------------------------------------------------------------


@dataclass
class Measured:
    """One child process: wall time, exit status, CPU time (wait4) and peak RSS (VmHWM)."""

    argv: list[str]
    wall_s: float
    returncode: int
    maxrss_mib: float
    user_s: float
    sys_s: float
    stderr_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu_s(self) -> float:
        """User plus system CPU seconds of the process."""
        return self.user_s + self.sys_s

    def stderr_tail(self, n: int = 5) -> str:
        """The last lines of its stderr, for failure reports."""
        if self.stderr_path is None or not self.stderr_path.exists():
            return ""
        lines = self.stderr_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-n:])


def run_measured(
    argv: list[str],
    *,
    stdout: IO[Any] | int = subprocess.DEVNULL,
    stderr_path: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 3600,
) -> Measured:
    """Run `argv` to completion; CPU time from wait4, peak RSS from /proc/<pid>/status.

    Not wait4's ru_maxrss: on Linux a child's maxrss starts from its parent's RSS at fork (it
    survives the exec), so every child of a big bench process would report at least that.
    VmHWM belongs to the process's own memory map (reset by exec) and only grows; it is read
    every 20 ms, and its last reading before exit is the peak.
    """
    err: IO[Any] | int = subprocess.DEVNULL
    if stderr_path is not None:
        err = stderr_path.open("wb")
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdout=stdout,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        peak = [0]
        done = threading.Event()
        watcher = threading.Thread(target=_watch_hwm, args=(proc.pid, peak, done), daemon=True)
        watcher.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            done.set()
            watcher.join()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if stderr_path is not None and not isinstance(err, int):
            err.close()
    return Measured(
        argv=argv,
        wall_s=wall,
        returncode=proc.returncode,
        maxrss_mib=peak[0] / 1024,  # KiB
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        stderr_path=stderr_path,
    )


def _watch_hwm(pid: int, peak: list[int], done: threading.Event) -> None:
    """Keep `peak[0]` at the process's VmHWM (KiB) until it exits."""
    path = Path(f"/proc/{pid}/status")
    while not done.is_set():
        try:
            for line in path.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak[0] = max(peak[0], int(line.split()[1]))
                    break
        except (OSError, ValueError):
            pass
        done.wait(0.02)


# -- reading the request log -----------------------------------------------------------------


def max_in_window(times: list[float], window: float) -> int:
    """The most requests any sliding window of `window` seconds holds (the server's reading)."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def sliding_counts(times: list[float], window: float) -> list[int]:
    """For each request (in time order), how many requests the window ending at it holds."""
    ordered = sorted(times)
    counts = []
    start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        counts.append(end - start + 1)
    return counts


def min_span(n: int, limit: int, window: float) -> float:
    """Shortest first-to-last span of `n` requests under `limit` per sliding `window`."""
    if n <= 1 or limit <= 0:
        return 0.0
    return ((n - 1) // limit) * window


def by_kind(entries: list[dict[str, Any]]) -> Counter[str]:
    """Requests per kind; a table's first segment (no cursor) counts as `rows:first`."""
    counts: Counter[str] = Counter()
    for e in entries:
        kind = e["kind"]
        if kind == "rows" and not e["query"].get("lastSegmentRowID"):
            kind = "rows:first"
        counts[kind] += 1
    return counts


# -- the machine -----------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, str]:
    """What the figures were measured on."""
    info = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "os": platform.platform(),
        "python": platform.python_version(),
        "singer-sdk": _version("singer-sdk"),
        "tap-maptable": _version("tap-maptable"),
        "requests": _version("requests"),
        "msgspec": _version("msgspec"),
    }
    info["load average (1, 5, 15 min)"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        import psutil  # noqa: PLC0415 - optional

        info["memory"] = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    except ImportError:
        pass
    return info


# -- processes watched while they run -------------------------------------------------------


class LogTail:
    """The sandbox's JSONL request log, read as it grows (complete lines only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.entries: list[dict[str, Any]] = []

    def poll(self) -> list[dict[str, Any]]:
        """The entries logged since the last poll (also appended to `entries`)."""
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        new = [json.loads(line) for line in lines if line.strip()]
        self.entries += new
        return new


@dataclass
class StateLine:
    """One STATE message of a tap's stdout and when the bench read it (epoch seconds)."""

    t: float
    value: dict[str, Any]


@dataclass
class LiveTap:
    """A tap process started in the background; its STATE messages timed as they arrive.

    stdout is read by a thread, line by line (the tap flushes at every STATE, so a STATE is
    read within milliseconds of being written): RECORDs are counted per stream, STATEs kept
    with their arrival time. `started` is the epoch second just before the process was made.
    """

    proc: subprocess.Popen[bytes]
    started: float
    stderr_path: Path
    states: list[StateLine] = field(default_factory=list)
    records: Counter[str] = field(default_factory=Counter)
    _thread: threading.Thread | None = None

    @classmethod
    def start(cls, argv: list[str], *, stderr_path: Path) -> LiveTap:
        with stderr_path.open("wb") as err:
            started = time.time()
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL
            )
        live = cls(proc, started, stderr_path)
        live._thread = threading.Thread(target=live._read, daemon=True)
        live._thread.start()
        return live

    def _read(self) -> None:
        if self.proc.stdout is None:
            return
        for raw in self.proc.stdout:
            now = time.time()
            if b'"type":"RECORD"' in raw[:40]:
                stream = raw.split(b'"stream":"', 1)[-1].split(b'"', 1)[0]
                self.records[stream.decode()] += 1
                continue
            try:
                message = json.loads(raw)
            except ValueError:
                continue  # a line cut by SIGKILL
            if message.get("type") == "STATE":
                self.states.append(StateLine(now, message["value"]))

    def wait(self, timeout: float = 3600) -> int:
        """Wait for the process and for its stdout to be read to the end; the exit code."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if self._thread is not None:
            self._thread.join()
        return code

    @property
    def last_state(self) -> dict[str, Any] | None:
        return self.states[-1].value if self.states else None

    def stderr_lines(self) -> list[str]:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace").splitlines()


LOG_TIME = "%Y-%m-%d %H:%M:%S,%f"


def log_time(line: str) -> float | None:
    """The epoch second of a tap log line (`2026-12-03 11:26:27,018 | INFO | ...`, local time)."""
    try:
        return dt.datetime.strptime(line[:23], LOG_TIME).timestamp()  # noqa: DTZ007 - local
    except ValueError:
        return None


def tap_rows_kind(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The segment requests of a request log."""
    return [e for e in entries if e["kind"] == "rows"]
