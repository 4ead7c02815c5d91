"""Messages: every message the manager read, with the reply it sent; filtered with `/`."""
from __future__ import annotations

from textual import on
from textual.binding import Binding
from textual.widgets import DataTable

from nowcast_tui.filters import parse_message_filter
from nowcast_tui.screens.message_detail import MessageDetailScreen
from nowcast_tui.screens.paged import PagedScreen
from nowcast_tui.widgets.messages_table import MessagesTable


class MessagesScreen(PagedScreen):
    BINDINGS = [Binding("enter", "open_message", "Detail", show=True)]
    TABLE = MessagesTable
    TABLE_ID = "messages"
    WHAT = "messages"
    FILTER_HINT = "worker:NAME type:TYPE errors since:TIME until:TIME"

    def parse_filter(self, text: str):
        return parse_message_filter(text)

    def read_page(self, *, before=None, after=None) -> list:
        return self.app.history.messages_page(self.where, before=before, after=after, limit=self.page_size)

    @on(DataTable.RowSelected, "#messages")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_message()

    def action_open_message(self) -> None:
        message = self.table.selected
        if message is not None:
            self.app.push_screen(MessageDetailScreen(message.id))
