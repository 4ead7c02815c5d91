"""The UI-free data layer: where the history is, and reading it.

Screens call these from thread workers.  Everything goes through
``nowcast_db.database.queries`` so the TUI never needs SQLAlchemy, and every
failure comes back as one line of text an operator can act on.
"""
from __future__ import annotations

import datetime as dt
import threading

from nowcast_db.config import load_config
from nowcast_db.database import queries
from nowcast_db.database.engine import database_url
from nowcast_db.errors import NowcastError

#: a heartbeat older than this means the manager is not running (it beats every 5 s)
HEARTBEAT_STALE_SECONDS = 15.0
PAGE_SIZE = 200


class Unreadable(Exception):
    """The history cannot be shown right now; the text says why."""


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
                    self._engine = queries.open_history_for_watching(self.url)
                except NowcastError as err:
                    raise Unreadable(str(err)) from None
            engine = self._engine
        try:
            return query(engine, *args, **kwargs)
        except NowcastError as err:
            raise Unreadable(str(err)) from None

    def status(self) -> dict:
        now = dt.datetime.now(dt.timezone.utc)
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        status = self._read(queries.system_status, day_start)
        beat_at = status["heartbeat_at"]
        status["heartbeat_age"] = (now - beat_at).total_seconds() if beat_at else None
        status["manager_up"] = beat_at is not None and status["heartbeat_age"] < HEARTBEAT_STALE_SECONDS
        return status

    def runs(self, limit: int = PAGE_SIZE) -> list:
        return self._read(queries.newest_runs, limit)

    def messages(self, limit: int = PAGE_SIZE) -> list:
        return self._read(queries.newest_messages, limit)

    def run_detail(self, run_id: int) -> dict | None:
        return self._read(queries.run_detail, run_id)

    def checklist(self) -> dict:
        return self._read(queries.current_checklist)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
