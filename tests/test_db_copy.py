"""`nowcast db copy SRC DST`: a real history moved from SQLite into PostgreSQL
(and back, and into another SQLite file), every row of every table compared
with plain SQL on both sides, values that JSON cannot hold included; a manager
started on the copy carries on numbering after the copied ids; refusals, bad
URLs and a copy that does not add up are one-line errors that leave DST empty."""
import datetime as dt
import json
import sqlite3
import subprocess
import sys

import pytest
import sqlalchemy
import yaml
from conftest import raw_message, raw_request, wait_until

import pg
from nowcast_db.cli import main
from nowcast_db.config import Config
from nowcast_db.database import Store, database_url, make_engine, upgrade
from nowcast_db.database.models import Base, MessageRow, UTCDateTime, Value
from nowcast_db.manager_loop import ManagerLoop

NOWCAST = [sys.executable, "-m", "nowcast_db.cli"]
TABLES = ["messages", "worker_runs", "checklist", "checklist_mutations", "manager_state"]
#: a payload with what plain JSON cannot hold: a datetime, a date, bytes, a set, a non-string key
LOSSLESS = {"sleep time": 0, "when": dt.datetime(2026, 11, 29, 5, 0, 30, 250000), "day": dt.date(2026, 11, 29),
            "blob": b"\x00\xffnowcast", "tags": {"salish", "fraser", "haro", "juan de fuca"}, 6: "six"}


def nowcast(*args, cwd=None, env=None, timeout=120):
    return subprocess.run([*NOWCAST, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code != 0
    assert err.startswith("nowcast: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


# --- reading both sides with plain SQL ---------------------------------------------------

def sqlite_rows(path, query: str) -> list[tuple]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return connection.execute(query).fetchall()
    finally:
        connection.close()


def pg_rows(url: str, query: str) -> list[tuple]:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.exec_driver_sql(query)]
    finally:
        engine.dispose()


def select_all(table: str) -> str:
    columns = Base.metadata.tables[table].columns
    key = Base.metadata.tables[table].primary_key.columns[0].name
    return f'SELECT {", ".join(f"{chr(34)}{c.name}{chr(34)}" for c in columns)} FROM {table} ORDER BY "{key}"'


def comparable(table: str, rows: list[tuple], backend: str) -> list[tuple]:
    """Rows as values: SQLite's JSON and time text parsed, its 0/1 booleans as booleans."""
    columns = list(Base.metadata.tables[table].columns)

    def value(column, stored):
        if stored is None or backend == "postgresql" and not isinstance(column.type, sqlalchemy.Boolean):
            return stored
        if isinstance(column.type, Value):
            return json.loads(stored)
        if isinstance(column.type, UTCDateTime):
            return dt.datetime.fromisoformat(stored)
        if isinstance(column.type, sqlalchemy.Boolean):
            return bool(stored)
        return stored

    return [tuple(value(column, stored) for column, stored in zip(columns, row)) for row in rows]


def sqlite_history(path) -> dict[str, list[tuple]]:
    return {table: comparable(table, sqlite_rows(path, select_all(table)), "sqlite") for table in TABLES}


def pg_history(url: str) -> dict[str, list[tuple]]:
    return {table: comparable(table, pg_rows(url, select_all(table)), "postgresql") for table in TABLES}


# --- a history written by the manager's own code, without processes ----------------------

def write_history(toy, monkeypatch, messages: list, next_workers: str | None = None) -> None:
    """Decide and record ``messages`` (dicts, or raw bytes) with the real
    manager loop and store into the toy system's SQLite history; launches are
    recorded (pending), not started, and no heartbeat is written."""
    monkeypatch.setenv("NOWCAST_LOGS", str(toy.directory))
    monkeypatch.setenv("NOWCAST_ENV", toy.env["NOWCAST_ENV"])
    if next_workers is not None:
        toy.write_next_workers(next_workers)
    config = Config(toy.config_file)
    engine = make_engine(database_url(config), writer=True)
    try:
        upgrade(engine)
        store = Store(engine)
        loop = ManagerLoop(config, store, store.load_state())
        loop.handle_batch([m if isinstance(m, bytes) else yaml.safe_dump(m).encode() for m in messages])
    finally:
        engine.dispose()


SLEEP_THEN_AWAKEN = """\
from nowcast_db import NextWorker

def after_sleep(msg, config, checklist):
    return [NextWorker("nowcast_db.workers.awaken")] if msg.type == "success" else []

def after_awaken(msg, config, checklist):
    return []
"""


@pytest.fixture
def history(toy, monkeypatch):
    return make_history(toy, monkeypatch)


def make_history(toy, monkeypatch):
    """The toy system's SQLite history with 40 messages, runs launched from
    them, checklist changes with lossless values, and one unreadable message."""
    messages = []
    for n in range(12):
        messages.append({"source": "sleep", "type": "success", "payload": {**LOSSLESS, "sleep time": n}})
        messages.append({"source": "awaken", "type": "success", "payload": {"awoke": True, "n": n}})
        messages.append({"source": "sleep", "type": "failure", "payload": None})
    messages += [b"{not: yaml"] + [{"source": "awaken", "type": "crash", "payload": [n, "x"]} for n in range(3)]
    write_history(toy, monkeypatch, messages, SLEEP_THEN_AWAKEN)
    assert sqlite_rows(toy.db_path, "SELECT count(*) FROM messages") == [(40,)]
    assert sqlite_rows(toy.db_path, "SELECT count(*) FROM worker_runs WHERE triggered_by IS NOT NULL") == [(12,)]
    return toy


# --- SQLite to PostgreSQL, with a real system ---------------------------------------------

def test_real_history_copied_into_postgresql_keeps_every_row_and_the_manager_carries_on(toy):
    toy.start_system()
    worker = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert raw_message(toy.workers_port, {"source": "sleep", "type": "success", "payload": LOSSLESS})["type"] == "ack"
    raw_request(toy.workers_port, b"\xff{not yaml")
    wait_until(lambda: toy.sql("SELECT count(*) FROM worker_runs WHERE worker = 'awaken' AND exit_code = 0")
               == [(2,)], what="both awaken runs to be reaped")
    with pg.fresh_database() as pg_url:
        # the manager still runs: refused, and DST not touched
        refused = nowcast("db", "copy", str(toy.db_path), pg_url, env=toy.env)
        one_line_error(refused.returncode, refused.stderr, str(toy.db_path), "its manager is running",
                       "--while-running")
        assert pg_rows(pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
        toy.stop_all()

        copied = nowcast("db", "copy", "--batch-size", "3", str(toy.db_path), pg_url, env=toy.env)
        assert copied.returncode == 0, copied.stdout + copied.stderr
        source = sqlite_history(toy.db_path)
        counts = {table: len(rows) for table, rows in source.items()}
        for table, count in counts.items():
            assert f"  {table}:" in copied.stdout and copied.stdout.split(f"  {table}:")[1].split()[0] == str(count)
        # not a terminal: plain progress lines on standard error, one per table at its end
        assert f"copy: messages {counts['messages']}/{counts['messages']} (100%)" in copied.stderr, copied.stderr

        assert pg_history(pg_url) == source  # every column of every row, ids and JSON as stored
        assert all(source[table] for table in TABLES)
        assert pg_rows(pg_url, "SELECT count(*) FROM messages WHERE raw IS NOT NULL AND error IS NOT NULL") == [(1,)]
        assert pg_rows(pg_url, "SELECT pg_typeof(payload)::text FROM messages LIMIT 1") == [("jsonb",)]
        engine = sqlalchemy.create_engine(pg_url)
        try:
            with engine.connect() as connection:  # read back through the model, as the manager and TUI do
                payloads = list(connection.scalars(sqlalchemy.select(MessageRow.payload).where(
                    MessageRow.source == "sleep", MessageRow.raw.is_(None)).order_by(MessageRow.id)))
        finally:
            engine.dispose()
        assert payloads[-1] == LOSSLESS and isinstance(payloads[-1]["tags"], set)

        # and back into SQLite: the same values again
        back = toy.directory / "back.sqlite"
        returned = nowcast("db", "copy", "--no-progress", pg_url, f"sqlite:///{back}", env=toy.env)
        assert returned.returncode == 0 and returned.stderr == "", returned.stdout + returned.stderr
        assert sqlite_history(back) == source

        # a manager on the copy numbers on from the copied ids; --ignore-checklist's clearing
        # takes its checklist_mutations id from the PostgreSQL sequence, moved past the copied ids
        last = {table: max(row[0] for row in source[table]) for table in ("messages", "worker_runs",
                                                                          "checklist_mutations")}
        toy.edit_config(lambda config: config.update({"database url": pg_url}))
        toy.database_url = pg_url
        try:
            toy.start("message_broker")
            toy.start_manager("--ignore-checklist")
            worker = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
            assert worker.returncode == 0, worker.stdout + worker.stderr
            wait_until(lambda: toy.sql("SELECT count(*) FROM worker_runs WHERE id > ? AND exit_code = 0",
                                       (last["worker_runs"],)) == [(1,)], what="a new awaken run")
            toy.stop_all()
            assert toy.sql("SELECT min(id), count(*) FROM checklist_mutations WHERE operation = 'clear'") == [
                (last["checklist_mutations"] + 1, 2)]
            assert toy.sql("SELECT min(id) FROM messages WHERE id > ?", (last["messages"],)) == [
                (last["messages"] + 1,)]
            assert toy.sql("SELECT worker, launched_by FROM worker_runs WHERE id > ? ORDER BY id",
                           (last["worker_runs"],)) == [("sleep", "external"), ("awaken", "manager")]
            assert toy.sql("SELECT count(*) FROM messages") == [(counts["messages"] + 2,)]
        finally:
            toy.close()


# --- SQLite to SQLite, and what is refused ------------------------------------------------

def test_sqlite_copy_with_bare_paths_is_identical_byte_for_byte(history):
    destination = history.directory / "copy" / "nowcast.sqlite"
    copied = nowcast("db", "copy", "--batch-size", "7", "nowcast.sqlite", str(destination), cwd=history.directory)
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert copied.stdout.startswith(f"copied {history.db_path} to {destination} (schema revision ")
    for table in TABLES:
        query = select_all(table)
        assert sqlite_rows(destination, query) == sqlite_rows(history.db_path, query), table
    mutations = sqlite_rows(history.db_path, "SELECT count(*) FROM checklist_mutations")[0][0]
    assert f"copy: checklist_mutations {mutations}/{mutations} (100%)" in copied.stderr, copied.stderr
    assert copied.stderr.count("\n") == 6, copied.stderr  # a line for each table, and one for triggered_by


def test_destination_that_already_holds_history_is_refused_and_left_alone(history, capsys):
    destination = history.directory / "copy.sqlite"
    assert main(["db", "copy", "--no-progress", str(history.db_path), str(destination)]) == 0
    capsys.readouterr()
    before = {table: sqlite_rows(destination, select_all(table)) for table in TABLES}
    assert main(["db", "copy", str(history.db_path), f"sqlite:///{destination}"]) != 0
    out, err = capsys.readouterr()
    assert out == ""
    runs, messages = (sqlite_rows(history.db_path, f"SELECT count(*) FROM {table}")[0][0]
                      for table in ("worker_runs", "messages"))
    one_line_error(1, err, str(destination), f"already holds history ({runs} worker_runs, {messages} messages, ",
                   "nothing was changed")
    assert {table: sqlite_rows(destination, select_all(table)) for table in TABLES} == before


def test_counts_that_differ_after_the_copy_roll_it_back_and_name_the_table(history, capsys):
    destination = history.directory / "eaten.sqlite"
    engine = make_engine(f"sqlite:///{destination}", writer=True)
    upgrade(engine)
    engine.dispose()
    connection = sqlite3.connect(destination)  # something in DST that loses rows: the count must notice
    connection.execute("CREATE TRIGGER eat AFTER INSERT ON checklist BEGIN DELETE FROM checklist "
                       "WHERE key = NEW.key; END")
    connection.close()
    assert main(["db", "copy", "--no-progress", str(history.db_path), str(destination)]) != 0
    out, err = capsys.readouterr()
    one_line_error(1, err, "table checklist has 0 rows after the copy", f"{history.db_path} has 2",
                   "rolled back")
    assert [sqlite_rows(destination, f"SELECT count(*) FROM {table}") for table in TABLES] == [[(0,)]] * 5


def test_row_postgresql_refuses_is_named_and_nothing_is_copied(toy, monkeypatch, capsys):
    write_history(toy, monkeypatch, [{"source": "sleep", "type": "success", "payload": {"sleep time": 1}},
                                     b"\x00\x01 a frame of zeros", {"source": "awaken", "type": "success"}])
    # today's manager writes a NUL in raw text as \x00; an older one kept it as it came
    toy.execute("UPDATE messages SET raw = replace(raw, '\\x00', char(0)) WHERE id = 2")
    with pg.fresh_database() as pg_url:
        assert main(["db", "copy", str(toy.db_path), pg_url]) != 0
        out, err = capsys.readouterr()
        one_line_error(1, err.splitlines()[-1] + "\n", "cannot insert messages row with id 2",
                       "NUL", "rolled back")
        assert "copy: messages 0/3 (0%), " in err and "stopped after" in err, err  # where it stopped
        assert pg_rows(pg_url, "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM worker_runs)") == [
            (0, 0)]


@pytest.mark.parametrize(("source", "destination", "fragments"), [
    ("nowhere.sqlite", "copy.sqlite", ["nowhere.sqlite: no history database there yet"]),
    ("nowcast.sqlite", "mysql://nowcast:s3cret@dbhost/nowcast",
     ["DST mysql://nowcast:***@dbhost/nowcast: expected a sqlite:/// or postgresql+psycopg:// URL"]),
    ("nowcast.sqlite", "postgresql+psycopg://nowcast:s3cret@127.0.0.1:1/nowcast",
     ["postgresql+psycopg://nowcast:***@127.0.0.1:1/nowcast: cannot use it as DST: ", "refused"]),
    ("nowcast.sqlite", "nowcast.sqlite", ["SRC and DST are the same database"]),
    ("nowcast.sqlite", "", ["DST: expected a database URL"]),
])
def test_bad_urls_get_one_line_errors_without_the_password(history, monkeypatch, capsys, source, destination,
                                                            fragments):
    monkeypatch.chdir(history.directory)
    code = main(["db", "copy", source, destination])
    out, err = capsys.readouterr()
    one_line_error(code, err, *fragments)
    assert out == "" and "s3cret" not in err
    assert not (history.directory / "copy.sqlite").exists()


def test_missing_postgresql_database_error_says_to_create_it(history, capsys):
    pg.skip_unless_available()
    missing = sqlalchemy.engine.make_url(pg.ADMIN_URL).set(database="nowcast_no_such_database").render_as_string(
        hide_password=False)
    assert main(["db", "copy", str(history.db_path), missing]) != 0
    out, err = capsys.readouterr()
    one_line_error(1, err, 'database "nowcast_no_such_database" does not exist', "create it first")
