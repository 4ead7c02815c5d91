"""Shared fixtures: a toy nowcast system on free loopback ports, run as real processes.

A test decorated with ``@both_backends`` runs twice: with the toy system's
history in SQLite (the default, beside the checklist file) and in a fresh
PostgreSQL database (``[postgresql]`` in its id, marked ``postgresql``: select
with ``-m postgresql``, leave out with ``-m 'not postgresql'``).  See pg.py for
where that database comes from and how the cases are skipped without a server.
"""
from __future__ import annotations

import contextlib
import datetime as dt
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
import sqlalchemy
import yaml
import zmq

import pg
from nowcast_db.demo import free_ports
from nowcast_db.toy import write_toy_system

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
#: run a test that uses the toy system (or ``database_url``) on SQLite and on PostgreSQL
both_backends = pytest.mark.parametrize("backend", BACKENDS, indirect=True)
#: run it on PostgreSQL only (what is particular to PostgreSQL)
only_postgresql = pytest.mark.parametrize("backend", BACKENDS[1:], indirect=True)


def pytest_configure(config):
    config.addinivalue_line("markers", "postgresql: the PostgreSQL case of a test run on both backends "
                                       "(-m postgresql runs only those, -m 'not postgresql' leaves them out)")


def pytest_report_header(config):
    reason = pg.unavailable()
    return f"PostgreSQL cases: {'skipped, ' + reason if reason else 'in fresh databases on ' + pg.shown(pg.ADMIN_URL)}"


def _not_there_yet(err: Exception) -> bool:
    """A table the manager has not created yet (PostgreSQL's undefined_table)."""
    return getattr(getattr(err, "orig", None), "sqlstate", None) == "42P01"


def wait_until(condition, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = condition()
        except (sqlite3.OperationalError, FileNotFoundError):
            result = None
        except sqlalchemy.exc.ProgrammingError as err:
            if not _not_there_yet(err):
                raise
            result = None
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class ToySystem:
    """A toy system's folder, its config, its history database and the processes started for it."""

    directory: Path
    manager_port: int
    workers_port: int
    env: dict
    #: the history: the SQLite file beside the checklist (the config names none), or a PostgreSQL database
    database_url: str = ""
    processes: dict = field(default_factory=dict)
    _engine: sqlalchemy.Engine | None = field(default=None, repr=False)

    @property
    def config_file(self) -> Path:
        return self.directory / "nowcast.yaml"

    @property
    def db_path(self) -> Path:
        """The SQLite history file (SQLite only)."""
        return self.directory / "nowcast.sqlite"

    @property
    def backend(self) -> str:
        return "postgresql" if self.database_url.startswith("postgresql") else "sqlite"

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
        if "manager" in self.processes and self.has_history():
            try:
                # a run that died under an earlier manager has no exit status to wait for, nor has
                # a run started by hand (the pid its messages named is not the manager's child)
                wait_until(lambda: self.sql(
                    "SELECT count(*) FROM worker_runs WHERE state = 'pending' OR (pid IS NOT NULL "
                    "AND exit_code IS NULL AND state <> 'died' AND launched_by <> 'external')") == [(0,)],
                    timeout=15, what="launched workers to finish")
            except AssertionError:
                pass  # the test has already passed or failed; stop everything regardless
        for name in list(self.processes):
            self.stop(name)

    def has_history(self) -> bool:
        """Whether the history tables are there (the manager, or `nowcast db upgrade`, made them)."""
        if self.backend == "sqlite":
            return self.db_path.exists()
        return self.sql("SELECT to_regclass('worker_runs') IS NOT NULL") == [(True,)]

    def log(self, name: str) -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def sql(self, query: str, params=()) -> list[tuple]:
        """Read the real database with plain SQL, as an operator would.

        ``?`` marks a parameter on both backends.  On PostgreSQL, times come
        back as SQLite writes them (naive UTC text, ``YYYY-MM-DD
        HH:MM:SS.ffffff``; a date as ``YYYY-MM-DD``) so that assertions and
        times passed back in read the same on both; JSON comes back decoded
        (use ``json_field`` and ``json_text`` to read JSON the same way on both)."""
        if self.backend == "sqlite":
            connection = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
            try:
                return connection.execute(query, params).fetchall()
            finally:
                connection.close()
        with self.engine().connect() as connection:
            rows = connection.exec_driver_sql(_driver_sql(query), tuple(params)).fetchall()
        return [tuple(_as_sqlite_writes_it(value) for value in row) for row in rows]

    def execute(self, *statements: str) -> None:
        """Change the database by hand, in one transaction (what a test does to simulate a crash or a full disk)."""
        if self.backend == "sqlite":
            connection = sqlite3.connect(self.db_path)
            try:
                with connection:
                    for statement in statements:
                        connection.execute(statement)
            finally:
                connection.close()
            return
        with self.engine().begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(_driver_sql(statement), ())

    def engine(self) -> sqlalchemy.Engine:
        """An engine on the PostgreSQL history, for the test's own reads."""
        if self._engine is None:
            self._engine = sqlalchemy.create_engine(self.database_url)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def json_field(self, column: str, key: str) -> str:
        """SQL for one key of a JSON object column, as a plain value (a number, a string, true/false or NULL)."""
        if self.backend == "sqlite":
            return f"json_extract({column}, '$.\"{key}\"')"
        return f"({column} -> '{key}')"

    def json_text(self, column: str) -> str:
        """SQL for a JSON column as JSON text (compare it decoded: the spacing and key order differ)."""
        return f"json({column})" if self.backend == "sqlite" else f"CAST({column} AS text)"

    def heartbeat_pid(self) -> int | None:
        rows = self.sql(f"SELECT {self.json_field('value', 'pid')} FROM manager_state WHERE name = 'heartbeat'")
        return rows[0][0] if rows else None


def _driver_sql(query: str) -> str:
    """A query written with ``?`` parameters, for psycopg (``%s``, a literal ``%`` doubled)."""
    return query.replace("%", "%%").replace("?", "%s")


def _as_sqlite_writes_it(value):
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@pytest.fixture
def backend(request) -> str:
    """The database the test's history goes to: "sqlite", unless the test is parametrized with both_backends."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def database_url(backend, tmp_path) -> str:
    """An empty history database: a SQLite file in the test's folder, or a fresh PostgreSQL database
    (dropped after the test, whatever its outcome)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'nowcast.sqlite'}"
        return
    with pg.fresh_database() as url:
        yield url


@pytest.fixture
def toy(tmp_path, backend, database_url) -> ToySystem:
    manager_port, workers_port = free_ports(2)
    write_toy_system(tmp_path, manager_port, workers_port)
    env = dict(os.environ, NOWCAST_ENV=sys.prefix, NOWCAST_LOGS=str(tmp_path),
               NOWCAST_YAML=str(tmp_path / "nowcast.yaml"))
    env.pop("NOWCAST_RUN_ID", None)
    system = ToySystem(tmp_path, manager_port, workers_port, env, database_url)
    if backend != "sqlite":
        system.edit_config(lambda config: config.update({"database url": database_url}))
    try:
        yield system
    finally:
        try:
            system.stop_all()
        finally:
            system.close()


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
