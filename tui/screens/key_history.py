"""One checklist key's history: every change, newest first, as a diff of its YAML."""
from __future__ import annotations

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from nowcast_tui.data import Unreadable
from nowcast_tui.deliver import deliver
from nowcast_tui.formatting import diff_markup, full_time
from nowcast_tui.value_diff import change_diff
from nowcast_tui.widgets.system_status import SystemStatus


def describe_change(mutation, dark: bool) -> str:
    if mutation.message_id is None:
        cause = "no message (a manager started with --ignore-checklist)"
    else:
        cause = f"message {mutation.message_id} ({escape(str(mutation.source))} {escape(str(mutation.type))})"
    head = f"[b]{full_time(mutation.at)}[/b]  {escape(mutation.operation)}  by {cause}"
    return head + "\n" + diff_markup(change_diff(mutation.operation, mutation.before, mutation.after), dark, "  ")


class KeyHistoryScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("u", "reload", "Re-read"),
    ]

    def __init__(self, key: str):
        super().__init__()
        self.key = key
        self.changes: list = []

    def compose(self) -> ComposeResult:
        yield SystemStatus()
        yield Static(f"[b]{escape(self.key)}[/b]: reading its history…", id="key-title")
        with VerticalScroll(id="detail"):
            yield Static("", id="changes")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="key-history")
    def load(self) -> None:
        try:
            changes = self.app.history.key_history(self.key)
        except Unreadable as err:
            deliver(self, self.show_problem, f"Cannot show the history of {escape(self.key)}: {escape(str(err))}")
            return
        deliver(self, self.show, changes)

    def show_problem(self, text: str) -> None:
        self.query_one("#key-title", Static).update(text)

    def show(self, changes: list) -> None:
        self.changes = changes
        dark = self.app.current_theme.dark
        count = len(changes)
        self.query_one("#key-title", Static).update(
            f"[b]{escape(self.key)}[/b]: {count} change{'s' if count != 1 else ''}, newest first"
            + (" (the newest 200)" if count >= 200 else ""))
        self.query_one("#changes", Static).update(
            "\n\n".join(describe_change(change, dark) for change in changes) or "no recorded changes")
