"""The day timeline: where runs go (time → column, a row per worker, the day
before as a reference), and the screen that draws it, at 80×24."""
from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace

import pytest

pytest.importorskip("textual", reason="textual not installed")

from test_tui_support import SIZE, at, screen_text, until, written_history  # noqa: E402

from nowcast_tui.app import NowcastApp  # noqa: E402
from nowcast_tui.data import History  # noqa: E402
from nowcast_tui.screens.run_detail import RunDetailScreen  # noqa: E402
from nowcast_tui.screens.timeline import TimelineScreen  # noqa: E402
from nowcast_tui.timeline_layout import column_of, layout_day, nearest_bar, ticks  # noqa: E402

DAY = at("2026-03-02 00:00")


@pytest.fixture
def history(tmp_path):
    yield from written_history(tmp_path)


def run(run_id, worker, start, minutes, state="succeeded"):
    started = at(start)
    finished = started + dt.timedelta(minutes=minutes) if minutes is not None else None
    return SimpleNamespace(id=run_id, worker=worker, state=state, launched_at=started, started_at=started,
                           finished_at=finished)


# --- the layout (pure) -----------------------------------------------------------------


def test_a_day_squeezes_into_the_width_and_times_outside_stick_to_the_edges():
    assert column_of(DAY, DAY, 64) == 0
    assert column_of(at("2026-03-02 12:00"), DAY, 64) == 32
    assert column_of(at("2026-03-02 23:59:59"), DAY, 64) == 63
    assert column_of(at("2026-03-01 22:00"), DAY, 64) == 0
    assert column_of(at("2026-03-03 01:00"), DAY, 64) == 63


def test_hour_marks_are_as_close_as_the_width_allows():
    assert [label for _, label in ticks(30)] == ["00", "03", "06", "09", "12", "15", "18", "21"]
    assert [label for _, label in ticks(60)][:3] == ["00", "02", "04"]
    assert len(ticks(24 * 3)) == 24  # 3 columns an hour: every hour
    columns = [column for column, _ in ticks(60)]
    assert all(b - a >= 3 for a, b in zip(columns, columns[1:]))


def test_one_row_per_worker_in_the_order_they_ran_with_the_day_before_behind():
    runs = [
        run(1, "download", "2026-03-01 04:00", 30),  # the day before
        run(2, "model", "2026-03-01 05:00", 120),
        run(3, "download", "2026-03-02 04:30", 60),  # today: 30 min late, twice as long
        run(4, "model", "2026-03-02 06:00", None, state="running"),
        run(5, "plots", "2026-03-02 09:00", 6, state="failed"),
    ]
    now = at("2026-03-02 10:00")
    layout = layout_day(runs, DAY, 96, now)  # 4 columns an hour
    assert [row.worker for row in layout.rows] == ["download", "model", "plots"]
    download, model, plots = layout.rows
    (bar,) = download.bars
    assert (bar.run_id, bar.first, bar.last) == (3, 18, 22)  # 04:30 to 05:30
    (reference,) = download.references
    assert (reference.first, reference.last, reference.seconds) == (16, 18, 1800)  # yesterday 04:00–04:30
    assert bar.first > reference.first and bar.last > reference.last  # late and slow: both stand out
    (open_bar,) = model.bars
    assert (open_bar.first, open_bar.last, open_bar.end) == (24, 40, None)  # 06:00 until now (10:00)
    assert plots.references == () and plots.bars[0].state == "failed"
    assert layout.now_column == 40
    assert layout_day(runs, at("2026-03-01 00:00"), 96, now).now_column is None


def test_a_run_across_midnight_shows_on_both_days_and_a_short_run_is_a_column():
    runs = [run(1, "model", "2026-03-01 23:00", 120), run(2, "tiny", "2026-03-02 12:00", 0.1)]
    layout = layout_day(runs, DAY, 48, at("2026-03-03 00:00"))
    model = next(row for row in layout.rows if row.worker == "model")
    (bar,) = model.bars
    assert (bar.first, bar.last, bar.clipped) == (0, 2, True)  # from the left edge to 01:00
    tiny = next(row for row in layout.rows if row.worker == "tiny")
    assert (tiny.bars[0].first, tiny.bars[0].last) == (24, 24)
    previous = layout_day(runs, at("2026-03-01 00:00"), 48, at("2026-03-03 00:00"))
    assert [(row.worker, row.bars[0].first, row.bars[0].last) for row in previous.rows] == [("model", 46, 47)]


def test_moving_up_or_down_picks_the_bar_nearest_in_time():
    layout = layout_day([run(1, "a", "2026-03-02 01:00", 10), run(2, "a", "2026-03-02 13:00", 10),
                         run(3, "a", "2026-03-02 22:00", 10)], DAY, 48, at("2026-03-03 00:00"))
    assert nearest_bar(layout.rows[0], 27) == 1
    assert nearest_bar(layout.rows[0], 47) == 2


# --- the screen ----------------------------------------------------------------------


def a_generated_day(history) -> dict[str, int]:
    """Two days of a small system: download → model → plots, today late and slow, plots failed."""
    ids = {}
    for day, late, slow in ((at("2026-03-01 00:00"), 0, 1), (DAY, 45, 2)):
        start = day + dt.timedelta(hours=4, minutes=late)
        ids[f"download {day:%d}"] = history.run("download_weather", "succeeded", start, 20 * 60 * slow)
        start += dt.timedelta(minutes=25 * slow)
        ids[f"model {day:%d}"] = history.run("run_NEMO", "succeeded", start, 90 * 60 * slow, host="hpc")
        start += dt.timedelta(minutes=95 * slow)
        ids[f"plots {day:%d}"] = history.run("make_plots", "failed" if day == DAY else "succeeded", start, 300)
    ids["clear"] = history.run("clear_checklist", "succeeded", DAY + dt.timedelta(hours=20), 2)
    return ids


def test_the_timeline_draws_a_days_runs_and_enter_opens_the_chosen_run(history):
    ids = a_generated_day(history)

    async def scenario():
        app = NowcastApp(History(history.url))
        async with app.run_test(size=SIZE) as pilot:
            screen = TimelineScreen(day=DAY, now=at("2026-03-03 08:00"))
            await app.push_screen(screen)
            await until(pilot, lambda: screen.day_layout is not None, what="the day laid out")
            assert [row.worker for row in screen.day_layout.rows] == [
                "download_weather", "run_NEMO", "make_plots", "clear_checklist"]
            assert len(screen.day_layout.bars) == 4  # today's runs; the day before's are references
            shown = screen_text(app)
            assert "Monday 2026-03-02  4 runs of 4 workers" in shown
            assert "download_weath…" in shown and "░" in shown and "█" in shown
            assert all(len(line) <= 80 for line in shown.splitlines())
            # the latest run is chosen first; its line says how it compares with the day before
            assert screen.chosen_bar.run_id == ids["clear"]
            await pilot.press("up")  # make_plots, nearest in time
            assert screen.chosen_bar.run_id == ids["plots 02"]
            await pilot.press("up", "up")
            assert screen.chosen_bar.run_id == ids["download 02"]
            chosen = str(app.screen.query_one("#timeline-chosen").content)
            assert "download_weather" in chosen and "day before 04:00 for 20m00s (+45m00s)" in chosen
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, RunDetailScreen), what="the run detail")
            assert app.screen.run_id == ids["download 02"]
            await pilot.press("escape")
            await pilot.press("left_square_bracket")  # the day before: its own runs, nothing before it
            await until(pilot, lambda: screen.day == at("2026-03-01 00:00") and screen.day_layout is not None
                        and len(screen.day_layout.bars) == 3, what="the day before")
            assert all(not row.references for row in screen.day_layout.rows)

    asyncio.run(scenario())


def test_t_opens_the_timeline_on_today(history):
    now = dt.datetime.now(dt.timezone.utc)
    history.run("sleep", "running", now - dt.timedelta(minutes=5), seconds=None)

    async def scenario():
        app = NowcastApp(History(history.url))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("t")
            await until(pilot, lambda: isinstance(app.screen, TimelineScreen), what="the timeline")
            screen = app.screen
            await until(pilot, lambda: screen.day_layout is not None and screen.day_layout.bars,
                        what="today's run")
            assert screen.day == now.replace(hour=0, minute=0, second=0, microsecond=0)
            assert screen.day_layout.now_column is not None
            assert "sleep" in str(screen.query_one("#timeline-chosen").content)

    asyncio.run(scenario())
