"""The launch confirmation: nothing is sent until the operator says so."""
from __future__ import annotations

import shlex

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, Static

from nowcast_tui.deliver import deliver, gone
from nowcast_tui.formatting import args_text
from nowcast_tui.launching import NEEDS_CONFIG, LaunchOutcome, relaunch


def open_relaunch(screen: Screen, run) -> None:
    """The relaunch modal for ``run``, or one plain line saying why not."""
    if screen.app.config is None:
        screen.notify(NEEDS_CONFIG, severity="error", timeout=8)
        return
    if not run.module:
        screen.notify(f"run {run.id} was not launched through the manager: no module to relaunch",
                      severity="warning")
        return
    screen.app.push_screen(RelaunchModal(run.module, list(run.args or []), run.host))


class RelaunchModal(ModalScreen[int | None]):
    """Shows the worker module, lets the operator edit args and host, and on
    confirmation sends one launch request.  Dismisses with the new run id (or
    None), but only when the operator closes it, so the outcome stays readable.

    For "launch any worker" whose module the history does not know yet, the
    module is asked for too (``module`` None)."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, module: str | None, args: list[str], host: str, verb: str = "Relaunch",
                 worker: str | None = None):
        super().__init__()
        self.module = module
        self.args = args
        self.host = host
        self.verb = verb
        self.worker = worker
        self.outcome: LaunchOutcome | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            if self.module:
                yield Label(f"{self.verb} [b]{escape(self.module)}[/b]?", id="title")
            else:
                yield Label(f"{self.verb} worker [b]{escape(self.worker or '')}[/b]: its module?", id="title")
                yield Input("", placeholder=f"mysystem.workers.{self.worker or 'NAME'}", id="module")
            yield Label("arguments")
            yield Input(args_text(self.args), id="args")
            yield Label("host")
            yield Input(self.host, id="host")
            yield Static("", id="outcome")
            with Horizontal(id="buttons"):
                yield Button("Launch", variant="warning", id="launch")
                yield Button("Close", id="close")

    @on(Button.Pressed, "#launch")
    @on(Input.Submitted)
    def confirm(self) -> None:
        launch = self.query_one("#launch", Button)
        if launch.disabled:
            return
        outcome = self.query_one("#outcome", Static)
        module = self.module
        if not module:
            module = self.query_one("#module", Input).value.strip()
            if not module or " " in module or "." not in module:
                outcome.update(f"module: expected a dotted module name such as "
                               f"mysystem.workers.{self.worker or 'NAME'}, got {module!r}")
                outcome.add_class("refused")
                return
        try:
            args = shlex.split(self.query_one("#args", Input).value)
        except ValueError as err:
            outcome.update(f"arguments: {err}")
            outcome.add_class("refused")
            return
        host = self.query_one("#host", Input).value.strip() or "localhost"
        launch.disabled = True
        outcome.remove_class("refused")
        outcome.update("sending the launch request…")
        self.send(module, args, host)

    @work(thread=True, exclusive=True, group="launch")
    def send(self, module: str, args: list[str], host: str) -> None:
        app = self.app  # a closed dialog no longer knows its app
        outcome = relaunch(app.config, module, args, host, app.launch_requests)
        deliver(app, self.outcome_arrived, outcome)

    def outcome_arrived(self, outcome: LaunchOutcome) -> None:
        """In the dialog; or, when the operator closed it while the request was
        on its way (it was sent all the same), as a notification."""
        if gone(self):
            self.app.notify(outcome.text, severity="information" if outcome.ok else "error", timeout=10)
        else:
            self.show_outcome(outcome)

    def show_outcome(self, outcome: LaunchOutcome) -> None:
        self.outcome = outcome
        self.query_one("#outcome", Static).update(escape(outcome.text))
        self.query_one("#outcome", Static).set_class(not outcome.ok, "refused")
        # a refused or unanswered request may be tried again; a launched one is done
        self.query_one("#launch", Button).disabled = outcome.ok
        self.query_one("#close", Button).focus()

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(self.outcome.run_id if self.outcome else None)
