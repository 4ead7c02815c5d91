"""One message whole: payload, the reply sent, the error, the raw text of an unreadable one."""
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
from nowcast_tui.formatting import full_time, value_text
from nowcast_tui.widgets.system_status import SystemStatus


def describe_message(message) -> str:
    lines = [
        f"[b]message {message.id}[/b]  {escape(str(message.source or '(unreadable)'))} "
        f"[b]{escape(str(message.type or ''))}[/b]",
        f"received:   {full_time(message.received_at)}",
        f"message id: {escape(str(message.message_id))}",
        f"run:        {message.run_id if message.run_id is not None else '—'}",
        f"reply:      {escape(str(message.reply_type))}",
    ]
    if message.synthesized:
        lines.append("[b]made up by the manager: the run died or timed out without a final message[/b]")
    if message.error:
        lines.append(f"error:      [red]{escape(message.error)}[/red]")
    lines += ["", "[b]payload[/b]", escape(value_text(message.payload))]
    if message.reply_payload is not None:
        lines += ["", "[b]reply payload[/b]", escape(value_text(message.reply_payload))]
    if message.raw:
        lines += ["", "[b]raw text as received[/b]", escape(message.raw)]
    return "\n".join(lines)


class MessageDetailScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("g", "open_run", "Its run"),
    ]

    def __init__(self, message_id: int):
        super().__init__()
        self.message_id = message_id
        self.message = None

    def compose(self) -> ComposeResult:
        yield SystemStatus()
        with VerticalScroll(id="detail"):
            yield Static(f"reading message {self.message_id}…", id="message")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="message")
    def load(self) -> None:
        try:
            message = self.app.history.message(self.message_id)
        except Unreadable as err:
            deliver(self, self.show_problem, f"Cannot show the message: {escape(str(err))}")
            return
        deliver(self, self.show, message)

    def show_problem(self, text: str) -> None:
        self.query_one("#message", Static).update(text)

    def show(self, message) -> None:
        self.message = message
        text = describe_message(message) if message is not None else f"there is no message {self.message_id}"
        self.query_one("#message", Static).update(text)

    def action_open_run(self) -> None:
        from nowcast_tui.screens.run_detail import RunDetailScreen

        if self.message is None or self.message.run_id is None:
            self.notify("this message belongs to no run", severity="warning")
            return
        self.app.push_screen(RunDetailScreen(self.message.run_id))
