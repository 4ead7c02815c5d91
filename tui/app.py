"""nowcast-tui: the App, its modes, and the console script."""
from __future__ import annotations

import argparse
import sys

from textual.app import App
from textual.binding import Binding

from nowcast_db.errors import NowcastError
from nowcast_tui.data import History
from nowcast_tui.screens.checklist import ChecklistScreen
from nowcast_tui.screens.help import HelpScreen
from nowcast_tui.screens.messages import MessagesScreen
from nowcast_tui.screens.runs import RunsScreen


class NowcastApp(App):
    """One mode per view of the history, so each keeps its place (cursor,
    scroll, open detail screens) while the operator looks at another."""

    TITLE = "nowcast-tui"
    CSS_PATH = "app.tcss"
    MODES = {"runs": RunsScreen, "messages": MessagesScreen, "checklist": ChecklistScreen}
    BINDINGS = [
        Binding("1", "switch_mode('runs')", "Runs"),
        Binding("2", "switch_mode('messages')", "Messages"),
        Binding("3", "switch_mode('checklist')", "Checklist"),
        Binding("question_mark", "help", "Keys"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, history: History):
        super().__init__()
        self.history = history

    @property
    def config(self):
        """The system's config, for launch requests; None when browsing a bare database."""
        return self.history.config

    def on_mount(self) -> None:
        self.switch_mode("runs")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def on_unmount(self) -> None:
        self.history.close()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nowcast-tui",
                                     description="Watch a nowcast system's runs, messages and checklist; "
                                                 "relaunch workers through the manager.")
    parser.add_argument("config", nargs="?", help="the system's nowcast.yaml")
    parser.add_argument("--db", metavar="URL", help="browse this history database (sqlite:///path) "
                                                     "instead of the config's; launching then needs CONFIG too")
    args = parser.parse_args(argv)
    if not args.config and not args.db:
        parser.error("give the system's CONFIG file, or --db URL")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        history = History.from_config_file(args.config) if args.config else History(args.db)
    except NowcastError as err:
        print(f"nowcast-tui: error: {err}", file=sys.stderr)
        return 2
    if args.db:
        history.url = args.db
    NowcastApp(history).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
