"""Shared fixtures: a toy nowcast system on free loopback ports, run as real processes."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
import zmq

from nowcast_db.demo import free_ports
from nowcast_db.toy import write_toy_system


def wait_until(condition, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = condition()
        except (sqlite3.OperationalError, FileNotFoundError):
            result = None
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class ToySystem:
    """A toy system's folder, its config and the processes started for it."""

    directory: Path
    manager_port: int
    workers_port: int
    env: dict
    processes: dict = field(default_factory=dict)

    @property
    def config_file(self) -> Path:
        return self.directory / "nowcast.yaml"

    @property
    def db_path(self) -> Path:
        return self.directory / "nowcast.sqlite"

    def edit_config(self, change) -> None:
        """Load nowcast.yaml, let ``change(dict)`` edit it, write it back."""
        data = yaml.safe_load(self.config_file.read_text())
        change(data)
        self.config_file.write_text(yaml.safe_dump(data, sort_keys=False))

    def register_need(self, *workers: str) -> None:
        """Register the `need` message type for workers (the toy registry has none)."""

        def change(config):
            for worker in workers:
                config["message registry"]["workers"][worker]["need"] = f"{worker} worker needs a checklist value"

        self.edit_config(change)

    def write_next_workers(self, source: str) -> None:
        path = self.directory / "next_workers.py"
        path.write_text(source)
        # make sure the manager sees a change even within one mtime tick
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.directory / f"{name}.log", "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", f"nowcast_db.{name}", str(self.config_file), *args],
            cwd=self.directory, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        self.processes[name] = process
        return process

    def start_manager(self, *args: str) -> subprocess.Popen:
        process = self.start("manager", *args)
        wait_until(lambda: self.heartbeat_pid() == process.pid or process.poll() is not None,
                   timeout=30, what="manager heartbeat")
        assert process.poll() is None, f"manager exited early:\n{self.log('manager')}"
        return process

    def start_system(self) -> None:
        self.start("message_broker")
        self.start_manager()

    def run_worker(self, module: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", module, str(self.config_file), *args],
            cwd=self.directory, env=self.env, capture_output=True, text=True, timeout=timeout,
        )

    def stop(self, name: str, sig: int = signal.SIGTERM) -> int | None:
        process = self.processes.pop(name, None)
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
        try:
            return process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def stop_all(self) -> None:
        """Let workers the manager launched finish, then stop every process."""
        if self.db_path.exists() and "manager" in self.processes:
            try:
                wait_until(lambda: self.sql(
                    "SELECT count(*) FROM worker_runs WHERE "
                    "state = 'pending' OR (pid IS NOT NULL AND exit_code IS NULL)") == [(0,)],
                    timeout=15, what="launched workers to finish")
            except AssertionError:
                pass  # the test has already passed or failed; stop everything regardless
        for name in list(self.processes):
            self.stop(name)

    def log(self, name: str) -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def sql(self, query: str, params=()) -> list[tuple]:
        """Read the real database with plain SQL, as an operator would."""
        connection = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
        try:
            return connection.execute(query, params).fetchall()
        finally:
            connection.close()

    def heartbeat_pid(self) -> int | None:
        rows = self.sql("SELECT json_extract(value, '$.pid') FROM manager_state WHERE name = 'heartbeat'")
        return rows[0][0] if rows else None


@pytest.fixture
def toy(tmp_path) -> ToySystem:
    manager_port, workers_port = free_ports(2)
    write_toy_system(tmp_path, manager_port, workers_port)
    env = dict(os.environ, NOWCAST_ENV=sys.prefix, NOWCAST_LOGS=str(tmp_path),
               NOWCAST_YAML=str(tmp_path / "nowcast.yaml"))
    env.pop("NOWCAST_RUN_ID", None)
    system = ToySystem(tmp_path, manager_port, workers_port, env)
    yield system
    system.stop_all()


@pytest.fixture
def running_toy(toy) -> ToySystem:
    toy.start_system()
    return toy


@pytest.fixture
def system(toy) -> ToySystem:
    """The toy system with `need` registered for sleep and awaken, started."""
    toy.register_need("sleep", "awaken")
    toy.start_system()
    return toy


@contextlib.contextmanager
def under_circus(toy: ToySystem):
    """Run the toy system's generated circus.ini, as written, with circus's own
    sockets moved to free loopback ports; yields the circusctl command."""
    bin_dir = Path(sys.executable).parent
    endpoint, pubsub, stats = (f"tcp://127.0.0.1:{port}" for port in free_ports(3))
    circus_ini = toy.directory / "circus.ini"
    circus_ini.write_text(f"[circus]\nendpoint = {endpoint}\npubsub_endpoint = {pubsub}\n"
                          f"stats_endpoint = {stats}\n\n" + circus_ini.read_text())
    circusctl = [str(bin_dir / "circusctl"), "--endpoint", endpoint]
    circusd = subprocess.Popen([str(bin_dir / "circusd"), "circus.ini"], cwd=toy.directory, env=toy.env,
                               stdout=open(toy.directory / "circusd.log", "wb"), stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: toy.heartbeat_pid(), timeout=60, what="manager under circus")
        yield circusctl
    finally:
        subprocess.run([*circusctl, "quit"], cwd=toy.directory, env=toy.env, capture_output=True, timeout=30)
        circusd.wait(30)


needs_circus = pytest.mark.skipif(shutil.which("circusd", path=str(Path(sys.executable).parent)) is None,
                                  reason="circus not installed (pip install '.[test]')")


def raw_request(port: int, frame: bytes, timeout: float = 10.0) -> bytes:
    """One request on a plain pyzmq REQ socket, as a client with none of our code would send it."""
    context = zmq.Context.instance()
    socket = context.socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(f"tcp://127.0.0.1:{port}")
    try:
        socket.send(frame)
        if not socket.poll(int(timeout * 1000)):
            raise AssertionError(f"no reply within {timeout} s to {frame[:80]!r}")
        return socket.recv()
    finally:
        socket.close()


def raw_message(port: int, document: dict, timeout: float = 10.0) -> dict:
    """Send a NEMO-style YAML document, return the reply as a plain dict."""
    return yaml.safe_load(raw_request(port, yaml.safe_dump(document).encode(), timeout))
