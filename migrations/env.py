"""Alembic environment.

In-process (``nowcast db upgrade``, manager start) a connection is handed in
through ``config.attributes``; from the ``alembic`` command line the URL comes
from ``-x url=...`` or ``NOWCAST_DATABASE_URL``.
"""
import os

from alembic import context
from sqlalchemy import create_engine

from nowcast_db.database.models import Base

target_metadata = Base.metadata
config = context.config


def run_with(connection):
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_with(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("NOWCAST_DATABASE_URL")
    if not url:
        raise SystemExit("alembic: give the database with -x url=URL or NOWCAST_DATABASE_URL")
    engine = create_engine(url)
    with engine.begin() as conn:
        run_with(conn)
