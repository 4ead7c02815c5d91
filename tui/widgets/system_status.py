"""The header line: is the manager alive, and is anything going wrong today."""
from __future__ import annotations

from rich.text import Text
from textual import work
from textual.widgets import Static

from nowcast_tui.data import Unreadable
from nowcast_tui.formatting import seconds_text


class SystemStatus(Static):
    """Polls the database once a second in a thread, so a slow or locked
    database never freezes the screen."""

    DEFAULT_CSS = """
    SystemStatus {
        dock: top;
        height: 1;
        background: $primary-background;
        padding: 0 1;
    }
    """

    def on_mount(self) -> None:
        self.update("nowcast-tui: reading the database…")
        self.poll()
        self.set_interval(1.0, self.poll)

    @work(thread=True, exclusive=True, group="status")
    def poll(self) -> None:
        try:
            text = self.render_status(self.app.history.status())
        except Unreadable as err:
            text = Text(f"database: {err}", style="bold red")
        self.app.call_from_thread(self.update, text)

    @staticmethod
    def render_status(status: dict) -> Text:
        text = Text("manager ")
        age = status["heartbeat_age"]
        if status["manager_up"]:
            text.append("up", style="bold green")
            text.append(f" (beat {seconds_text(age)} ago)")
        elif age is None:
            text.append("down", style="bold red")
            text.append(" (never ran)")
        else:
            text.append("down", style="bold red")
            text.append(f" (last beat {seconds_text(age)} ago)")
        text.append(" │ running ")
        text.append(str(status["running"]), style="bold yellow" if status["running"] else "")
        text.append(" │ failed today ")
        text.append(str(status["failed_today"]), style="bold red" if status["failed_today"] else "")
        return text
