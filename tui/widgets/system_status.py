"""The header line: is the manager alive, is the broker there, is anything going wrong today.

The app reads the database and knocks on the broker's port in a thread (see
``NowcastApp.poll_status``); each screen's header only copies the latest line,
so a slow or locked database never freezes the screen and one poll serves
every screen.
"""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from nowcast_tui.formatting import state_style


def compact_age(seconds: float) -> str:
    """The heartbeat's age in its largest unit (12s, 8m, 26h, 3d): the header has no room for more."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def render_status(status: dict | None, broker_up: bool | None, problem: str | None = None,
                  dark: bool = True) -> Text:
    """One line, short enough for 80 columns: "manager up (3s) │ broker up │
    running 2 │ failed today 1", the manager's age being its heartbeat's."""
    good, bad, busy = state_style("succeeded", dark), state_style("failed", dark), state_style("running", dark)
    if problem is not None:
        return Text(f"database: {problem}", style=bad)
    text = Text("manager ")
    age = status["heartbeat_age"]
    if status["manager_up"]:
        text.append("up", style=good)
        text.append(f" ({compact_age(age)})")
    elif age is None:
        text.append("never ran", style=bad)
    else:
        text.append("down", style=bad)
        text.append(f" ({compact_age(age)})")
    text.append(" │ broker ")
    if broker_up is None:
        text.append("unknown (no config)")
    elif broker_up:
        text.append("up", style=good)
    else:
        text.append("unreachable", style=bad)
    text.append(" │ running ")
    text.append(str(status["running"]), style=busy if status["running"] else "")
    text.append(" │ failed today ")
    text.append(str(status["failed_today"]), style=bad if status["failed_today"] else "")
    return text


class SystemStatus(Static):
    DEFAULT_CSS = """
    SystemStatus {
        dock: top;
        height: 1;
        background: $primary-background;
        padding: 0 0 0 1;
    }
    """

    def on_mount(self) -> None:
        self.show_latest()
        self.set_interval(0.25, self.show_latest)

    def show_latest(self) -> None:
        line = getattr(self.app, "status_line", None)
        if line is None:
            line = Text("nowcast-tui: reading the database…")
        if line != self.content:
            self.update(line)
