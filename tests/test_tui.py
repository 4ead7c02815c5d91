"""nowcast-tui, driven with Textual's Pilot against a history the real
manager wrote (broker + manager as processes on free ports): the live runs
table, run detail, relaunch and "launch any worker" through the real
manager, the header; and a database that is absent, empty or locked."""
from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest

pytest.importorskip("textual", reason="textual not installed")
pytest.importorskip("nowcast_tui", reason="nowcast_tui not installed (pip install -e .)")

from conftest import raw_message, wait_until  # noqa: E402
from test_tui_support import HistoryWriter, at, until  # noqa: E402
from textual.widgets import Static  # noqa: E402

from textual.widgets import OptionList  # noqa: E402

from nowcast_tui import app as tui_app  # noqa: E402
from nowcast_tui import launching  # noqa: E402
from nowcast_tui.app import NowcastApp  # noqa: E402
from nowcast_tui.data import History  # noqa: E402
from nowcast_tui.screens.launch_worker import LaunchWorkerModal  # noqa: E402
from nowcast_tui.screens.relaunch import RelaunchModal  # noqa: E402
from nowcast_tui.screens.run_detail import RunDetailScreen  # noqa: E402
from nowcast_tui.widgets.runs_table import RunsTable  # noqa: E402

SIZE = (80, 24)  # the smallest terminal it must work in


@pytest.fixture
def make_app(toy, monkeypatch):
    """An app on the toy system's config, with the environment its config
    refers to (as an operator's shell would have it)."""
    for name in ("NOWCAST_ENV", "NOWCAST_LOGS", "NOWCAST_YAML"):
        monkeypatch.setenv(name, toy.env[name])
    return lambda: NowcastApp(History.from_config_file(str(toy.config_file)))


def sleep_then_awaken(toy) -> tuple[int, int]:
    """Run the sleep worker by hand; the manager then launches awaken.
    Returns (sleep run id, awaken run id) once both have finished."""
    result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
    assert result.returncode == 0, result.stderr
    rows = wait_until(lambda: (rows := toy.sql("SELECT id, worker FROM worker_runs WHERE state = 'succeeded' "
                                              "ORDER BY id")) and len(rows) == 2 and rows,
                      what="sleep and awaken runs to succeed")
    assert [worker for _, worker in rows] == ["sleep", "awaken"]
    return rows[0][0], rows[1][0]


def text(widget: Static) -> str:
    return str(widget.content)


def table_states(app) -> dict[int, str]:
    table = app.screen.query_one(RunsTable)
    return {int(key.value): table.get_row(key)[2].plain for key in table.rows}


def test_runs_screen_shows_the_managers_runs_newest_first_with_states(running_toy, make_app, monkeypatch):
    toy = running_toy
    monkeypatch.setattr(tui_app, "BROKER_SECONDS", 0.2)
    sleep_id, awaken_id = sleep_then_awaken(toy)

    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(table_states(app)) == 2, what="two runs in the table")
            assert table_states(app) == {sleep_id: "succeeded", awaken_id: "succeeded"}
            table = app.screen.query_one(RunsTable)
            assert [int(table.get_row_at(row)[0]) for row in range(2)] == [awaken_id, sleep_id]
            assert table.get_row_at(1)[1] == "sleep" and table.get_row_at(1)[5] == "external"
            assert table.get_row_at(0)[5] == "manager"
            header = app.screen.query_one("SystemStatus", Static)
            await until(pilot, lambda: "manager up" in text(header), what="manager up in the header")
            assert "broker up │ running 0 │ failed today 0" in text(header)
            toy.stop("message_broker")
            await until(pilot, lambda: "broker unreachable" in text(header), what="broker unreachable")
            assert "manager up" in text(header)

    asyncio.run(scenario())


def test_new_run_appears_within_a_second_and_cursor_stays_on_its_run(running_toy, make_app):
    toy = running_toy
    sleep_id, _ = sleep_then_awaken(toy)

    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(table_states(app)) == 2, what="two runs in the table")
            await pilot.press("down")
            table = app.screen.query_one(RunsTable)
            assert table.selected_run_id == sleep_id
            reply = raw_message(toy.workers_port, {"source": "operator", "type": "launch worker",
                                                   "payload": {"module": "nowcast_db.workers.awaken"}})
            new_id = reply["payload"]["run id"]
            recorded = time.monotonic()
            await until(pilot, lambda: new_id in table_states(app), timeout=5, what="the new run in the table")
            assert time.monotonic() - recorded < 1.5
            assert table.selected_run_id == sleep_id
            assert table.cursor_row == 2  # the new run went in on top, above the chosen one

    asyncio.run(scenario())


def test_enter_opens_run_detail_with_its_messages(running_toy, make_app):
    toy = running_toy
    sleep_id, awaken_id = sleep_then_awaken(toy)

    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(table_states(app)) == 2, what="two runs in the table")
            await pilot.press("down", "enter")
            await until(pilot, lambda: isinstance(app.screen, RunDetailScreen), what="the run detail screen")
            assert app.screen.run_id == sleep_id
            messages = app.screen.query_one("#messages", Static)
            await until(pilot, lambda: "success" in text(messages), what="the run's messages")
            assert "sleep time: 0" in text(messages)  # the payload, as YAML
            assert "sleepyhead: set" in text(app.screen.query_one("#mutations", Static))
            assert f"run {awaken_id} awaken" in text(app.screen.query_one("#chain", Static))
            await pilot.press("c")  # down the chain: the awaken run sleep's success launched
            await until(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.run_id == awaken_id,
                        what="the triggered run's detail")
            await until(pilot, lambda: f"of run {sleep_id}" in text(app.screen.query_one("#chain", Static)),
                        what="the triggering run in the chain")
            await pilot.press("p")  # and back up
            await until(pilot, lambda: app.screen.run_id == sleep_id, what="the triggering run's detail")
            await pilot.press("escape", "escape", "escape")
            assert isinstance(app.screen.query_one(RunsTable), RunsTable)

    asyncio.run(scenario())


def test_relaunch_through_the_modal_is_refused_then_recorded_as_an_operator_launch(running_toy, make_app):
    toy = running_toy
    _, awaken_id = sleep_then_awaken(toy)

    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(table_states(app)) == 2, what="two runs in the table")
            assert app.screen.query_one(RunsTable).selected_run_id == awaken_id
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, RelaunchModal), what="the relaunch modal")
            modal = app.screen
            assert modal.module == "nowcast_db.workers.awaken"
            # first refused: a host the config does not enable; the reason is shown, and it may be tried again
            await pilot.click("#args")
            await pilot.press("q", "1", "r", "question_mark")  # typed, not taken as the app's keys
            assert app.is_running and isinstance(app.screen, RelaunchModal)
            assert modal.query_one("#args").value == "q1r?"
            modal.query_one("#host").value = "hpc"
            await pilot.click("#launch")
            outcome = modal.query_one("#outcome", Static)
            await until(pilot, lambda: "manager refused" in text(outcome), what="the refusal")
            assert "not in the config's run: enabled hosts" in text(outcome)
            assert not modal.query_one("#launch").disabled
            modal.query_one("#args").value = ""
            modal.query_one("#host").value = "localhost"
            modal.query_one("#host").focus()
            await pilot.press("enter")  # Enter in a field sends, as the Launch button does
            try:  # the manager records the run before it replies: slow on a busy machine
                await until(pilot, lambda: text(outcome).startswith("launched as run"), timeout=20,
                            what="the launch outcome")
            except AssertionError as err:
                raise AssertionError(f"{err}; the dialog says {text(outcome)!r}") from None
            new_id = modal.outcome.run_id
            assert text(outcome) == f"launched as run {new_id}"
            await pilot.press("escape")
            await until(pilot, lambda: new_id in table_states(app), what="the relaunched run in the table")
            return new_id

    new_id = asyncio.run(scenario())
    assert toy.sql("SELECT worker, launched_by, host FROM worker_runs WHERE id = ?", (new_id,)) == [
        ("awaken", "operator", "localhost")]
    wait_until(lambda: toy.sql("SELECT state FROM worker_runs WHERE id = ?", (new_id,)) == [("succeeded",)],
               what="the relaunched awaken run to succeed")


def stop_the_manager_after_a_history(toy, monkeypatch) -> None:
    """sleep → awaken recorded, then the manager stopped; launch requests given up on after 1 s."""
    sleep_then_awaken(toy)
    toy.stop("manager")
    monkeypatch.setattr(launching, "REPLY_TIMEOUT", 0.5)
    monkeypatch.setattr(launching, "GIVE_UP_AFTER", 1.0)


async def press_launch_in_relaunch_dialog(app, pilot) -> None:
    """`r` on the selected run, then Launch in the dialog it opens."""
    await pilot.press("r")
    await until(pilot, lambda: isinstance(app.screen, RelaunchModal), what="the relaunch modal")
    await pilot.click("#launch")


def test_relaunch_says_plainly_when_the_manager_is_down(running_toy, make_app, monkeypatch):
    toy = running_toy
    stop_the_manager_after_a_history(toy, monkeypatch)

    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(table_states(app)) == 2, what="two runs in the table")
            await press_launch_in_relaunch_dialog(app, pilot)
            outcome = app.screen.query_one("#outcome", Static)
            await until(pilot, lambda: "manager not answering" in text(outcome), what="the outcome")
            assert app.screen.outcome.run_id is None
            assert not app.screen.query_one("#launch").disabled  # may be tried again

    asyncio.run(scenario())
    assert toy.sql("SELECT count(*) FROM worker_runs") == [(2,)]


def test_relaunch_outcome_arriving_after_the_dialog_closed_is_a_notification(running_toy, make_app, monkeypatch):
    """The request goes out whatever the dialog does: its outcome must reach the operator."""
    toy = running_toy
    stop_the_manager_after_a_history(toy, monkeypatch)

    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(table_states(app)) == 2, what="two runs in the table")
            await press_launch_in_relaunch_dialog(app, pilot)
            await pilot.press("escape")  # closed while the request waits for the manager
            await until(pilot, lambda: not isinstance(app.screen, RelaunchModal), what="the dialog to close")
            await until(pilot, lambda: any("manager not answering" in n.message for n in app._notifications),
                        what="the outcome as a notification")
            assert app.is_running

    asyncio.run(scenario())


@pytest.mark.parametrize("state", ["absent", "empty"])
def test_unusable_database_gets_a_clear_message_not_a_traceback(tmp_path, state):
    path = tmp_path / "nowcast.sqlite"
    if state == "empty":
        sqlite3.connect(path).close()
    expected = {"absent": "no history database there yet", "empty": "no history tables yet"}[state]

    async def scenario():
        app = NowcastApp(History(f"sqlite:///{path}"))
        async with app.run_test(size=SIZE) as pilot:
            problem = app.screen.query_one("#problem", Static)
            await until(pilot, lambda: expected in text(problem), what="the problem message")
            assert problem.display
            assert "Cannot show runs" in text(problem)
            await pilot.press("?")  # still usable
            assert app.screen.__class__.__name__ == "HelpScreen"

    asyncio.run(scenario())
    assert path.exists() == (state == "empty")  # looking never creates a database


def test_locked_database_gets_a_clear_message(tmp_path):
    history = HistoryWriter(tmp_path / "nowcast.sqlite")
    for worker in ("sleep", "awaken"):
        history.run(worker, "succeeded", at("2026-03-02 05:00"))
    history.close()
    locker = sqlite3.connect(history.path, isolation_level=None)
    locker.execute("PRAGMA locking_mode=EXCLUSIVE")
    locker.execute("BEGIN EXCLUSIVE")

    async def scenario():
        app = NowcastApp(History(history.url))
        async with app.run_test(size=SIZE) as pilot:
            problem = app.screen.query_one("#problem", Static)
            await until(pilot, lambda: "locked" in text(problem), timeout=15, what="the locked message")
            locker.execute("COMMIT")
            locker.close()  # the lock is gone: the runs appear without a restart
            await until(pilot, lambda: len(table_states(app)) == 2, timeout=15, what="runs after the lock")
            assert not problem.display

    try:
        asyncio.run(scenario())
    finally:
        locker.close()


def test_launch_any_registered_worker_through_the_manager(running_toy, make_app):
    toy = running_toy

    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("l")
            await until(pilot, lambda: isinstance(app.screen, LaunchWorkerModal), what="the worker list")
            options = app.screen.query_one(OptionList)
            names = [options.get_option_at_index(i).id for i in range(options.option_count)]
            assert names == ["sleep", "awaken", "rotate_logs", "clear_checklist"]  # the toy registry, in order
            options.highlighted = names.index("awaken")
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, RelaunchModal), what="the launch confirmation")
            modal = app.screen
            assert modal.module == "nowcast_db.workers.awaken"  # a built-in worker: its module is known
            assert modal.query_one("#args").value == "" and modal.query_one("#host").value == "localhost"
            await pilot.click("#launch")
            outcome = modal.query_one("#outcome", Static)
            await until(pilot, lambda: text(outcome).startswith("launched as run"), what="the launch outcome")
            new_id = modal.outcome.run_id
            await pilot.press("escape")
            await until(pilot, lambda: new_id in table_states(app), what="the launched run in the table")
            return new_id

    new_id = asyncio.run(scenario())
    assert toy.sql("SELECT worker, launched_by, args, host FROM worker_runs WHERE id = ?", (new_id,)) == [
        ("awaken", "operator", "[]", "localhost")]


def test_launch_of_a_worker_whose_module_is_unknown_asks_for_it(toy, make_app):
    toy.edit_config(lambda config: config["message registry"]["workers"].update(
        {"make_plots": {"success": "plots made", "failure": "plots failed", "crash": "crashed"}}))

    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("l")
            await until(pilot, lambda: isinstance(app.screen, LaunchWorkerModal), what="the worker list")
            options = app.screen.query_one(OptionList)
            options.highlighted = options.option_count - 1  # make_plots: no history, not built in
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, RelaunchModal), what="the launch confirmation")
            modal = app.screen
            assert modal.module is None
            await pilot.click("#launch")
            assert "module: expected a dotted module name such as mysystem.workers.make_plots" in text(
                modal.query_one("#outcome", Static))
            assert not modal.query_one("#launch").disabled

    asyncio.run(scenario())


def test_with_db_alone_launching_says_it_needs_the_config(tmp_path):
    history = HistoryWriter(tmp_path / "nowcast.sqlite")
    for worker in ("sleep", "awaken"):
        history.run(worker, "succeeded", at("2026-03-02 05:00"))
    history.close()

    async def scenario():
        app = NowcastApp(History(history.url))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(table_states(app)) == 2, what="two runs in the table")
            header = app.screen.query_one("SystemStatus", Static)
            await until(pilot, lambda: "broker unknown (no config)" in text(header), what="the header")
            for key in ("r", "l"):
                await pilot.press(key)
                await pilot.pause(0.1)
                assert not isinstance(app.screen, (RelaunchModal, LaunchWorkerModal))
                assert [n.message for n in app._notifications][-1] == launching.NEEDS_CONFIG
            assert "needs the system's config file" in launching.NEEDS_CONFIG

    asyncio.run(scenario())
