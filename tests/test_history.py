"""`nowcast history`, `nowcast checklist --at` and the audit views, read from
the database of a toy system run as real processes."""
import csv
import datetime as dt
import io
import json
import subprocess
import sys
import time

import pytest
import yaml
from alembic import command

from sqlalchemy import inspect

from conftest import both_backends, raw_message, wait_until
from nowcast_db.database import make_engine, upgrade
from nowcast_db.database.migrate import alembic_config, current_revision

NOWCAST = [sys.executable, "-m", "nowcast_db.cli"]
VIEWS = ["checklist_history", "failures_by_day", "last_success", "run_chain", "run_durations"]


def nowcast(toy, *args, timeout=120):
    return subprocess.run([*NOWCAST, *args], capture_output=True, text=True, cwd=toy.directory, env=toy.env,
                          timeout=timeout)


def history(toy, *args):
    return nowcast(toy, "history", str(toy.config_file), *args)


def checklist(toy, *args):
    result = nowcast(toy, "checklist", str(toy.config_file), *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return yaml.safe_load(result.stdout)


def one_line_error(result, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("nowcast: error: ") and result.stderr.count("\n") == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def checklist_table(toy) -> dict:
    """The checklist the manager holds, read from its table with plain SQL."""
    return {key: json.loads(value) for key, value in toy.sql(f"SELECT key, {toy.json_text('value')} FROM checklist")}


def sleep_then_awaken(toy, awaken_runs=1):
    result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_until(lambda: toy.sql("SELECT count(*) FROM worker_runs WHERE worker = 'awaken' AND exit_code = 0")
               == [(awaken_runs,)], what="awaken run to be reaped")


@pytest.fixture
def ran_toy(running_toy):
    """sleep → awaken twice, as real processes; the system left running."""
    sleep_then_awaken(running_toy)
    sleep_then_awaken(running_toy, awaken_runs=2)
    return running_toy


# --- nowcast checklist --at ----------------------------------------------------------

@both_backends
def test_checklist_at_a_time_is_the_checklist_the_manager_held_then(running_toy):
    toy = running_toy
    sleep_then_awaken(toy)
    wait_until(lambda: "awake" in checklist_table(toy), what="awaken's report")
    held = checklist_table(toy)
    moment = dt.datetime.now(dt.timezone.utc)
    assert held == {"sleepyhead": {"sleep time": 0}, "awake": {"awoke": True}}
    time.sleep(0.01)

    # more history after that moment: a new value, a clearing, a new key set again
    assert raw_message(toy.workers_port, {"source": "sleep", "type": "failure",
                                          "payload": {"sleep time": 7}})["type"] == "ack"
    assert raw_message(toy.workers_port, {"source": "clear_checklist", "type": "clear checklist"})["type"] \
        == "checklist cleared"
    assert raw_message(toy.workers_port, {"source": "rotate_logs", "type": "success",
                                          "payload": {"log files": ["a.log"]}})["type"] \
        == "no after_worker function"
    now = checklist_table(toy)
    assert now == {"log rotation": {"log files": ["a.log"]}}

    assert checklist(toy, "--at", moment.isoformat()) == held
    # the same moment written in another offset, and naive (UTC)
    pacific = moment.astimezone(dt.timezone(dt.timedelta(hours=-8)))
    assert checklist(toy, "--at", pacific.isoformat()) == held
    assert checklist(toy, "--at", moment.replace(tzinfo=None).isoformat()) == held
    if toy.db_path is not None and toy.db_path.exists():  # --db also takes a SQLite file's path, as db copy does
        assert checklist(toy, "--db", str(toy.db_path.relative_to(toy.directory))) == now
    # before anything happened, and without --at: the current checklist
    assert checklist(toy, "--at", "2000-01-01") == {}
    assert checklist(toy) == now
    assert checklist(toy, "--at", dt.datetime.now(dt.timezone.utc).isoformat()) == now

    # the checklist_history view answers the same question in SQL
    at = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    rows = toy.sql(f"SELECT key, {toy.json_text('value')} FROM checklist_history WHERE operation <> 'clear' "
                   "AND valid_from <= ? AND (valid_until IS NULL OR valid_until > ?)", (at, at))
    assert {key: json.loads(value) for key, value in rows} == held


def test_checklist_errors_are_one_line(toy, tmp_path):
    one_line_error(nowcast(toy, "checklist", str(toy.config_file), "--at", "noon"), "--at", "'noon'")
    one_line_error(nowcast(toy, "checklist", str(toy.config_file)), "no history database there")
    assert not toy.db_path.exists()  # reading never creates a database
    one_line_error(nowcast(toy, "checklist", str(toy.config_file), "--db", "nosuch://x"), "nosuch://x")
    one_line_error(nowcast(toy, "checklist", str(toy.config_file), "--db", "postgresql://me@db:notaport/x"),
                   "expected an SQLAlchemy URL")


# --- nowcast history -------------------------------------------------------------------

@both_backends
def test_history_runs_in_the_three_formats(ran_toy):
    toy = ran_toy
    table = history(toy, "runs")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["id", "worker", "state", "launched", "by", "host", "args", "launched", "at",
                                "(UTC)", "seconds", "exit", "code", "triggered", "by", "message"]
    assert [line.split()[:4] for line in lines[1:]] == [
        ["1", "sleep", "succeeded", "external"], ["2", "awaken", "succeeded", "manager"],
        ["3", "sleep", "succeeded", "external"], ["4", "awaken", "succeeded", "manager"]]

    jsonl = history(toy, "runs", "--format", "jsonl")
    records = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [(r["id"], r["worker"], r["launched by"], r["exit code"]) for r in records] == [
        (1, "sleep", "external", None), (2, "awaken", "manager", 0),
        (3, "sleep", "external", None), (4, "awaken", "manager", 0)]
    sleep_message = toy.sql("SELECT id FROM messages WHERE source = 'sleep' ORDER BY id")[0][0]
    assert records[1]["triggered by message"] == sleep_message and records[1]["args"] == []
    assert records[1]["seconds"] >= 0 and records[1]["launched at"].endswith("+00:00")
    assert records[1]["module"] == "nowcast_db.workers.awaken"

    rows = list(csv.DictReader(io.StringIO(history(toy, "runs", "--format", "csv").stdout)))
    assert [(row["id"], row["worker"], row["state"]) for row in rows] == [
        ("1", "sleep", "succeeded"), ("2", "awaken", "succeeded"), ("3", "sleep", "succeeded"),
        ("4", "awaken", "succeeded")]
    assert rows[1]["args"] == "[]" and rows[0]["exit code"] == ""


@both_backends
def test_history_filters(ran_toy):
    toy = ran_toy

    def ids(*args):
        result = history(toy, "runs", "--format", "jsonl", *args)
        assert result.returncode == 0, result.stderr
        return [json.loads(line)["id"] for line in result.stdout.splitlines()]

    assert ids("--worker", "awaken") == [2, 4]
    assert ids("--state", "succeeded", "--limit", "3") == [2, 3, 4]  # the newest three, oldest first
    assert ids("--limit", "0") == [1, 2, 3, 4]
    second_sleep = toy.sql("SELECT launched_at FROM worker_runs WHERE id = 3")[0][0]
    assert ids("--since", second_sleep) == [3, 4]  # awaken 4 was launched when sleep 3 reported
    just_before = dt.datetime.fromisoformat(second_sleep) - dt.timedelta(microseconds=1)
    assert ids("--until", just_before.isoformat()) == [1, 2]
    assert ids("--since", "2999-01-01") == []
    assert history(toy, "runs", "--since", "2999-01-01").stdout == "(nothing recorded)\n"
    assert ids("--state", "failed") == []


@both_backends
def test_history_messages_and_checklist_changes(ran_toy):
    toy = ran_toy
    messages = [json.loads(line) for line in history(toy, "messages", "--format", "jsonl").stdout.splitlines()]
    assert [(m["source"], m["type"], m["reply"], m["run id"]) for m in messages] == [
        ("sleep", "success", "ack", 1), ("awaken", "success", "ack", 2),
        ("sleep", "success", "ack", 3), ("awaken", "success", "ack", 4)]
    assert messages[0]["payload"] == {"sleep time": 0}
    table = history(toy, "messages", "--worker", "awaken").stdout.splitlines()
    assert len(table) == 3 and "awaken" in table[1] and '{"awoke":true}' in table[1]

    changes = list(csv.DictReader(io.StringIO(history(toy, "checklist", "--format", "csv").stdout)))
    assert [(c["key"], c["operation"], c["source"]) for c in changes] == [
        ("sleepyhead", "set", "sleep"), ("awake", "set", "awaken"),
        ("sleepyhead", "update", "sleep"), ("awake", "update", "awaken")]
    assert json.loads(changes[0]["after"]) == {"sleep time": 0}
    only_awake = history(toy, "checklist", "awake", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["operation"] for line in only_awake] == ["set", "update"]
    by_worker = history(toy, "checklist", "--worker", "sleep", "--format", "jsonl").stdout.splitlines()
    assert {json.loads(line)["key"] for line in by_worker} == {"sleepyhead"}


@both_backends
def test_history_chain_follows_sleep_to_awaken(ran_toy):
    toy = ran_toy
    second_awaken = toy.sql("SELECT id, triggered_by FROM worker_runs WHERE worker = 'awaken' ORDER BY id")[1]
    result = history(toy, "chain", str(second_awaken[0]), "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    steps = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(s["step"], s["run"], s["worker"], s["launched by"]) for s in steps] == [
        (0, 3, "sleep", "external"), (1, second_awaken[0], "awaken", "manager")]
    assert steps[0]["triggered by message"] is None
    assert steps[1]["triggered by message"] == second_awaken[1] and steps[1]["message"] == "sleep (success)"
    table = history(toy, "chain", str(second_awaken[0])).stdout.splitlines()
    assert table[1].split()[:3] == ["0", "3", "sleep"] and table[2].split()[:3] == ["1", "4", "awaken"]


def test_history_errors_are_one_line(ran_toy):
    toy = ran_toy
    one_line_error(history(toy, "runs", "--format", "xml"), "--format", "table, jsonl, csv", "'xml'")
    one_line_error(history(toy, "runs", "--state", "happy"), "--state", "succeeded", "'happy'")
    one_line_error(history(toy, "messages", "--state", "failed"), "--state: applies to runs")
    one_line_error(history(toy, "runs", "--limit", "ten"), "--limit", "'ten'")
    one_line_error(history(toy, "runs", "--since", "2026-11-31"), "--since", "'2026-11-31'")
    one_line_error(history(toy, "chain", "999"), "there is no run 999")
    one_line_error(history(toy, "chain", "first"), "RUN_ID", "'first'")


# --- the audit views -----------------------------------------------------------------

@both_backends
def test_views_answer_operators_questions_after_a_real_run(ran_toy):
    toy = ran_toy
    assert raw_message(toy.workers_port, {"source": "sleep", "type": "crash"})["type"] == "ack"
    wait_until(lambda: toy.sql("SELECT state FROM worker_runs WHERE id = 5") == [("crashed",)],
               what="crashed sleep run")
    toy.stop_all()

    durations = toy.sql("SELECT id, worker, seconds, wait_seconds FROM run_durations WHERE worker = 'awaken'")
    assert [row[:2] for row in durations] == [(2, "awaken"), (4, "awaken")]
    assert all(0 <= seconds < 60 and 0 <= wait < 60 for _, _, seconds, wait in durations)

    today = toy.sql("SELECT date(launched_at) FROM worker_runs WHERE id = 5")[0][0]
    by_day = toy.sql("SELECT day, worker, runs, succeeded, crashed, failures FROM failures_by_day "
                     "WHERE day = ? ORDER BY worker", (today,))
    assert by_day == [(today, "awaken", 2, 2, 0, 0), (today, "sleep", 3, 2, 1, 1)]

    assert toy.sql("SELECT worker, run_id FROM last_success ORDER BY worker") == [("awaken", 4), ("sleep", 3)]
    assert toy.sql("SELECT depth, ancestor_id, ancestor_worker FROM run_chain WHERE run_id = 4 ORDER BY depth") \
        == [(0, 4, "awaken"), (1, 3, "sleep")]
    assert toy.sql("SELECT key, valid_until IS NULL FROM checklist_history ORDER BY id") == [
        ("sleepyhead", 0), ("awake", 0), ("sleepyhead", 1), ("awake", 1)]


@both_backends
def test_views_come_and_go_with_migration_0003(database_url):
    engine = make_engine(database_url, writer=True)

    def views():
        with engine.connect() as connection:
            return sorted(inspect(connection).get_view_names())

    upgrade(engine, "0003")
    assert (current_revision(engine), views()) == ("0003", VIEWS)
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    assert (current_revision(engine), views()) == ("0002", [])
    upgrade(engine)
    assert views() == VIEWS
    engine.dispose()
