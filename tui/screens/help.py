"""`?`: the key bindings, for an operator who does not use the TUI every day."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = """\
[b]Everywhere[/b]
  1 2 3 4    Runs, Messages, Checklist, Timeline (t)
  l          launch any registered worker (asks first)
  ?          this help
  Ctrl+P     commands, e.g. switch the theme (light/dark)
  q          quit

[b]Runs[/b]
  ↑ ↓ PgUp PgDn   move; older runs load near the bottom
  Ctrl+Home/End   first / last row loaded
  Enter      run detail
  r          relaunch the run (asks first)
  /          filter: worker:NAME state:STATE (or state:bad)
             and any words, found in worker, args or host

[b]Messages[/b]
  Enter      the message whole (payload, reply, error)
  /          filter: worker:NAME type:TYPE errors
             since:TIME until:TIME (2026-11-29T05:00, UTC)

[b]Run detail[/b]
  d o        details / captured output
  /          search the output; n N next, previous
  p          the run that launched this one
  c          a run this one launched (again: the next one)
  r          relaunch this run (asks first)
  Esc        back

[b]Checklist[/b]
  Enter      the key's history of changes, as diffs
  /          find keys by text
  space      fold or unfold
  u          read the checklist again

[b]Timeline[/b]
  ← → ↑ ↓    choose a run;  Enter  its detail
  [ ]        day before / after;  t  today

[b]Launch[/b]
  Tab        next field
  Enter      send the launch request
  Esc        close

In a filter: Enter applies, an empty filter clears, Esc closes.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(KEYS)

    def action_close(self) -> None:
        self.dismiss(None)
