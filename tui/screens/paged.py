"""What the Runs and Messages screens share: a live, filtered, paged table.

Every second a thread worker asks for what is newer than the newest row
shown (and, through ``changed``, for rows on screen that may have changed);
older pages are read when the cursor nears the bottom.  Reads never run on
the UI thread.  A filter change starts a new *generation*: answers to
questions asked under the old filter are dropped when they arrive.
"""
from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from nowcast_tui.data import PAGE_SIZE, Unreadable
from nowcast_tui.deliver import deliver
from nowcast_tui.filters import FilterError
from nowcast_tui.widgets.filter_bar import FilterBar
from nowcast_tui.widgets.paged_table import PagedTable
from nowcast_tui.widgets.system_status import SystemStatus

REFRESH_SECONDS = 1.0


class PagedScreen(Screen):
    BINDINGS = [Binding("slash", "filter", "Filter")]

    #: the table widget class, its id, and what its rows are called
    TABLE: type[PagedTable] = PagedTable
    TABLE_ID = "table"
    WHAT = "rows"
    #: the filter syntax, shown in the empty filter input
    FILTER_HINT = ""
    page_size = PAGE_SIZE

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.where = self.parse_filter("")
        self.generation = 0
        self.loaded = False

    # --- for subclasses -------------------------------------------------------

    def parse_filter(self, text: str):
        """The filter for ``text``; raises FilterError."""
        raise NotImplementedError

    def read_page(self, *, before: int | None = None, after: int | None = None) -> list:
        raise NotImplementedError

    def changed_ids(self, table: PagedTable) -> list[int]:
        """Ids of rows on screen that may still change (runs can; messages cannot)."""
        return []

    def read_changed(self, ids: list[int]) -> list:
        """Those rows as they are now (called in a thread)."""
        return []

    # --- layout ---------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield SystemStatus()
        yield Static("", id="problem", classes="problem")
        yield self.TABLE(id=self.TABLE_ID)
        yield FilterBar(self.FILTER_HINT)
        yield Footer()

    @property
    def table(self) -> PagedTable:
        return self.query_one(self.TABLE)

    def on_mount(self) -> None:
        self.refresh_rows()
        self.set_interval(REFRESH_SECONDS, self.refresh_rows)

    # --- filtering ------------------------------------------------------------

    def action_filter(self) -> None:
        self.query_one(FilterBar).open(return_to=self.table)

    @on(FilterBar.Applied)
    def apply_filter(self, event: FilterBar.Applied) -> None:
        try:
            where = self.parse_filter(event.text)
        except FilterError as err:
            event.bar.rejected(str(err))
            return
        # the query goes first, so it runs while the filter line closes; the
        # rows on screen stay until the new ones come (answers to the old
        # filter still on their way are dropped by the generation)
        self.where = where
        self.generation += 1
        self.loaded = False
        self.refresh_rows()
        event.bar.accepted(event.text)

    # --- reading --------------------------------------------------------------

    def refresh_rows(self) -> None:
        """Ask for what is new; what to ask is read here, on the UI thread, where the table lives."""
        table = self.table
        self._read_newer(self.generation, self.loaded, table.newest_id, self.changed_ids(table))

    @work(thread=True, exclusive=True, group="refresh")
    def _read_newer(self, generation: int, loaded: bool, newest: int | None, changed_ids: list[int]) -> None:
        try:
            if not loaded:
                rows = self.read_page()
                deliver(self, self._show_first, generation, rows)
                return
            newer = self.read_page(after=newest) if newest is not None else self.read_page()
            changed = self.read_changed(changed_ids)
        except Unreadable as err:
            deliver(self, self.show_problem, str(err))
            return
        deliver(self, self._show_newer, generation, newer, changed)

    def _show_first(self, generation: int, rows: list) -> None:
        if generation != self.generation:
            return
        self.hide_problem()
        self.loaded = True
        self.table.show_first_page(rows, self.page_size)

    def _show_newer(self, generation: int, newer: list, changed: list) -> None:
        if generation != self.generation:
            return
        self.hide_problem()
        table = self.table
        if len(newer) >= self.page_size:  # more arrived than a page: start again from the top
            self.table.show_first_page(newer, self.page_size)
            return
        table.add_newer(newer)
        table.update_records(changed)

    @on(PagedTable.NeedOlder)
    def _need_older(self, event: PagedTable.NeedOlder) -> None:
        self.load_older(self.generation, event.before)

    @work(thread=True, exclusive=True, group="older")
    def load_older(self, generation: int, before: int) -> None:
        try:
            rows = self.read_page(before=before)
        except Unreadable as err:
            deliver(self, self.show_problem, str(err))
            return
        deliver(self, self._show_older, generation, before, rows)

    def _show_older(self, generation: int, before: int, rows: list) -> None:
        # dropped when the filter changed, or when it is not the page below what is shown now
        if generation == self.generation and before == self.table.oldest_id:
            self.table.add_older(rows, self.page_size)

    def show_problem(self, text: str) -> None:
        problem = self.query_one("#problem", Static)
        problem.update(f"Cannot show {self.WHAT}: {text}\n(retrying every second)")
        problem.display = True

    def hide_problem(self) -> None:
        self.query_one("#problem", Static).display = False
