"""`?`: the key bindings, for an operator who does not use the TUI every day."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = """\
[b]Everywhere[/b]
  1          Runs
  2          Messages
  3          Checklist
  ?          this help
  q          quit

[b]Runs[/b]
  ↑ ↓ PgUp PgDn   move
  Enter      run detail
  r          relaunch the run (asks first)

[b]Run detail[/b]
  r          relaunch this run (asks first)
  Esc        back

[b]Relaunch[/b]
  Tab        next field
  Enter      send the launch request
  Esc        close

[b]Checklist[/b]
  u          read the checklist again
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(KEYS)

    def action_close(self) -> None:
        self.dismiss(None)
