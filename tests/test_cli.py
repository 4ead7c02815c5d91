"""The `nowcast` command: demo, init, db upgrade."""
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import needs_circus, under_circus, wait_until

NOWCAST = [sys.executable, "-m", "nowcast_db.cli"]


def nowcast(*args, cwd=None, env=None, timeout=120):
    return subprocess.run([*NOWCAST, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def test_demo_runs_sleep_then_awaken_and_shows_the_runs(tmp_path):
    result = nowcast("demo", str(tmp_path / "toy"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sleep      succeeded  external" in result.stdout
    assert "awaken     succeeded  manager" in result.stdout
    db = tmp_path / "toy" / "nowcast.sqlite"
    assert f"history database: {db}" in result.stdout
    rows = sqlite3.connect(db).execute("SELECT worker, state, exit_code FROM worker_runs ORDER BY id").fetchall()
    assert rows == [("sleep", "succeeded", None), ("awaken", "succeeded", 0)]


def test_init_writes_the_toy_system_and_keeps_existing_files(tmp_path):
    result = nowcast("init", str(tmp_path), "--manager-port", "5555", "--workers-port", "5556")
    assert result.returncode == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["circus.ini", "next_workers.py", "nowcast.yaml", "supervisord.ini"]
    assert "manager: 5555" in (tmp_path / "nowcast.yaml").read_text()
    (tmp_path / "next_workers.py").write_text("# mine\n")
    again = nowcast("init", str(tmp_path))
    assert "already there" in again.stdout
    assert (tmp_path / "next_workers.py").read_text() == "# mine\n"


# the newest migration's revision, read from the migrations themselves
HEAD = max(path.name.split("_", 1)[0] for path in
           (Path(__file__).resolve().parent.parent / "migrations" / "versions").glob("[0-9]*_*.py"))


def test_db_upgrade_creates_the_schema_beside_the_checklist_file(tmp_path):
    nowcast("init", str(tmp_path))
    env = dict(os.environ, NOWCAST_LOGS=str(tmp_path / "logs"), NOWCAST_ENV=sys.prefix)
    result = nowcast("db", "upgrade", str(tmp_path / "nowcast.yaml"), env=env)
    assert result.returncode == 0, result.stderr
    assert f"schema at revision {HEAD} (was empty)" in result.stdout
    tables = sqlite3.connect(tmp_path / "logs" / "nowcast.sqlite").execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall()
    assert [t[0] for t in tables] == ["alembic_version", "checklist", "checklist_mutations", "manager_state",
                                      "messages", "worker_runs"]


def test_db_upgrade_with_unset_variable_is_one_line_error(tmp_path):
    nowcast("init", str(tmp_path))
    env = {k: v for k, v in os.environ.items() if k != "NOWCAST_LOGS"}
    result = nowcast("db", "upgrade", str(tmp_path / "nowcast.yaml"), env=env)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "environment variable NOWCAST_LOGS is not set" in result.stderr
    assert "key 'checklist file'" in result.stderr


@needs_circus
def test_toy_system_runs_under_circus(toy):
    with under_circus(toy) as circusctl:
        result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
        assert result.returncode == 0, result.stdout + result.stderr
        wait_until(lambda: toy.sql("SELECT state, exit_code FROM worker_runs WHERE worker = 'awaken'")
                   == [("succeeded", 0)], what="awaken under circus")
        status = subprocess.run([*circusctl, "status"], cwd=toy.directory, env=toy.env,
                                capture_output=True, text=True, timeout=30)
        for watcher in ("manager", "message_broker", "scheduler"):
            assert f"{watcher}: active" in status.stdout, status.stdout


@pytest.mark.skipif(shutil.which("supervisord", path=str(Path(sys.executable).parent)) is None,
                    reason="supervisor not installed (pip install '.[test]')")
def test_toy_system_runs_under_supervisord(toy):
    bin_dir = Path(sys.executable).parent
    supervisorctl = [str(bin_dir / "supervisorctl"), "-c", "supervisord.ini"]
    supervisord = subprocess.Popen([str(bin_dir / "supervisord"), "-c", "supervisord.ini"], cwd=toy.directory,
                                   env=toy.env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: toy.heartbeat_pid(), timeout=60, what="manager under supervisord")
        result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
        assert result.returncode == 0, result.stdout + result.stderr
        wait_until(lambda: toy.sql("SELECT state, exit_code FROM worker_runs WHERE worker = 'awaken'")
                   == [("succeeded", 0)], what="awaken under supervisord")
        status = subprocess.run([*supervisorctl, "status"], cwd=toy.directory, env=toy.env,
                                capture_output=True, text=True, timeout=30).stdout
        for program in ("manager", "message_broker", "scheduler"):
            assert any(line.startswith(program) and "RUNNING" in line for line in status.splitlines()), status
    finally:
        subprocess.run([*supervisorctl, "shutdown"], cwd=toy.directory, env=toy.env, capture_output=True, timeout=30)
        supervisord.wait(30)
