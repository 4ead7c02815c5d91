"""`nowcast status` exit codes for healthy, degraded and down systems made with real processes."""
import json
import subprocess
import sys

from conftest import both_backends, raw_message, wait_until


def status(toy, *args):
    return subprocess.run([sys.executable, "-m", "nowcast_db.cli", "status", str(toy.config_file), *args],
                          capture_output=True, text=True, env=toy.env, timeout=60)


@both_backends
def test_healthy_system_exits_0(running_toy):
    toy = running_toy
    toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
    wait_until(lambda: toy.sql("SELECT exit_code FROM worker_runs WHERE worker = 'awaken'") == [(0,)], what="awaken")
    result = status(toy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "status: healthy" in result.stdout and "manager: up" in result.stdout
    assert "broker: reachable" in result.stdout and "  awaken: " in result.stdout
    report = json.loads(status(toy, "--json").stdout)
    assert report["exit"] == 0 and set(report["last success"]) == {"sleep", "awaken"}


@both_backends
def test_failure_in_the_last_day_is_degraded_exit_1(running_toy):
    toy = running_toy
    raw_message(toy.workers_port, {"source": "sleep", "type": "failure", "payload": None})
    result = status(toy)
    assert result.returncode == 1
    assert "status: degraded" in result.stdout and "ended badly in the last 24 h: 1 failed" in result.stdout


def test_broker_down_is_exit_2(running_toy):
    toy = running_toy
    toy.stop("message_broker")
    down = status(toy)
    assert down.returncode == 2
    assert "broker: NOT reachable" in down.stdout and "status: down" in down.stdout


def test_stale_heartbeat_means_manager_down():
    """The manager writes its heartbeat every 5 s; 15 s without one is down (the pure assessment)."""
    import datetime as dt

    from nowcast_db.status import assess

    now = dt.datetime(2026, 11, 29, 3, 0, tzinfo=dt.timezone.utc)
    health = {"heartbeat": {"pid": 42, "host": "ops"}, "heartbeat_at": now - dt.timedelta(seconds=20),
              "running": 0, "ended badly": {}, "last success": {}, "holds": []}
    report = assess(health, broker_up=True, now=now)
    assert (report["exit"], report["status"], report["manager"]["up"]) == (2, "down", False)
    health["heartbeat_at"] = now - dt.timedelta(seconds=4)
    assert assess(health, broker_up=True, now=now)["exit"] == 0


def test_never_started_system_is_exit_2_with_one_line(toy):
    result = status(toy)
    assert result.returncode == 2
    assert result.stderr.startswith("nowcast: error:") and "no history database there" in result.stderr
