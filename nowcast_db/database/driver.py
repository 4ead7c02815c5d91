"""The manager's hot-path statements, executed on the driver's cursor directly.

SQLAlchemy Core's work around each execution (execution context, events,
result set-up, parameter processing) cost more than SQLite itself for the
manager's small batches: about 50 µs a statement, five statements a batch
(profiled; see BENCHMARKS.md).  Here each statement is compiled once per
database dialect by SQLAlchemy, and every parameter and result goes through
its column type's own bind or result processor — so what is written and read
is exactly what Core would write and read, on SQLite and PostgreSQL alike.
"""
from __future__ import annotations

from sqlalchemy import Select, bindparam


class DriverStatement:
    """A Core statement that runs on the DBAPI cursor of a Core connection's
    current transaction.  ``column_keys`` names an INSERT's columns."""

    def __init__(self, statement, column_keys: list[str] | None = None):
        self.statement = statement
        self.column_keys = column_keys
        self._compiled: dict[str, tuple] = {}

    def _for(self, dialect) -> tuple:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            sql = self.statement.compile(dialect=dialect, column_keys=self.column_keys)
            names = list(sql.positiontup) if dialect.positional else list(sql.binds)
            binders = [(name, sql.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                       for name in names]
            readers = []
            if isinstance(self.statement, Select):
                readers = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                           for column in self.statement.selected_columns]
            compiled = self._compiled[dialect.name] = (sql.string, binders, dialect.positional, readers)
        return compiled

    def execute(self, connection, rows: list[dict]) -> None:
        """Run the statement once per row (one executemany)."""
        sql, binders, positional, _ = self._for(connection.dialect)
        parameters = _parameters(binders, positional, rows)
        cursor = connection.connection.cursor()
        try:
            if len(parameters) == 1:
                cursor.execute(sql, parameters[0])
            else:
                cursor.executemany(sql, parameters)
        finally:
            cursor.close()

    def rows(self, connection, row: dict) -> list[tuple]:
        """Run a SELECT with one set of parameters; its rows, each value processed."""
        sql, binders, positional, readers = self._for(connection.dialect)
        cursor = connection.connection.cursor()
        try:
            cursor.execute(sql, _parameters(binders, positional, [row])[0])
            fetched = cursor.fetchall()
        finally:
            cursor.close()
        return [tuple(read(value) if read is not None else value for read, value in zip(readers, fetched_row))
                for fetched_row in fetched]


def _parameters(binders, positional: bool, rows: list[dict]) -> list:
    """The rows' parameters, processed column by column.  A batch repeats
    values (every message of a batch has the same received_at, most replies
    no payload): a value that is the very same object as the one above it is
    not processed again."""
    columns = []
    for name, process in binders:
        values = [row[name] for row in rows]
        if process is not None:
            processed, last, last_processed = [], _NOTHING, None
            for value in values:
                if value is not last:
                    last, last_processed = value, process(value)
                processed.append(last_processed)
            values = processed
        columns.append(values)
    if positional:
        return list(zip(*columns))
    names = [name for name, _ in binders]
    return [dict(zip(names, values)) for values in zip(*columns)]


_NOTHING = object()


class DriverInList:
    """``SELECT … WHERE column IN (…)`` for any number of values: one
    DriverStatement per power-of-two list size, the list padded with its last
    value (so a handful of compiled statements serve every batch)."""

    def __init__(self, make_select, column):
        self.make_select, self.column = make_select, column
        self._by_size: dict[int, DriverStatement] = {}

    def rows(self, connection, values: list) -> list[tuple]:
        size = 1
        while size < len(values):
            size *= 2
        statement = self._by_size.get(size)
        if statement is None:
            statement = self._by_size[size] = DriverStatement(self.make_select().where(
                self.column.in_([bindparam(f"v{index}") for index in range(size)])))
        padded = list(values) + [values[-1]] * (size - len(values))
        return statement.rows(connection, {f"v{index}": value for index, value in enumerate(padded)})
