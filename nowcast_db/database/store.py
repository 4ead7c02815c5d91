"""Reads and writes of system state.  Every write is one transaction."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

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

# Statements of the hot path, built once; parameters named b_* where a
# column of the same name is also set.
INSERT_MESSAGE = insert(MESSAGES)
INSERT_RUN = insert(RUNS)
INSERT_MUTATION = insert(MUTATIONS)
SELECT_RUN = select(RUNS.c.worker, RUNS.c.state).where(RUNS.c.id == bindparam("b_id"))
SELECT_OPEN_RUN = (select(RUNS.c.id).where(RUNS.c.worker == bindparam("b_worker"), RUNS.c.state.in_(OPEN_STATES))
                   .order_by(RUNS.c.id).limit(1))
SELECT_MESSAGE_PK = select(MESSAGES.c.id).where(MESSAGES.c.message_id == bindparam("b_message_id"))
START_RUN = update(RUNS).where(RUNS.c.id == bindparam("b_id")).values(
    state="running", started_at=func.coalesce(RUNS.c.started_at, bindparam("b_at", type_=RUNS.c.started_at.type)))
END_RUN = update(RUNS).where(RUNS.c.id == bindparam("b_id")).values(
    state=bindparam("b_state"), final_message_type=bindparam("b_type"), finished_at=bindparam("b_at"))
SET_REPLY_PAYLOAD = update(MESSAGES).where(MESSAGES.c.id == bindparam("b_id")).values(
    reply_payload=bindparam("b_payload", type_=MESSAGES.c.reply_payload.type))
DELETE_CHECKLIST_KEY = delete(CHECKLIST).where(CHECKLIST.c.key == bindparam("b_key"))
SELECT_REPLIES = select(MESSAGES.c.message_id, MESSAGES.c.reply_type, MESSAGES.c.reply_payload).where(
    MESSAGES.c.message_id.in_(bindparam("b_ids", expanding=True)))

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


@dataclass
class Recorded:
    message_pk: int
    run_id: int | None
    reply: Message
    launch_run_ids: list[int] = field(default_factory=list)


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine

    # --- manager start ---------------------------------------------------

    def load_state(self, ignore_checklist: bool = False) -> ManagerState:
        with Session(self.engine) as session, session.begin():
            checklist = {}
            if not ignore_checklist:
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
        return runs

    # --- per message -----------------------------------------------------

    def stored_replies(self, message_ids: list[str]) -> dict[str, Message]:
        """The replies already sent for any of these message ids (a client's resend)."""
        if not message_ids:
            return {}
        with self.engine.connect() as connection:
            return {row.message_id: Message("manager", row.reply_type, row.reply_payload)
                    for row in connection.execute(SELECT_REPLIES, {"b_ids": message_ids})}

    def record_batch(self, items: list[tuple[Incoming, Decision, ManagerState]]) -> list[Recorded]:
        """Write a batch of decided messages in one transaction, in arrival order.

        Each item is (message as received, the decision, the state before it).
        The hot path: prebuilt Core statements executed with parameters (so
        SQLAlchemy compiles each once), mutation rows inserted together and
        each checklist key written once per batch with its final value.
        """
        mutation_rows: list[dict] = []
        checklist_rows: dict[str, dict | None] = {}
        with self.engine.begin() as connection:
            recorded = [self._record(connection, *item, mutation_rows, checklist_rows) for item in items]
            if mutation_rows:
                connection.execute(INSERT_MUTATION, mutation_rows)
            upserts = [row for row in checklist_rows.values() if row is not None]
            cleared = [{"b_key": key} for key, row in checklist_rows.items() if row is None]
            if upserts:
                connection.execute(_upsert_statement(connection, CHECKLIST, "key", upserts[0]), upserts)
            if cleared:
                connection.execute(DELETE_CHECKLIST_KEY, cleared)
            last_holds = next((d.state.holds for _, d, previous in reversed(items)
                               if d.state.holds != previous.holds), None)
            if last_holds is not None:
                self._put_state(connection, HOLDS, [hold.as_dict() for hold in last_holds], items[-1][0].received_at)
        return recorded

    def _record(self, connection, incoming: Incoming, decision: Decision, previous: ManagerState,
                mutation_rows: list[dict], checklist_rows: dict) -> Recorded:
        msg, now = incoming.message, incoming.received_at
        run_id = None
        if msg is not None and incoming.registered:
            run_id = self._run_for(connection, msg, now)
            ended = final_state(msg.type)
            if ended is not None:
                connection.execute(END_RUN, {"b_id": run_id, "b_state": ended, "b_type": msg.type, "b_at": now})
        message_pk = connection.execute(INSERT_MESSAGE, {
            "message_id": incoming.message_id,
            "received_at": now,
            "source": msg.source if msg else None,
            "type": msg.type if msg else None,
            "payload": msg.payload if msg else None,
            "raw": incoming.raw[:RAW_LIMIT] if incoming.raw is not None else None,
            "reply_type": decision.reply.type,
            "reply_payload": decision.reply.payload,
            "run_id": run_id,
            "error": decision.error,
        }).inserted_primary_key[0]
        for mutation in decision.mutations:
            mutation_rows.append({"key": mutation.key, "operation": mutation.operation, "before": mutation.before,
                                  "after": mutation.after, "message_id": message_pk, "at": now})
            checklist_rows[mutation.key] = None if mutation.operation == "clear" else {
                "key": mutation.key, "value": mutation.after, "updated_at": now, "message_id": message_pk}
        launch_ids = []
        for launch in decision.launches:
            triggered_by = message_pk if launch.decided_by in (None, incoming.message_id) else connection.scalar(
                SELECT_MESSAGE_PK, {"b_message_id": launch.decided_by})
            launch_ids.append(connection.execute(INSERT_RUN, {
                "worker": launch.worker, "module": launch.module, "args": list(launch.args), "host": launch.host,
                "launched_by": launch.launched_by, "requested_by": launch.requested_by,
                "triggered_by": triggered_by, "state": "pending", "launched_at": now,
            }).inserted_primary_key[0])
        sent = decision.reply
        if decision.reply_with_run_id and launch_ids:
            sent = Message(sent.source, sent.type, {"run id": launch_ids[0]})
            connection.execute(SET_REPLY_PAYLOAD, {"b_id": message_pk, "b_payload": sent.payload})
        return Recorded(message_pk, run_id, sent, launch_ids)

    def _run_for(self, connection, msg: Message, now: dt.datetime) -> int:
        """The run a message belongs to: the run id it carries, else the oldest
        open run of that worker, else a new run started by hand (``external``)."""
        if msg.run_id is not None:
            row = connection.execute(SELECT_RUN, {"b_id": msg.run_id}).first()
            if row is not None and row.worker == msg.source:
                if row.state == "pending":
                    connection.execute(START_RUN, {"b_id": msg.run_id, "b_at": now})
                return msg.run_id
        open_run = connection.scalar(SELECT_OPEN_RUN, {"b_worker": msg.source})
        if open_run is not None:
            return open_run
        return connection.execute(INSERT_RUN, {
            "worker": msg.source, "host": "unknown", "launched_by": "external", "state": "running",
            "launched_at": now, "started_at": now,
        }).inserted_primary_key[0]

    def _put_state(self, connection, name: str, value, now: dt.datetime) -> None:
        row = {"name": name, "value": value, "updated_at": now}
        connection.execute(_upsert_statement(connection, STATE, "name", row), row)

    # --- launches and exits ----------------------------------------------

    def mark_started(self, run_id: int, pid: int, command: list[str]) -> None:
        with Session(self.engine) as session, session.begin():
            run = session.get(WorkerRun, run_id)
            run.command, run.pid = command, pid
            run.started_at = run.started_at or utcnow()
            if run.state == "pending":
                run.state = "running"

    def mark_launch_failed(self, run_id: int, command: list[str] | None, reason: str) -> None:
        with Session(self.engine) as session, session.begin():
            run = session.get(WorkerRun, run_id)
            run.command, run.state, run.reason, run.finished_at = command, "failed", reason, utcnow()

    def mark_exited(self, run_id: int, exit_code: int, ssh_host: str | None = None) -> str:
        """Record a launched process's exit; a run still open then has died, or,
        when ``ssh_host`` says ssh itself failed, its launch failed."""
        with Session(self.engine) as session, session.begin():
            run = session.get(WorkerRun, run_id)
            run.exit_code = exit_code
            if run.state in OPEN_STATES and ssh_host:
                run.state, run.finished_at = "failed", utcnow()
                run.reason = (f"ssh to {ssh_host} failed (exit status {exit_code}): could not connect "
                              f"or log in; ssh's message is in the manager's log")
            elif run.state in OPEN_STATES:
                run.state, run.finished_at = "died", utcnow()
                run.reason = (
                    f"killed by signal {-exit_code}" if exit_code < 0
                    else f"exited with code {exit_code} without sending a final message"
                )
            return run.state

    def heartbeat(self, value: dict) -> None:
        with self.engine.begin() as connection:
            self._put_state(connection, HEARTBEAT, value, utcnow())

    def checklist(self) -> dict:
        with Session(self.engine) as session:
            return {row.key: row.value for row in session.scalars(select(ChecklistEntry).order_by(ChecklistEntry.key))}


_UPSERTS: dict = {}


def _upsert_statement(connection, table, key: str, example: dict):
    """INSERT … ON CONFLICT (key) DO UPDATE for the columns in ``example``
    (SQLite and PostgreSQL); built once per dialect, table and columns."""
    cache_key = (connection.dialect.name, table.name, key, tuple(example))
    if cache_key not in _UPSERTS:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(table)
        _UPSERTS[cache_key] = statement.on_conflict_do_update(
            index_elements=[key], set_={name: statement.excluded[name] for name in example if name != key})
    return _UPSERTS[cache_key]
