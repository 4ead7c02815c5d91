"""Starting worker processes and reaping them.

Commands are argument lists, never shell strings.  For another host the
command runs over ssh (``run: enabled hosts: HOST:`` gives ``envvars``,
``python``, ``config file`` and, optionally, ``ssh options``, a list such as
``[-p, 2222]``); the remote command line is quoted piece by piece.
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nowcast_db import output_capture
from nowcast_db.errors import NowcastError

RUN_ID_ENV = "NOWCAST_RUN_ID"
LOCAL_HOSTS = ("localhost", "127.0.0.1", None, "")
CAPTURE_PROGRAM = output_capture.__file__
DEFAULT_OUTPUT_MAX_BYTES = 10 * 1024 * 1024


class LaunchError(NowcastError):
    """A worker could not be started; the message says why."""


@dataclass(frozen=True)
class RunOutput:
    """Where one run's stdout and stderr go, and how much of them is kept."""

    path: Path
    max_bytes: int


def run_output(config, worker: str, run_id: int, when) -> RunOutput:
    """``<run output: directory>/<date>/<worker>-<run id>.log``; the directory
    defaults to ``runs`` beside the checklist file (the system's logs folder)."""
    settings = config.get("run output") or {}
    directory = settings.get("directory") or Path(config["checklist file"]).parent / "runs"
    max_bytes = settings.get("max bytes", DEFAULT_OUTPUT_MAX_BYTES)
    path = Path(directory).absolute() / f"{when:%Y-%m-%d}" / f"{worker}-{run_id}.log"
    return RunOutput(path, int(max_bytes))


def command_for(module: str, args, host: str, config, run_id: int | None = None) -> list[str]:
    """The command that starts worker ``module`` with ``args`` on ``host``."""
    args = [str(arg) for arg in args or []]
    if host in LOCAL_HOSTS:
        if "python" not in config:
            raise LaunchError(f"{config.file}: missing key 'python' (the interpreter that runs workers)")
        return [config["python"], "-m", module, os.fspath(config.file), *args]
    hosts = (config.get("run") or {}).get("enabled hosts") if isinstance(config.get("run"), dict) else None
    host_config = hosts.get(host) if isinstance(hosts, dict) else None
    if not isinstance(host_config, dict):
        raise LaunchError(f"{config.file}: cannot launch {module} on {host}: "
                          f"missing key 'run: enabled hosts: {host}' (a mapping with python and config file)")
    for key in ("python", "config file"):
        if key not in host_config:
            raise LaunchError(f"{config.file}: cannot launch {module} on {host}: "
                              f"missing key 'run: enabled hosts: {host}: {key}'")
    python, config_file = host_config["python"], host_config["config file"]
    remote = []
    if host_config.get("envvars"):
        remote += ["source", shlex.quote(str(host_config["envvars"])), ";"]
    if run_id is not None:
        remote.append(f"{RUN_ID_ENV}={int(run_id)}")
    remote.append("PYTHONUNBUFFERED=1")  # its output reaches the run's output file as it is printed
    remote += [shlex.quote(str(part)) for part in (python, "-m", module, config_file, *args)]
    options = host_config.get("ssh options") or []
    if not isinstance(options, list):
        raise LaunchError(f"{config.file}: key 'run: enabled hosts: {host}: ssh options': expected a list")
    return ["ssh", *(str(option) for option in options), host, " ".join(remote)]


def start(command: list[str], run_id: int | None = None,
          output: RunOutput | None = None) -> tuple[subprocess.Popen, subprocess.Popen | None]:
    """Start a worker in its own session (a manager restart does not kill it),
    its stdout and stderr copied to ``output.path`` when ``output`` is given.
    Returns the worker's process and the copier's (see output_capture)."""
    env = dict(os.environ)
    if run_id is not None:
        env[RUN_ID_ENV] = str(run_id)
    else:
        env.pop(RUN_ID_ENV, None)
    if output is None:
        return _popen(command, env), None
    try:
        output.path.parent.mkdir(parents=True, exist_ok=True)
        output_file = os.open(output.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o664)
    except OSError as err:
        raise LaunchError(f"cannot write the run output file {output.path}: {err.strerror}") from None
    env["PYTHONUNBUFFERED"] = "1"  # its output reaches the file as it is printed
    read_end, write_end = os.pipe()
    try:
        # the copier first: if it cannot start, the worker is not started either
        copier = _popen([sys.executable, "-S", CAPTURE_PROGRAM, str(output.max_bytes)], env,
                        stdin=read_end, stdout=output_file)
        try:
            worker = _popen(command, env, stdout=write_end, stderr=write_end)
        except LaunchError:
            os.close(write_end)
            write_end = None
            copier.wait()  # it has read the end of its (empty) input
            output.path.unlink(missing_ok=True)
            raise
    finally:
        os.close(output_file)
        os.close(read_end)
        if write_end is not None:
            os.close(write_end)
    return worker, copier


def _popen(command: list[str], env: dict, stdin=subprocess.DEVNULL, stdout=None, stderr=None) -> subprocess.Popen:
    try:
        return subprocess.Popen(command, env=env, stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=True)
    except OSError as err:
        raise LaunchError(f"cannot run {command[0]}: {err.strerror}") from None


SSH_FAILED = 255  # ssh's own exit status when it cannot connect or log in
TERMINATE_GRACE = 10.0  # seconds between SIGTERM and SIGKILL for a worker past its time limit
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d)?\s*$")
_UNIT_SECONDS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}


def parse_time_limit(value) -> float:
    """A registry ``time limit``: seconds as a number, or text such as 90s, 30m, 2h."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.match(str(value)) if isinstance(value, str) else None
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"expected a duration such as 90s, 30m or 2h, got {value!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class AdoptedProcess:
    """A worker an earlier manager started (so not our child): we can only see
    whether it is still there.  ``poll`` answers like Popen.poll, with None for
    "still running" and, once it is gone, the unknown exit status as None too —
    so ``gone`` says which."""

    def __init__(self, pid: int, module: str | None):
        self.pid, self.module, self.gone = pid, module, False
        self.started = _start_time(pid)

    def poll(self):
        try:
            os.kill(self.pid, 0)
            cmdline = open(f"/proc/{self.pid}/cmdline", "rb").read().decode(errors="replace")
            # a recycled pid (started later, or running something else) means ours is gone
            self.gone = (bool(self.module) and self.module not in cmdline) or _start_time(self.pid) != self.started
        except (ProcessLookupError, FileNotFoundError):
            self.gone = True
        except PermissionError:  # alive, but not ours to inspect
            self.gone = False
        return None


def _start_time(pid: int) -> int | None:
    """When a process started (clock ticks since boot; None where /proc cannot say):
    with the pid, it names one process even after the pid is used again."""
    try:
        return int(open(f"/proc/{pid}/stat", "rb").read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class Child:
    run_id: int
    process: subprocess.Popen
    worker: str
    host: str = "localhost"
    deadline: float | None = None  # time.monotonic() past which it is terminated
    terminated_at: float | None = None

    @property
    def remote(self) -> bool:
        return self.host not in LOCAL_HOSTS

    def signal_group(self, signum: int) -> None:
        """Signal the worker and anything it started (it leads its own session)."""
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass


class Children:
    """The worker processes this manager started and has not reaped yet."""

    def __init__(self):
        self._children: dict[int, Child] = {}
        self._copiers: list[subprocess.Popen] = []  # output copiers, reaped when they end

    def add(self, run_id: int, process: subprocess.Popen, worker: str, host: str = "localhost",
            time_limit: float | None = None, copier: subprocess.Popen | None = None) -> None:
        deadline = time.monotonic() + time_limit if time_limit else None
        self._children[run_id] = Child(run_id, process, worker, host, deadline)
        if copier is not None:
            self._copiers.append(copier)

    def adopt(self, run_id: int, pid: int, worker: str, module: str | None, host: str = "localhost") -> None:
        """Watch a worker an earlier manager started, to see it end (time limits are not applied);
        for a worker on another host, ``pid`` is its ssh process here."""
        self._children[run_id] = Child(run_id, AdoptedProcess(pid, module), worker, host)

    def overdue(self) -> list[Child]:
        """Children past their time limit that have not been told to stop yet."""
        now = time.monotonic()
        return [child for child in self._children.values()
                if child.deadline is not None and child.terminated_at is None and now > child.deadline]

    def terminate(self, child: Child) -> None:
        child.terminated_at = time.monotonic()
        child.signal_group(signal.SIGTERM)

    def kill_unresponsive(self, grace: float = TERMINATE_GRACE) -> None:
        """SIGKILL children that ignored SIGTERM for ``grace`` seconds."""
        now = time.monotonic()
        for child in self._children.values():
            if child.terminated_at is not None and now - child.terminated_at > grace:
                child.signal_group(signal.SIGKILL)

    def reap(self) -> list[tuple[Child, int | None]]:
        """Every child that has exited, with its exit code (negative for a signal;
        None for an adopted process, whose exit status cannot be known)."""
        self._copiers = [copier for copier in self._copiers if copier.poll() is None]
        exited = []
        for run_id, child in list(self._children.items()):
            code = child.process.poll()
            if code is not None or getattr(child.process, "gone", False):
                exited.append((child, code))
                del self._children[run_id]
        return exited

    def __len__(self):
        return len(self._children)
