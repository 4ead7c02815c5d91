"""The runs table, updated in place from each fresh page of runs.

Rows are keyed by run id and changed cell by cell, so the cursor stays on the
run the operator chose and the scroll position holds while runs come and go.
"""
from __future__ import annotations

from textual.widgets import DataTable

from nowcast_tui.formatting import args_text, duration_text, short_time, state_text

COLUMNS = (("id", "id"), ("worker", "worker"), ("args", "args"), ("host", "host"), ("state", "state"),
           ("launched", "launched at"), ("duration", "time"), ("by", "by"))


def run_cells(run) -> tuple:
    return (run.id, run.worker, args_text(run.args), run.host, state_text(run.state), short_time(run.launched_at),
            duration_text(run), run.launched_by)


class RunsTable(DataTable):
    DEFAULT_CSS = """
    RunsTable { height: 1fr; }
    """

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    @property
    def selected_run_id(self) -> int | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return int(row_key.value)

    def show_runs(self, runs: list) -> None:
        """Bring the table in line with ``runs`` (newest first)."""
        chosen = self.selected_run_id
        wanted = {str(run.id) for run in runs}
        changed_order = False
        for key in [key for key in self.rows if key.value not in wanted]:
            self.remove_row(key)
        for run in runs:
            key, cells = str(run.id), run_cells(run)
            if key in self.rows:
                for (column, _), old, new in zip(COLUMNS, self.get_row(key), cells):
                    if old != new:
                        self.update_cell(key, column, new)
            else:
                self.add_row(*cells, key=key)
                changed_order = True
        if changed_order:
            self.sort("id", reverse=True)
            if chosen is not None and str(chosen) in self.rows:
                self.move_cursor(row=self.get_row_index(str(chosen)), animate=False)
