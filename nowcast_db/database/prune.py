"""Deleting old history (``nowcast db prune``), in short transactions that
never hold the write lock for long while the manager runs.

What is kept, whatever its age (see docs/schema.md, "Pruning old history"):

* the ``checklist`` table, and every message it points at;
* for each checklist key, its newest mutation before the cut-off, and the
  message that caused it (so the checklist at any time from the cut-off on
  can still be folded from ``checklist_mutations``, and a kept mutation
  never loses its message: a mutation without one means a clearing by a
  manager started with ``--ignore-checklist`` to ``nowcast replay``);
* open runs (``pending``, ``running``), runs that finished at or after the
  cut-off, and every run that still has a message;
* messages of kept runs, messages that triggered a kept run, messages named
  in the race-condition holds;
* the newest message and the newest run, so ids are never used twice.
"""
from __future__ import annotations

import datetime as dt
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, and_, delete, exists, func, not_, or_, select
from sqlalchemy.exc import SQLAlchemyError

from nowcast_db.database.models import (
    ChecklistEntry,
    ChecklistMutation,
    ManagerStateRow,
    MessageRow,
    WorkerRun,
)
from nowcast_db.database.queries import HistoryUnreadable, _one_line
from nowcast_db.database.store import HOLDS
from nowcast_db.runs import OPEN_STATES

DEFAULT_BATCH_SIZE = 1000


@dataclass
class PruneCounts:
    """Rows removed, and rows older than the cut-off kept because they are still needed."""

    messages: int = 0
    worker_runs: int = 0
    checklist_mutations: int = 0
    kept_messages: int = 0
    kept_worker_runs: int = 0
    kept_checklist_mutations: int = 0
    output_files: int = 0  # pruned runs' output files deleted
    output_files_missing: int = 0  # ... and not found on this host


def _old_run(run, before: dt.datetime):
    """A run that is over and was over before the cut-off."""
    return and_(run.state.not_in(OPEN_STATES), run.launched_at < before,
                func.coalesce(run.finished_at, run.launched_at) < before)


def prune(engine: Engine, before: dt.datetime, batch_size: int = DEFAULT_BATCH_SIZE,
          progress=None) -> PruneCounts:
    """Delete history older than ``before`` in batches of at most
    ``batch_size`` rows, each its own transaction.  ``engine`` should be a
    writer engine (``make_engine(url, writer=True)``) so that on SQLite each
    batch takes the write lock up front and waits (busy timeout) for the
    manager's transaction instead of failing half way.  ``progress``: a
    nowcast_db.progress.Progress, given a stage per table whose total is the
    rows that will go (counted first, so only pass one when it is shown)."""
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    counts = PruneCounts()
    try:
        counts.checklist_mutations = _prune_mutations(engine, before, batch_size, progress)
        counts.messages = _prune_messages(engine, before, batch_size, progress)
        counts.worker_runs = _prune_runs(engine, before, batch_size, progress, counts)
        with engine.connect() as connection:
            counts.kept_messages = connection.scalar(
                select(func.count()).select_from(MessageRow).where(MessageRow.received_at < before))
            counts.kept_worker_runs = connection.scalar(
                select(func.count()).select_from(WorkerRun).where(WorkerRun.launched_at < before))
            counts.kept_checklist_mutations = connection.scalar(
                select(func.count()).select_from(ChecklistMutation).where(ChecklistMutation.at < before))
    except SQLAlchemyError as err:
        where = engine.url.render_as_string(hide_password=True)
        raise HistoryUnreadable(f"{where}: cannot prune the history database: {_one_line(err)}") from None
    return counts


def _newest_id(engine: Engine, table) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.max(table.c.id))) or 0


def _in_batches(engine: Engine, table, choose, batch_size: int, progress, name: str, deleted=None) -> int:
    """Delete, one transaction per batch, the rows ``choose(last_id)`` selects
    (ids above last_id, in id order, at most batch_size of them).  ``deleted``:
    called with each batch's ids and connection before the delete; what it
    returns is called once the batch is committed."""
    removed, last_id = 0, 0
    with _stage(engine, choose, progress, name) as stage:
        while True:
            with engine.begin() as connection:
                ids = list(connection.scalars(choose(last_id).order_by(table.c.id).limit(batch_size)))
                if not ids:
                    return removed
                after_commit = deleted(connection, ids) if deleted is not None else None
                connection.execute(delete(table).where(table.c.id.in_(ids)))
            if after_commit is not None:
                after_commit()
            removed += len(ids)
            last_id = ids[-1]
            if stage is not None:
                stage.update(removed)


def _stage(engine: Engine, choose, progress, name: str):
    """A progress stage whose total is the rows ``choose`` selects now; a no-op without progress."""
    if progress is None:
        return nullcontext()
    with engine.connect() as connection:
        return progress.stage(name, connection.scalar(select(func.count()).select_from(choose(0).subquery())))


def _prune_mutations(engine: Engine, before: dt.datetime, batch_size: int, progress) -> int:
    c = ChecklistMutation
    # the manager stamps new mutations with the time it records them, which is
    # after the cut-off, so each key's newest one before it cannot change now
    with engine.connect() as connection:
        keep = list(connection.scalars(select(func.max(c.id)).where(c.at < before).group_by(c.key)))

    def choose(last_id):
        query = select(c.id).where(c.at < before, c.id > last_id)
        return query.where(c.id.not_in(keep)) if keep else query

    return _in_batches(engine, c.__table__, choose, batch_size, progress, "checklist_mutations")


def _held_message_ids(engine: Engine) -> list[str]:
    """Message ids (the senders' ids) the race-condition holds name."""
    with engine.connect() as connection:
        holds = connection.scalar(select(ManagerStateRow.value).where(ManagerStateRow.name == HOLDS)) or []
    named = set()
    for hold in holds if isinstance(holds, list) else []:
        if not isinstance(hold, dict):
            continue
        named.add(hold.get("started by"))
        for launch in hold.get("launches") or []:
            if isinstance(launch, dict):
                named.add(launch.get("decided by"))
    return sorted(name for name in named if isinstance(name, str) and name)


def _prune_messages(engine: Engine, before: dt.datetime, batch_size: int, progress) -> int:
    m, c, r, entry = MessageRow, ChecklistMutation, WorkerRun, ChecklistEntry
    held = _held_message_ids(engine)
    newest = _newest_id(engine, m.__table__)
    kept_run = select(r.id).where(not_(_old_run(r, before)))

    def choose(last_id):
        query = select(m.id).where(
            m.received_at < before, m.id > last_id,
            m.id < newest,
            ~exists().where(c.message_id == m.id),
            ~exists().where(entry.message_id == m.id),
            or_(m.run_id.is_(None), m.run_id.not_in(kept_run)),
            ~exists().where(r.triggered_by == m.id, not_(_old_run(r, before))),
        )
        return query.where(m.message_id.not_in(held)) if held else query

    return _in_batches(engine, m.__table__, choose, batch_size, progress, "messages")


def _prune_runs(engine: Engine, before: dt.datetime, batch_size: int, progress, counts: PruneCounts) -> int:
    r, m = WorkerRun, MessageRow
    newest = _newest_id(engine, r.__table__)

    def choose(last_id):
        return select(r.id).where(
            _old_run(r, before), r.id > last_id,
            r.id < newest,
            ~exists().where(m.run_id == r.id),
        )

    def output_files(connection, ids):
        paths = list(connection.scalars(select(r.output_path).where(r.id.in_(ids), r.output_path.is_not(None))))
        return lambda: _delete_output_files(paths, counts)

    return _in_batches(engine, r.__table__, choose, batch_size, progress, "worker_runs", output_files)


def _delete_output_files(paths: list[str], counts: PruneCounts) -> None:
    """Delete pruned runs' output files, and a day's folder once it is empty.
    A file that is not here (pruning from another host than the manager's,
    or deleted by hand) is counted, not an error."""
    for path in map(Path, paths):
        try:
            path.unlink()
            counts.output_files += 1
        except FileNotFoundError:
            counts.output_files_missing += 1
            continue
        except OSError:
            counts.output_files_missing += 1
            continue
        try:
            path.parent.rmdir()
        except OSError:
            pass  # other runs' files are still there
