"""The toy system with its history in PostgreSQL (a fresh database per test,
dropped afterwards).  Skipped, saying how to enable it, when no server answers
at NOWCAST_TEST_POSTGRES (default postgresql+psycopg://postgres@127.0.0.1:5432/test)."""
import os
import uuid

import pytest

from conftest import wait_until

ADMIN_URL = os.environ.get("NOWCAST_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_url():
    sqlalchemy = pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg", reason="pip install '.[postgresql]' to test PostgreSQL")
    admin = sqlalchemy.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            name = f"nowcast_test_{uuid.uuid4().hex[:12]}"
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sqlalchemy.exc.OperationalError as err:
        admin.dispose()
        pytest.skip(f"no PostgreSQL server at {ADMIN_URL} ({str(err).splitlines()[0]}); "
                    f"set NOWCAST_TEST_POSTGRES to a URL of a server where tests may create databases")
    url = sqlalchemy.engine.make_url(ADMIN_URL).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.dispose()


def test_toy_system_records_its_history_in_postgresql(toy, postgres_url):
    import sqlalchemy

    toy.edit_config(lambda config: config.update({"database url": postgres_url}))
    toy.start("message_broker")
    toy.start("manager")
    engine = sqlalchemy.create_engine(postgres_url)

    def rows(query):
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.exec_driver_sql(query)]
        except sqlalchemy.exc.ProgrammingError:  # the manager is still creating the tables
            return []

    try:
        wait_until(lambda: rows("SELECT count(*) FROM manager_state WHERE name = 'heartbeat'") == [(1,)],
                   timeout=30, what="manager heartbeat in PostgreSQL")
        result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
        assert result.returncode == 0, result.stdout + result.stderr
        wait_until(lambda: rows("SELECT worker, state, exit_code FROM worker_runs ORDER BY id")
                   == [("sleep", "succeeded", None), ("awaken", "succeeded", 0)], what="runs in PostgreSQL")
        assert rows("SELECT value->>'sleep time' FROM checklist WHERE key = 'sleepyhead'") == [("0",)]
        assert rows("SELECT pg_typeof(payload)::text FROM messages LIMIT 1") == [("jsonb",)]
    finally:
        toy.stop_all()
        engine.dispose()
