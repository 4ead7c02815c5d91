"""A run's captured output in run detail: the tail of its file, followed while
the run runs, searched; and plain words when there is no file to show."""
from __future__ import annotations

import asyncio
import datetime as dt
import os

import pytest

pytest.importorskip("textual", reason="textual not installed")

from test_tui_support import SIZE, at, until, written_history  # noqa: E402
from textual.widgets import Static  # noqa: E402

from nowcast_tui.app import NowcastApp  # noqa: E402
from nowcast_tui.data import History  # noqa: E402
from nowcast_tui.output_tail import TAIL_LINES, OutputTail  # noqa: E402
from nowcast_tui.screens.run_detail import RunDetailScreen  # noqa: E402
from nowcast_tui.widgets.run_output import RunOutput  # noqa: E402

NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture
def history(tmp_path):
    yield from written_history(tmp_path)


# --- reading the file (no Textual) ---------------------------------------------------


def test_the_tail_is_the_last_lines_and_reading_on_gets_only_what_was_added(tmp_path):
    path = tmp_path / "run.log"
    path.write_text("".join(f"line {n}\n" for n in range(2000)))
    tail = OutputTail(path)
    lines = tail.read_tail()
    assert len(lines) == TAIL_LINES and lines[-1] == "line 1999" and tail.skipped
    assert tail.poll() == ([], False)
    with open(path, "a") as stream:
        stream.write("line 2000\nhalf a li")
    assert tail.poll() == (["line 2000"], False)  # the unfinished line waits for its newline
    with open(path, "a") as stream:
        stream.write("ne\n")
    assert tail.poll() == (["half a line"], False)
    assert len(tail.lines) == TAIL_LINES and tail.lines[-1] == "half a line"


def test_a_file_replaced_or_gone_is_read_again_or_named(tmp_path):
    path = tmp_path / "run.log"
    path.write_text("first\nsecond\n")
    tail = OutputTail(path)
    assert tail.read_tail() == ["first", "second"] and not tail.skipped
    replacement = tmp_path / "new.log"
    replacement.write_text("again\n")
    os.replace(replacement, path)
    assert tail.poll() == (["again"], True)
    path.unlink()
    assert tail.poll() == ([], False)
    assert tail.problem == f"output file {path} not found"


def test_the_cap_marker_and_a_last_line_without_newline(tmp_path):
    path = tmp_path / "run.log"
    path.write_text("work\n[nowcast: output truncated at 10 MiB]\n")
    tail = OutputTail(path)
    tail.read_tail()
    assert tail.truncated
    path.write_text("no newline at the end")
    tail = OutputTail(path)
    assert tail.read_tail() == [] and tail.finish() == ["no newline at the end"]


# --- the screen ----------------------------------------------------------------------


def output_of(app) -> RunOutput:
    return app.screen.query_one(RunOutput)


def note_of(app) -> str:
    return str(output_of(app).query_one("#output-note", Static).content)


def test_output_of_a_running_run_follows_and_can_be_searched(history, tmp_path):
    path = tmp_path / "runs" / "make_plots-1.log"
    path.parent.mkdir()
    path.write_text("".join(f"plotting figure {n}\n" for n in range(700)) + "WARNING: no data for SoG\n")
    run_id = history.run("make_plots", "running", NOW - dt.timedelta(minutes=2), seconds=None,
                         output_path=str(path))

    async def scenario():
        app = NowcastApp(History(history.url))
        async with app.run_test(size=SIZE) as pilot:
            await app.push_screen(RunDetailScreen(run_id))
            await pilot.press("o")
            output = output_of(app)
            await until(pilot, lambda: output.lines, what="the output tail")
            assert len(output.lines) == TAIL_LINES and output.lines[-1] == "WARNING: no data for SoG"
            assert "following" in note_of(app) and f"last {TAIL_LINES} lines" in note_of(app)
            with open(path, "a") as stream:
                stream.write("Traceback (most recent call last):\nValueError: no data\n")
            await until(pilot, lambda: output.lines[-1] == "ValueError: no data", timeout=5,
                        what="the new lines")
            await pilot.press("slash")
            output.query_one("#output-search").value = "no data"
            await pilot.press("enter")
            assert len(output.matches) == 2
            assert "“no data”: match" in note_of(app)
            first = output.current
            await pilot.press("n")
            assert output.current == (first + 1) % 2
            history.set_state(run_id, "succeeded", NOW)
            await until(pilot, lambda: "following" not in note_of(app), timeout=5, what="following to stop")

    asyncio.run(scenario())


def test_no_output_is_said_plainly(history, tmp_path):
    external = history.run("sleep", "succeeded", at("2026-03-02 05:00"), launched_by="external")
    gone = history.run("awaken", "succeeded", at("2026-03-02 05:01"), output_path=str(tmp_path / "pruned.log"))
    old = history.run("awaken", "succeeded", at("2026-03-02 05:02"))

    async def scenario():
        app = NowcastApp(History(history.url))
        async with app.run_test(size=SIZE) as pilot:
            for run_id, expected in ((external, "no captured output: external run"),
                                     (gone, f"output file {tmp_path / 'pruned.log'} not found"),
                                     (old, "no captured output: no output file was recorded for this run")):
                await app.push_screen(RunDetailScreen(run_id))
                await pilot.press("o")
                await until(pilot, lambda: expected in note_of(app), what=expected)
                await pilot.press("escape")

    asyncio.run(scenario())
