"""Read-only queries used by the command line (and, later, the TUI)."""
from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nowcast_db.database.models import ManagerStateRow, WorkerRun
from nowcast_db.database.store import HEARTBEAT


def recent_runs(engine: Engine, limit: int = 20) -> list[WorkerRun]:
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(select(WorkerRun).order_by(WorkerRun.id.desc()).limit(limit)))


def runs_of(engine: Engine, worker: str) -> list[WorkerRun]:
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(select(WorkerRun).where(WorkerRun.worker == worker).order_by(WorkerRun.id)))


def heartbeat(engine: Engine) -> dict | None:
    with Session(engine) as session:
        row = session.get(ManagerStateRow, HEARTBEAT)
        return row.value if row else None


def last_module_of(engine: Engine, worker: str) -> str | None:
    """The module the worker's most recent recorded run used."""
    with Session(engine) as session:
        return session.scalar(
            select(WorkerRun.module)
            .where(WorkerRun.worker == worker, WorkerRun.module.is_not(None))
            .order_by(WorkerRun.id.desc())
            .limit(1)
        )
