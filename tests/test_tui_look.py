"""How nowcast-tui looks at 80×24: a few text snapshots of whole screens, and
run states readable on Textual's dark theme and on a light one.

The snapshots are the screen as plain text (tests/snapshots/*.txt): layout,
columns, wording.  Colours are checked by measuring them instead, as WCAG
contrast ratios of each state's text against the background it is drawn on.
After a deliberate change of look, rewrite them with
``NOWCAST_UPDATE_SNAPSHOTS=1 pytest tests/test_tui_look.py`` and read the diff.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path

import pytest

pytest.importorskip("textual", reason="textual not installed")

from rich.color import Color  # noqa: E402
from test_tui_support import SIZE, at, screen_segments, screen_text, until, written_history  # noqa: E402

from nowcast_tui.app import NowcastApp, parse_args  # noqa: E402
from nowcast_tui.data import History  # noqa: E402
from nowcast_tui.screens.run_detail import RunDetailScreen  # noqa: E402
from nowcast_tui.screens.timeline import TimelineScreen  # noqa: E402
from nowcast_tui.widgets.runs_table import RunsTable  # noqa: E402
from nowcast_tui.widgets.system_status import render_status  # noqa: E402

SNAPSHOTS = Path(__file__).parent / "snapshots"
DAY = at("2026-03-02 00:00")
STATES = ("pending", "running", "succeeded", "failed", "crashed", "died", "timed out", "lost")


@pytest.fixture
def history(tmp_path):
    yield from written_history(tmp_path)


def matches_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("NOWCAST_UPDATE_SNAPSHOTS"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text + "\n")
    assert path.exists(), f"{path}: no snapshot yet (run with NOWCAST_UPDATE_SNAPSHOTS=1 and check it)"
    assert text + "\n" == path.read_text(), f"the screen differs from {path}:\n{text}"


def a_small_day(history) -> dict[str, int]:
    """A finished day (nothing open, so nothing on screen depends on the clock)."""
    ids = {}
    for day, late in ((at("2026-03-01 00:00"), 0), (DAY, 40)):
        start = day + dt.timedelta(hours=4, minutes=late)
        ids[f"download {day:%d}"] = history.run("download_weather", "succeeded", start, 1200,
                                                args=["nowcast", f"{day:%Y-%m-%d}"])
        message = history.message("download_weather", "success nowcast", {"nowcast": {"files": 24}},
                                  received_at=start + dt.timedelta(minutes=20), run_id=ids[f"download {day:%d}"])
        if day == DAY:
            history.change("weather forecast", "update", {"nowcast": {"files": 23}}, {"nowcast": {"files": 24}},
                           at=start + dt.timedelta(minutes=20), message_id=message)
        ids[f"model {day:%d}"] = history.run("run_NEMO", "succeeded" if day != DAY else "crashed",
                                             start + dt.timedelta(minutes=25), 5400, args=["nowcast"], host="hpc")
    ids["lost"] = history.run("make_plots", "lost", DAY + dt.timedelta(hours=7), 0)
    return ids


async def settled(pilot, app) -> None:
    """Wait for the header, then for two looks a moment apart to agree (nothing half drawn)."""
    await until(pilot, lambda: "manager never ran" in screen_text(app), what="the header")
    previous = None
    for _ in range(50):
        await pilot.pause(0.1)
        now = screen_text(app)
        if now == previous:
            return
        previous = now


def test_runs_screen_snapshot(history):
    a_small_day(history)

    async def scenario():
        app = NowcastApp(History(history.url))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.screen.query_one(RunsTable).row_count == 5, what="five runs")
            await settled(pilot, app)
            matches_snapshot("runs_80x24", screen_text(app))

    asyncio.run(scenario())


def test_timeline_snapshot(history):
    a_small_day(history)

    async def scenario():
        app = NowcastApp(History(history.url))
        async with app.run_test(size=SIZE) as pilot:
            screen = TimelineScreen(day=DAY, now=at("2026-03-03 09:00"))
            await app.push_screen(screen)
            await until(pilot, lambda: screen.day_layout is not None, what="the day laid out")
            await settled(pilot, app)
            matches_snapshot("timeline_80x24", screen_text(app))

    asyncio.run(scenario())


def test_run_detail_snapshot(history):
    ids = a_small_day(history)

    async def scenario():
        app = NowcastApp(History(history.url))
        async with app.run_test(size=SIZE) as pilot:
            await app.push_screen(RunDetailScreen(ids["download 02"]))
            await until(pilot, lambda: "success nowcast" in screen_text(app), what="the run's messages")
            await settled(pilot, app)
            matches_snapshot("run_detail_80x24", screen_text(app))

    asyncio.run(scenario())


def contrast(foreground, background) -> float:
    """WCAG 2 contrast ratio of two rich Colors."""
    def luminance(color) -> float:
        channels = [value / 255 for value in color.get_truecolor()]
        r, g, b = (v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light"])
def test_run_states_are_readable_on_dark_and_light_themes(history, theme):
    for n, state in enumerate(STATES * 2):  # twice: on both zebra stripes
        history.run(f"worker{n}", state, DAY + dt.timedelta(minutes=n),
                    None if state in ("pending", "running") else 60)

    async def scenario():
        app = NowcastApp(History(history.url), theme=theme)
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one(RunsTable)
            await until(pilot, lambda: table.row_count == 16, what="sixteen runs")
            await pilot.press("down")  # the cursor off the first row, so every state is seen unhighlighted
            assert app.current_theme.dark == (theme == "textual-dark")
            cursor = Color.parse(app.current_theme.primary).get_truecolor()  # the cursor row: Textual's colours
            seen = {}

            def look() -> bool:
                seen.clear()
                for segment in screen_segments(app):
                    word = segment.text.strip()
                    if word in STATES and segment.style and segment.style.bgcolor.get_truecolor() != cursor:
                        ratio = contrast(segment.style.color, segment.style.bgcolor)
                        seen[word] = min(ratio, seen.get(word, ratio))
                return set(seen) == set(STATES)

            try:
                await until(pilot, look, timeout=5, what="every state drawn")
            except AssertionError:
                assert sorted(seen) == sorted(STATES), screen_text(app)
            unreadable = {state: round(ratio, 2) for state, ratio in seen.items() if ratio < 4.5}
            assert not unreadable, f"below WCAG AA (4.5) on {theme}: {unreadable}"

    asyncio.run(scenario())


def test_theme_option_and_the_header_fits_80_columns():
    assert parse_args(["--db", "sqlite:///x", "--theme", "textual-light"]).theme == "textual-light"
    with pytest.raises(SystemExit):
        parse_args(["--db", "sqlite:///x", "--theme", "beige"])
    worst = render_status({"heartbeat_age": 3 * 86_400, "manager_up": False, "running": 250, "failed_today": 430},
                          None)
    assert len(worst.plain) <= 79, worst.plain  # the header's one column of padding
    assert str(render_status({"heartbeat_age": 3.2, "manager_up": True, "running": 2, "failed_today": 1},
                             True)) == "manager up (3s) │ broker up │ running 2 │ failed today 1"
