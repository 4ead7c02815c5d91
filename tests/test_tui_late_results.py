"""A read that finishes after its screen is gone must not crash nowcast-tui.

Screens read the history in thread workers and hand the answer to the UI
thread.  The operator may close the screen (or quit) while a read is still
on its way; when it arrives the screen's widgets are gone.  These tests hold
a read back with a threading.Event, close the screen so its widgets go while
the read is held, then let the read answer.

Textual cancels a screen's workers only once all its widgets are gone, so
the tests hold the screen there (its SystemStatus header slow to unmount):
that is the moment a late answer used to fail the app."""
from __future__ import annotations

import asyncio
import threading

import pytest

pytest.importorskip("textual", reason="textual not installed")

from test_tui_support import SIZE, at, until, written_history  # noqa: E402
from textual.css.query import NoMatches  # noqa: E402
from textual.worker import WorkerState  # noqa: E402

from nowcast_tui.app import NowcastApp  # noqa: E402
from nowcast_tui.data import History  # noqa: E402
from nowcast_tui.deliver import deliver  # noqa: E402
from nowcast_tui.screens.key_history import KeyHistoryScreen  # noqa: E402
from nowcast_tui.screens.message_detail import MessageDetailScreen  # noqa: E402
from nowcast_tui.screens.run_detail import RunDetailScreen  # noqa: E402
from nowcast_tui.screens.timeline import TimelineScreen  # noqa: E402
from nowcast_tui.widgets.system_status import SystemStatus  # noqa: E402

DAY = at("2026-03-02 00:00")


@pytest.fixture
def history(tmp_path):
    yield from written_history(tmp_path)


class HeldHistory(History):
    """A history whose reads for the detail screens and the timeline wait until the test lets them answer."""

    def __init__(self, url: str):
        super().__init__(url)
        self.asked = threading.Event()
        self.answer = threading.Event()

    def _held(self, read, *args):
        self.asked.set()
        self.answer.wait(10)  # bounded: a test that forgets to answer still ends
        return read(*args)

    def run_detail(self, run_id):
        return self._held(super().run_detail, run_id)

    def runs_around(self, start, end):
        return self._held(super().runs_around, start, end)

    def key_history(self, key):
        return self._held(super().key_history, key)

    def message(self, message_id):
        return self._held(super().message, message_id)


async def settle(condition, what: str, timeout: float = 10.0) -> None:
    """Wait for ``condition`` without the Pilot, which waits for the screen: a
    screen held half closed would never answer it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


async def close_then_answer(app, pilot, screen, gone_id: str, monkeypatch) -> list:
    """Close ``screen`` while its read is held; once its widget ``gone_id`` is
    gone (the screen itself not yet), let the read answer and wait for it.
    Returns the screen's reading workers."""
    held = app.history
    await until(pilot, held.asked.is_set, what="the read to start")
    reading = [worker for worker in app.workers if worker.node is screen and worker.is_running]
    assert reading, "no read running"

    # the screen's header takes its time to go, so the screen stays between
    # "its widgets are gone" and "its workers are cancelled" until released
    header_may_go = asyncio.Event()

    async def slow_unmount(self) -> None:
        await asyncio.wait_for(header_may_go.wait(), timeout=10)

    monkeypatch.setattr(SystemStatus, "on_unmount", slow_unmount, raising=False)
    try:
        app.pop_screen()  # not awaited: it finishes only when the header has gone
        await settle(lambda: not screen.query(f"#{gone_id}"), what=f"#{gone_id} to be gone")
        assert any(worker.is_running for worker in reading)  # the read is still due
        held.answer.set()
        await settle(lambda: all(worker.is_finished for worker in reading), what="the late answer")
    finally:
        header_may_go.set()
    await until(pilot, lambda: screen not in app.screen_stack and not screen.is_attached,
                what="the screen to close")
    await pilot.pause()
    return reading


def run_detail(history):
    return RunDetailScreen(history.run("sleep", "succeeded", at("2026-03-02 05:00"), 12)), "summary"


def timeline(history):
    history.run("download_weather", "succeeded", at("2026-03-02 04:00"), 600)
    return TimelineScreen(day=DAY, now=at("2026-03-03 08:00")), "timeline-title"


def key_history(history):
    history.change("sleepyhead", "set", None, {"sleep time": 1}, at=at("2026-03-02 05:00"), message_id=None)
    return KeyHistoryScreen("sleepyhead"), "key-title"


def message_detail(history):
    message_id = history.message("sleep", "success", {"sleep time": 1}, received_at=at("2026-03-02 05:00"))
    return MessageDetailScreen(message_id), "message"


@pytest.mark.parametrize("opened", [run_detail, timeline, key_history, message_detail])
def test_a_read_answering_after_its_screen_closed_does_not_fail_the_app(history, monkeypatch, opened):
    screen, gone_id = opened(history)

    async def scenario():
        app = NowcastApp(HeldHistory(history.url))
        try:
            async with app.run_test(size=SIZE) as pilot:
                await app.push_screen(screen)
                reading = await close_then_answer(app, pilot, screen, gone_id, monkeypatch)
                assert app._exception is None
                assert not any(worker.state == WorkerState.ERROR for worker in reading)
                await pilot.press("q")
        finally:
            app.history.answer.set()
        assert app._exception is None and app.return_code == 0

    asyncio.run(scenario())


def test_a_read_answering_after_the_app_quit_ends_quietly(history):
    history.run("sleep", "succeeded", at("2026-03-02 05:00"), 12)

    async def scenario():
        app = NowcastApp(History(history.url))
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            await pilot.press("q")
        shown = []
        # the app has stopped: a reading thread that finishes now has nowhere to deliver
        await asyncio.to_thread(deliver, screen, shown.append, "late")
        await asyncio.to_thread(deliver, app, shown.append, "late")
        assert shown == []
        assert app._exception is None and app.return_code == 0

    asyncio.run(scenario())


def test_a_real_bug_in_showing_a_result_still_surfaces(history):
    """Only "the screen is gone" is dropped: on a screen still open, a wrong
    widget id or any other error reaches the reading thread (and so fails the app)."""

    def wrong_id():
        app.screen.query_one("#no-such-widget")

    def broken():
        raise ValueError("a bug")

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            with pytest.raises(NoMatches):
                await asyncio.to_thread(deliver, app.screen, wrong_id)
            with pytest.raises(ValueError, match="a bug"):
                await asyncio.to_thread(deliver, app.screen, broken)
            shown = []
            await asyncio.to_thread(deliver, app.screen, shown.append, "on time")
            assert shown == ["on time"]

    app = NowcastApp(History(history.url))
    asyncio.run(scenario())
