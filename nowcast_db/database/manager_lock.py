"""One manager per history database.

The manager is the only writer of messages and runs and numbers them itself;
a second manager on the same database (a circus watcher started twice, a test
system pointed at the production URL) would collide with it.  So a manager
holds a lock for its whole life, which the operating system or the database
server releases when the process ends, however it ends (SIGKILL included):

* SQLite: an exclusive ``flock`` on ``<database file>.manager-lock`` beside the
  database (the file says which process holds it);
* PostgreSQL: a session advisory lock on a connection kept open.
"""
from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

from sqlalchemy import Engine, text

from nowcast_db.errors import NowcastError

# pg_advisory_lock key: "nowcast" in ASCII, so other applications' keys are unlikely to clash
ADVISORY_KEY = int.from_bytes(b"nowcast", "big")
WAIT_SECONDS = 5.0


class ManagerLockError(NowcastError):
    """Another manager holds this history database."""


class ManagerLock:
    def __init__(self, release):
        self._release = release

    def release(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


def lock_history(engine: Engine, wait: float = WAIT_SECONDS) -> ManagerLock:
    """Take the database's manager lock, or raise ManagerLockError naming the
    holder.  Tries for up to ``wait`` seconds: PostgreSQL ends a killed
    manager's session (and its lock) only once it notices the connection is
    gone, and a process manager restarts the manager at once."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return _lock(engine)
        except ManagerLockError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def _lock(engine: Engine) -> ManagerLock:
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return ManagerLock(None)
        return _lock_file(Path(url.database).expanduser().resolve())
    if url.get_backend_name() == "postgresql":
        return _lock_postgresql(engine)
    return ManagerLock(None)


def _lock_file(database: Path) -> ManagerLock:
    path = database.with_name(database.name + ".manager-lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown process"
        os.close(fd)
        raise ManagerLockError(f"{database}: another manager is recording into this history database "
                               f"({holder}, lock file {path}); stop it first") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"manager pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)

    def release():
        os.ftruncate(fd, 0)
        os.close(fd)

    return ManagerLock(release)


def _lock_postgresql(engine: Engine) -> ManagerLock:
    connection = engine.connect()
    try:
        locked = connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY})
        holder = None
        if not locked:
            holder = connection.execute(text(
                "SELECT a.pid, a.client_addr, a.application_name FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                "AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND (l.classid::bigint << 32) + l.objid::bigint = :key"), {"key": ADVISORY_KEY}).first()
        connection.commit()
    except Exception:
        connection.close()
        raise
    if not locked:
        connection.close()
        who = f"server process {holder.pid}, client {holder.client_addr or 'local socket'}" if holder \
            else "another session"
        where = engine.url.render_as_string(hide_password=True)
        raise ManagerLockError(f"{where}: another manager is recording into this history database ({who}); "
                               f"stop it first")
    return ManagerLock(connection.close)
