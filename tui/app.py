"""nowcast-tui: the App, its modes, and the console script."""
from __future__ import annotations

import argparse
import sys
import time

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.theme import BUILTIN_THEMES

from nowcast_db.database.engine import url_from_text
from nowcast_db.errors import NowcastError
from nowcast_tui.data import History, Unreadable, check_url
from nowcast_tui.deliver import deliver
from nowcast_tui.launching import NEEDS_CONFIG, LaunchRequests
from nowcast_tui.screens.checklist import ChecklistScreen
from nowcast_tui.screens.help import HelpScreen
from nowcast_tui.screens.launch_worker import LaunchWorkerModal
from nowcast_tui.screens.messages import MessagesScreen
from nowcast_tui.screens.runs import RunsScreen
from nowcast_tui.screens.timeline import TimelineScreen
from nowcast_tui.widgets.system_status import render_status

STATUS_SECONDS = 1.0
#: knocking on the broker's port is cheap, but not worth doing every second
BROKER_SECONDS = 5.0


class NowcastApp(App):
    """One mode per view of the history, so each keeps its place (cursor,
    scroll, filter, open detail screens) while the operator looks at another."""

    TITLE = "nowcast-tui"
    CSS_PATH = "app.tcss"
    MODES = {"runs": RunsScreen, "messages": MessagesScreen, "checklist": ChecklistScreen,
             "timeline": TimelineScreen}
    BINDINGS = [
        Binding("1", "switch_mode('runs')", "Runs"),
        Binding("2", "switch_mode('messages')", "Messages"),
        Binding("3", "switch_mode('checklist')", "Checklist"),
        Binding("4,t", "switch_mode('timeline')", "Timeline"),
        Binding("l", "launch_worker", "Launch"),
        Binding("question_mark", "help", "Keys"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, history: History, theme: str | None = None):
        super().__init__()
        self.history = history
        if theme:
            self.theme = theme
        #: the header line every screen shows, refreshed by poll_status
        self.status_line = None
        self._broker_up: bool | None = None
        self._broker_checked = 0.0
        #: requests sent from the Relaunch and Launch dialogs that the manager has not answered
        self.launch_requests = LaunchRequests()

    @property
    def config(self):
        """The system's config, for launch requests; None when browsing a bare database."""
        return self.history.config

    def on_mount(self) -> None:
        self.switch_mode("runs")
        self.poll_status()
        self.set_interval(STATUS_SECONDS, self.poll_status)
        self.theme_changed_signal.subscribe(self, lambda _theme: self.poll_status())

    @work(thread=True, exclusive=True, group="status")
    def poll_status(self) -> None:
        if time.monotonic() - self._broker_checked >= BROKER_SECONDS:
            self._broker_up = self.history.broker_up()
            self._broker_checked = time.monotonic()
        dark = self.current_theme.dark
        try:
            line = render_status(self.history.status(), self._broker_up, dark=dark)
        except Unreadable as err:
            line = render_status(None, self._broker_up, problem=str(err), dark=dark)
        deliver(self, setattr, self, "status_line", line)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_launch_worker(self) -> None:
        if self.config is None:
            self.notify(NEEDS_CONFIG, severity="error", timeout=8)
            return
        self.push_screen(LaunchWorkerModal(self.config))

    def on_unmount(self) -> None:
        self.history.close()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nowcast-tui",
                                     description="Watch a nowcast system's runs, messages and checklist; "
                                                 "relaunch workers through the manager.")
    parser.add_argument("config", nargs="?", help="the system's nowcast.yaml")
    parser.add_argument("--db", metavar="URL", type=url_from_text,
                        help="browse this history database (a URL, or a SQLite file's path) instead of the "
                             "config's; launching then needs CONFIG too")
    parser.add_argument("--theme", metavar="NAME",
                        help="colour theme: textual-dark (the default) for dark terminals, textual-light for "
                             "light ones, or any Textual theme; Ctrl+P switches while running")
    args = parser.parse_args(argv)
    if not args.config and not args.db:
        parser.error("give the system's CONFIG file, or --db URL")
    if args.theme and args.theme not in BUILTIN_THEMES:
        parser.error(f"--theme {args.theme!r}: expected one of {', '.join(sorted(BUILTIN_THEMES))}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.db:
            check_url(args.db, "--db")
        history = History.from_config_file(args.config) if args.config else History(args.db)
    except NowcastError as err:
        print(f"nowcast-tui: error: {err}", file=sys.stderr)
        return 2
    if args.db:
        history.url = args.db
    NowcastApp(history, theme=args.theme).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
