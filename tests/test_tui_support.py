"""What the nowcast-tui tests share: a history written through the real schema
(Alembic migrations, the models' own column types), the app's screen as text,
and waiting on a Pilot.  The one test here checks that a history written this
way reads back through the same queries the `nowcast` command uses."""
from __future__ import annotations

import datetime as dt
import io
import time
from pathlib import Path

import pytest

pytest.importorskip("textual", reason="textual not installed")

from rich.console import Console  # noqa: E402
from sqlalchemy import update  # noqa: E402

from nowcast_db.database import make_engine, upgrade  # noqa: E402
from nowcast_db.database.models import (ChecklistEntry, ChecklistMutation, ManagerStateRow,  # noqa: E402
                                        MessageRow, WorkerRun)

SIZE = (80, 24)  # the smallest terminal nowcast-tui must work in
UTC = dt.timezone.utc


def at(text: str) -> dt.datetime:
    """A UTC time from '2026-03-02 05:10' or '2026-03-02T05:10:30'."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


class HistoryWriter:
    """Rows as the manager writes them, into a database made by the real migrations."""

    def __init__(self, path: Path):
        self.path = path
        self.url = f"sqlite:///{path}"
        self.engine = make_engine(self.url, writer=True)
        upgrade(self.engine)
        self._message_id = 0
        self._run_id = 0

    def run(self, worker: str, state: str, launched_at: dt.datetime, seconds: float | None = 60.0, *,
            args=(), host="localhost", launched_by="manager", module: str | None = None,
            output_path: str | None = None, run_id: int | None = None, started_after: float = 1.0) -> int:
        """One run; ``seconds`` None leaves it open (no finished_at)."""
        self._run_id = run_id or self._run_id + 1
        started = launched_at + dt.timedelta(seconds=started_after) if state != "pending" else None
        finished = started + dt.timedelta(seconds=seconds) if seconds is not None and started else None
        with self.engine.begin() as connection:
            connection.execute(WorkerRun.__table__.insert(), [{
                "id": self._run_id, "worker": worker,
                "module": module if module is not None else
                (None if launched_by == "external" else f"nowcast_db.workers.{worker}"),
                "args": list(args), "host": host if launched_by != "external" else "unknown",
                "launched_by": launched_by, "state": state, "launched_at": launched_at,
                "started_at": started, "finished_at": finished, "output_path": output_path,
                "exit_code": None if finished is None else (0 if state == "succeeded" else 1),
            }])
        return self._run_id

    def message(self, source: str | None, type: str | None, payload=None, *, received_at: dt.datetime,
                run_id: int | None = None, reply_type: str = "ack", error: str | None = None) -> int:
        self._message_id += 1
        with self.engine.begin() as connection:
            connection.execute(MessageRow.__table__.insert(), [{
                "id": self._message_id, "message_id": f"test-{self._message_id}", "received_at": received_at,
                "source": source, "type": type, "payload": payload, "reply_type": reply_type,
                "run_id": run_id, "error": error,
            }])
        return self._message_id

    def change(self, key: str, operation: str, before, after, *, at: dt.datetime, message_id: int | None) -> None:
        """A checklist change, and the checklist row it leaves."""
        with self.engine.begin() as connection:
            connection.execute(ChecklistMutation.__table__.insert(), [{
                "key": key, "operation": operation, "before": before, "after": after,
                "message_id": message_id, "at": at}])
            connection.execute(ChecklistEntry.__table__.delete().where(ChecklistEntry.key == key))
            if operation != "clear":
                connection.execute(ChecklistEntry.__table__.insert(), [{
                    "key": key, "value": after, "updated_at": at, "message_id": message_id}])

    def set_state(self, run_id: int, state: str, finished_at: dt.datetime | None = None) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(WorkerRun).where(WorkerRun.id == run_id)
                               .values(state=state, finished_at=finished_at))

    def heartbeat(self, when: dt.datetime) -> None:
        with self.engine.begin() as connection:
            connection.execute(ManagerStateRow.__table__.delete().where(ManagerStateRow.name == "heartbeat"))
            connection.execute(ManagerStateRow.__table__.insert(), [{
                "name": "heartbeat", "value": {"pid": 1, "host": "test", "at": when.isoformat()},
                "updated_at": when}])

    def close(self) -> None:
        self.engine.dispose()


def written_history(tmp_path):
    """For a ``history`` fixture in each test module: ``yield from written_history(tmp_path)``."""
    writer = HistoryWriter(tmp_path / "nowcast.sqlite")
    yield writer
    writer.close()


@pytest.fixture
def history(tmp_path):
    yield from written_history(tmp_path)


def screen_text(app) -> str:
    """The screen as plain text, as a terminal of the app's size shows it."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return "\n".join(line.rstrip() for line in console.export_text(styles=False).splitlines())


def screen_segments(app) -> list:
    """The screen as rich Segments (text with its colours), for checking what is readable."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", legacy_windows=False)
    update_ = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    return list(console.render(update_, console.options))


async def until(pilot, condition, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_a_written_history_reads_back_through_the_history_queries(history):
    from nowcast_db.database import queries

    run_id = history.run("sleep", "succeeded", at("2026-03-02 05:00"), 12.5, args=["--sleep-time", "1"])
    message_id = history.message("sleep", "success", {"sleep time": 1}, received_at=at("2026-03-02 05:00:14"),
                                 run_id=run_id)
    history.change("sleepyhead", "set", None, {"sleep time": 1}, at=at("2026-03-02 05:00:14"),
                   message_id=message_id)
    engine = queries.open_history(history.url)
    try:
        (run,) = queries.run_rows(engine)
        assert (run.id, run.worker, run.args, run.state) == (run_id, "sleep", ["--sleep-time", "1"], "succeeded")
        assert (run.finished_at - run.started_at).total_seconds() == 12.5
        assert queries.current_checklist(engine) == {"sleepyhead": {"sleep time": 1}}
        detail = queries.run_detail(engine, run_id)
        assert [m.payload for m in detail["messages"]] == [{"sleep time": 1}]
    finally:
        engine.dispose()
