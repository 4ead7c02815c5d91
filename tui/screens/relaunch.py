"""The relaunch confirmation: nothing is sent until the operator says so."""
from __future__ import annotations

import shlex

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from nowcast_tui.formatting import args_text
from nowcast_tui.launching import LaunchOutcome, relaunch


class RelaunchModal(ModalScreen[int | None]):
    """Shows the worker module, lets the operator edit args and host, and on
    confirmation sends one launch request.  Dismisses with the new run id (or
    None), but only when the operator closes it, so the outcome stays readable."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, module: str, args: list[str], host: str):
        super().__init__()
        self.module = module
        self.args = args
        self.host = host
        self.outcome: LaunchOutcome | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Relaunch [b]{self.module}[/b]?", id="title")
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
        try:
            args = shlex.split(self.query_one("#args", Input).value)
        except ValueError as err:
            self.query_one("#outcome", Static).update(f"arguments: {err}")
            return
        host = self.query_one("#host", Input).value.strip() or "localhost"
        launch.disabled = True
        self.query_one("#outcome", Static).update("sending the launch request…")
        self.send(args, host)

    @work(thread=True, exclusive=True, group="launch")
    def send(self, args: list[str], host: str) -> None:
        outcome = relaunch(self.app.config, self.module, args, host)
        self.app.call_from_thread(self.show_outcome, outcome)

    def show_outcome(self, outcome: LaunchOutcome) -> None:
        self.outcome = outcome
        self.query_one("#outcome", Static).update(outcome.text)
        self.query_one("#outcome", Static).set_class(not outcome.ok, "refused")
        # a refused or unanswered request may be tried again; a launched one is done
        self.query_one("#launch", Button).disabled = outcome.ok
        self.query_one("#close", Button).focus()

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(self.outcome.run_id if self.outcome else None)
