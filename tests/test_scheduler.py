"""The scheduler launches workers at times of day through the manager."""
import datetime as dt
import json
import signal

import pytest

from nowcast_db.config import Config
from nowcast_db.errors import ConfigError
from nowcast_db.schedule_config import scheduled_launches
from conftest import both_backends, wait_until


def in_seconds(seconds: int) -> str:
    return (dt.datetime.now() + dt.timedelta(seconds=seconds)).strftime("%H:%M:%S")


def schedule(toy, entries, reply_timeout=None):
    def change(config):
        config["scheduled workers"] = entries
        if reply_timeout:
            config["zmq"]["reply timeout"] = reply_timeout

    toy.edit_config(change)


def sleep_at(at: str) -> dict:
    return {"nowcast_db.workers.sleep": {"every": "day", "at": at, "cmd line opts": "--sleep-time 0"}}


@both_backends
def test_due_launch_is_recorded_as_launched_by_scheduler(toy):
    toy.start_system()
    # due a few seconds after the scheduler starts (a slow start must not let the time pass first)
    schedule(toy, [sleep_at(in_seconds(5))])
    toy.start("scheduler")
    wait_until(lambda: [(by, requested, json.loads(args), state) for by, requested, args, state in toy.sql(
                   f"SELECT launched_by, requested_by, {toy.json_text('args')}, state FROM worker_runs "
                   "WHERE worker = 'sleep'")] == [("scheduler", "scheduler", ["--sleep-time", "0"], "succeeded")],
               timeout=30, what="scheduled sleep run")
    assert "scheduled nowcast_db.workers.sleep --sleep-time 0 every day at" in toy.log("scheduler")


@both_backends
def test_manager_down_means_retry_not_loss_or_double_launch(toy):
    schedule(toy, [sleep_at(in_seconds(2))], reply_timeout=1)
    toy.start("message_broker")
    toy.start("scheduler")
    wait_until(lambda: "no reply from manager" in toy.log("scheduler"), timeout=20, what="scheduler retry warning")
    toy.start_manager()
    wait_until(lambda: toy.sql("SELECT state FROM worker_runs WHERE worker = 'sleep'") == [("succeeded",)],
               timeout=20, what="sleep launched once the manager is up")
    wait_until(lambda: "launched nowcast_db.workers.sleep" in toy.log("scheduler"), what="scheduler's note")
    assert toy.sql("SELECT count(*) FROM worker_runs WHERE worker = 'sleep'") == [(1,)]


def test_sighup_reloads_schedule_without_duplicating_jobs(toy):
    schedule(toy, [sleep_at("23:59")])
    toy.start_system()
    scheduler = toy.start("scheduler")
    wait_until(lambda: "scheduled nowcast_db.workers.sleep" in toy.log("scheduler"), what="first schedule")
    schedule(toy, [sleep_at(in_seconds(4))])
    for expected in (1, 2):
        scheduler.send_signal(signal.SIGHUP)
        wait_until(lambda: toy.log("scheduler").count("schedule reloaded") == expected, what="reload")
    wait_until(lambda: toy.sql("SELECT state FROM worker_runs WHERE worker = 'sleep'") == [("succeeded",)],
               timeout=20, what="rescheduled sleep run")
    assert toy.sql("SELECT count(*) FROM worker_runs WHERE worker = 'sleep'") == [(1,)]


def test_bad_entry_stops_the_scheduler_with_an_error_naming_it(toy):
    schedule(toy, [sleep_at("07:00"), {"nowcast_db.workers.sleep": {"every": "fortnight", "at": "07:00"}}])
    process = toy.start("scheduler")
    assert process.wait(30) != 0
    log = toy.log("scheduler")
    assert "key 'scheduled workers' entry 2 (nowcast_db.workers.sleep): 'every' must be one of" in log
    assert "Traceback" not in log


@pytest.mark.parametrize("entries, message", [
    ("daily", "expected a list"),
    ([["x"]], "entry 1: expected one 'MODULE: {every: ..., at: ...}' mapping"),
    ([{"pkg.workers.unknown": {"every": "day"}}], "worker 'unknown' is not in the message registry"),
    ([{"nowcast_db.workers.sleep": {"every": "day", "when": "07:00"}}], "unknown key 'when'"),
    ([{"nowcast_db.workers.sleep": {"every": "day", "cmd line opts": "'unclosed"}}], "cannot be split"),
])
def test_scheduled_workers_section_errors_name_the_entry(toy, entries, message, monkeypatch):
    monkeypatch.setenv("NOWCAST_LOGS", str(toy.directory))
    monkeypatch.setenv("NOWCAST_ENV", toy.env["NOWCAST_ENV"])
    schedule(toy, entries)
    with pytest.raises(ConfigError, match="scheduled workers") as error:
        scheduled_launches(Config(toy.config_file))
    assert message in str(error.value)


@pytest.mark.parametrize("options, message", [
    ({"every": "day", "at": 1439}, "'at' must be a quoted string, e.g. at: '1439'"),
    ({"every": "day", "at": "07:00", "cmd line opts": 6}, "'cmd line opts' must be a quoted string"),
    ({"every": "day", "at": "25:99"}, "entry 1 (nowcast_db.workers.sleep): bad 'at' '25:99' for every day"),
])
def test_unquoted_or_impossible_times_are_refused_naming_the_entry(toy, options, message, monkeypatch):
    monkeypatch.setenv("NOWCAST_LOGS", str(toy.directory))
    monkeypatch.setenv("NOWCAST_ENV", toy.env["NOWCAST_ENV"])
    schedule(toy, [{"nowcast_db.workers.sleep": options}])
    with pytest.raises(ConfigError) as error:
        scheduled_launches(Config(toy.config_file))
    assert message in str(error.value)
