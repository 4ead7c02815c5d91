"""Launch requests: any client asks the manager to launch a registered worker."""
import json
import subprocess
import sys

from conftest import both_backends, raw_message, wait_until

NOWCAST = [sys.executable, "-m", "nowcast_db.cli"]


@both_backends
def test_launch_request_is_recorded_and_reply_carries_run_id(running_toy):
    toy = running_toy
    reply = raw_message(toy.workers_port, {
        "source": "operator", "type": "launch worker", "message id": "launch-1",
        "payload": {"module": "nowcast_db.workers.sleep", "args": ["--sleep-time", 0], "requested by": "doug@ops"},
    })
    assert reply["type"] == "ack"
    run_id = reply["payload"]["run id"]
    wait_until(lambda: toy.sql("SELECT state, exit_code FROM worker_runs WHERE id = ?", (run_id,))
               == [("succeeded", 0)], what="requested sleep run")
    worker, args, *row = toy.sql(f"SELECT worker, {toy.json_text('args')}, launched_by, requested_by, triggered_by "
                                 "FROM worker_runs WHERE id = ?", (run_id,))[0]
    message_pk = toy.sql("SELECT id FROM messages WHERE message_id = 'launch-1'")[0][0]
    assert (worker, json.loads(args), *row) == ("sleep", ["--sleep-time", "0"], "operator", "doug@ops", message_pk)
    # the sleep worker's success then launched awaken, as after_sleep says
    wait_until(lambda: toy.sql("SELECT launched_by FROM worker_runs WHERE worker = 'awaken'") == [("manager",)],
               what="awaken after requested sleep")


@both_backends
def test_launch_request_resent_with_same_id_launches_once(running_toy):
    toy = running_toy
    request = {"source": "scheduler", "type": "launch worker", "message id": "same-id",
               "payload": {"module": "nowcast_db.workers.awaken"}}
    first = raw_message(toy.workers_port, request)
    second = raw_message(toy.workers_port, request)
    assert first == second
    assert toy.sql("SELECT launched_by FROM worker_runs WHERE worker = 'awaken'") == [("scheduler",)]


@both_backends
def test_launch_request_for_unregistered_worker_is_refused(running_toy):
    toy = running_toy
    reply = raw_message(toy.workers_port, {"source": "operator", "type": "launch worker",
                                           "payload": {"module": "evil.workers.rm_rf", "args": []}})
    assert reply["type"] == "launch refused"
    assert "'rm_rf' is not in the message registry" in reply["payload"]
    assert toy.sql("SELECT count(*) FROM worker_runs") == [(0,)]
    assert toy.sql("SELECT reply_type, error IS NOT NULL FROM messages") == [("launch refused", 1)]


def test_launch_request_with_shell_string_args_or_unknown_host_is_refused(running_toy):
    toy = running_toy
    bad_args = raw_message(toy.workers_port, {"source": "operator", "type": "launch worker",
                                              "payload": {"module": "nowcast_db.workers.sleep", "args": "; rm -rf /"}})
    assert bad_args["type"] == "launch refused" and "args must be a list" in bad_args["payload"]
    bad_host = raw_message(toy.workers_port, {"source": "operator", "type": "launch worker",
                                              "payload": {"module": "nowcast_db.workers.sleep", "host": "hpc"}})
    assert bad_host["type"] == "launch refused" and "not in the config's run: enabled hosts" in bad_host["payload"]
    assert toy.sql("SELECT count(*) FROM worker_runs") == [(0,)]


@both_backends
def test_nowcast_launch_command(running_toy):
    toy = running_toy
    result = subprocess.run([*NOWCAST, "launch", str(toy.config_file), "sleep", "--sleep-time", "0"],
                            capture_output=True, text=True, env=toy.env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "launched nowcast_db.workers.sleep --sleep-time 0 on localhost: run 1" in result.stdout
    wait_until(lambda: toy.sql("SELECT state, launched_by FROM worker_runs WHERE id = 1") == [("succeeded", "operator")],
               what="sleep launched from the command line")


def test_nowcast_launch_says_plainly_when_manager_is_down(toy):
    toy.start("message_broker")  # no manager
    result = subprocess.run([*NOWCAST, "launch", str(toy.config_file), "--timeout", "1", "awaken"],
                            capture_output=True, text=True, env=toy.env, timeout=60)
    assert result.returncode == 1
    assert "nowcast: error: no reply from manager" in result.stderr
    assert "Traceback" not in result.stderr


def test_nowcast_launch_refused_is_one_line(running_toy):
    toy = running_toy
    result = subprocess.run([*NOWCAST, "launch", str(toy.config_file), "my.workers.unknown"],
                            capture_output=True, text=True, env=toy.env, timeout=60)
    assert result.returncode == 1
    error = result.stderr.strip()
    assert "\n" not in error
    assert error.startswith("nowcast: error: launch request from operator")
    assert "worker 'unknown' is not in the message registry" in error


def test_nowcast_launch_of_a_name_not_in_the_registry_says_so(toy):
    result = subprocess.run([*NOWCAST, "launch", str(toy.config_file), "nosuchworker"],
                            capture_output=True, text=True, env=toy.env, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"nowcast: error: worker 'nosuchworker' is not in {toy.config_file}'s message "
                                     f"registry (registered: sleep, awaken, rotate_logs, clear_checklist)")


def test_nowcast_launch_never_creates_a_database(toy):
    toy.start("message_broker")
    result = subprocess.run([*NOWCAST, "launch", str(toy.config_file), "--timeout", "1", "awaken"],
                            capture_output=True, text=True, env=toy.env, timeout=60)
    assert result.returncode == 1
    assert not toy.db_path.exists()
