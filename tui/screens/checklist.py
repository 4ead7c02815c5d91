"""Checklist: the current checklist as a tree, as the manager will use it."""
from __future__ import annotations

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static, Tree
from textual.widgets.tree import TreeNode

from nowcast_tui.data import Unreadable
from nowcast_tui.widgets.system_status import SystemStatus


def add_value(node: TreeNode, label: str, value) -> None:
    if isinstance(value, dict):
        branch = node.add(f"[b]{escape(label)}[/b]", expand=True)
        for key, item in value.items():
            add_value(branch, str(key), item)
    elif isinstance(value, (list, tuple)):
        branch = node.add(f"[b]{escape(label)}[/b] ({len(value)})", expand=True)
        for index, item in enumerate(value):
            add_value(branch, f"[{index}]", item)
    else:
        node.add_leaf(f"{escape(label)}: {escape(repr(value) if isinstance(value, str) else str(value))}")


class ChecklistScreen(Screen):
    """Read on demand (u) rather than every second: rebuilding a tree would
    fold up whatever the operator had opened."""

    BINDINGS = [Binding("u", "reload", "Re-read")]

    def compose(self) -> ComposeResult:
        yield SystemStatus()
        yield Static("", id="problem", classes="problem")
        yield Tree("checklist", id="checklist")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="checklist")
    def load(self) -> None:
        try:
            checklist = self.app.history.checklist()
        except Unreadable as err:
            self.app.call_from_thread(self.show_problem, str(err))
            return
        self.app.call_from_thread(self.show_checklist, checklist)

    def show_problem(self, text: str) -> None:
        problem = self.query_one("#problem", Static)
        problem.update(f"Cannot show the checklist: {text}")
        problem.display = True

    def show_checklist(self, checklist: dict) -> None:
        self.query_one("#problem", Static).display = False
        tree = self.query_one(Tree)
        tree.clear()
        tree.root.set_label(f"checklist ({len(checklist)} keys)")
        for key, value in checklist.items():
            add_value(tree.root, key, value)
        tree.root.expand()
