"""One engine factory for every process that touches the database."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from nowcast_db.errors import ConfigError

DEFAULT_DATABASE_NAME = "nowcast.sqlite"
WAL_SIZE_LIMIT = 64 * 1024 * 1024


def database_url(config) -> str:
    """The config's ``database url``, or a SQLite file beside the checklist file."""
    url = config.get("database url")
    if url:
        try:
            make_url(url)
        except Exception:
            raise ConfigError(f"{config.file}: key 'database url': expected an SQLAlchemy URL, got {url!r}") from None
        return url
    checklist_file = Path(config["checklist file"]).expanduser()
    return f"sqlite:///{checklist_file.parent.resolve() / DEFAULT_DATABASE_NAME}"


def url_from_text(text: str) -> str:
    """What an operator typed for a database (``--db``): a URL as it is, or a
    path to a SQLite file as its sqlite:/// URL."""
    if "://" not in text and text.strip():
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    return text


def make_engine(url: str, writer: bool = False, busy_timeout: float = 30.0) -> Engine:
    """Build an engine.  On SQLite: WAL, foreign keys, busy timeout, durable
    commits; ``writer=True`` begins every transaction IMMEDIATE so the manager
    takes the write lock up front instead of failing half way.  A display that
    polls every second passes a short ``busy_timeout`` (seconds) so a locked
    database makes it say "locked" rather than hang."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA synchronous=FULL")
        # the WAL is checkpointed by the writer's commits (every 1000 pages);
        # this caps the file left behind after a checkpoint
        cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine
