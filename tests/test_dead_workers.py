"""Workers that die without a final message, or run past their time limit,
are recorded as such and handled as that worker's crash."""
import os
import signal

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
