"""Runs: the opening screen, newest runs first, live."""
from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from nowcast_tui.data import Unreadable
from nowcast_tui.screens.relaunch import RelaunchModal
from nowcast_tui.screens.run_detail import RunDetailScreen
from nowcast_tui.widgets.runs_table import RunsTable
from nowcast_tui.widgets.system_status import SystemStatus


class RunsScreen(Screen):
    BINDINGS = [
        Binding("enter", "open_run", "Detail", show=True),
        Binding("r", "relaunch", "Relaunch"),
    ]

    def compose(self) -> ComposeResult:
        yield SystemStatus()
        yield Static("", id="problem", classes="problem")
        yield RunsTable(id="runs")
        yield Footer()

    def on_mount(self) -> None:
        self.runs: dict[int, object] = {}
        self.refresh_runs()
        self.set_interval(1.0, self.refresh_runs)

    @work(thread=True, exclusive=True, group="runs")
    def refresh_runs(self) -> None:
        try:
            runs = self.app.history.runs()
        except Unreadable as err:
            self.app.call_from_thread(self.show_problem, str(err))
            return
        self.app.call_from_thread(self.show_runs, runs)

    def show_problem(self, text: str) -> None:
        problem = self.query_one("#problem", Static)
        problem.update(f"Cannot show runs: {text}\n(retrying every second)")
        problem.display = True

    def show_runs(self, runs: list) -> None:
        self.query_one("#problem", Static).display = False
        self.runs = {run.id: run for run in runs}
        self.query_one(RunsTable).show_runs(runs)

    def _chosen_run(self):
        run_id = self.query_one(RunsTable).selected_run_id
        return self.runs.get(run_id) if run_id is not None else None

    @on(DataTable.RowSelected, "#runs")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_run()

    def action_open_run(self) -> None:
        run = self._chosen_run()
        if run is not None:
            self.app.push_screen(RunDetailScreen(run.id))

    def action_relaunch(self) -> None:
        run = self._chosen_run()
        if run is None:
            return
        if not run.module:
            self.notify(f"run {run.id} was not launched through the manager: no module to relaunch",
                        severity="warning")
            return
        self.app.push_screen(RelaunchModal(run.module, list(run.args or []), run.host))
