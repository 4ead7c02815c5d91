"""`nowcast db prune` deletes the output files of the runs it deletes."""
import subprocess
import sys
from pathlib import Path

from conftest import raw_message, wait_until


def make_old(toy, run_id: int, when: str) -> None:
    """Move a run, its messages and the checklist changes they made back to ``when``."""
    toy.execute(f"UPDATE worker_runs SET launched_at = '{when}', started_at = '{when}', finished_at = '{when}' "
                f"WHERE id = {run_id}",
                f"UPDATE checklist_mutations SET at = '{when}' WHERE message_id IN "
                f"(SELECT id FROM messages WHERE run_id = {run_id})",
                f"UPDATE messages SET received_at = '{when}' WHERE run_id = {run_id} "
                f"OR id = (SELECT triggered_by FROM worker_runs WHERE id = {run_id})")


def launch_sleep(toy) -> int:
    reply = raw_message(toy.workers_port, {"source": "operator", "type": "launch worker", "payload": {
        "module": "nowcast_db.workers.sleep", "args": ["--sleep-time", "0"]}})
    run_id = reply["payload"]["run id"]
    wait_until(lambda: toy.sql("SELECT state FROM worker_runs WHERE id = ? AND exit_code IS NOT NULL", (run_id,))
               == [("succeeded",)], what=f"run {run_id} to succeed")
    return run_id


def test_pruned_runs_lose_their_output_files_and_kept_runs_keep_theirs(toy):
    toy.write_next_workers("def after_sleep(msg, config, checklist):\n    return []\n")
    toy.start_system()
    old_run, newest_old_run, kept_run = launch_sleep(toy), launch_sleep(toy), launch_sleep(toy)
    old_file, kept_file = (Path(toy.sql("SELECT output_path FROM worker_runs WHERE id = ?", (run,))[0][0])
                           for run in (old_run, kept_run))
    assert old_file.is_file() and kept_file.is_file()
    # years old; the second is kept all the same: its checklist change is the newest before the date
    make_old(toy, old_run, "2020-01-01 00:00:00.000000")
    make_old(toy, newest_old_run, "2020-01-02 00:00:00.000000")
    pruned = subprocess.run([sys.executable, "-m", "nowcast_db.cli", "db", "prune", str(toy.config_file),
                             "--before", "2021-01-01", "--no-progress"], cwd=toy.directory, env=toy.env,
                            capture_output=True, text=True, timeout=120)
    assert pruned.returncode == 0, pruned.stderr
    assert "worker_runs: 1 removed" in pruned.stdout
    assert "run output files: 1 deleted" in pruned.stdout
    assert not old_file.exists()
    assert kept_file.is_file()
    assert toy.sql("SELECT id FROM worker_runs ORDER BY id") == [(newest_old_run,), (kept_run,)]
