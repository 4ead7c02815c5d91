"""The UI-free data layer: where the history is, and reading it.

Screens call these from thread workers.  Reads go through
``nowcast_tui.queries`` (and ``nowcast_db.database.queries``), so screens
never see SQLAlchemy, and every failure comes back as one line of text an
operator can act on.
"""
from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from nowcast_db.config import load_config
from nowcast_db.database import queries as db_queries
from nowcast_db.database.engine import database_url
from nowcast_db.errors import NowcastError
from nowcast_db.status import broker_reachable
from nowcast_tui import queries
from nowcast_tui.filters import MessageFilter, RunFilter

#: a heartbeat older than this means the manager is not running (it beats every 5 s)
HEARTBEAT_STALE_SECONDS = 15.0
#: rows per page of the Runs and Messages tables
PAGE_SIZE = 100
#: the operator is looking at a header: a broker that does not accept at once is not there
BROKER_TIMEOUT = 0.5


class Unreadable(Exception):
    """The history cannot be shown right now; the text says why."""


def check_url(url: str, role: str) -> None:
    """Refuse a URL no waiting will make readable: one SQLAlchemy cannot read,
    or whose dialect it does not have.  A SQLite file not there yet, or a
    database server that is down, is waited for instead."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise NowcastError(f"{role} {url}: expected an SQLAlchemy URL such as sqlite:///path") from None
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise NowcastError(f"{role} {parsed.render_as_string(hide_password=True)}: SQLAlchemy has no "
                           f"{parsed.drivername!r} dialect (expected a URL such as "
                           f"sqlite:///path or postgresql+psycopg://user@host/name)") from None


class History:
    """One history database, opened lazily and reopened after a failure, so
    the TUI can start before the manager has created the file and recover
    when a lock is released."""

    def __init__(self, url: str, config=None):
        self.url = url
        self.config = config
        self._engine = None
        self._lock = threading.Lock()

    @classmethod
    def from_config_file(cls, path: str) -> "History":
        config = load_config(path)
        return cls(database_url(config), config)

    def _read(self, query, *args, **kwargs):
        with self._lock:
            if self._engine is None:
                try:
                    self._engine = db_queries.open_history_for_watching(self.url)
                except NowcastError as err:
                    raise Unreadable(str(err)) from None
            engine = self._engine
        try:
            return query(engine, *args, **kwargs)
        except NowcastError as err:
            raise Unreadable(str(err)) from None

    def status(self, now: dt.datetime | None = None) -> dict:
        now = now or dt.datetime.now(dt.timezone.utc)
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        status = self._read(db_queries.system_status, day_start)
        beat_at = status["heartbeat_at"]
        status["heartbeat_age"] = (now - beat_at).total_seconds() if beat_at else None
        status["manager_up"] = beat_at is not None and status["heartbeat_age"] < HEARTBEAT_STALE_SECONDS
        return status

    def broker_up(self) -> bool | None:
        """Whether the broker's workers port accepts a connection; None without a config to say where."""
        if self.config is None:
            return None
        try:
            return broker_reachable(self.config, timeout=BROKER_TIMEOUT)
        except (KeyError, TypeError):  # a config without zmq: host / ports: workers
            return False

    def runs_page(self, where: RunFilter, *, before: int | None = None, after: int | None = None,
                  limit: int = PAGE_SIZE) -> list:
        return self._read(queries.runs_page, where, before=before, after=after, limit=limit)

    def runs_by_id(self, ids: list[int]) -> list:
        return self._read(queries.runs_by_id, ids)

    def messages_page(self, where: MessageFilter, *, before: int | None = None, after: int | None = None,
                      limit: int = PAGE_SIZE) -> list:
        return self._read(queries.messages_page, where, before=before, after=after, limit=limit)

    def message(self, message_id: int):
        return self._read(queries.message, message_id)

    def run_detail(self, run_id: int) -> dict | None:
        detail = self._read(db_queries.run_detail, run_id)
        if detail is not None:
            detail["output_path"] = self._read(queries.output_path, run_id)
        return detail

    def checklist(self, key_text: str = "") -> dict:
        return self._read(queries.checklist, key_text)

    def key_history(self, key: str) -> list:
        return self._read(queries.key_history, key)

    def runs_around(self, start: dt.datetime, end: dt.datetime) -> list:
        return self._read(queries.runs_around, start, end)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
