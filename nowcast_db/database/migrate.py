"""Schema migrations, run in-process with Alembic."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine


def migrations_dir() -> Path:
    """The shipped migrations (package ``nowcast_db.migrations``), or the
    source tree's ``migrations/`` when running from a checkout."""
    try:
        return Path(str(resources.files("nowcast_db.migrations")))
    except ModuleNotFoundError:
        checkout = Path(__file__).resolve().parents[2] / "migrations"
        if not checkout.is_dir():
            raise RuntimeError(f"nowcast_db is installed without its migrations (looked in {checkout})") from None
        return checkout


def alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema up to date (creates it in an empty database)."""
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
