"""Small nowcast-tui fixes: a failed run the timeline must not hide, the
launch dialog centred, the checklist's "1 key", a message the manager made
up, and a --db URL that can never work refused at start."""
from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("textual", reason="textual not installed")

from test_tui_support import SIZE, at, until, written_history  # noqa: E402
from textual.widgets import Static, Tree  # noqa: E402

from nowcast_db.database.models import MessageRow  # noqa: E402
from nowcast_tui import app as tui_app  # noqa: E402
from nowcast_tui.app import NowcastApp  # noqa: E402
from nowcast_tui.data import History  # noqa: E402
from nowcast_tui.formatting import state_style  # noqa: E402
from nowcast_tui.screens.launch_worker import LaunchWorkerModal  # noqa: E402
from nowcast_tui.screens.message_detail import MessageDetailScreen  # noqa: E402
from nowcast_tui.timeline_layout import layout_day  # noqa: E402
from nowcast_tui.widgets.timeline_chart import LABEL_WIDTH, rows_text  # noqa: E402

DAY = at("2026-03-02 00:00")
NOWCAST_TUI = str(Path(sys.executable).parent / "nowcast-tui")


@pytest.fixture
def history(tmp_path):
    yield from written_history(tmp_path)


def run(run_id, worker, start, minutes, state):
    started = at(start)
    return SimpleNamespace(id=run_id, worker=worker, state=state, launched_at=started, started_at=started,
                           finished_at=started + dt.timedelta(minutes=minutes))


def cell(text, offset: int) -> tuple[str, str]:
    """The character at ``offset`` of the chart's text and the style it is drawn in."""
    styles = [str(span.style) for span in text.spans if span.start <= offset < span.end]
    return text.plain[offset], styles[-1] if styles else ""


def test_a_cell_shared_by_a_died_run_and_a_later_good_one_shows_the_died_one():
    # 2 columns an hour: 05:00 and 05:10 both fall in column 10
    runs = [run(1, "model", "2026-03-02 05:00", 5, "died"), run(2, "model", "2026-03-02 05:10", 5, "succeeded"),
            run(3, "model", "2026-03-02 08:00", 5, "succeeded"), run(4, "model", "2026-03-02 08:10", 5, "running")]
    layout = layout_day(runs, DAY, 48, at("2026-03-03 00:00"))
    assert [(bar.first, bar.last) for bar in layout.rows[0].bars] == [(10, 10), (10, 10), (16, 16), (16, 16)]
    for dark in (True, False):
        text = rows_text(layout, None, dark)
        assert cell(text, LABEL_WIDTH + 10) == ("█", state_style("died", dark))
        assert cell(text, LABEL_WIDTH + 16) == ("█", state_style("running", dark))
        # the chosen run still shows where it is, even over a worse one
        chosen = rows_text(layout, (0, 1), dark)
        assert cell(chosen, LABEL_WIDTH + 10) == ("▓", state_style("succeeded", dark) + " underline")


def test_the_now_marker_shows_where_no_bar_is_and_bars_cover_it():
    runs = [run(1, "model", "2026-03-01 09:00", 60, "succeeded"), run(2, "model", "2026-03-02 05:00", 60, "failed")]
    text = rows_text(layout_day(runs, DAY, 48, at("2026-03-02 05:20")), None, True)
    assert text.plain[LABEL_WIDTH + 10] == "█"  # today's runs matter more than the time
    text = rows_text(layout_day(runs, DAY, 48, at("2026-03-02 09:20")), None, True)
    assert text.plain[LABEL_WIDTH + 18:LABEL_WIDTH + 21] == "│░░"  # the time matters more than the day before


@pytest.mark.parametrize("width", [80, 120])
def test_the_launch_dialog_is_centred(history, width):
    config = {"message registry": {"workers": {"sleep": {"success": "slept"}, "awaken": {"success": "awake"}}}}

    async def scenario():
        app = NowcastApp(History(history.url, config))
        async with app.run_test(size=(width, 24)) as pilot:
            await pilot.press("l")
            await until(pilot, lambda: isinstance(app.screen, LaunchWorkerModal), what="the worker list")
            await pilot.pause()
            region = app.screen.query_one("#dialog").region
            assert abs(region.x - (width - region.width) // 2) <= 1, region

    asyncio.run(scenario())


def test_the_checklist_header_counts_one_key_and_several_keys(history):
    history.change("sleepyhead", "set", None, True, at=at("2026-03-02 05:00"), message_id=None)

    async def scenario():
        app = NowcastApp(History(history.url))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("3")
            tree = app.screen.query_one(Tree)
            await until(pilot, lambda: len(tree.root.children) == 1, what="the checklist")
            assert str(tree.root.label) == "checklist (1 key)"
            history.change("weather", "set", None, {"files": 24}, at=at("2026-03-02 05:01"), message_id=None)
            await pilot.press("u")
            await until(pilot, lambda: len(tree.root.children) == 2, what="the re-read checklist")
            assert str(tree.root.label) == "checklist (2 keys)"

    asyncio.run(scenario())


def test_message_detail_says_when_the_manager_made_the_message_up(history):
    run_id = history.run("sleep", "died", at("2026-03-02 05:00"), 10)
    real = history.message("sleep", "need", None, received_at=at("2026-03-02 05:00:05"), run_id=run_id)
    with history.engine.begin() as connection:
        connection.execute(MessageRow.__table__.insert(), [{
            "id": real + 1, "message_id": "made-up", "received_at": at("2026-03-02 05:00:12"), "source": "sleep",
            "type": "crash", "payload": None, "reply_type": "ack", "run_id": run_id, "synthesized": True}])

    async def scenario():
        app = NowcastApp(History(history.url))
        async with app.run_test(size=SIZE) as pilot:
            shown = {}
            for message_id in (real, real + 1):
                await app.push_screen(MessageDetailScreen(message_id))
                message = app.screen.query_one("#message", Static)
                await until(pilot, lambda: "payload" in str(message.content), what=f"message {message_id}")
                shown[message_id] = str(message.content)
                await pilot.press("escape")
            assert "made up by the manager" not in shown[real]
            assert "made up by the manager: the run died or timed out without a final message" in shown[real + 1]

    asyncio.run(scenario())


@pytest.mark.parametrize("url, problem", [
    ("nonsense://x", "SQLAlchemy has no 'nonsense' dialect"),
    ("postgresql+nosuchdriver://me:secret@db/history", "SQLAlchemy has no 'postgresql+nosuchdriver' dialect"),
    ("no such://x", "expected an SQLAlchemy URL"),
    ("postgresql://me@db:notaport/history", "expected an SQLAlchemy URL"),
])
def test_a_db_url_that_can_never_work_is_refused_at_start(url, problem):
    result = subprocess.run([NOWCAST_TUI, "--db", url], capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    shown_url = url.replace("secret", "***")
    assert line.startswith(f"nowcast-tui: error: --db {shown_url}: {problem}"), line
    assert result.stdout == ""


def test_a_missing_sqlite_file_is_still_waited_for(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(tui_app.NowcastApp, "run", lambda app: started.append(app.history.url))
    url = f"sqlite:///{tmp_path / 'not yet.sqlite'}"
    assert tui_app.main(["--db", url]) == 0
    # a path is a SQLite file's, as for nowcast's own --db
    monkeypatch.chdir(tmp_path)
    assert tui_app.main(["--db", "not yet.sqlite"]) == 0
    assert started == [url, url]
