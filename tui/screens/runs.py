"""Runs: the opening screen, newest runs first, live, filtered with `/`."""
from __future__ import annotations

from textual import on
from textual.binding import Binding
from textual.widgets import DataTable

from nowcast_tui.filters import parse_run_filter
from nowcast_tui.screens.paged import PagedScreen
from nowcast_tui.screens.relaunch import open_relaunch
from nowcast_tui.screens.run_detail import RunDetailScreen
from nowcast_tui.widgets.runs_table import RunsTable


class RunsScreen(PagedScreen):
    BINDINGS = [
        Binding("enter", "open_run", "Detail", show=True),
        Binding("r", "relaunch", "Relaunch"),
    ]
    TABLE = RunsTable
    TABLE_ID = "runs"
    WHAT = "runs"
    FILTER_HINT = "worker:NAME state:STATE|bad TEXT…"

    def parse_filter(self, text: str):
        return parse_run_filter(text)

    def read_page(self, *, before=None, after=None) -> list:
        return self.app.history.runs_page(self.where, before=before, after=after, limit=self.page_size)

    def changed_ids(self, table: RunsTable) -> list[int]:
        return table.open_run_ids

    def read_changed(self, ids: list[int]) -> list:
        return self.app.history.runs_by_id(ids) if ids else []

    @on(DataTable.RowSelected, "#runs")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_run()

    def action_open_run(self) -> None:
        run = self.table.selected
        if run is not None:
            self.app.push_screen(RunDetailScreen(run.id))

    def action_relaunch(self) -> None:
        run = self.table.selected
        if run is not None:
            open_relaunch(self, run)
