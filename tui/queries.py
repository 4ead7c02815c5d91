"""The TUI's reads: filtered pages, refreshes, a key's history, a day's runs.

The only TUI module that knows SQLAlchemy.  Every query is one short read
transaction over indexed columns, paged by id (keyset: ``id < the oldest row
shown``), never the whole table, so it costs the same on a history of a
thousand runs or a million messages (bench/tui_speed.py measures it).
Database errors come back as ``HistoryUnreadable`` with one line of text.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, String, cast, or_, select

from nowcast_db.database.models import ChecklistEntry, ChecklistMutation, MessageRow, WorkerRun
from nowcast_db.database.queries import reading
from nowcast_tui.filters import MessageFilter, RunFilter

RUN_COLUMNS = (WorkerRun.id, WorkerRun.worker, WorkerRun.module, WorkerRun.args, WorkerRun.host,
               WorkerRun.launched_by, WorkerRun.requested_by, WorkerRun.triggered_by, WorkerRun.state,
               WorkerRun.launched_at, WorkerRun.started_at, WorkerRun.finished_at)
MESSAGE_COLUMNS = (MessageRow.id, MessageRow.received_at, MessageRow.source, MessageRow.type,
                   MessageRow.reply_type, MessageRow.run_id, MessageRow.error)


def _like(text: str) -> str:
    """``text`` as a LIKE pattern that matches it literally, anywhere."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _run_conditions(where: RunFilter) -> list:
    r = WorkerRun
    conditions = []
    if where.workers:
        conditions.append(r.worker.in_(where.workers))
    if where.states:
        conditions.append(r.state.in_(where.states))
    for word in where.text.split():
        pattern = _like(word)
        conditions.append(or_(r.worker.like(pattern, escape="\\"), r.host.like(pattern, escape="\\"),
                              cast(r.args, String).like(pattern, escape="\\")))
    return conditions


def _message_conditions(where: MessageFilter) -> list:
    m = MessageRow
    conditions = []
    if where.workers:
        conditions.append(m.source.in_(where.workers))
    if where.types:
        conditions.append(m.type.in_(where.types))
    if where.errors_only:
        conditions.append(m.error.is_not(None))
    if where.since is not None:
        conditions.append(m.received_at >= where.since)
    if where.until is not None:
        conditions.append(m.received_at <= where.until)
    return conditions


def _page(engine: Engine, columns, id_column, conditions: list, before: int | None, after: int | None,
          limit: int) -> list:
    query = select(*columns).where(*conditions)
    if before is not None:
        query = query.where(id_column < before)
    if after is not None:
        query = query.where(id_column > after)
    with engine.connect() as connection:
        return list(connection.execute(query.order_by(id_column.desc()).limit(limit)))


@reading
def runs_page(engine: Engine, where: RunFilter, *, before: int | None = None, after: int | None = None,
              limit: int = 200) -> list:
    """Up to ``limit`` runs matching ``where``, newest first, with ids below
    ``before`` (the next page down) or above ``after`` (what is new)."""
    return _page(engine, RUN_COLUMNS, WorkerRun.id, _run_conditions(where), before, after, limit)


@reading
def runs_by_id(engine: Engine, ids: list[int]) -> list:
    """These runs as they are now (the open runs on screen, to see them end)."""
    if not ids:
        return []
    with engine.connect() as connection:
        return list(connection.execute(select(*RUN_COLUMNS).where(WorkerRun.id.in_(ids))))


@reading
def messages_page(engine: Engine, where: MessageFilter, *, before: int | None = None, after: int | None = None,
                  limit: int = 200) -> list:
    """Up to ``limit`` messages matching ``where``, newest first (see runs_page)."""
    return _page(engine, MESSAGE_COLUMNS, MessageRow.id, _message_conditions(where), before, after, limit)


@reading
def message(engine: Engine, message_id: int):
    """One message whole: payload, reply, raw text of an unreadable one."""
    m = MessageRow
    with engine.connect() as connection:
        return connection.execute(select(m.id, m.message_id, m.received_at, m.source, m.type, m.payload,
                                         m.reply_type, m.reply_payload, m.run_id, m.error, m.raw, m.synthesized)
                                  .where(m.id == message_id)).first()


@reading
def checklist(engine: Engine, key_text: str = "") -> dict:
    """The current checklist, or the keys containing ``key_text``."""
    c = ChecklistEntry
    query = select(c.key, c.value).order_by(c.key)
    if key_text:
        query = query.where(c.key.like(_like(key_text), escape="\\"))
    with engine.connect() as connection:
        return {row.key: row.value for row in connection.execute(query)}


@reading
def key_history(engine: Engine, key: str, limit: int = 200) -> list:
    """A checklist key's newest ``limit`` changes, newest first, each with the
    message that caused it (source and type; NULL for a --ignore-checklist clearing)."""
    c, m = ChecklistMutation, MessageRow
    query = (select(c.id, c.at, c.key, c.operation, c.before, c.after, c.message_id, m.source, m.type)
             .outerjoin(m, m.id == c.message_id).where(c.key == key).order_by(c.id.desc()).limit(limit))
    with engine.connect() as connection:
        return list(connection.execute(query))


@reading
def runs_around(engine: Engine, start: dt.datetime, end: dt.datetime) -> list:
    """Runs that were open at any moment from ``start`` to ``end``: launched in
    the window, or launched up to a day before it and not finished before it
    (a run across midnight belongs to both days).  Oldest first."""
    r = WorkerRun
    query = (select(*RUN_COLUMNS)
             .where(r.launched_at >= start - dt.timedelta(days=1), r.launched_at < end,
                    or_(r.launched_at >= start, r.finished_at.is_(None), r.finished_at >= start))
             .order_by(r.launched_at, r.id))
    with engine.connect() as connection:
        return list(connection.execute(query))


@reading
def output_path(engine: Engine, run_id: int) -> str | None:
    with engine.connect() as connection:
        return connection.scalar(select(WorkerRun.output_path).where(WorkerRun.id == run_id))
