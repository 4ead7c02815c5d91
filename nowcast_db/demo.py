"""``nowcast demo``: the toy system, run once, end to end, with real processes."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from nowcast_db.config import Config
from nowcast_db.database import database_url, make_engine
from nowcast_db.database.queries import heartbeat, recent_runs, runs_of
from nowcast_db.toy import write_toy_system

WAIT_SECONDS = 60


def free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_demo(directory: Path) -> int:
    directory = directory.resolve()
    manager_port, workers_port = free_ports(2)
    write_toy_system(directory, manager_port, workers_port, overwrite=True)
    config_file = directory / "nowcast.yaml"
    env = dict(os.environ, NOWCAST_ENV=sys.prefix, NOWCAST_LOGS=str(directory), NOWCAST_YAML=str(config_file))
    os.environ.update(NOWCAST_ENV=env["NOWCAST_ENV"], NOWCAST_LOGS=env["NOWCAST_LOGS"])
    engine = make_engine(database_url(Config(config_file)))
    print(f"toy nowcast system written to {directory}")
    print(f"broker and manager logs: {directory}/message_broker.log, {directory}/manager.log")

    processes = {}
    try:
        for name in ("message_broker", "manager"):
            log = open(directory / f"{name}.log", "ab")
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", f"nowcast_db.{name}", str(config_file)],
                cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        manager = processes["manager"]
        if not _wait_for(lambda: _manager_alive(engine, manager.pid), manager):
            return _failed(directory, "the manager did not start")
        print("\nrunning: python -m nowcast_db.workers.sleep nowcast.yaml --sleep-time 1\n")
        subprocess.run(
            [sys.executable, "-m", "nowcast_db.workers.sleep", str(config_file), "--sleep-time", "1"],
            cwd=directory, env=env,
        )
        finished = _wait_for(lambda: _finished(engine, "awaken"), manager)
        _print_runs(engine)
        db = engine.url.database
        print(f"\nhistory database: {db}")
        print(f"try:  sqlite3 {db} \"SELECT worker, state, launched_by, exit_code FROM worker_runs\"")
        if not finished:
            return _failed(directory, "awaken did not finish")
        ok = all(run.state == "succeeded" for run in recent_runs(engine, 2))
        return 0 if ok else 1
    finally:
        for process in reversed(list(processes.values())):
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        engine.dispose()


def _wait_for(condition, manager: subprocess.Popen) -> bool:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if manager.poll() is not None:
            return False
        try:
            if condition():
                return True
        except Exception:  # the manager may still be creating the schema
            pass
        time.sleep(0.2)
    return False


def _manager_alive(engine, pid: int) -> bool:
    beat = heartbeat(engine)
    return bool(beat) and beat.get("pid") == pid


def _finished(engine, worker: str) -> bool:
    """The worker's last run has ended and, if the manager started it, been reaped."""
    runs = runs_of(engine, worker)
    if not runs:
        return False
    last = runs[-1]
    return last.state not in ("pending", "running") and (last.launched_by == "external" or last.exit_code is not None)


def _print_runs(engine) -> None:
    runs = list(reversed(recent_runs(engine, 10)))
    print(f"\n{'run':>4}  {'worker':<10} {'state':<10} {'launched by':<12} {'exit':>4}  {'seconds':>7}")
    for run in runs:
        seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else None
        exit_code = "" if run.exit_code is None else run.exit_code
        print(f"{run.id:>4}  {run.worker:<10} {run.state:<10} {run.launched_by:<12} {exit_code!s:>4}  "
              f"{'' if seconds is None else f'{seconds:7.2f}'}")


def _failed(directory: Path, what: str) -> int:
    print(f"\nnowcast demo: {what}; see {directory}/manager.log", file=sys.stderr)
    return 1
