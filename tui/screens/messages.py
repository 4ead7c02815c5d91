"""Messages: the newest messages the manager read, with the reply it sent."""
from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from nowcast_tui.data import Unreadable
from nowcast_tui.formatting import short_time
from nowcast_tui.widgets.system_status import SystemStatus

COLUMNS = (("id", "id"), ("received", "received"), ("source", "source"), ("type", "type"),
           ("reply", "reply"), ("run", "run"), ("error", "error"))


def message_cells(message) -> tuple:
    error = Text(message.error or "", style="red")
    reply = Text(message.reply_type or "", style="" if message.reply_type in ("ack", "checklist cleared") else "red")
    return (message.id, short_time(message.received_at), message.source or "(unreadable)", message.type or "",
            reply, "" if message.run_id is None else str(message.run_id), error)


class MessagesScreen(Screen):
    def compose(self) -> ComposeResult:
        yield SystemStatus()
        yield Static("", id="problem", classes="problem")
        yield DataTable(id="messages", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        self.refresh_messages()
        self.set_interval(1.0, self.refresh_messages)

    @work(thread=True, exclusive=True, group="messages")
    def refresh_messages(self) -> None:
        try:
            messages = self.app.history.messages()
        except Unreadable as err:
            self.app.call_from_thread(self.show_problem, str(err))
            return
        self.app.call_from_thread(self.show_messages, messages)

    def show_problem(self, text: str) -> None:
        problem = self.query_one("#problem", Static)
        problem.update(f"Cannot show messages: {text}\n(retrying every second)")
        problem.display = True

    def show_messages(self, messages: list) -> None:
        """Messages never change once recorded: only add the new ones."""
        self.query_one("#problem", Static).display = False
        table = self.query_one(DataTable)
        wanted = {str(message.id) for message in messages}
        for key in [key for key in table.rows if key.value not in wanted]:
            table.remove_row(key)
        new = [message for message in messages if str(message.id) not in table.rows]
        if not new:
            return
        chosen = None
        if table.row_count:
            chosen = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        for message in new:
            table.add_row(*message_cells(message), key=str(message.id))
        table.sort("id", reverse=True)
        if chosen is not None:
            table.move_cursor(row=table.get_row_index(chosen), animate=False)
