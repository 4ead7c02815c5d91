"""Read-only queries used by the command line (and, later, the TUI)."""
from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

from sqlalchemy import Engine, bindparam, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from nowcast_db.database.engine import make_engine, url_from_text
from nowcast_db.database.models import ChecklistEntry, ChecklistMutation, ManagerStateRow, MessageRow, WorkerRun
from nowcast_db.database.store import HEARTBEAT, HOLDS
from nowcast_db.decision import LAUNCH_REQUEST
from nowcast_db.errors import NowcastError


def recent_runs(engine: Engine, limit: int = 20) -> list[WorkerRun]:
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(select(WorkerRun).order_by(WorkerRun.id.desc()).limit(limit)))


def runs_of(engine: Engine, worker: str) -> list[WorkerRun]:
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(select(WorkerRun).where(WorkerRun.worker == worker).order_by(WorkerRun.id)))


def heartbeat(engine: Engine) -> dict | None:
    with Session(engine) as session:
        row = session.get(ManagerStateRow, HEARTBEAT)
        return row.value if row else None


def last_module_of(engine: Engine, worker: str) -> str | None:
    """The module the worker's most recent recorded run used."""
    with Session(engine) as session:
        return session.scalar(
            select(WorkerRun.module)
            .where(WorkerRun.worker == worker, WorkerRun.module.is_not(None))
            .order_by(WorkerRun.id.desc())
            .limit(1)
        )


# --- audit history and replay (nowcast history, nowcast checklist, nowcast replay) ---
#
# These only read.  They return plain rows and dicts so that replay.py and
# history.py, which decide and format, never see SQLAlchemy.

class HistoryUnreadable(NowcastError):
    """The history database is missing, is not a nowcast history, or cannot be read."""


def open_history(url: str, busy_timeout: float = 30.0) -> Engine:
    """An engine on an existing history database, for reading.

    A SQLite file that is not there is an error here, not an empty database
    created by the attempt: reading commands must never make history up.
    ``busy_timeout`` (seconds) is how long to wait for a locked SQLite file.
    ``url`` may also be a plain path to a SQLite file (``--db nowcast.sqlite``).
    """
    url = url_from_text(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise HistoryUnreadable(f"database URL {url!r}: expected an SQLAlchemy URL such as sqlite:///path") from None
    where = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database).expanduser()
        if not path.is_file():
            raise HistoryUnreadable(f"{path}: no history database there yet (start the manager, "
                                    f"or run `nowcast db upgrade CONFIG`, to create it)")
        where = str(path)
    engine = None
    try:
        engine = make_engine(url, busy_timeout=busy_timeout)
        if engine.dialect.name == "postgresql":
            # one snapshot per read transaction, as SQLite's WAL readers have: a screen that reads a run,
            # then its messages, never sees the manager's commit in between in one and not the other
            engine = engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
    except Exception as err:  # a driver that is not installed, a refused connection, not a database file
        if engine is not None:
            engine.dispose()
        raise HistoryUnreadable(f"{where}: cannot read the history database: {_one_line(err)}") from None
    missing = {"messages", "worker_runs", "checklist_mutations", "manager_state"} - tables
    if missing:
        engine.dispose()
        raise HistoryUnreadable(f"{where}: no history tables yet (no {', '.join(sorted(missing))}); "
                                f"start the manager or run `nowcast db upgrade CONFIG`")
    return engine


def _one_line(err: BaseException) -> str:
    text = str(getattr(err, "orig", None) or err).strip().splitlines()
    return text[0] if text else type(err).__name__


def reading(function):
    """Turn a database error met while reading into a one-line HistoryUnreadable."""

    @functools.wraps(function)
    def wrapper(engine: Engine, *args, **kwargs):
        try:
            return function(engine, *args, **kwargs)
        except SQLAlchemyError as err:
            where = engine.url.render_as_string(hide_password=True)
            raise HistoryUnreadable(f"{where}: cannot read the history database: {_one_line(err)}") from None

    return wrapper


def _window(column, since, until):
    """Conditions for ``since <= column <= until``; either end may be None."""
    conditions = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column <= until)
    return conditions


@reading
def worker_messages(engine: Engine, until: dt.datetime | None = None) -> list:
    """Every message a worker sent that the manager read (not malformed ones,
    not launch requests), in the order the manager decided them, received
    no later than ``until``.  Rows: id, message_id, received_at, source,
    type, payload, reply_type, error."""
    m = MessageRow
    query = (select(m.id, m.message_id, m.received_at, m.source, m.type, m.payload, m.reply_type, m.error)
             .where(m.source.is_not(None), m.type.is_not(None), m.type != LAUNCH_REQUEST,
                    *_window(m.received_at, None, until))
             .order_by(m.id))
    with engine.connect() as connection:
        return list(connection.execute(query))


@reading
def manager_launches(engine: Engine, since: dt.datetime | None = None, until: dt.datetime | None = None) -> list:
    """Launches the manager decided from ``after_`` functions, made between
    ``since`` and ``until``, in order.  ``triggered_by`` is the message whose
    ``after_`` function decided the launch (for a held launch: not the
    message that released it).  Rows: id, triggered_by, module, args, host,
    launched_at."""
    r = WorkerRun
    query = (select(r.id, r.triggered_by, r.module, r.args, r.host, r.launched_at)
             .where(r.launched_by == "manager", *_window(r.launched_at, since, until))
             .order_by(r.id))
    with engine.connect() as connection:
        return list(connection.execute(query))


@reading
def checklist_mutations(engine: Engine, before: dt.datetime | None = None, through: dt.datetime | None = None,
                        *, key: str | None = None, source: str | None = None, since: dt.datetime | None = None,
                        limit: int | None = None, without_message: bool = False) -> list:
    """Checklist changes in the order they were made (``limit``: the newest
    that many, still oldest first).  ``before`` excludes changes made at that
    moment, ``through`` includes them; ``without_message`` keeps only the
    changes no message caused (the manager started with --ignore-checklist).
    Rows: id, at, key, operation, before, after, message_id, source, type."""
    c, m = ChecklistMutation, MessageRow
    query = (select(c.id, c.at, c.key, c.operation, c.before, c.after, c.message_id, m.source, m.type)
             .outerjoin(m, m.id == c.message_id)
             .where(*_window(c.at, since, through)))
    if before is not None:
        query = query.where(c.at < before)
    if key is not None:
        query = query.where(c.key == key)
    if source is not None:
        query = query.where(m.source == source)
    if without_message:
        query = query.where(c.message_id.is_(None))
    return _oldest_first(engine, query, c.id, limit)


def _oldest_first(engine: Engine, query, id_column, limit: int | None) -> list:
    """The rows in id order; with a limit, the newest ``limit`` of them."""
    if limit:
        query = query.order_by(id_column.desc()).limit(limit)
    else:
        query = query.order_by(id_column)
    with engine.connect() as connection:
        rows = list(connection.execute(query))
    return rows[::-1] if limit else rows


@reading
def current_checklist(engine: Engine) -> dict:
    with engine.connect() as connection:
        entry = ChecklistEntry
        return {row.key: row.value for row in connection.execute(select(entry.key, entry.value).order_by(entry.key))}


@reading
def run_rows(engine: Engine, *, worker: str | None = None, state: str | None = None,
             since: dt.datetime | None = None, until: dt.datetime | None = None, limit: int | None = None) -> list:
    """Worker runs launched between ``since`` and ``until``, oldest first
    (``limit``: the newest that many)."""
    r = WorkerRun
    query = select(r.id, r.worker, r.state, r.launched_by, r.host, r.module, r.args, r.triggered_by,
                   r.requested_by, r.pid, r.exit_code, r.final_message_type, r.reason,
                   r.launched_at, r.started_at, r.finished_at).where(*_window(r.launched_at, since, until))
    if worker is not None:
        query = query.where(r.worker == worker)
    if state is not None:
        query = query.where(r.state == state)
    return _oldest_first(engine, query, r.id, limit)


@reading
def message_rows(engine: Engine, *, source: str | None = None, since: dt.datetime | None = None,
                 until: dt.datetime | None = None, limit: int | None = None) -> list:
    """Messages received between ``since`` and ``until``, oldest first
    (``limit``: the newest that many)."""
    m = MessageRow
    query = select(m.id, m.received_at, m.source, m.type, m.payload, m.reply_type, m.reply_payload, m.run_id,
                   m.error, m.raw, m.message_id).where(*_window(m.received_at, since, until))
    if source is not None:
        query = query.where(m.source == source)
    return _oldest_first(engine, query, m.id, limit)


CHAIN_LIMIT = 10_000  # steps followed at most, against a cycle written by hand


@reading
def run_chain(engine: Engine, run_id: int) -> list[tuple]:
    """The runs that led to ``run_id``, first run first: each as (run row,
    the message that triggered it or None).  Followed through
    ``worker_runs.triggered_by`` → ``messages.run_id``; a run started by
    hand, by the scheduler or by an operator ends the chain."""
    r, m = WorkerRun, MessageRow
    run_query = select(r.id, r.worker, r.state, r.launched_by, r.host, r.module, r.args, r.triggered_by,
                       r.launched_at, r.started_at, r.finished_at, r.exit_code).where(r.id == bindparam("run"))
    message_query = select(m.id, m.received_at, m.source, m.type, m.run_id).where(m.id == bindparam("message"))
    chain: list[tuple] = []
    with engine.connect() as connection:
        run = connection.execute(run_query, {"run": run_id}).first()
        if run is None:
            where = engine.url.render_as_string(hide_password=True)
            raise HistoryUnreadable(f"{where}: there is no run {run_id}")
        seen = set()
        while run is not None and run.id not in seen and len(chain) < CHAIN_LIMIT:
            seen.add(run.id)
            message = None
            if run.triggered_by is not None:
                message = connection.execute(message_query, {"message": run.triggered_by}).first()
            chain.append((run, message))
            parent = message.run_id if message is not None else None
            run = connection.execute(run_query, {"run": parent}).first() if parent is not None else None
    return chain[::-1]


# --- nowcast-tui ---
#
# The TUI polls these every second while the manager writes, so each is one
# short read transaction over indexed columns, and a lock held by someone
# else turns into a one-line HistoryUnreadable after a moment instead of a
# frozen screen.

TUI_BUSY_SECONDS = 2.0


def open_history_for_watching(url: str, busy_seconds: float = TUI_BUSY_SECONDS) -> Engine:
    """``open_history`` for a display polling every second: a locked SQLite
    database gives up after ``busy_seconds``, not the writers' 30 s."""
    return open_history(url, busy_timeout=busy_seconds)


@reading
def system_status(engine: Engine, day_start: dt.datetime) -> dict:
    """What the TUI header shows: the manager's heartbeat (value and when it
    was written), the open runs, and the runs that ended badly since
    ``day_start``."""
    r, s = WorkerRun, ManagerStateRow
    with engine.connect() as connection:
        beat = connection.execute(select(s.value, s.updated_at).where(s.name == HEARTBEAT)).first()
        running = connection.scalar(select(func.count()).select_from(r).where(r.state.in_(("pending", "running"))))
        failed = connection.scalar(select(func.count()).select_from(r).where(
            r.state.in_(BAD_END_STATES), r.launched_at >= day_start))
    return {"heartbeat": beat.value if beat else None, "heartbeat_at": beat.updated_at if beat else None,
            "running": running or 0, "failed_today": failed or 0}


BAD_END_STATES = ("failed", "crashed", "died", "timed out", "lost")

_RUN_COLUMNS = (WorkerRun.id, WorkerRun.worker, WorkerRun.module, WorkerRun.args, WorkerRun.host,
                WorkerRun.launched_by, WorkerRun.requested_by, WorkerRun.triggered_by, WorkerRun.state,
                WorkerRun.command, WorkerRun.pid, WorkerRun.exit_code, WorkerRun.final_message_type,
                WorkerRun.reason, WorkerRun.launched_at, WorkerRun.started_at, WorkerRun.finished_at,
                WorkerRun.output_path)


@reading
def run_output_of(engine: Engine, run_id: int):
    """A run's worker, state, who launched it and its output file (None: no such run)."""
    r = WorkerRun
    with engine.connect() as connection:
        return connection.execute(select(r.worker, r.state, r.launched_by, r.output_path)
                                  .where(r.id == run_id)).first()


@reading
def run_detail(engine: Engine, run_id: int) -> dict | None:
    """Everything the Run detail screen shows, read in one transaction so it
    is consistent: the run, its messages, the checklist changes they caused,
    the message (and run) that triggered it, and the runs its messages
    triggered.  None when there is no such run."""
    r, m, c = WorkerRun, MessageRow, ChecklistMutation
    with engine.connect() as connection:
        run = connection.execute(select(*_RUN_COLUMNS).where(r.id == run_id)).first()
        if run is None:
            return None
        messages = list(connection.execute(
            select(m.id, m.received_at, m.source, m.type, m.payload, m.reply_type, m.reply_payload, m.error)
            .where(m.run_id == run_id).order_by(m.id)))
        message_ids = [message.id for message in messages]
        mutations = list(connection.execute(
            select(c.id, c.at, c.key, c.operation, c.before, c.after, c.message_id)
            .where(c.message_id.in_(message_ids)).order_by(c.id))) if message_ids else []
        trigger = None
        if run.triggered_by is not None:
            trigger = connection.execute(select(m.id, m.source, m.type, m.run_id)
                                         .where(m.id == run.triggered_by)).first()
        triggered = list(connection.execute(
            select(r.id, r.worker, r.state, r.triggered_by).where(r.triggered_by.in_(message_ids))
            .order_by(r.id))) if message_ids else []
    return {"run": run, "messages": messages, "mutations": mutations, "trigger": trigger, "triggered": triggered}


@reading
def health(engine: Engine, since: dt.datetime) -> dict:
    """What `nowcast status` reports: the heartbeat, runs open now, runs that
    ended badly since ``since`` by state, each worker's last success, and the
    race-condition holds."""
    r, s = WorkerRun, ManagerStateRow
    with engine.connect() as connection:
        beat = connection.execute(select(s.value, s.updated_at).where(s.name == HEARTBEAT)).first()
        holds = connection.scalar(select(s.value).where(s.name == HOLDS))
        running = connection.scalar(select(func.count()).select_from(r).where(r.state.in_(("pending", "running"))))
        bad = dict(connection.execute(select(r.state, func.count()).where(
            r.state.in_(BAD_END_STATES), r.launched_at >= since).group_by(r.state)).all())
        last_success = dict(connection.execute(select(r.worker, func.max(r.finished_at)).where(
            r.state == "succeeded").group_by(r.worker)).all())
    return {"heartbeat": beat.value if beat else None, "heartbeat_at": beat.updated_at if beat else None,
            "running": running or 0, "ended badly": bad, "last success": last_success, "holds": holds or []}
