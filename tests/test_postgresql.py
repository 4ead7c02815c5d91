"""What is particular to a history kept in PostgreSQL: JSONB columns that
operators query with ``->``/``->>``, a URL taken from the environment, and
readers (``nowcast history``, nowcast-tui) reading while the manager writes.

The rest of the database-touching suite runs on PostgreSQL too (the tests
marked ``@both_backends``).  Each test gets a fresh database, dropped
afterwards; see pg.py for the server and how the cases are skipped without one.
"""
from __future__ import annotations

import threading
import time

from sqlalchemy import event

from conftest import both_backends, only_postgresql, raw_message, wait_until
from nowcast_db.database import queries
from nowcast_tui.data import History
from nowcast_tui.filters import MessageFilter, RunFilter


@only_postgresql
def test_toy_system_records_its_history_in_postgresql_named_by_an_environment_variable(toy):
    toy.env["NOWCAST_TEST_HISTORY_URL"] = toy.database_url
    toy.edit_config(lambda config: config.update({"database url": "$(NOWCAST.ENV.NOWCAST_TEST_HISTORY_URL)"}))
    toy.start_system()
    result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_until(lambda: toy.sql("SELECT worker, state, exit_code FROM worker_runs ORDER BY id")
               == [("sleep", "succeeded", None), ("awaken", "succeeded", 0)], what="runs in PostgreSQL")
    # what an operator types in psql
    assert toy.sql("SELECT value->>'sleep time' FROM checklist WHERE key = 'sleepyhead'") == [("0",)]
    assert toy.sql("SELECT source FROM messages WHERE payload @> '{\"awoke\": true}'") == [("awaken",)]
    assert toy.sql("SELECT DISTINCT pg_typeof(payload)::text, pg_typeof(received_at)::text FROM messages") == [
        ("jsonb", "timestamp without time zone")]


# --- readers while the manager writes ----------------------------------------------

QUICK_NEXT_WORKERS = '''
from nowcast_db import NextWorker


def after_sleep(msg, config, checklist):
    # every so often a launch, so that runs are triggered by messages while readers read
    return [NextWorker("quick")] if msg.payload.get("launch") else []


def after_quick(msg, config, checklist):
    return []
'''


class Writer(threading.Thread):
    """A client sending `sleep success` messages until told to stop; each is recorded with its run and
    checklist change in the manager's transaction, and every 20th launches the `quick` worker."""

    def __init__(self, toy, index: int, stopping: threading.Event):
        super().__init__(daemon=True)
        self.toy, self.index, self.stopping = toy, index, stopping
        self.acked, self.errors = 0, []

    def run(self):
        n = 0
        while not self.stopping.is_set():
            try:
                reply = raw_message(self.toy.workers_port, {
                    "source": "sleep", "type": "success", "message id": f"writer-{self.index}-{n}",
                    "payload": {"sleep time": n, "writer": self.index, "launch": n % 20 == 0}})
            except Exception as err:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(err))
                return
            if reply["type"] == "ack":
                self.acked += 1
            else:
                self.errors.append(repr(reply))
            n += 1


class Reader(threading.Thread):
    """Reads what an operator reads, over and over, and notes any read that
    fails or shows half of what the manager wrote in one transaction."""

    def __init__(self, read, stopping: threading.Event):
        super().__init__(daemon=True)
        self.read, self.stopping = read, stopping
        self.reads, self.problems = 0, []

    def run(self):
        while not self.stopping.is_set():
            try:
                self.problems += self.read()
            except Exception as err:  # noqa: BLE001 - reported by the test
                self.problems.append(f"read failed: {err!r}")
            self.reads += 1
            if len(self.problems) > 20:
                return


def launched_run_problems(runs, detail) -> list[str]:
    """A run the manager launched must show the message that triggered it, and that message must be there."""
    problems = []
    for run in runs:
        if run.launched_by != "manager":
            continue
        if run.triggered_by is None:
            problems.append(f"run {run.id} ({run.worker}) launched by the manager without its triggering message")
            continue
        trigger = detail(run.id)["trigger"]
        if trigger is None or (trigger.id, trigger.source, trigger.type) != (run.triggered_by, "sleep", "success"):
            problems.append(f"run {run.id}: triggering message {run.triggered_by} shown as {trigger}")
    return problems


def reported_run_problems(runs, detail) -> list[str]:
    """A sleep run ended by its message must show that message and the checklist change it made."""
    problems = []
    for run in runs:
        if run.worker != "sleep" or run.state != "succeeded":
            continue
        shown = detail(run.id)
        messages = [(m.source, m.type) for m in shown["messages"]]
        changes = {(c.key, c.message_id) for c in shown["mutations"]}
        if messages != [("sleep", "success")] or changes != {("sleepyhead", shown["messages"][0].id)}:
            problems.append(f"run {run.id} succeeded, shown with messages {messages} and changes {changes}")
    return problems


def history_reads(engine):
    """What `nowcast history runs|messages|checklist|chain` read."""
    def read():
        runs = queries.run_rows(engine, limit=30)
        problems = launched_run_problems(runs, lambda run_id: {"trigger": _trigger(engine, run_id)})
        for message in queries.message_rows(engine, source="sleep", limit=30):
            if message.run_id is None:
                problems.append(f"message {message.id} from sleep recorded without its run")
        for change in queries.checklist_mutations(engine, key="sleepyhead", limit=30):
            if (change.source, change.type) != ("sleep", "success"):
                problems.append(f"checklist change {change.id} shown without its message")
        for run in runs[-3:]:
            chain = queries.run_chain(engine, run.id)
            if run.launched_by == "manager" and [step[0].worker for step in chain] != ["sleep", "quick"]:
                problems.append(f"chain of run {run.id}: {[step[0].worker for step in chain]}")
        return problems
    return read


def _trigger(engine, run_id):
    chain = queries.run_chain(engine, run_id)
    return chain[-1][1]


def tui_reads(history: History):
    """What nowcast-tui's screens read every second: header, Runs, Messages, a run's detail, the checklist."""
    def read():
        status = history.status()
        runs = history.runs_page(RunFilter(), limit=10)
        problems = launched_run_problems(runs, history.run_detail) + reported_run_problems(runs, history.run_detail)
        if status["running"] < 0 or not status["manager_up"]:
            problems.append(f"header: {status}")
        for message in history.messages_page(MessageFilter(), limit=30):
            if message.source == "sleep" and message.run_id is None:
                problems.append(f"message {message.id} from sleep shown without its run")
        if "sleepyhead" not in history.checklist():
            problems.append("checklist without sleepyhead")
        return problems
    return read


@only_postgresql
def test_readers_see_only_whole_transactions_while_the_manager_writes(toy):
    """`nowcast history` and nowcast-tui reading in a loop while three clients keep the manager
    writing: every read succeeds and shows each message with its run, its checklist change and
    the launch it decided, never a part of them.  (How long the reads take is measured in
    bench/pg_concurrency.py, not here.)"""
    (toy.directory / "quick.py").write_text("")  # a worker that exits at once: launched, reaped, recorded died
    toy.edit_config(lambda config: config["message registry"]["workers"].update(
        {"quick": {"checklist key": "quick", "success": "ok", "failure": "failed", "crash": "crashed"}}))
    toy.write_next_workers(QUICK_NEXT_WORKERS)
    toy.start_system()
    assert raw_message(toy.workers_port, {"source": "sleep", "type": "success", "payload": {"launch": True}})[
        "type"] == "ack"
    wait_until(lambda: toy.sql("SELECT state FROM worker_runs WHERE worker = 'quick'") == [("died",)],
               what="the first quick run")

    engine = queries.open_history(toy.database_url)
    history = History(toy.database_url)
    stopping = threading.Event()
    writers = [Writer(toy, index, stopping) for index in range(3)]
    readers = [Reader(history_reads(engine), stopping), Reader(tui_reads(history), stopping)]
    try:
        for thread in writers + readers:
            thread.start()
        time.sleep(4)
    finally:
        stopping.set()
        for thread in writers + readers:
            thread.join(30)
        engine.dispose()
        history.close()

    assert [writer.errors for writer in writers] == [[], [], []]
    assert [reader.problems for reader in readers] == [[], []]
    assert all(reader.reads >= 5 for reader in readers), [reader.reads for reader in readers]
    acked = sum(writer.acked for writer in writers)
    assert acked >= 100, acked
    print(f"{acked} messages acked; reads: {[reader.reads for reader in readers]}")
    wait_until(lambda: toy.sql("SELECT count(*) FROM worker_runs WHERE state IN ('pending', 'running')") == [(0,)],
               what="every quick run to end")
    assert toy.sql("SELECT count(*) FROM messages WHERE source = 'sleep' AND type = 'success'") == [(acked + 1,)]
    assert toy.sql("SELECT count(*) FROM worker_runs AS r LEFT JOIN messages AS m ON m.id = r.triggered_by "
                   "WHERE r.launched_by = 'manager' AND m.id IS NULL") == [(0,)]


@both_backends
def test_run_detail_is_one_snapshot_even_when_the_manager_commits_while_it_reads(toy):
    """The Run detail screen reads the run, then its messages, in one transaction: a message the manager
    records in between (here: the one that ends the run) is in neither or in both, never in one only."""
    toy.register_need("sleep")
    toy.write_next_workers("def after_sleep(msg, config, checklist):\n    return []\n")
    toy.start_system()
    assert raw_message(toy.workers_port, {"source": "sleep", "type": "success", "payload": {"sleep time": 0}})[
        "type"] == "ack"
    assert raw_message(toy.workers_port, {"source": "sleep", "type": "need", "payload": "sleepyhead"})[
        "type"] == "ack"  # opens a sleep run, left running
    run_id, = toy.sql("SELECT id FROM worker_runs WHERE worker = 'sleep' AND state = 'running'")[0]
    engine = queries.open_history(toy.database_url)
    sent = []

    @event.listens_for(engine, "after_cursor_execute")
    def manager_commits_after_the_first_read(connection, cursor, statement, *_):
        # once: after run_detail has read the run row, before it reads the run's messages
        if not sent and statement.lstrip().upper().startswith("SELECT"):
            sent.append(raw_message(toy.workers_port, {"source": "sleep", "type": "success",
                                                       "payload": {"sleep time": 1}}))

    try:
        detail = queries.run_detail(engine, run_id)
    finally:
        event.remove(engine, "after_cursor_execute", manager_commits_after_the_first_read)
    try:
        assert sent[0]["type"] == "ack"
        assert toy.sql("SELECT state FROM worker_runs WHERE id = ?", (run_id,)) == [("succeeded",)]
        assert (detail["run"].state, [m.type for m in detail["messages"]]) == ("running", ["need"])
        again = queries.run_detail(engine, run_id)
        assert (again["run"].state, [m.type for m in again["messages"]]) == ("succeeded", ["need", "success"])
    finally:
        engine.dispose()
