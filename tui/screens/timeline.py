"""Timeline: a day's runs as bars on a time axis, one line per worker, with
the day before behind them, so a late or slow run stands out at 3 a.m."""
from __future__ import annotations

import datetime as dt

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from nowcast_tui.data import Unreadable
from nowcast_tui.deliver import deliver
from nowcast_tui.formatting import seconds_text, state_style
from nowcast_tui.screens.run_detail import RunDetailScreen
from nowcast_tui.timeline_layout import DAY, Layout, day_start, layout_day, nearest_bar, nearest_reference
from nowcast_tui.widgets.system_status import SystemStatus
from nowcast_tui.widgets.timeline_chart import LABEL_WIDTH, TimelineChart, axis_text, rows_text

REFRESH_SECONDS = 2.0
LEGEND = "█ run (colour: state)  ░ day before  │ now   ←→↑↓ Enter  [ ] day  t today"


class ChartScroll(VerticalScroll, can_focus=False):
    """Scrolls the worker lines; the screen's keys move the chosen run, not the view."""


class TimelineScreen(Screen):
    BINDINGS = [
        Binding("left", "move(0, -1)", "Earlier", show=False),
        Binding("right", "move(0, 1)", "Later", show=False),
        Binding("up", "move(-1, 0)", "Up", show=False),
        Binding("down", "move(1, 0)", "Down", show=False),
        Binding("enter", "open_run", "Detail"),
        Binding("left_square_bracket", "day(-1)", "Day before"),
        Binding("right_square_bracket", "day(1)", "Day after"),
        Binding("t", "today", "Today"),
    ]

    def __init__(self, day: dt.datetime | None = None, now=None):
        super().__init__()
        #: when "now" is (tests pin it); None: the clock
        self._now = now
        self.day = day_start(day or self.now())
        self.runs: list = []
        self.day_layout: Layout | None = None
        self.chosen: tuple[int, int | None] | None = None
        self._loaded_day: dt.datetime | None = None

    def now(self) -> dt.datetime:
        return self._now() if callable(self._now) else self._now or dt.datetime.now(dt.timezone.utc)

    def compose(self) -> ComposeResult:
        yield SystemStatus()
        yield Static("", id="timeline-title")
        yield Static("", id="timeline-axis")
        with ChartScroll(id="timeline-scroll"):
            yield TimelineChart("", id="timeline-chart")
        yield Static("", id="timeline-chosen")
        yield Footer()

    def on_mount(self) -> None:
        self._title("reading…")
        self.load()
        self.set_interval(REFRESH_SECONDS, self.load)

    def on_resize(self) -> None:
        self.relayout()

    # --- reading --------------------------------------------------------------

    def load(self) -> None:
        if self._loaded_day == self.day and self.day + 2 * DAY < self.now():
            return  # a day long over, already read: its runs no longer change
        self._read(self.day)

    @work(thread=True, exclusive=True, group="timeline")
    def _read(self, day: dt.datetime) -> None:
        try:
            runs = self.app.history.runs_around(day - DAY, day + DAY)
        except Unreadable as err:
            deliver(self, self._title, f"cannot show the timeline: {err}", problem=True)
            return
        deliver(self, self.show_runs, day, runs)

    def show_runs(self, day: dt.datetime, runs: list) -> None:
        if day != self.day:
            return  # the operator has moved to another day since
        first_time = self._loaded_day != day
        self._loaded_day = day
        self.runs = runs
        self.relayout(choose_latest=first_time)

    # --- layout ---------------------------------------------------------------

    @property
    def axis_width(self) -> int:
        # less the padding, the " UTC" after the axis and a scrollbar
        return max(24, self.size.width - LABEL_WIDTH - 8)

    def relayout(self, choose_latest: bool = False) -> None:
        if self._loaded_day is None:
            return
        chosen_run = self.chosen_bar.run_id if self.chosen_bar else None
        self.day_layout = layout_day(self.runs, self.day, self.axis_width, self.now())
        self.chosen = self._find(chosen_run) if chosen_run is not None and not choose_latest else None
        if self.chosen is None and self.day_layout.rows:
            self.chosen = self._latest()
        self.redraw()

    def _find(self, run_id: int) -> tuple[int, int] | None:
        for row_index, row in enumerate(self.day_layout.rows):
            for bar_index, bar in enumerate(row.bars):
                if bar.run_id == run_id:
                    return row_index, bar_index
        return None

    def _latest(self) -> tuple[int, int | None]:
        """The run that started last: where the operator's eye goes first."""
        best = None
        for row_index, row in enumerate(self.day_layout.rows):
            for bar_index, bar in enumerate(row.bars):
                if best is None or bar.start > best[0]:
                    best = (bar.start, row_index, bar_index)
        return (best[1], best[2]) if best else (0, None)

    @property
    def chosen_bar(self):
        if self.day_layout is None or self.chosen is None or self.chosen[1] is None:
            return None
        row_index, bar_index = self.chosen
        if row_index >= len(self.day_layout.rows) or bar_index >= len(self.day_layout.rows[row_index].bars):
            return None
        return self.day_layout.rows[row_index].bars[bar_index]

    def redraw(self) -> None:
        layout, dark = self.day_layout, self.app.current_theme.dark
        count = len(layout.bars)
        self._title(f"[b]{self.day:%A %Y-%m-%d}[/b]  {count} run{'s' if count != 1 else ''} of "
                    f"{len(layout.rows)} worker{'s' if len(layout.rows) != 1 else ''}")
        self.query_one("#timeline-axis", Static).update(axis_text(layout))
        chart = self.query_one(TimelineChart)
        chart.update(rows_text(layout, self.chosen, dark) if layout.rows else
                     f"no runs on {self.day:%Y-%m-%d} or the day before")
        self.query_one("#timeline-chosen", Static).update(self._chosen_text(dark))
        if self.chosen is not None:
            self._keep_in_view(self.chosen[0])

    def _keep_in_view(self, row: int) -> None:
        scroll = self.query_one(ChartScroll)
        height = max(1, scroll.size.height)
        if row < scroll.scroll_y:
            scroll.scroll_to(y=row, animate=False)
        elif row >= scroll.scroll_y + height:
            scroll.scroll_to(y=row - height + 1, animate=False)

    def _chosen_text(self, dark: bool) -> str:
        if self.day_layout is None or self.chosen is None:
            return LEGEND
        row = self.day_layout.rows[self.chosen[0]]
        bar = self.chosen_bar
        if bar is None:
            return f"[b]{escape(row.worker)}[/b]: no run on this day\n{LEGEND}"
        end = bar.end or self.now()
        took = seconds_text((end - bar.start).total_seconds())
        line = (f"run {bar.run_id} [b]{escape(bar.worker)}[/b] [{state_style(bar.state, dark)}]"
                f"{escape(bar.state)}[/] {bar.start:%H:%M}–{'' if bar.end is None else format(bar.end, '%H:%M')} "
                f"{took}{'…' if bar.end is None else ''}")
        reference = nearest_reference(row, bar.first)
        if reference is not None:
            late = (bar.start - (reference.start + DAY)).total_seconds()
            then = seconds_text(reference.seconds) if reference.seconds is not None else "still open"
            line += (f" · day before {reference.start:%H:%M} for {then}"
                     f" ({'+' if late >= 0 else '-'}{seconds_text(abs(late))})")
        return f"{line}\n{LEGEND}"

    def _title(self, text: str, problem: bool = False) -> None:
        title = self.query_one("#timeline-title", Static)
        title.update(text if not problem else f"[b red]{escape(text)}[/]")

    # --- keys -----------------------------------------------------------------

    def action_move(self, rows: int, bars: int) -> None:
        if self.day_layout is None or not self.day_layout.rows or self.chosen is None:
            return
        row_index, bar_index = self.chosen
        if rows:
            column = self.chosen_bar.first if self.chosen_bar else 0
            row_index = min(len(self.day_layout.rows) - 1, max(0, row_index + rows))
            bar_index = nearest_bar(self.day_layout.rows[row_index], column)
        elif bar_index is not None:
            bar_index = min(len(self.day_layout.rows[row_index].bars) - 1, max(0, bar_index + bars))
        self.chosen = (row_index, bar_index)
        self.redraw()

    def action_open_run(self) -> None:
        bar = self.chosen_bar
        if bar is not None:
            self.app.push_screen(RunDetailScreen(bar.run_id))

    def action_day(self, days: int) -> None:
        self.go_to(self.day + dt.timedelta(days=days))

    def action_today(self) -> None:
        self.go_to(day_start(self.now()))

    def go_to(self, day: dt.datetime) -> None:
        self.day = day
        self._loaded_day = None
        self.chosen = None
        self._title(f"reading {day:%Y-%m-%d}…")
        self.load()
