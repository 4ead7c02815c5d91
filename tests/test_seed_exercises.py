"""The toy example's exercises (the to-do list at the end of the seed's
toy-example.rst), done as written there with our package name, under circus."""
import subprocess

from conftest import needs_circus, under_circus, wait_until

WITH_ROTATE_LOGS = '''
from nowcast_db import NextWorker


def after_sleep(msg, config, checklist):
    return {"crash": [], "failure": [], "success": [NextWorker("nowcast_db.workers.awaken")]}[msg.type]


def after_awaken(msg, config, checklist):
    return {"crash": [], "failure": [], "success": [NextWorker("nowcast_db.workers.rotate_logs")]}[msg.type]


def after_rotate_logs(msg, config, checklist):
    return []
'''


def runs(toy):
    return toy.sql("SELECT worker, state, launched_by FROM worker_runs ORDER BY id")


@needs_circus
def test_seed_exercises_under_circus(toy):
    with under_circus(toy) as circusctl:
        # run the sleep worker with --sleep-time, then with --debug
        slept = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "1")
        assert "slept for 1 seconds" in slept.stdout
        wait_until(lambda: runs(toy) == [("sleep", "succeeded", "external"), ("awaken", "succeeded", "manager")],
                   what="sleep then awaken")
        debug = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0", "--debug")
        assert "**debug mode** message that would have been sent to manager: (success)" in debug.stdout
        assert len(runs(toy)) == 2

        # circusctl status in a third terminal
        status = subprocess.run([*circusctl, "status"], env=toy.env, capture_output=True, text=True, timeout=30)
        assert "manager: active" in status.stdout

        # add after_rotate_logs, run rotate_logs by hand; then launch it from after_awaken
        toy.write_next_workers(WITH_ROTATE_LOGS)
        rotated = toy.run_worker("nowcast_db.workers.rotate_logs")
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        wait_until(lambda: runs(toy)[-1] == ("rotate_logs", "succeeded", "external"), what="rotate_logs by hand")
        toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
        wait_until(lambda: runs(toy)[-3:] == [("sleep", "succeeded", "external"), ("awaken", "succeeded", "manager"),
                                               ("rotate_logs", "succeeded", "manager")],
                   what="sleep → awaken → rotate_logs")
        payload = toy.sql("SELECT json(payload) FROM messages WHERE source = 'rotate_logs' ORDER BY id DESC LIMIT 1")
        assert payload == [('{"log files":[]}',)]
