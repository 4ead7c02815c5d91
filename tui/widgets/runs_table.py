"""The runs table: one row per run, newest first, state coloured for the terminal's theme."""
from __future__ import annotations

from nowcast_tui.formatting import args_text, duration_text, short_time, state_text
from nowcast_tui.widgets.paged_table import PagedTable

#: what an operator scans for first comes first, so it shows in 80 columns
COLUMNS = (("id", "id"), ("worker", "worker"), ("state", "state"), ("launched", "launched at"),
           ("duration", "time"), ("by", "by"), ("args", "args"), ("host", "host"))
OPEN_STATES = ("pending", "running")


def run_cells(run, dark: bool = True) -> tuple:
    return (run.id, run.worker, state_text(run.state, dark), short_time(run.launched_at), duration_text(run),
            run.launched_by, args_text(run.args), run.host)


class RunsTable(PagedTable):
    COLUMNS = COLUMNS

    def cells(self, run) -> tuple:
        return run_cells(run, self.dark)

    @property
    def selected_run_id(self) -> int | None:
        return self.selected_id

    @property
    def open_run_ids(self) -> list[int]:
        """Runs on screen that may still change (and whose elapsed time moves on)."""
        return [run.id for run in self.records.values() if run.state in OPEN_STATES]
