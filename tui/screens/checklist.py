"""Checklist: the current checklist as a tree, as the manager will use it;
`/` narrows it to matching keys, Enter on a key shows its history."""
from __future__ import annotations

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static, Tree
from textual.widgets.tree import TreeNode

from nowcast_tui.data import Unreadable
from nowcast_tui.deliver import deliver
from nowcast_tui.filters import FilterError, parse_key_filter
from nowcast_tui.screens.key_history import KeyHistoryScreen
from nowcast_tui.widgets.filter_bar import FilterBar
from nowcast_tui.widgets.system_status import SystemStatus


def add_value(node: TreeNode, label: str, value, key: str) -> None:
    """``key`` is the checklist key the value belongs to, kept on every node
    so Enter anywhere under a key opens that key's history."""
    if isinstance(value, dict):
        branch = node.add(f"[b]{escape(label)}[/b]", data=key, expand=True)
        for item_key, item in value.items():
            add_value(branch, str(item_key), item, key)
    elif isinstance(value, (list, tuple)):
        branch = node.add(f"[b]{escape(label)}[/b] ({len(value)})", data=key, expand=True)
        for index, item in enumerate(value):
            add_value(branch, f"[{index}]", item, key)
    else:
        node.add_leaf(f"{escape(label)}: {escape(repr(value) if isinstance(value, str) else str(value))}", data=key)


class ChecklistScreen(Screen):
    """Read on demand (u) rather than every second: rebuilding a tree would
    fold up whatever the operator had opened."""

    BINDINGS = [
        Binding("u", "reload", "Re-read"),
        Binding("slash", "filter", "Find key"),
        Binding("enter", "history", "Key history", show=True),
    ]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.key_text = ""

    def compose(self) -> ComposeResult:
        yield SystemStatus()
        yield Static("", id="problem", classes="problem")
        yield Tree("checklist", id="checklist")
        yield FilterBar("text in the key")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Tree).auto_expand = False  # Enter opens a key's history; space folds
        self.action_reload()

    def action_reload(self) -> None:
        self.load(self.key_text)

    def action_filter(self) -> None:
        self.query_one(FilterBar).open(return_to=self.query_one(Tree))

    @on(FilterBar.Applied)
    def apply_filter(self, event: FilterBar.Applied) -> None:
        try:
            self.key_text = parse_key_filter(event.text)
        except FilterError as err:
            event.bar.rejected(str(err))
            return
        event.bar.accepted(event.text)
        self.action_reload()

    @work(thread=True, exclusive=True, group="checklist")
    def load(self, key_text: str) -> None:
        try:
            checklist = self.app.history.checklist(key_text)
        except Unreadable as err:
            deliver(self, self.show_problem, str(err))
            return
        deliver(self, self.show_checklist, checklist, key_text)

    def show_problem(self, text: str) -> None:
        problem = self.query_one("#problem", Static)
        problem.update(f"Cannot show the checklist: {escape(text)}")
        problem.display = True

    def show_checklist(self, checklist: dict, key_text: str = "") -> None:
        self.query_one("#problem", Static).display = False
        tree = self.query_one(Tree)
        tree.clear()
        where = f", keys with “{escape(key_text)}”" if key_text else ""
        keys = "1 key" if len(checklist) == 1 else f"{len(checklist)} keys"
        tree.root.set_label(f"checklist ({keys}{where})")
        for key, value in checklist.items():
            add_value(tree.root, key, value, key)
        tree.root.expand()

    @on(Tree.NodeSelected, "#checklist")
    def _selected(self, event: Tree.NodeSelected) -> None:
        self.action_history()

    def action_history(self) -> None:
        node = self.query_one(Tree).cursor_node
        if node is None or node.data is None:
            self.notify("choose a checklist key first (↑ ↓), then Enter", severity="warning")
            return
        self.app.push_screen(KeyHistoryScreen(node.data))
