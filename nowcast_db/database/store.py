"""Reads and writes of system state.  Every write is one transaction."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
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

    def stored_reply(self, message_id: str) -> Message | None:
        """The reply already sent for this message id, if it was recorded."""
        with Session(self.engine) as session:
            row = session.scalars(select(MessageRow).where(MessageRow.message_id == message_id)).first()
            if row is None:
                return None
            return Message("manager", row.reply_type, row.reply_payload)

    def record(self, incoming: Incoming, decision: Decision, previous: ManagerState) -> Recorded:
        """Write the message, its run, checklist mutations, holds and launches in one transaction."""
        msg = incoming.message
        with Session(self.engine) as session, session.begin():
            row = MessageRow(
                message_id=incoming.message_id,
                received_at=incoming.received_at,
                source=msg.source if msg else None,
                type=msg.type if msg else None,
                payload=msg.payload if msg else None,
                raw=incoming.raw[:RAW_LIMIT] if incoming.raw is not None else None,
                reply_type=decision.reply.type,
                reply_payload=decision.reply.payload,
                error=decision.error,
            )
            session.add(row)
            session.flush()
            run = None
            if msg is not None and incoming.registered:
                run = self._run_for(session, msg, incoming.received_at)
                row.run_id = run.id
                state = final_state(msg.type)
                if state is not None:
                    run.state, run.final_message_type = state, msg.type
                    run.finished_at = incoming.received_at
            for mutation in decision.mutations:
                self._apply_mutation(session, mutation, row.id, incoming.received_at)
            if decision.state.holds != previous.holds:
                self._put_state(session, HOLDS, [hold.as_dict() for hold in decision.state.holds])
            launch_ids = []
            for launch in decision.launches:
                triggered_by = row.id if launch.decided_by in (None, incoming.message_id) else (
                    session.scalar(select(MessageRow.id).where(MessageRow.message_id == launch.decided_by))
                )
                launched = WorkerRun(
                    worker=launch.worker, module=launch.module, args=list(launch.args), host=launch.host,
                    launched_by=launch.launched_by, requested_by=launch.requested_by, triggered_by=triggered_by,
                    state="pending", launched_at=incoming.received_at,
                )
                session.add(launched)
                session.flush()
                launch_ids.append(launched.id)
            sent = decision.reply
            if decision.reply_with_run_id and launch_ids:
                sent = Message(sent.source, sent.type, {"run id": launch_ids[0]})
                row.reply_payload = sent.payload
            return Recorded(row.id, run.id if run else None, sent, launch_ids)

    def _run_for(self, session: Session, msg: Message, now: dt.datetime) -> WorkerRun:
        """The run a message belongs to: the run id it carries, else the oldest
        open run of that worker, else a new run started by hand (``external``)."""
        if msg.run_id is not None:
            run = session.get(WorkerRun, msg.run_id)
            if run is not None and run.worker == msg.source:
                if run.state == "pending":
                    run.state, run.started_at = "running", run.started_at or now
                return run
        run = session.scalars(
            select(WorkerRun)
            .where(WorkerRun.worker == msg.source, WorkerRun.state.in_(OPEN_STATES))
            .order_by(WorkerRun.id)
            .limit(1)
        ).first()
        if run is not None:
            return run
        run = WorkerRun(worker=msg.source, module=None, args=None, host="unknown", launched_by="external",
                        state="running", launched_at=now, started_at=now)
        session.add(run)
        session.flush()
        return run

    def _apply_mutation(self, session: Session, mutation, message_pk: int, now: dt.datetime) -> None:
        session.add(ChecklistMutation(key=mutation.key, operation=mutation.operation, before=mutation.before,
                                      after=mutation.after, message_id=message_pk, at=now))
        entry = session.get(ChecklistEntry, mutation.key)
        if mutation.operation == "clear":
            if entry is not None:
                session.delete(entry)
            return
        if entry is None:
            session.add(ChecklistEntry(key=mutation.key, value=mutation.after, updated_at=now, message_id=message_pk))
        else:
            entry.value, entry.updated_at, entry.message_id = mutation.after, now, message_pk

    def _put_state(self, session: Session, name: str, value) -> None:
        row = session.get(ManagerStateRow, name)
        if row is None:
            session.add(ManagerStateRow(name=name, value=value, updated_at=utcnow()))
        else:
            row.value, row.updated_at = value, utcnow()

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
        with Session(self.engine) as session, session.begin():
            self._put_state(session, HEARTBEAT, value)

    def checklist(self) -> dict:
        with Session(self.engine) as session:
            return {row.key: row.value for row in session.scalars(select(ChecklistEntry).order_by(ChecklistEntry.key))}
