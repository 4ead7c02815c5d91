"""``nowcast db copy SRC DST``: move a whole history into another database,
typically the SQLite file a system started with into PostgreSQL once the
system spreads over several hosts (docs/deployment.md).

What it does, in order:

* refuses while SRC's manager is running (a fresh heartbeat from a live
  process), because what the manager records after the copy would be left
  behind; ``--while-running`` copies a consistent snapshot anyway;
* checks SRC's schema is the one this nowcast_db writes, and that DST holds
  no history, then upgrades DST with the project's migrations;
* copies every table in one DST transaction, read from one SRC snapshot, in
  batches of ``batch_size`` rows in primary-key order, with the same ids.
  Values are copied as the JSON that is stored, not decoded and encoded
  again, so a ``{"$set": [...]}`` keeps its order and every value compares
  equal with plain SQL on both sides;
* counts every table on both sides before committing: a difference rolls
  the whole copy back, so a failed, refused or interrupted copy leaves DST
  with the schema and nothing else, ready for another try;
* on PostgreSQL moves the id sequences past the copied ids, so anything that
  inserts without giving an id (``--ignore-checklist``'s clearing, other
  tools) does not collide with the copied rows.

``messages.run_id`` and ``worker_runs.triggered_by`` refer to each other
(through foreign keys PostgreSQL cannot defer), so runs are copied first
without ``triggered_by``, then messages, then ``triggered_by`` is set.
"""
from __future__ import annotations

import datetime as dt
import os
import socket
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Column, Engine, MetaData, Table, Text, bindparam, cast, func, inspect, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.types import TypeDecorator

from nowcast_db.database.engine import make_engine, url_from_text
from nowcast_db.database.migrate import alembic_config, current_revision, upgrade
from nowcast_db.database.models import Base, ManagerStateRow, Value
from nowcast_db.database.queries import HistoryUnreadable, _one_line, open_history
from nowcast_db.database.store import HEARTBEAT
from nowcast_db.errors import NowcastError
from nowcast_db.status import HEARTBEAT_STALE

BATCH_SIZE = 5000
# parents before children: messages.run_id needs its run, everything else its message
TABLES = ("worker_runs", "messages", "checklist_mutations", "checklist", "manager_state")
WITH_IDS = ("messages", "worker_runs", "checklist_mutations")  # integer ids from a sequence on PostgreSQL
TRIGGERS = "worker_runs.triggered_by"


class CopyError(NowcastError):
    """The copy cannot start, or failed and was rolled back."""


# --- URLs --------------------------------------------------------------------------

def history_url(text: str, role: str) -> str:
    """An SQLAlchemy URL from what the operator typed: a URL, or a path to a SQLite file."""
    if not text.strip():
        raise CopyError(f"{role}: expected a database URL (postgresql+psycopg://user@host/name, "
                        f"sqlite:///path) or a path to a SQLite file, got {text!r}")
    if "://" not in text:
        return url_from_text(text)
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise CopyError(f"{role} {_hide_password(text)}: expected a database URL such as "
                        f"postgresql+psycopg://user@host/name or sqlite:///path") from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise CopyError(f"{role} {url.render_as_string(hide_password=True)}: expected a sqlite:/// "
                        f"or postgresql+psycopg:// URL, got a {url.get_backend_name()} one")
    return text


def _hide_password(text: str) -> str:
    """A URL SQLAlchemy could not read, with anything that looks like a password masked."""
    scheme, _, rest = text.partition("://")
    credentials, at, host = rest.rpartition("@")
    if at and ":" in credentials:
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
    return text


def where(url: str) -> str:
    """How errors and reports name a database: a SQLite file by its path,
    anything else by its URL without the password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return parsed.database
    return parsed.render_as_string(hide_password=True)


def _same_database(a: str, b: str) -> bool:
    ua, ub = make_url(a), make_url(b)
    if ua.get_backend_name() == ub.get_backend_name() == "sqlite" and ua.database and ub.database:
        return Path(ua.database).expanduser().resolve() == Path(ub.database).expanduser().resolve()
    return ua.set(password=None, drivername=ua.get_backend_name()) == ub.set(
        password=None, drivername=ub.get_backend_name())


# --- tables as stored ----------------------------------------------------------------

class StoredJSON(TypeDecorator):
    """A value column copied as the JSON text that is stored, never decoded:
    SQLite to SQLite the text is the same byte for byte, and a ``{"$set": [...]}``
    keeps its order everywhere.  Read as text (``CAST(... AS TEXT)``) from either
    database; written as text, or cast to JSONB for PostgreSQL."""

    impl = Text
    cache_ok = True

    def __init__(self, jsonb: bool = False):
        super().__init__()
        self.jsonb = jsonb

    def column_expression(self, column):
        return cast(column, Text)

    def bind_expression(self, bindvalue):
        return cast(bindvalue, postgresql.JSONB) if self.jsonb else bindvalue


def stored_tables(destination_dialect: str) -> dict[str, Table]:
    """The history tables with their value columns as ``StoredJSON``, for
    writing into a database of ``destination_dialect``."""
    metadata = MetaData()
    value_type = StoredJSON(jsonb=destination_dialect == "postgresql")
    tables = {}
    for name in TABLES:
        model = Base.metadata.tables[name]
        tables[name] = Table(name, metadata, *[
            Column(column.name, value_type if isinstance(column.type, Value) else column.type,
                   primary_key=column.primary_key, autoincrement=False)
            for column in model.columns])
    return tables


# --- the copy ------------------------------------------------------------------------

@dataclass
class CopyReport:
    source: str
    destination: str
    revision: str
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        width = max(map(len, TABLES))
        return [f"copied {self.source} to {self.destination} (schema revision {self.revision}), "
                f"row counts checked:",
                *(f"  {name + ':':<{width + 1}} {self.counts[name]}" for name in TABLES)]


def copy_history(source: str, destination: str, batch_size: int = BATCH_SIZE, progress=None,
                 while_running: bool = False) -> CopyReport:
    """Copy the history at ``source`` into the empty database ``destination``
    (URLs; see the module docstring).  ``progress``: a nowcast_db.progress.Progress.
    Raises NowcastError with a one-line message."""
    if batch_size < 1:
        raise CopyError(f"--batch-size: expected a whole number of rows, at least 1, got {batch_size}")
    if _same_database(source, destination):
        raise CopyError(f"SRC and DST are the same database ({where(source)})")
    src = open_history(source)  # never creates a database that is not there
    try:
        head = _head_revision(src)
        revision = _revision(src, source)
        if revision != head:
            raise CopyError(f"{where(source)}: schema at revision {revision}, but this nowcast_db writes "
                            f"revision {head}: run `nowcast db upgrade CONFIG` for the system it belongs to "
                            f"(or start its manager once), then copy")
        with src.connect() as connection:
            running = _running_manager(connection)
        if running and not while_running:
            raise CopyError(f"{where(source)}: its manager is running ({running}); stop it first so that "
                            f"nothing it records after the copy is left behind, or give --while-running "
                            f"to copy what is there now")
        dst = _open_destination(destination)
        try:
            report = _copy(src, dst, source, destination, head, batch_size, progress)
            if running:
                report.warnings.append(f"{where(source)}: its manager is running ({running}): copied what "
                                       f"was recorded when the copy began; anything recorded since is not "
                                       f"in {where(destination)}")
            return report
        finally:
            dst.dispose()
    finally:
        src.dispose()


def _head_revision(engine: Engine) -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def _revision(engine: Engine, url: str) -> str:
    try:
        return current_revision(engine) or "none"
    except SQLAlchemyError as err:
        raise HistoryUnreadable(f"{where(url)}: cannot read the history database: {_one_line(err)}") from None


def _open_destination(url: str) -> Engine:
    """A writer engine on DST, which must be reachable and hold no history;
    its schema is brought to the current revision."""
    engine = None
    try:
        engine = make_engine(url, writer=True)
        with engine.connect() as connection:
            held = _rows_held(connection)
        if held:
            raise CopyError(f"{where(url)}: already holds history ({held}); copy into an empty database "
                            f"(nothing was changed)")
        upgrade(engine)
    except CopyError:
        engine.dispose()
        raise
    except Exception as err:  # no driver, refused connection, no such database, not a database file
        if engine is not None:
            engine.dispose()
        hint = ""
        if "does not exist" in str(err) and make_url(url).get_backend_name() == "postgresql":
            hint = " (create it first: createdb, see docs/deployment.md)"
        raise CopyError(f"{where(url)}: cannot use it as DST: {_one_line(err)}{hint}") from None
    return engine


def _rows_held(connection) -> str:
    """``'3 messages, 1 worker_runs'`` for the history tables in DST that have rows; '' when none."""
    present = set(inspect(connection).get_table_names())
    held = []
    for name in TABLES:
        if name in present:
            count = connection.scalar(text(f"SELECT count(*) FROM {name}"))
            if count:
                held.append(f"{count} {name}")
    return ", ".join(held)


def _copy(src: Engine, dst: Engine, source: str, destination: str, revision: str, batch_size: int,
          progress) -> CopyReport:
    report = CopyReport(where(source), where(destination), revision)
    tables = stored_tables(dst.dialect.name)
    try:
        with src.connect() as reading, dst.begin() as writing:
            if reading.dialect.name == "postgresql":
                reading = reading.execution_options(isolation_level="REPEATABLE READ")
            with reading.begin():  # one snapshot of SRC, even while its manager writes
                held = _rows_held(writing)  # again, inside the transaction: nobody filled it meanwhile
                if held:
                    raise CopyError(f"{where(destination)}: already holds history ({held}); copy into an "
                                    f"empty database (nothing was changed)")
                expected = _counts(reading, tables)
                for name in TABLES:
                    _copy_table(reading, writing, tables[name], expected[name], batch_size, progress, destination)
                    if name == "messages":
                        _copy_triggers(reading, writing, tables["worker_runs"], expected[TRIGGERS], batch_size,
                                       progress)
            copied = _counts(writing, tables)
            for name in (*TABLES, TRIGGERS):
                if copied[name] != expected[name]:
                    what = f"table {name} has" if name in TABLES else "worker_runs has, with a triggered_by,"
                    raise CopyError(f"{where(destination)}: {what} {copied[name]} rows after the copy, "
                                    f"{where(source)} has {expected[name]}; the copy was rolled back")
            if writing.dialect.name == "postgresql":
                _advance_sequences(writing)
    except SQLAlchemyError as err:
        raise CopyError(f"copy from {where(source)} to {where(destination)} failed and was rolled back: "
                        f"{_one_line(err)}") from None
    report.counts = {name: copied[name] for name in TABLES}
    return report


def _running_manager(connection) -> str | None:
    """How SRC's manager looks to be running (``heartbeat 2 s ago, pid 12 on
    host``), or None: no heartbeat, a stale one, or one from a process on this
    host that has stopped (the heartbeat is not removed at a clean stop)."""
    row = connection.execute(select(ManagerStateRow.value, ManagerStateRow.updated_at)
                             .where(ManagerStateRow.name == HEARTBEAT)).first()
    if row is None or row.updated_at is None:
        return None
    age = (dt.datetime.now(dt.timezone.utc) - row.updated_at).total_seconds()
    if age > HEARTBEAT_STALE:
        return None
    beat = row.value if isinstance(row.value, dict) else {}
    pid, host = beat.get("pid"), beat.get("host")
    if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
        return None
    return f"heartbeat {max(age, 0):.0f} s ago, pid {pid} on {host}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _counts(connection, tables: dict[str, Table]) -> dict[str, int]:
    counts = {name: connection.scalar(select(func.count()).select_from(table)) for name, table in tables.items()}
    runs = tables["worker_runs"]
    counts[TRIGGERS] = connection.scalar(
        select(func.count()).select_from(runs).where(runs.c.triggered_by.is_not(None)))
    return counts


def _batches(connection, query, key: Column, batch_size: int):
    """Rows of ``query`` in ``key`` order, ``batch_size`` at a time (keyset
    paging: each batch starts after the last key of the one before)."""
    last = None
    while True:
        page = query.order_by(key).limit(batch_size)
        if last is not None:
            page = page.where(key > last)
        result = connection.execute(page)
        names = list(result.keys())
        rows = [dict(zip(names, row)) for row in result]
        if not rows:
            return
        yield rows
        last = rows[-1][key.name]


def _copy_table(reading, writing, table: Table, total: int, batch_size: int, progress, destination: str) -> None:
    key = table.primary_key.columns[0]
    insert = table.insert()
    with _stage(progress, table.name, total) as stage:
        for rows in _batches(reading, select(table), key, batch_size):
            if table.name == "worker_runs":
                for row in rows:
                    row["triggered_by"] = None  # set once the messages are there
            try:
                with writing.begin_nested():  # a savepoint, so a refused batch can be searched for its row
                    writing.execute(insert, rows)
            except SQLAlchemyError as err:
                row, err = _refused_row(writing, insert, rows, err)
                raise CopyError(f"{where(destination)}: cannot insert {table.name} row with {key.name} "
                                f"{row[key.name]!r}: {_one_line(err)}; the copy was rolled back") from None
            if stage is not None:
                stage.advance(len(rows))


def _stage(progress, what: str, total: int):
    """A progress stage, or a stand-in that yields None without progress."""
    return progress.stage(what, total) if progress is not None else nullcontext()


def _refused_row(writing, insert, rows: list[dict], batch_error: SQLAlchemyError) -> tuple[dict, SQLAlchemyError]:
    """The first row of a refused batch that DST refuses on its own, and why."""
    for row in rows:
        try:
            with writing.begin_nested():
                writing.execute(insert, [row])
        except SQLAlchemyError as err:
            return row, err
    return rows[0], batch_error


def _copy_triggers(reading, writing, runs: Table, total: int, batch_size: int, progress) -> None:
    """Set ``worker_runs.triggered_by`` now that the messages it refers to are copied."""
    query = select(runs.c.id, runs.c.triggered_by).where(runs.c.triggered_by.is_not(None))
    statement = (update(runs).where(runs.c.id == bindparam("b_id"))
                 .values(triggered_by=bindparam("b_triggered_by")))
    with _stage(progress, TRIGGERS, total) as stage:
        for rows in _batches(reading, query, runs.c.id, batch_size):
            writing.execute(statement, [{"b_id": row["id"], "b_triggered_by": row["triggered_by"]} for row in rows])
            if stage is not None:
                stage.advance(len(rows))


def _advance_sequences(connection) -> None:
    """Make each id sequence hand out max(id) + 1 next (1 for an empty table)."""
    for name in WITH_IDS:
        connection.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), coalesce(max(id), 0) + 1, false) FROM {name}"))


# --- the command -----------------------------------------------------------------------

def copy_command(args) -> int:
    """``nowcast db copy``: the report on standard output, progress and warnings on standard error."""
    import sys

    from nowcast_db.progress import Progress
    from nowcast_db.prune import parse_batch_size

    batch_size = parse_batch_size(args.batch_size)
    source, destination = history_url(args.source, "SRC"), history_url(args.destination, "DST")
    progress = Progress("copy", enabled=not args.no_progress)
    try:
        report = copy_history(source, destination, batch_size, progress, while_running=args.while_running)
    except KeyboardInterrupt:
        print(f"nowcast: copy interrupted; {where(destination)} was left without any copied rows",
              file=sys.stderr)
        return 130
    for warning in report.warnings:
        print(f"nowcast: warning: {warning}", file=sys.stderr)
    print("\n".join(report.lines()))
    return 0
