"""Schema migrations, run in-process with Alembic."""
from __future__ import annotations

import logging
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


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Bring the database schema up to date (creates it in an empty database);
    the revisions before and after.

    Alembic says each migration it runs at INFO; unless the system's logging
    config sets the ``alembic`` logger's level, that is quieted to warnings
    (the callers say in one line what changed)."""
    alembic_logger = logging.getLogger("alembic")
    quiet = alembic_logger.level == logging.NOTSET
    if quiet:
        alembic_logger.setLevel(logging.WARNING)
    try:
        before = current_revision(engine)
        with engine.begin() as connection:
            config = alembic_config(engine)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        return before, current_revision(engine)
    finally:
        if quiet:
            alembic_logger.setLevel(logging.NOTSET)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
