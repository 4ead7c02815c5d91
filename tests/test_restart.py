"""The manager is killed with SIGKILL and restarted: its state comes back from the database."""
import json
import os
import signal

from conftest import both_backends, raw_message, wait_until

HOLDING_NEXT_WORKERS = '''
from nowcast_db import NextWorker

def after_sleep(msg, config, checklist):
    if msg.type != "success":
        return []
    return [NextWorker("nowcast_db.workers.awaken")], {"rotate_logs"}

def after_awaken(msg, config, checklist):
    return []

def after_rotate_logs(msg, config, checklist):
    return []
'''


@both_backends
def test_checklist_and_pending_race_condition_hold_survive_kill_9(toy):
    toy.register_need("sleep")
    toy.start_system()
    toy.write_next_workers(HOLDING_NEXT_WORKERS)
    reply = raw_message(toy.workers_port, {"source": "sleep", "type": "success", "payload": {"sleep time": 7}})
    assert reply["type"] == "ack"
    holds = toy.sql(f"SELECT {toy.json_text('value')} FROM manager_state WHERE name = 'race condition holds'")
    assert [hold["waiting for"] for hold in json.loads(holds[0][0])] == [["rotate_logs"]]
    assert toy.sql("SELECT count(*) FROM worker_runs WHERE worker = 'awaken'") == [(0,)]

    assert toy.stop("manager", signal.SIGKILL) == -signal.SIGKILL
    toy.start_manager()
    assert "race condition holds restored: [['rotate_logs']]" in toy.log("manager")

    need = raw_message(toy.workers_port, {"source": "sleep", "type": "need", "payload": "sleepyhead"})
    assert need == {"source": "manager", "type": "ack", "payload": {"sleep time": 7}}

    released = raw_message(toy.workers_port, {"source": "rotate_logs", "type": "success", "payload": None})
    assert released["type"] == "ack"
    wait_until(lambda: toy.sql("SELECT state FROM worker_runs WHERE worker = 'awaken'") == [("succeeded",)],
               what="held awaken launch to be released and run")
    holds = toy.sql(f"SELECT {toy.json_text('value')} FROM manager_state WHERE name = 'race condition holds'")
    assert json.loads(holds[0][0]) == []


@both_backends
def test_ignore_checklist_starts_empty_but_keeps_history(toy):
    toy.register_need("sleep")
    toy.start_system()
    raw_message(toy.workers_port, {"source": "sleep", "type": "failure", "payload": {"sleep time": 1}})
    toy.stop("manager")
    toy.start_manager("--ignore-checklist")
    need = raw_message(toy.workers_port, {"source": "sleep", "type": "need", "payload": "sleepyhead"})
    assert need["type"] == "checklist key not found"
    assert toy.sql("SELECT count(*) FROM checklist") == [(0,)]
    assert toy.sql("SELECT operation FROM checklist_mutations ORDER BY id") == [("set",), ("clear",)]
    assert toy.sql("SELECT source, type FROM messages ORDER BY id")[0] == ("sleep", "failure")


@both_backends
def test_launch_recorded_pending_but_never_started_is_marked_lost_on_restart(toy):
    """Simulates a crash between commit and launch: a pending row with no process."""
    toy.start("message_broker")
    toy.start_manager()
    toy.stop("manager", signal.SIGKILL)
    toy.execute(
        "INSERT INTO worker_runs (worker, module, args, host, launched_by, state, launched_at) "
        "VALUES ('awaken', 'nowcast_db.workers.awaken', '[]', 'localhost', 'manager', 'pending', "
        "'2026-01-01 00:00:00')"
    )
    toy.start_manager()
    rows = toy.sql("SELECT state, reason FROM worker_runs WHERE worker = 'awaken'")
    assert rows[0][0] == "lost"
    assert "not started again so that nothing runs twice" in rows[0][1]
    assert "marked lost" in toy.log("manager")


@both_backends
def test_worker_started_before_a_manager_restart_is_still_seen_to_die(toy):
    """The new manager cannot wait() for a process the old one started; it watches the pid instead."""
    run_id, pid = long_sleep_then_manager_killed(toy)
    toy.start_manager()
    assert f"watching run {run_id} of sleep (pid {pid})" in toy.log("manager")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: toy.sql("SELECT state FROM worker_runs WHERE id = ?", (run_id,)) == [("died",)],
               timeout=10, what="died recorded by the new manager")
    assert "exit status unknown" in toy.sql("SELECT reason FROM worker_runs WHERE id = ?", (run_id,))[0][0]
    # the crash made up for it is recorded in the manager's next transaction
    wait_until(lambda: toy.sql("SELECT type, synthesized FROM messages WHERE run_id = ?", (run_id,)) == [("crash", 1)],
               timeout=10, what="the synthesized crash message")


def test_runs_left_by_a_manager_on_another_host_are_not_watched_here_and_said_so(toy):
    """Pids only mean something on the host that started them (a PostgreSQL history outlives a host move)."""
    run_id, pid = long_sleep_then_manager_killed(toy)
    toy.execute("UPDATE manager_state SET value = json_set(value, '$.host', 'old-manager-host') "
                "WHERE name = 'heartbeat'")
    try:
        toy.start_manager()
        log = toy.log("manager")
        assert f"watching run {run_id}" not in log
        assert f"run {run_id} of sleep (pid {pid}) was started by the manager on old-manager-host" in log
    finally:
        os.kill(pid, signal.SIGKILL)
        toy.stop("manager")  # its run stays running, unwatched: nothing for the teardown to wait for


def long_sleep_then_manager_killed(toy) -> tuple[int, int]:
    """A 60 s sleep run launched by the manager, then the manager SIGKILLed: (run id, the worker's pid)."""
    toy.write_next_workers(HOLDING_NEXT_WORKERS.replace('{"rotate_logs"}', 'set()'))
    toy.start_system()
    reply = raw_message(toy.workers_port, {"source": "operator", "type": "launch worker", "payload": {
        "module": "nowcast_db.workers.sleep", "args": ["--sleep-time", "60"]}})
    run_id = reply["payload"]["run id"]
    pid = wait_until(lambda: toy.sql("SELECT pid FROM worker_runs WHERE id = ? AND pid IS NOT NULL", (run_id,)),
                     what="sleep running")[0][0]
    toy.stop("manager", signal.SIGKILL)
    return run_id, pid
