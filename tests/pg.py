"""A fresh PostgreSQL database for one test, dropped afterwards.

Tests create their databases on the server named by NOWCAST_TEST_POSTGRES
(default postgresql+psycopg://postgres@127.0.0.1:5432/test, a database whose
user may CREATE DATABASE).  Without psycopg or without a server there, the
PostgreSQL cases are skipped with a message saying how to enable them; with
NOWCAST_TEST_POSTGRES_REQUIRED=1 (for CI) they fail instead.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

ADMIN_URL = os.environ.get("NOWCAST_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRED = os.environ.get("NOWCAST_TEST_POSTGRES_REQUIRED", "") not in ("", "0")
HOW_TO_ENABLE = ("set NOWCAST_TEST_POSTGRES to the URL of a PostgreSQL database whose user may create databases "
                 "(and pip install '.[postgresql]')")

_admin = None
_unavailable: str | None = None


def unavailable() -> str | None:
    """Why PostgreSQL cases cannot run here, or None when they can (asked of the server once a session)."""
    global _admin, _unavailable
    if _admin is None and _unavailable is None:
        import sqlalchemy

        try:
            import psycopg  # noqa: F401
        except ImportError:
            _unavailable = f"psycopg is not installed; {HOW_TO_ENABLE}"
            return _unavailable
        engine = sqlalchemy.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except sqlalchemy.exc.SQLAlchemyError as err:
            engine.dispose()
            first_line = str(getattr(err, "orig", err)).strip().splitlines()[0]
            _unavailable = f"no PostgreSQL server at {shown(ADMIN_URL)} ({first_line}); {HOW_TO_ENABLE}"
        else:
            _admin = engine
    return _unavailable


def skip_unless_available() -> None:
    reason = unavailable()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"NOWCAST_TEST_POSTGRES_REQUIRED is set but {reason}", pytrace=False)
        pytest.skip(reason)


@contextlib.contextmanager
def fresh_database(prefix: str = "nowcast_test") -> Iterator[str]:
    """Create an empty database, yield its URL, and drop it (also when the test failed)."""
    from sqlalchemy.engine import make_url

    skip_unless_available()
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with _admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        drop_database(name)


def drop_database(name: str) -> None:
    """Drop a database, ending any connection still open to it (a process a failed test left running)."""
    with _admin.connect() as connection:
        if _admin.dialect.server_version_info >= (13,):
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            connection.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                       "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')


def shown(url: str) -> str:
    """A URL fit to print (no password)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: the connection error says so
        return url
