"""Moving SQLite's write-ahead log into the database file off the manager's loop.

By default SQLite checkpoints inside the commit that fills the WAL past 1000
pages, so every few dozen batches one worker's reply waits for the whole
checkpoint (copy and fsync of the database file).  The manager's engine turns
that off (``writer=True`` in make_engine) and this thread checkpoints once a
second on its own connection instead; PASSIVE never blocks the manager.
"""
from __future__ import annotations

import logging
import sqlite3
import threading

from sqlalchemy.engine import make_url

INTERVAL_SECONDS = 1.0


class WalCheckpointer:
    def __init__(self, url: str, logger: logging.Logger | None = None):
        self.path = make_url(url).database
        self.logger = logger or logging.getLogger(__name__)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)

    @staticmethod
    def wanted(url: str) -> bool:
        parsed = make_url(url)
        return parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")

    def start(self) -> "WalCheckpointer":
        self._thread.start()
        return self

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            while not self._stop.wait(INTERVAL_SECONDS):
                self._checkpoint(connection, "PASSIVE")
            self._checkpoint(connection, "TRUNCATE")  # leave a small WAL behind
        finally:
            connection.close()

    def _checkpoint(self, connection, mode: str) -> None:
        try:
            connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
        except sqlite3.Error as err:
            self.logger.warning(f"WAL checkpoint ({mode}) failed: {err}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
