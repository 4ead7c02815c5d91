""""Launch any registered worker": pick one of the message registry's workers,
then confirm in the same dialog a relaunch uses (empty args, localhost)."""
from __future__ import annotations

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from nowcast_tui.deliver import deliver
from nowcast_tui.launching import module_of, registered_workers
from nowcast_tui.screens.relaunch import RelaunchModal


class LaunchWorkerModal(ModalScreen[None]):
    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, config):
        super().__init__()
        self.worker_names = registered_workers(config)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Launch which worker? (from the config's message registry)", id="title")
            if self.worker_names:
                yield OptionList(*(Option(escape(name), id=name) for name in self.worker_names), id="workers")
            else:
                yield Label("the config's message registry lists no workers", id="none")

    @on(OptionList.OptionSelected, "#workers")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.find_module(event.option.id)

    @work(thread=True, exclusive=True, group="module")
    def find_module(self, worker: str) -> None:
        module = module_of(self.app.config, worker)  # reads the history: not on the UI thread
        deliver(self, self._confirm, worker, module)  # not if the operator closed the dialog meanwhile

    def _confirm(self, worker: str, module: str | None) -> None:
        self.dismiss(None)
        self.app.push_screen(RelaunchModal(module, [], "localhost", verb="Launch", worker=worker))

    def action_close(self) -> None:
        self.dismiss(None)
