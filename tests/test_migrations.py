"""The schema is owned by Alembic: one head, upgrade from empty, models and migrations agree."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from conftest import both_backends
from nowcast_db.database import make_engine, upgrade
from nowcast_db.database.migrate import alembic_config, current_revision
from nowcast_db.database.models import Base


def test_single_migration_head(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    assert len(ScriptDirectory.from_config(alembic_config(engine)).get_heads()) == 1


@both_backends
def test_upgrade_from_empty_then_models_and_migrations_agree(database_url):
    engine = make_engine(database_url, writer=True)
    upgrade(engine)
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert current_revision(engine) == head
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


@both_backends
def test_upgrade_twice_is_harmless(database_url):
    engine = make_engine(database_url, writer=True)
    upgrade(engine)
    upgrade(engine)
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    assert {"messages", "worker_runs", "checklist", "checklist_mutations", "manager_state"} <= tables


def test_sqlite_runs_in_wal_mode(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
