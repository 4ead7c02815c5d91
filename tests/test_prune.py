"""`nowcast db prune`: old history deleted in short batches while a real
manager keeps recording; nothing newer than the cut-off lost, the checklist
and what rebuilds it from the cut-off on kept."""
import datetime as dt
import subprocess
import sys
import threading
import time

import yaml
from conftest import both_backends, raw_message, wait_until

NOWCAST = [sys.executable, "-m", "nowcast_db.cli"]


def nowcast(toy, *args, timeout=120):
    return subprocess.run([*NOWCAST, *args], capture_output=True, text=True, cwd=toy.directory, env=toy.env,
                          timeout=timeout)


def send(toy, source, type, payload=None, **extra):
    reply = raw_message(toy.workers_port, {"source": source, "type": type, "payload": payload, **extra})
    assert reply["type"] == "ack", reply
    return reply


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)


def sql_time(moment: dt.datetime) -> str:
    """A time as the database keeps it (naive UTC text), for comparing in SQL."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def one_line_error(result, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("nowcast: error: ") and result.stderr.count("\n") == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


class Sender(threading.Thread):
    """A client that keeps sending `need` messages (recorded, no checklist change) and notes each acked one."""

    def __init__(self, toy):
        super().__init__(daemon=True)
        self.toy, self.acked, self.stopping, self.errors = toy, [], threading.Event(), []

    def run(self):
        n = 0
        while not self.stopping.is_set():
            message_id = f"prune-test-{n}"
            try:
                reply = raw_message(self.toy.workers_port, {"source": "awaken", "type": "need", "payload": "awake",
                                                            "message id": message_id})
            except Exception as err:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(err))
                return
            if reply["type"] == "ack":
                self.acked.append(message_id)
            else:
                self.errors.append(repr(reply))
            n += 1


@both_backends
def test_prune_while_the_manager_records_keeps_everything_newer_and_the_checklist(toy):
    toy.register_need("sleep", "awaken")
    toy.start_system()
    # old history: sleep → awaken launched by the manager, hand-sent reports, an open run
    result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_until(lambda: toy.sql("SELECT count(*) FROM worker_runs WHERE worker = 'awaken' AND exit_code = 0")
               == [(1,)], what="awaken run to be reaped")
    launched = toy.sql("SELECT id FROM worker_runs WHERE launched_by = 'manager'")
    assert len(launched) == 1
    for n in range(15):
        send(toy, "awaken", "success", {"awoke": True, "n": n})
        send(toy, "sleep", "failure", {"sleep time": n})
    send(toy, "sleep", "need", "sleepyhead")  # opens a sleep run that never ends
    open_runs = toy.sql("SELECT id FROM worker_runs WHERE state IN ('pending', 'running')")
    assert len(open_runs) == 1
    open_run = open_runs[0][0]
    old_last = when(toy.sql("SELECT max(received_at) FROM messages")[0][0])
    time.sleep(0.2)
    send(toy, "awaken", "success", {"awoke": "after the cut-off"})
    new_first = when(toy.sql("SELECT max(received_at) FROM messages")[0][0])
    assert new_first > old_last
    cutoff = old_last + (new_first - old_last) / 2
    later = new_first + dt.timedelta(seconds=1)

    def checklist_at(moment):
        result = nowcast(toy, "checklist", str(toy.config_file), "--at", moment.isoformat())
        assert result.returncode == 0, result.stderr
        return yaml.safe_load(result.stdout)  # a mapping: keys folded from fewer changes may come in another order

    checklist_rows = "SELECT key, value, updated_at, message_id FROM checklist ORDER BY key"
    checklist_before = toy.sql(checklist_rows)
    at_cutoff, at_later = checklist_at(cutoff), checklist_at(later)
    assert at_later["awake"] == {"awoke": "after the cut-off", "n": 14} and at_cutoff["awake"]["awoke"] is True
    old_messages = toy.sql("SELECT count(*) FROM messages WHERE received_at < ?", (sql_time(cutoff),))[0][0]
    assert old_messages == 2 + 30 + 1  # the sleep and awaken workers' reports, 30 sent by hand, the need
    newer_before = toy.sql("SELECT message_id FROM messages WHERE received_at >= ?", (sql_time(cutoff),))

    sender = Sender(toy)
    sender.start()
    try:
        wait_until(lambda: len(sender.acked) >= 5 or sender.errors, what="the client's first messages")
        pruned = nowcast(toy, "db", "prune", str(toy.config_file), "--before", cutoff.isoformat(),
                         "--batch-size", "4")
        acked_during = len(sender.acked)
        wait_until(lambda: len(sender.acked) >= acked_during + 5 or sender.errors, what="messages after the prune")
    finally:
        sender.stopping.set()
        sender.join(30)
    assert not sender.errors, sender.errors
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert "messages: 30 removed" in pruned.stdout, pruned.stdout
    assert "checklist_mutations: 30 removed" in pruned.stdout, pruned.stdout  # 32 old changes, 2 keys' newest kept

    # nothing newer than the cut-off is lost, including every message acked while pruning
    present = {row[0] for row in toy.sql("SELECT message_id FROM messages")}
    assert set(sender.acked) <= present
    assert {row[0] for row in newer_before} <= present
    # old rows are gone but for what is still needed
    old = toy.sql(f"SELECT source, type, {toy.json_field('payload', 'n')} FROM messages WHERE received_at < ? "
                  "ORDER BY id", (sql_time(cutoff),))
    # the newest sleepyhead change's message (also the checklist's), the newest awake change's, the open run's
    assert old == [("awaken", "success", 14), ("sleep", "failure", None), ("sleep", "need", None)]
    assert toy.sql("SELECT key FROM checklist_mutations WHERE at < ? ORDER BY key", (sql_time(cutoff),)) == [
        ("awake",), ("sleepyhead",)]
    assert toy.sql("SELECT count(*) FROM checklist_mutations WHERE message_id IS NULL") == [(0,)]
    assert toy.sql("SELECT count(*) FROM worker_runs WHERE id = ?", launched[0]) == [(0,)]
    # open runs and their messages are kept
    assert toy.sql("SELECT state FROM worker_runs WHERE id = ?", (open_run,)) == [("running",)]
    assert toy.sql("SELECT type FROM messages WHERE run_id = ? ORDER BY id", (open_run,))[0] == ("need",)
    # the checklist, and the checklist rebuilt at any time from the cut-off on, are as they were
    assert toy.sql(checklist_rows) == checklist_before
    assert checklist_at(cutoff) == at_cutoff
    assert checklist_at(later) == at_later
    # and replay from the cut-off still decides as the manager did
    replayed = nowcast(toy, "replay", str(toy.config_file), "--since", cutoff.isoformat())
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr


def test_prune_errors_are_one_line_with_status_2(toy):
    one_line_error(nowcast(toy, "db", "prune", str(toy.config_file), "--before", "yesterday"), "--before")
    one_line_error(nowcast(toy, "db", "prune", str(toy.config_file), "--before", "2999-01-01"), "future")
    one_line_error(nowcast(toy, "db", "prune", str(toy.config_file), "--before", "2020-01-01",
                           "--batch-size", "0"), "--batch-size")
    one_line_error(nowcast(toy, "db", "prune", str(toy.config_file), "--before", "2020-01-01"),
                   "no history database")
    (toy.directory / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    one_line_error(nowcast(toy, "db", "prune", str(toy.config_file), "--before", "2020-01-01",
                           "--db", f"sqlite:///{toy.directory / 'junk.sqlite'}"), "cannot read")


@both_backends
def test_prune_of_an_empty_history_removes_nothing(toy):
    upgraded = nowcast(toy, "db", "upgrade", str(toy.config_file))
    assert upgraded.returncode == 0, upgraded.stderr
    result = nowcast(toy, "db", "prune", str(toy.config_file), "--before", "2020-01-01")
    assert result.returncode == 0, result.stderr
    assert "messages: 0 removed" in result.stdout
