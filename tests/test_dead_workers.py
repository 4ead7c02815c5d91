"""Workers that die without a final message, or run past their time limit,
are recorded as such and handled as that worker's crash."""
import os
import signal
import socket
import subprocess
import sys

from conftest import both_backends, raw_message, wait_until

CRASH_LAUNCHES_AWAKEN = '''
from nowcast_db import NextWorker

def after_sleep(msg, config, checklist):
    return [NextWorker("nowcast_db.workers.awaken")] if msg.type == "crash" else []

def after_awaken(msg, config, checklist):
    return []
'''


def launch_long_sleep(toy) -> int:
    reply = raw_message(toy.workers_port, {"source": "operator", "type": "launch worker", "payload": {
        "module": "nowcast_db.workers.sleep", "args": ["--sleep-time", "60"]}})
    return reply["payload"]["run id"]


@both_backends
def test_worker_killed_with_sigkill_is_died_and_its_crash_branch_runs(toy):
    toy.write_next_workers(CRASH_LAUNCHES_AWAKEN)
    toy.start_system()
    run_id = launch_long_sleep(toy)
    rows = wait_until(lambda: toy.sql("SELECT pid FROM worker_runs WHERE id = ? AND pid IS NOT NULL", (run_id,)),
                      what="sleep running")
    pid = rows[0][0]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: toy.sql("SELECT state, exit_code FROM worker_runs WHERE id = ?", (run_id,))
               == [("died", -9)], timeout=10, what="died recorded")
    assert "killed by signal 9" in toy.sql("SELECT reason FROM worker_runs WHERE id = ?", (run_id,))[0][0]
    # the crash made up for it is recorded in the manager's next transaction
    crash = wait_until(lambda: toy.sql("SELECT id, type, synthesized FROM messages WHERE run_id = ?", (run_id,)),
                       timeout=10, what="the synthesized crash message")
    assert [(row[1], row[2]) for row in crash] == [("crash", 1)]
    wait_until(lambda: toy.sql("SELECT triggered_by, state FROM worker_runs WHERE worker = 'awaken'")
               == [(crash[0][0], "succeeded")], what="awaken launched by the crash branch")


@both_backends
def test_worker_past_its_time_limit_is_terminated_and_timed_out(toy):
    toy.write_next_workers(CRASH_LAUNCHES_AWAKEN)
    toy.edit_config(lambda config: config["message registry"]["workers"]["sleep"].update({"time limit": "1s"}))
    toy.start_system()
    run_id = launch_long_sleep(toy)
    wait_until(lambda: toy.sql("SELECT state, exit_code FROM worker_runs WHERE id = ?", (run_id,))
               == [("timed out", 143)], timeout=15, what="timed out recorded")
    reason = toy.sql("SELECT reason FROM worker_runs WHERE id = ?", (run_id,))[0][0]
    assert reason == "ran longer than its time limit (1s); terminated"
    wait_until(lambda: toy.sql("SELECT type, synthesized FROM messages WHERE run_id = ?", (run_id,)) == [("crash", 1)],
               timeout=10, what="the synthesized crash message")
    wait_until(lambda: toy.sql("SELECT state FROM worker_runs WHERE worker = 'awaken'") == [("succeeded",)],
               what="awaken launched by the crash branch")


def test_bad_time_limit_is_a_config_error_naming_the_key(toy):
    toy.edit_config(lambda config: config["message registry"]["workers"]["sleep"].update({"time limit": "soon"}))
    process = toy.start("manager")
    assert process.wait(30) == 2
    assert "key 'message registry: workers: sleep: time limit': expected a duration such as 90s" in \
        toy.log("manager")


NEEDY_SLEEPER = '''
"""The sleep worker, started by hand: it asks the manager for a checklist value, then sleeps."""
import time
from nowcast_db import NowcastWorker

def work(parsed_args, config, tell_manager):
    try:
        tell_manager("need", "sleepyhead")
    except Exception:  # the checklist has no such key yet; the message is recorded all the same
        pass
    time.sleep(60)
    return {}

worker = NowcastWorker("sleep", description="needy sleeper")
worker.init_cli()
worker.run(work, lambda args: "success", lambda args: "failure")
'''


def start_needy_sleeper(toy):
    """A worker started by hand (no run id) that sends `need` and sleeps: its run is open."""
    toy.register_need("sleep")
    toy.start_system()
    script = toy.directory / "needy_sleeper.py"
    script.write_text(NEEDY_SLEEPER)
    worker = subprocess.Popen([sys.executable, str(script), str(toy.config_file)], cwd=toy.directory, env=toy.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = wait_until(lambda: toy.sql("SELECT id, launched_by, state, pid, host FROM worker_runs"),
                      what="the hand-started run recorded from its need message")
    return worker, rows[0]


@both_backends
def test_worker_started_by_hand_that_is_killed_is_died_and_its_crash_branch_runs(toy):
    toy.write_next_workers(CRASH_LAUNCHES_AWAKEN)
    worker, (run_id, launched_by, state, pid, host) = start_needy_sleeper(toy)
    try:
        assert (launched_by, state, pid, host) == ("external", "running", worker.pid, socket.gethostname())
        wait_until(lambda: f"watching run {run_id} of sleep (pid {worker.pid}), started by hand" in toy.log("manager"),
                   what="the manager watching the run")
        worker.kill()
        worker.wait(10)
        wait_until(lambda: toy.sql("SELECT state FROM worker_runs WHERE id = ?", (run_id,)) == [("died",)],
                   timeout=10, what="died recorded")
        reason = toy.sql("SELECT reason FROM worker_runs WHERE id = ?", (run_id,))[0][0]
        assert reason == (f"process {worker.pid} (started by hand on {host}) ended without sending a final "
                          f"message; exit status unknown")
        wait_until(lambda: toy.sql("SELECT type, synthesized FROM messages WHERE run_id = ? ORDER BY id", (run_id,))
                   == [("need", 0), ("crash", 1)], timeout=10, what="the synthesized crash message")
        wait_until(lambda: toy.sql("SELECT state FROM worker_runs WHERE worker = 'awaken'") == [("succeeded",)],
                   what="awaken launched by the crash branch")
    finally:
        worker.kill()
        worker.wait(10)


def test_worker_started_by_hand_is_watched_again_after_a_manager_sigkill(toy):
    worker, (run_id, *_) = start_needy_sleeper(toy)
    try:
        toy.stop("manager", signal.SIGKILL)
        toy.start("manager")
        wait_until(lambda: f"watching run {run_id} of sleep (pid {worker.pid}), started by hand" in toy.log("manager"),
                   what="the new manager watching the run")
        worker.kill()
        worker.wait(10)
        wait_until(lambda: toy.sql("SELECT state FROM worker_runs WHERE id = ?", (run_id,)) == [("died",)],
                   timeout=10, what="died recorded by the new manager")
    finally:
        worker.kill()
        worker.wait(10)
