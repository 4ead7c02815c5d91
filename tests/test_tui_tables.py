"""nowcast-tui's tables: filters are SQL WHERE clauses, pages load as the
cursor nears the bottom, new rows arrive on top without moving what the
operator is looking at; the checklist's key search and key history."""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest

pytest.importorskip("textual", reason="textual not installed")

from test_tui_support import SIZE, at, screen_text, until, written_history  # noqa: E402
from textual.widgets import Static, Tree  # noqa: E402

from nowcast_tui.app import NowcastApp  # noqa: E402
from nowcast_tui.data import PAGE_SIZE, History  # noqa: E402
from nowcast_tui.filters import FilterError, parse_message_filter, parse_run_filter  # noqa: E402
from nowcast_tui.screens.key_history import KeyHistoryScreen  # noqa: E402
from nowcast_tui.screens.message_detail import MessageDetailScreen  # noqa: E402
from nowcast_tui.widgets.filter_bar import FilterBar  # noqa: E402
from nowcast_tui.widgets.messages_table import MessagesTable  # noqa: E402
from nowcast_tui.widgets.runs_table import RunsTable  # noqa: E402

DAY = at("2026-03-02 00:00")


@pytest.fixture
def history(tmp_path):
    yield from written_history(tmp_path)


def app_on(history) -> NowcastApp:
    return NowcastApp(History(history.url))


def shown_ids(table) -> list[int]:
    return [int(table.get_row_at(row)[0]) for row in range(table.row_count)]


async def type_filter(pilot, text: str) -> None:
    await pilot.press("slash")
    bar = pilot.app.screen.query_one(FilterBar)
    bar.query_one("#filter-input").value = text
    await pilot.press("enter")


# --- the filter language (pure) ----------------------------------------------------


def test_run_filter_words_become_workers_states_and_free_text():
    where = parse_run_filter('worker:make_plots,run_NEMO state:bad "forecast 2" hpc')
    assert where.workers == ("make_plots", "run_NEMO")
    assert where.states == ("failed", "crashed", "died", "timed out", "lost")
    assert where.text == "forecast 2 hpc"
    assert not parse_run_filter("   ")


@pytest.mark.parametrize("text, fragment", [
    ("state:flying", "expected one of pending, running"),
    ("stat:failed", "unknown filter 'stat:'"),
    ("worker:", "expected a value after 'worker:'"),
    ('"unclosed', "No closing quotation"),
])
def test_bad_run_filter_names_the_word_and_what_was_expected(text, fragment):
    with pytest.raises(FilterError) as raised:
        parse_run_filter(text)
    assert fragment in str(raised.value) and "\n" not in str(raised.value)


def test_message_filter_times_are_utc_and_checked():
    where = parse_message_filter("worker:sleep type:success errors since:2026-03-02T05:00 until:2026-03-03")
    assert where.workers == ("sleep",) and where.types == ("success",) and where.errors_only
    assert where.since == at("2026-03-02 05:00") and where.until == at("2026-03-03 00:00")
    with pytest.raises(FilterError, match="is after until"):
        parse_message_filter("since:2026-03-03 until:2026-03-02")
    with pytest.raises(FilterError, match="expected an ISO 8601 date or time"):
        parse_message_filter("since:yesterday")
    with pytest.raises(FilterError, match="expected 'worker:…'"):
        parse_message_filter("sleepy")


# --- Runs ----------------------------------------------------------------------------


def runs_of_three_workers(history) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = {}
    states = ["succeeded", "failed", "succeeded", "crashed", "succeeded"]
    for n in range(30):
        worker = ("download_weather", "make_plots", "run_NEMO")[n % 3]
        host = "hpc" if worker == "run_NEMO" else "localhost"
        run_id = history.run(worker, states[n % 5], DAY + dt.timedelta(minutes=10 * n),
                             args=["nowcast" if n % 2 else "forecast2", "2026-03-02"], host=host)
        ids.setdefault(f"{worker} {states[n % 5]}", []).append(run_id)
        ids.setdefault(worker, []).append(run_id)
    return ids


def test_runs_filter_by_worker_state_and_text(history):
    ids = runs_of_three_workers(history)

    async def scenario():
        app = app_on(history)
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one(RunsTable)
            await until(pilot, lambda: table.row_count == 30, what="all 30 runs")
            await type_filter(pilot, "worker:make_plots state:failed")
            expected = sorted(ids["make_plots failed"], reverse=True)
            await until(pilot, lambda: shown_ids(table) == expected, what="make_plots failures only")
            assert "filter: worker:make_plots state:failed" in screen_text(app)
            assert app.focused is table  # back to the table after Enter

            await type_filter(pilot, "hpc forecast2")  # free text: host and args
            expected = sorted((i for i in ids["run_NEMO"] if i % 2 == 1), reverse=True)  # even n: forecast2
            await until(pilot, lambda: shown_ids(table) == expected, what="run_NEMO forecast2 runs")

            await type_filter(pilot, "state:bad")
            await until(pilot, lambda: table.row_count and all(
                table.records[i].state in ("failed", "crashed") for i in shown_ids(table))
                and table.row_count == 12, what="the 12 failed or crashed runs")

            await type_filter(pilot, "")  # an empty filter clears
            await until(pilot, lambda: table.row_count == 30, what="all runs again")

    asyncio.run(scenario())


def test_a_bad_filter_says_what_was_wrong_and_keeps_the_rows(history):
    runs_of_three_workers(history)

    async def scenario():
        app = app_on(history)
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one(RunsTable)
            await until(pilot, lambda: table.row_count == 30, what="all 30 runs")
            await type_filter(pilot, "stat:failed")
            note = app.screen.query_one("#filter-note", Static)
            assert "unknown filter 'stat:'" in str(note.content)
            assert note.has_class("error")
            assert app.screen.query_one(FilterBar).editing  # left open to correct
            await pilot.pause(0.3)
            assert table.row_count == 30

    asyncio.run(scenario())


def test_pages_load_when_the_cursor_nears_the_bottom(history):
    total = 2 * PAGE_SIZE + PAGE_SIZE // 4
    for n in range(total):
        history.run("sleep", "succeeded", DAY + dt.timedelta(minutes=n))

    async def scenario():
        app = app_on(history)
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one(RunsTable)
            await until(pilot, lambda: table.row_count == PAGE_SIZE, what="the first page")
            assert table.more_below
            await pilot.press("ctrl+end")  # the last row loaded: the next page comes
            await until(pilot, lambda: table.row_count == 2 * PAGE_SIZE, what="the second page")
            await pilot.press("ctrl+end")
            await until(pilot, lambda: table.row_count == total, what="the last page")
            assert not table.more_below
            assert shown_ids(table) == list(range(total, 0, -1))  # newest first, none twice, none missing

    asyncio.run(scenario())


def test_new_runs_on_top_keep_the_cursor_and_the_rows_on_screen(history):
    for n in range(PAGE_SIZE + 50):
        history.run("sleep", "succeeded", DAY + dt.timedelta(minutes=n))

    async def scenario():
        app = app_on(history)
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one(RunsTable)
            await until(pilot, lambda: table.row_count == PAGE_SIZE, what="the first page")
            await pilot.press(*["pagedown"] * 3)
            await pilot.pause(0.2)
            chosen, scroll_y = table.selected_id, table.scroll_y
            assert scroll_y > 0
            top_row_id = int(table.get_row_at(int(scroll_y))[0])
            for n in range(3):
                history.run("awaken", "running", DAY + dt.timedelta(hours=6, minutes=n), seconds=None)
            newest = PAGE_SIZE + 50
            await until(pilot, lambda: {newest + 1, newest + 2, newest + 3} <= set(table.records), timeout=5,
                        what="three new runs")
            await pilot.pause(0.2)
            assert table.selected_id == chosen
            assert table.scroll_y == scroll_y + 3
            assert int(table.get_row_at(int(table.scroll_y))[0]) == top_row_id  # the same rows on screen
            assert shown_ids(table)[:3] == [newest + 3, newest + 2, newest + 1]

    asyncio.run(scenario())


def test_an_open_run_on_screen_is_seen_to_end(history):
    run_id = history.run("sleep", "running", DAY, seconds=None)
    history.run("awaken", "succeeded", DAY - dt.timedelta(hours=1))

    async def scenario():
        app = app_on(history)
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one(RunsTable)
            await until(pilot, lambda: table.row_count == 2, what="two runs")
            assert table.get_row(str(run_id))[2].plain == "running"
            history.set_state(run_id, "failed", DAY + dt.timedelta(minutes=3))
            await until(pilot, lambda: table.get_row(str(run_id))[2].plain == "failed", timeout=5,
                        what="the run to show failed")
            assert table.get_row(str(run_id))[4] == "2m59s"  # started a second after its launch

    asyncio.run(scenario())


# --- Messages ------------------------------------------------------------------------


def test_messages_filter_by_worker_type_errors_and_time(history):
    for n in range(40):
        source = ("sleep", "awaken")[n % 2]
        kind = ("success", "failure", "need", "success")[n % 4]
        history.message(source, kind, {"n": n}, received_at=DAY + dt.timedelta(hours=n % 24, minutes=n))
    bad = history.message("nap", "success", None, received_at=DAY + dt.timedelta(hours=3),
                          reply_type="unregistered worker", error="message from unregistered worker nap")

    async def scenario():
        app = app_on(history)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("2")
            table = app.screen.query_one(MessagesTable)
            await until(pilot, lambda: table.row_count == 41, what="all messages")
            await type_filter(pilot, "errors")
            await until(pilot, lambda: shown_ids(table) == [bad], what="the one message with an error")

            await type_filter(pilot, "worker:sleep type:success")
            expected = sorted((n + 1 for n in range(40) if n % 2 == 0 and n % 4 in (0, 3)), reverse=True)
            await until(pilot, lambda: shown_ids(table) == expected, what="sleep's success messages")

            await type_filter(pilot, "since:2026-03-02T05:00 until:2026-03-02T06:59")
            expected = sorted((n + 1 for n in range(40) if 5 <= n % 24 <= 6), reverse=True)
            await until(pilot, lambda: shown_ids(table) == expected, what="messages from 05:00 to 06:59")

            await pilot.press("enter")  # the message whole
            await until(pilot, lambda: isinstance(app.screen, MessageDetailScreen), what="message detail")
            await until(pilot, lambda: "payload" in str(app.screen.query_one("#message", Static).content),
                        what="its payload")
            assert f"n: {expected[0] - 1}" in str(app.screen.query_one("#message", Static).content)

    asyncio.run(scenario())


# --- Checklist -------------------------------------------------------------------------


def test_checklist_key_search_and_a_keys_history_as_diffs(history):
    first = history.message("sleep", "success", {"sleep time": 1}, received_at=DAY)
    history.change("sleepyhead", "set", None, {"sleep time": 1, "where": "bed"}, at=DAY, message_id=first)
    second = history.message("sleep", "success", {"sleep time": 7}, received_at=DAY + dt.timedelta(hours=1))
    history.change("sleepyhead", "update", {"sleep time": 1, "where": "bed"}, {"sleep time": 7, "where": "bed"},
                   at=DAY + dt.timedelta(hours=1), message_id=second)
    awake = history.message("awaken", "success", {"awoke": True}, received_at=DAY + dt.timedelta(hours=2))
    history.change("awake", "set", None, {"awoke": True}, at=DAY + dt.timedelta(hours=2), message_id=awake)

    async def scenario():
        app = app_on(history)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("3")
            tree = app.screen.query_one(Tree)
            await until(pilot, lambda: len(tree.root.children) == 2, what="two keys")
            await type_filter(pilot, "sleepy")
            await until(pilot, lambda: [str(node.label) for node in tree.root.children] == ["sleepyhead"],
                        what="only the matching key")
            tree.focus()
            tree.move_cursor(tree.root.children[0])
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, KeyHistoryScreen), what="the key's history")
            screen = app.screen
            await until(pilot, lambda: len(screen.changes) == 2, what="two changes")
            shown = screen_text(app)
            assert "sleepyhead: 2 changes, newest first" in shown
            assert "update  by message 2 (sleep success)" in shown
            assert "- sleep time: 1" in shown and "+ sleep time: 7" in shown
            assert "  where: bed" in shown  # unchanged context, neither - nor +
            assert shown.index("update") < shown.index("set  by message 1")  # newest first

    asyncio.run(scenario())
