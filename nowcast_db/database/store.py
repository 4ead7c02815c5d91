"""Reads and writes of system state.  Every write is one transaction."""
from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from nowcast_db.database.driver import DriverInList, DriverStatement
from nowcast_db.database.models import (
    ChecklistEntry,
    ChecklistMutation,
    ManagerStateRow,
    MessageRow,
    WorkerRun,
)
from nowcast_db.decision import Decision, Hold, ManagerState
from nowcast_db.message import Message
from nowcast_db.runs import OPEN_STATES, final_state

MESSAGES = MessageRow.__table__
RUNS = WorkerRun.__table__
CHECKLIST = ChecklistEntry.__table__
MUTATIONS = ChecklistMutation.__table__
STATE = ManagerStateRow.__table__

# Statements of the hot path, compiled once and run on the driver's cursor
# (see driver.py); parameters named b_* where a column of the same name is also set.
MESSAGE_COLUMNS = ["id", "message_id", "received_at", "source", "type", "payload", "raw", "reply_type",
                   "reply_payload", "run_id", "error", "synthesized"]
RUN_COLUMNS = ["id", "worker", "module", "args", "host", "pid", "launched_by", "requested_by", "state",
               "final_message_type", "launched_at", "started_at", "finished_at"]
MUTATION_COLUMNS = ["key", "operation", "before", "after", "message_id", "at"]
CHECKLIST_COLUMNS = ["key", "value", "updated_at", "message_id"]
STATE_COLUMNS = ["name", "value", "updated_at"]
INSERT_MESSAGE = DriverStatement(insert(MESSAGES), MESSAGE_COLUMNS)
INSERT_RUN = DriverStatement(insert(RUNS), RUN_COLUMNS)
INSERT_MUTATION = DriverStatement(insert(MUTATIONS), MUTATION_COLUMNS)
SELECT_RUN = DriverStatement(select(RUNS.c.worker, RUNS.c.state).where(RUNS.c.id == bindparam("b_id")))
SELECT_MESSAGE_PK = DriverStatement(
    select(MESSAGES.c.id).where(MESSAGES.c.message_id == bindparam("b_message_id")))
SET_TRIGGERED_BY = DriverStatement(update(RUNS).where(RUNS.c.id == bindparam("b_id")).values(
    triggered_by=bindparam("b_triggered_by", type_=RUNS.c.triggered_by.type)))
DELETE_CHECKLIST_KEY = DriverStatement(delete(CHECKLIST).where(CHECKLIST.c.key == bindparam("b_key")))
SELECT_REPLIES = DriverInList(
    lambda: select(MESSAGES.c.message_id, MESSAGES.c.reply_type, MESSAGES.c.reply_payload), MESSAGES.c.message_id)

HOLDS = "race condition holds"
HEARTBEAT = "heartbeat"
RAW_LIMIT = 64 * 1024  # raw text kept for an unreadable message


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class Incoming:
    """A message as received: its id, when, the parsed message (None when it
    could not be read) and its raw text when it could not be read."""

    message_id: str
    received_at: dt.datetime
    message: Message | None
    raw: str | None = None
    registered: bool = False
    # made by the manager for a run that ended without its final message
    synthesized: bool = False


@dataclass
class Recorded:
    message_pk: int
    run_id: int | None
    reply: Message
    launch_run_ids: list[int] = field(default_factory=list)
    # a run started by hand that this message opened and left running, its process named in the message
    opened_by_hand: bool = False


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._writer_state: _WriterState | None = None
        self._batch_connection = None  # held between batches (see batch())

    # --- manager start ---------------------------------------------------

    def load_state(self) -> ManagerState:
        """The checklist and race-condition holds as the last manager left them."""
        with Session(self.engine) as session, session.begin():
            checklist = {row.key: row.value for row in session.scalars(select(ChecklistEntry))}
            holds_row = session.get(ManagerStateRow, HOLDS)
            holds = tuple(Hold.from_dict(item) for item in (holds_row.value if holds_row else None) or [])
        return ManagerState(checklist=checklist, holds=holds)

    def clear_checklist(self) -> None:
        """Empty the checklist (``--ignore-checklist``); each key's clearing is recorded."""
        now = utcnow()
        with Session(self.engine) as session, session.begin():
            for row in session.scalars(select(ChecklistEntry)):
                session.add(ChecklistMutation(key=row.key, operation="clear", before=row.value, after=None, at=now))
                session.delete(row)

    def lose_pending_launches(self, reason: str) -> list[WorkerRun]:
        """Launches committed but never started by a manager that then stopped."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            runs = list(session.scalars(select(WorkerRun).where(WorkerRun.state == "pending")))
            for run in runs:
                run.state, run.reason, run.finished_at = "lost", reason, utcnow()
                self._closed(run.id)
        return runs

    # --- per message -----------------------------------------------------

    @contextlib.contextmanager
    def batch(self):
        """One write transaction for a batch of messages: look up resends,
        then record the decided messages (see _BatchTransaction).

        The transaction runs on a connection the manager keeps between
        batches, begun and committed on the driver's connection: BEGIN
        IMMEDIATE on SQLite (the write lock taken up front), the driver's own
        BEGIN on PostgreSQL.  A pool checkout and SQLAlchemy's transaction
        set-up cost about 100 µs a batch, a sixth of a batch of one message
        (bench/profile_batches.py).  After a failure the connection is
        dropped (it may be broken) and the next batch takes a new one.  On
        PostgreSQL the connection goes back to the pool after each batch, so
        the pool's ping finds one the server closed (a restart) before a
        batch is refused because of it."""
        writer = self._writer()
        saved = writer.copy()
        if self._batch_connection is None:
            self._batch_connection = self.engine.connect()
        connection = self._batch_connection
        raw = connection.connection
        try:
            if connection.dialect.name == "sqlite":
                raw.execute("BEGIN IMMEDIATE")
            yield _BatchTransaction(self, connection, writer)
            raw.commit()
            if connection.dialect.name != "sqlite":
                self._drop_batch_connection(rollback=False)
        except BaseException:
            self._writer_state = saved  # nothing was written: forget this batch's numbers and runs
            self._drop_batch_connection(rollback=True)
            raise

    def close(self) -> None:
        """Give back the connection kept for batches (the manager on its way out)."""
        self._drop_batch_connection(rollback=False)

    def _drop_batch_connection(self, rollback: bool) -> None:
        connection, self._batch_connection = self._batch_connection, None
        if connection is None:
            return
        try:
            if rollback:
                connection.connection.rollback()
                connection.invalidate()
            connection.close()
        except Exception:  # noqa: BLE001 - a broken connection: nothing left to give back
            pass

    def _writer(self) -> "_WriterState":
        if self._writer_state is None:
            with self.engine.connect() as connection:
                self._writer_state = _WriterState(
                    next_message=(connection.scalar(select(func.max(MESSAGES.c.id))) or 0) + 1,
                    next_run=(connection.scalar(select(func.max(RUNS.c.id))) or 0) + 1,
                    open_runs={row.id: (row.worker, row.state) for row in connection.execute(
                        select(RUNS.c.id, RUNS.c.worker, RUNS.c.state).where(RUNS.c.state.in_(OPEN_STATES)))},
                )
        return self._writer_state

    def _record(self, connection, writer: "_WriterState", batch: "_Batch", incoming: Incoming,
                decision: Decision, previous: ManagerState) -> Recorded:
        msg, now = incoming.message, incoming.received_at
        run_id, opened_by_hand = None, False
        if msg is not None and incoming.registered:
            run_id = self._run_for(connection, writer, batch, msg, now)
            ended = final_state(msg.type) if not incoming.synthesized else None  # the run keeps died / timed out
            if ended is not None:
                batch.update_run(run_id, state=ended, final_message_type=msg.type, finished_at=now)
                writer.open_runs.pop(run_id, None)
            opened_by_hand = (ended is None and msg.pid is not None
                              and batch.new_runs.get(run_id, {}).get("launched_by") == "external")
        message_pk = writer.take_message_id()
        batch.message_pks[incoming.message_id] = message_pk
        launch_ids = []
        for launch in decision.launches:
            run_pk = writer.take_run_id()
            batch.new_runs[run_pk] = _run_row(
                run_pk, launch.worker, module=launch.module, args=list(launch.args), host=launch.host,
                launched_by=launch.launched_by, requested_by=launch.requested_by, state="pending", launched_at=now)
            writer.open_runs[run_pk] = (launch.worker, "pending")
            triggered_by = message_pk if launch.decided_by in (None, incoming.message_id) else (
                batch.message_pks.get(launch.decided_by)
                or _first(SELECT_MESSAGE_PK.rows(connection, {"b_message_id": launch.decided_by})))
            batch.triggers.append({"b_id": run_pk, "b_triggered_by": triggered_by})
            launch_ids.append(run_pk)
        sent = decision.reply
        if decision.reply_with_run_id and launch_ids:
            sent = Message(sent.source, sent.type, {"run id": launch_ids[0]})
        batch.messages.append({
            "id": message_pk,
            "message_id": incoming.message_id,
            "received_at": now,
            "source": msg.source if msg else None,
            "type": msg.type if msg else None,
            "payload": msg.payload if msg else None,
            "raw": _text(incoming.raw[:RAW_LIMIT]) if incoming.raw is not None else None,
            "reply_type": sent.type,
            "reply_payload": sent.payload,
            "run_id": run_id,
            "error": _text(decision.error),
            "synthesized": incoming.synthesized,
        })
        for mutation in decision.mutations:
            batch.mutations.append({"key": mutation.key, "operation": mutation.operation, "before": mutation.before,
                                    "after": mutation.after, "message_id": message_pk, "at": now})
            batch.checklist[mutation.key] = None if mutation.operation == "clear" else {
                "key": mutation.key, "value": mutation.after, "updated_at": now, "message_id": message_pk}
        return Recorded(message_pk, run_id, sent, launch_ids, opened_by_hand)

    def _run_for(self, connection, writer: "_WriterState", batch: "_Batch", msg: Message, now: dt.datetime) -> int:
        """The run a message belongs to: the run id it carries, else the oldest
        open run of that worker, else a new run started by hand (``external``)."""
        if msg.run_id is not None:
            if msg.run_id in writer.open_runs:
                worker, state = writer.open_runs[msg.run_id]
            else:  # a run that has already ended: look it up
                rows = SELECT_RUN.rows(connection, {"b_id": msg.run_id})
                worker, state = rows[0] if rows else (None, None)
            if worker == msg.source:
                if state == "pending":
                    batch.update_run(msg.run_id, state="running", started_at=now)
                    writer.open_runs[msg.run_id] = (worker, "running")
                return msg.run_id
        open_runs = [run_id for run_id, (worker, _) in writer.open_runs.items() if worker == msg.source]
        if open_runs:
            return min(open_runs)
        run_id = writer.take_run_id()
        batch.new_runs[run_id] = _run_row(run_id, msg.source, host=msg.host or "unknown", pid=msg.pid,
                                          launched_by="external", state="running", launched_at=now,
                                          started_at=now)
        writer.open_runs[run_id] = (msg.source, "running")
        return run_id

    def _put_state(self, connection, name: str, value, now: dt.datetime) -> None:
        _upsert_statement(connection, STATE, "name", STATE_COLUMNS).execute(
            connection, [{"name": name, "value": value, "updated_at": now}])

    # --- launches and exits ----------------------------------------------

    def _closed(self, run_id: int) -> None:
        if self._writer_state is not None:
            self._writer_state.open_runs.pop(run_id, None)

    def mark_started(self, run_id: int, pid: int, command: list[str], output_path: str | None = None) -> None:
        if self._writer_state is not None and run_id in self._writer_state.open_runs:
            self._writer_state.open_runs[run_id] = (self._writer_state.open_runs[run_id][0], "running")
        with Session(self.engine) as session, session.begin():
            run = session.get(WorkerRun, run_id)
            run.command, run.pid, run.output_path = command, pid, output_path
            run.started_at = run.started_at or utcnow()
            if run.state == "pending":
                run.state = "running"

    def mark_launch_failed(self, run_id: int, command: list[str] | None, reason: str) -> None:
        self._closed(run_id)
        with Session(self.engine) as session, session.begin():
            run = session.get(WorkerRun, run_id)
            run.command, run.state, run.reason, run.finished_at = command, "failed", reason, utcnow()

    def mark_timed_out(self, run_id: int, reason: str) -> None:
        self._closed(run_id)
        with Session(self.engine) as session, session.begin():
            run = session.get(WorkerRun, run_id)
            if run.state in OPEN_STATES:
                run.state, run.reason, run.finished_at = "timed out", reason, utcnow()

    def mark_exited(self, run_id: int, exit_code: int | None, ssh_host: str | None = None) -> str:
        """Record a launched process's exit; a run still open then has died, or,
        when ``ssh_host`` says ssh itself failed, its launch failed.  ``None``:
        a process started by an earlier manager, whose exit status is unknown."""
        self._closed(run_id)
        with Session(self.engine) as session, session.begin():
            run = session.get(WorkerRun, run_id)
            run.exit_code = exit_code
            if run.state in OPEN_STATES and ssh_host:
                run.state, run.finished_at = "failed", utcnow()
                run.reason = (f"ssh to {ssh_host} failed (exit status {exit_code}): could not connect "
                              f"or log in; ssh's own message went to the manager's standard error")
            elif run.state in OPEN_STATES:
                run.state, run.finished_at = "died", utcnow()
                if exit_code is None and run.launched_by == "external":
                    run.reason = (f"process {run.pid} (started by hand on {run.host}) ended without "
                                  f"sending a final message; exit status unknown")
                elif exit_code is None:
                    run.reason = (f"process {run.pid} (started before the manager restarted) ended without "
                                  f"sending a final message; exit status unknown")
                elif exit_code < 0:
                    run.reason = f"killed by signal {-exit_code}"
                else:
                    run.reason = f"exited with code {exit_code} without sending a final message"
            return run.state

    def running_runs_with_pid(self) -> list[WorkerRun]:
        """Runs an earlier manager started (it recorded their pid) that have not
        ended: for a worker on another host, the pid is its ssh process."""
        with Session(self.engine, expire_on_commit=False) as session:
            return list(session.scalars(select(WorkerRun).where(
                WorkerRun.state == "running", WorkerRun.pid.is_not(None))))

    def earlier_manager_host(self) -> str | None:
        """The host in the last heartbeat recorded (read before this manager's first)."""
        with Session(self.engine) as session:
            heartbeat = session.get(ManagerStateRow, HEARTBEAT)
            return (heartbeat.value or {}).get("host") if heartbeat is not None else None

    def heartbeat(self, value: dict) -> None:
        with self.engine.begin() as connection:
            self._put_state(connection, HEARTBEAT, value, utcnow())


_UPSERTS: dict = {}


def _upsert_statement(connection, table, key: str, columns: list[str]) -> DriverStatement:
    """INSERT … ON CONFLICT (key) DO UPDATE of ``columns`` (SQLite and
    PostgreSQL); built once per dialect and table."""
    cache_key = (connection.dialect.name, table.name)
    if cache_key not in _UPSERTS:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(table)
        _UPSERTS[cache_key] = DriverStatement(statement.on_conflict_do_update(
            index_elements=[key], set_={name: statement.excluded[name] for name in columns if name != key}),
            columns)
    return _UPSERTS[cache_key]


_RUN_UPDATES: dict = {}


def _run_update_statement(columns: tuple[str, ...]) -> DriverStatement:
    """UPDATE worker_runs SET the given columns WHERE id = :b_id, built once per set of columns."""
    if columns not in _RUN_UPDATES:
        _RUN_UPDATES[columns] = DriverStatement(update(RUNS).where(RUNS.c.id == bindparam("b_id")).values(
            {name: bindparam(f"b_{name}", type_=RUNS.c[name].type) for name in columns}))
    return _RUN_UPDATES[columns]


def _run_row(run_id: int, worker: str, **values) -> dict:
    """A worker_runs row with every column the batch insert names (executemany needs the same keys)."""
    row = dict.fromkeys(RUN_COLUMNS)
    row.update(id=run_id, worker=worker, **values)
    return row


class _BatchTransaction:
    """The manager's writes for one batch, inside one transaction.

    The hot path: the manager is the only writer of messages and runs, so it
    numbers them itself and keeps its open runs in memory; then every table
    gets one multi-row statement per batch, however many messages the batch
    holds, and each checklist key is written once with its final value.
    """

    def __init__(self, store: Store, connection, writer: "_WriterState"):
        self.store, self.connection, self.writer = store, connection, writer

    def stored_replies(self, message_ids: list[str]) -> dict[str, Message]:
        """The replies already sent for any of these message ids (a client's resend)."""
        if not message_ids:
            return {}
        return {message_id: Message("manager", reply_type, reply_payload)
                for message_id, reply_type, reply_payload in SELECT_REPLIES.rows(self.connection, message_ids)}

    def record(self, items: list[tuple[Incoming, Decision, ManagerState]]) -> list[Recorded]:
        """Record decided messages in arrival order: (message as received, decision, state before it)."""
        batch = _Batch()
        recorded = [self.store._record(self.connection, self.writer, batch, *item) for item in items]
        if items:
            batch.write(self.connection)
        changed_holds = [d.state.holds for _, d, previous in items if d.state.holds != previous.holds]
        if changed_holds:
            self.store._put_state(self.connection, HOLDS, [hold.as_dict() for hold in changed_holds[-1]],
                                  items[-1][0].received_at)
        return recorded


@dataclass
class _WriterState:
    """What the manager, as the only writer, keeps between batches: the next
    message and run numbers and its open runs (run id → (worker, state))."""

    next_message: int
    next_run: int
    open_runs: dict[int, tuple[str, str]]

    def take_message_id(self) -> int:
        self.next_message += 1
        return self.next_message - 1

    def take_run_id(self) -> int:
        self.next_run += 1
        return self.next_run - 1

    def copy(self) -> "_WriterState":
        return _WriterState(self.next_message, self.next_run, dict(self.open_runs))


@dataclass
class _Batch:
    """Rows collected from one batch of messages, written with one statement per kind."""

    messages: list[dict] = field(default_factory=list)
    message_pks: dict[str, int] = field(default_factory=dict)
    new_runs: dict[int, dict] = field(default_factory=dict)
    run_updates: dict[int, dict] = field(default_factory=dict)
    triggers: list[dict] = field(default_factory=list)
    mutations: list[dict] = field(default_factory=list)
    checklist: dict[str, dict | None] = field(default_factory=dict)

    def update_run(self, run_id: int, **values) -> None:
        if run_id in self.new_runs:
            self.new_runs[run_id].update(values)
        else:
            self.run_updates.setdefault(run_id, {}).update(values)

    def write(self, connection) -> None:
        # runs before messages (messages.run_id), links to triggering messages after both
        if self.new_runs:
            INSERT_RUN.execute(connection, list(self.new_runs.values()))
        by_columns: dict[tuple, list[dict]] = {}
        for run_id, values in self.run_updates.items():
            by_columns.setdefault(tuple(sorted(values)), []).append(
                {"b_id": run_id, **{f"b_{name}": value for name, value in values.items()}})
        for columns, rows in by_columns.items():
            _run_update_statement(columns).execute(connection, rows)
        INSERT_MESSAGE.execute(connection, self.messages)
        if self.triggers:
            SET_TRIGGERED_BY.execute(connection, self.triggers)
        if self.mutations:
            INSERT_MUTATION.execute(connection, self.mutations)
        upserts = [row for row in self.checklist.values() if row is not None]
        cleared = [{"b_key": key} for key, row in self.checklist.items() if row is None]
        if upserts:
            _upsert_statement(connection, CHECKLIST, "key", CHECKLIST_COLUMNS).execute(connection, upserts)
        if cleared:
            DELETE_CHECKLIST_KEY.execute(connection, cleared)


def _text(value: str | None) -> str | None:
    """Text for a text column: a NUL character written as \\x00 (PostgreSQL text cannot hold NUL;
    these columns keep what an unreadable message or an error said, for people to read)."""
    return value.replace("\x00", "\\x00") if value is not None and "\x00" in value else value


def _first(rows: list[tuple]):
    return rows[0][0] if rows else None
