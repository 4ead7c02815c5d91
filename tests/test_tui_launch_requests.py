"""A launch asked for while the manager is down waits in the broker: asking
for it again from nowcast-tui must not launch it twice.  Real broker and
manager processes; the manager stopped, then started again."""
from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("textual", reason="textual not installed")

from conftest import wait_until  # noqa: E402
from test_tui import SIZE, press_launch_in_relaunch_dialog, stop_the_manager_after_a_history  # noqa: E402
from test_tui import table_states, text  # noqa: E402
from test_tui import make_app  # noqa: E402,F401 - a fixture, used by name
from test_tui_support import until  # noqa: E402
from textual.widgets import Static  # noqa: E402

from nowcast_tui.screens.relaunch import RelaunchModal  # noqa: E402


async def relaunch_newest(app, pilot) -> str:
    """Open the Relaunch dialog on the selected run, press Launch, close it; the outcome shown."""
    await press_launch_in_relaunch_dialog(app, pilot)
    outcome = app.screen.query_one("#outcome", Static)
    await until(pilot, lambda: text(outcome) and not text(outcome).startswith("sending"), timeout=30,
                what="the outcome")
    shown = text(outcome)
    await pilot.press("escape")
    await until(pilot, lambda: not isinstance(app.screen, RelaunchModal), what="the dialog to close")
    return shown


def test_launch_asked_for_twice_while_the_manager_is_down_is_launched_once(running_toy, make_app,  # noqa: F811
                                                                          monkeypatch):
    toy = running_toy
    stop_the_manager_after_a_history(toy, monkeypatch)

    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(table_states(app)) == 2, what="two runs in the table")
            for _ in range(2):  # two dialogs, the same launch
                shown = await relaunch_newest(app, pilot)
                assert shown.startswith("manager not answering")
                assert "Launch again sends this same request, which the manager acts on once" in shown
            toy.start("manager")  # the requests waiting in the broker reach it
            await until(pilot, lambda: len(table_states(app)) == 3, timeout=30, what="the launched run")
            # asked again once the manager answers: its reply names the run it already launched
            shown = await relaunch_newest(app, pilot)
            launched = max(table_states(app))
            assert shown == f"launched as run {launched}"
            # that request is answered now: another launch is a new run
            shown = await relaunch_newest(app, pilot)
            assert shown == f"launched as run {launched + 1}"

    asyncio.run(scenario())
    runs = toy.sql("SELECT worker, launched_by FROM worker_runs ORDER BY id")
    assert runs == [("sleep", "external"), ("awaken", "manager"), ("awaken", "operator"), ("awaken", "operator")]
    wait_until(lambda: toy.sql("SELECT count(*) FROM worker_runs WHERE state = 'succeeded'") == [(4,)],
               what="every run to end")
