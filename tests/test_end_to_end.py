"""The toy system run as real processes: broker, manager and workers on free ports."""
import json
import subprocess
import sys

import pytest

from conftest import both_backends, wait_until


@both_backends
def test_sleep_then_awaken_both_succeed_and_are_recorded(running_toy):
    toy = running_toy
    result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "received message from manager: (ack) message acknowledged" in result.stdout

    wait_until(lambda: toy.sql("SELECT exit_code FROM worker_runs WHERE worker = 'awaken'") == [(0,)],
               what="awaken run to be reaped")
    runs = toy.sql("SELECT worker, launched_by, state, final_message_type, exit_code, module, triggered_by "
                   "FROM worker_runs ORDER BY id")
    assert runs[0][:5] == ("sleep", "external", "succeeded", "success", None)
    assert runs[1][:6] == ("awaken", "manager", "succeeded", "success", 0, "nowcast_db.workers.awaken")
    sleep_message = toy.sql("SELECT id FROM messages WHERE source = 'sleep' AND type = 'success'")[0][0]
    assert runs[1][6] == sleep_message

    assert toy.sql(f"SELECT key, {toy.json_field('value', 'sleep time')} FROM checklist WHERE key = 'sleepyhead'") \
        == [("sleepyhead", 0)]
    assert [json.loads(value) for value, in toy.sql(f"SELECT {toy.json_text('value')} FROM checklist "
                                                     "WHERE key = 'awake'")] == [{"awoke": True}]
    mutations = toy.sql(f"SELECT key, operation, before, {toy.json_text('after')} FROM checklist_mutations ORDER BY id")
    assert [(key, operation, before, json.loads(after)) for key, operation, before, after in mutations] == [
        ("sleepyhead", "set", None, {"sleep time": 0}), ("awake", "set", None, {"awoke": True})]
    messages = toy.sql("SELECT source, type, reply_type, run_id, error FROM messages ORDER BY id")
    assert messages == [("sleep", "success", "ack", 1, None), ("awaken", "success", "ack", 2, None)]
    manager_log = toy.log("manager")
    assert "received message from sleep: (success) sleep worker slept well" in manager_log
    assert "checklist updated with [sleepyhead] items from sleep worker" in manager_log
    assert "launching nowcast_db.workers.awaken worker on localhost" in manager_log


def test_checklist_file_is_kept_as_a_view_for_people(running_toy):
    toy = running_toy
    toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
    checklist_file = toy.directory / "nowcast_checklist.yaml"
    wait_until(lambda: "awoke: true" in checklist_file.read_text(), what="checklist file")
    assert "sleep time: 0" in checklist_file.read_text()


def test_debug_worker_sends_nothing(running_toy):
    toy = running_toy
    result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0", "--debug")
    assert result.returncode == 0
    assert "**debug mode** message that would have been sent to manager: (success)" in result.stdout
    assert toy.sql("SELECT count(*) FROM messages") == [(0,)]


FLAKY_WORKER = '''
"""A worker that fails in the way it is told to."""
import pathlib
import sys

from nowcast_db import NowcastWorker, WorkerError


def main():
    worker = NowcastWorker("flaky", description=__doc__, package="")
    worker.init_cli()
    worker.cli.add_argument("mode", choices=["ok", "fail", "crash", "path"])
    worker.run(work, lambda args: "success", lambda args: "failure")


def work(parsed_args, config, tell_manager):
    if parsed_args.mode == "fail":
        raise WorkerError("the data is not there yet")
    if parsed_args.mode == "crash":
        raise ZeroDivisionError("oops")
    if parsed_args.mode == "path":
        return {"file": pathlib.Path("/tmp/forcing.nc")}
    return {"ok": True}


if __name__ == "__main__":
    main()
'''


@pytest.fixture
def flaky_system(toy):
    (toy.directory / "flaky.py").write_text(FLAKY_WORKER)

    def register(config):
        config["message registry"]["workers"]["flaky"] = {
            "checklist key": "flaky", "success": "flaky worked", "failure": "flaky failed", "crash": "flaky crashed",
        }

    toy.edit_config(register)
    toy.write_next_workers("def after_flaky(msg, config, checklist):\n    return []\n")
    toy.start_system()
    return toy


@both_backends
@pytest.mark.parametrize("mode, state, final_type, exit_code", [
    ("ok", "succeeded", "success", 0),
    ("fail", "failed", "failure", 1),
    ("crash", "crashed", "crash", 1),
])
def test_worker_outcome_becomes_run_state(flaky_system, mode, state, final_type, exit_code):
    result = flaky_system.run_worker("flaky", mode)
    assert result.returncode == exit_code, result.stdout + result.stderr
    assert flaky_system.sql("SELECT state, final_message_type, launched_by FROM worker_runs") == [
        (state, final_type, "external")]
    if mode == "crash":
        assert "unhandled exception:" in result.stdout and "ZeroDivisionError: oops" in result.stdout
    if mode == "fail":
        assert "the data is not there yet" in result.stdout


def test_payload_holding_a_path_fails_in_the_worker_with_a_clear_error(flaky_system):
    result = flaky_system.run_worker("flaky", "path")
    assert result.returncode == 1
    assert "holds a PosixPath" in result.stdout and "convert it (for example with str())" in result.stdout
    # the manager never saw an unreadable document: it got the crash instead
    assert flaky_system.sql("SELECT type, reply_type, error FROM messages") == [("crash", "ack", None)]
    assert flaky_system.sql("SELECT state FROM worker_runs") == [("crashed",)]


@both_backends
def test_next_worker_launch_runs_a_worker_directly_and_it_is_recorded_as_external(running_toy):
    toy = running_toy
    script = ("from nowcast_db import Config, NextWorker; "
              f"NextWorker('nowcast_db.workers.sleep', args=['--sleep-time', '0']).launch(Config({str(toy.config_file)!r}), 'test')")
    subprocess.run([sys.executable, "-c", script], env=toy.env, cwd=toy.directory, check=True, timeout=30)
    wait_until(lambda: toy.sql("SELECT launched_by, state FROM worker_runs WHERE worker = 'sleep'")
               == [("external", "succeeded")], what="directly launched sleep run")


@both_backends
def test_manager_launched_worker_reports_with_its_run_id(running_toy):
    toy = running_toy
    toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
    wait_until(lambda: toy.sql("SELECT exit_code FROM worker_runs WHERE worker = 'awaken'") == [(0,)],
               what="awaken reaped")
    awaken_run = toy.sql("SELECT id FROM worker_runs WHERE worker = 'awaken'")[0][0]
    assert toy.sql("SELECT run_id FROM messages WHERE source = 'awaken'") == [(awaken_run,)]
    pid_known, started_known, command = toy.sql(f"SELECT pid IS NOT NULL, started_at IS NOT NULL, "
                                                f"{toy.json_text('command')} FROM worker_runs WHERE worker = 'awaken'")[0]
    assert (pid_known, started_known) == (1, 1)
    assert json.loads(command)[1:] == ["-m", "nowcast_db.workers.awaken", str(toy.config_file)]


def test_worker_whose_message_was_not_acted_on_logs_the_reply_as_an_error(running_toy):
    """The toy's next_workers has no after_rotate_logs: the registry calls that reply an ERROR."""
    result = running_toy.run_worker("nowcast_db.workers.rotate_logs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("ERROR [rotate_logs] received message from manager: (no after_worker function) "
            "ERROR - after_worker function not found in next_workers module") in result.stdout
