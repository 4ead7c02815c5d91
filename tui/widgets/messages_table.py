"""The messages table: one row per message the manager read, newest first."""
from __future__ import annotations

from rich.text import Text

from nowcast_tui.formatting import short_time, state_style
from nowcast_tui.widgets.paged_table import PagedTable

COLUMNS = (("id", "id"), ("received", "received"), ("source", "source"), ("type", "type"),
           ("reply", "reply"), ("run", "run"), ("error", "error"))
#: replies that mean the manager took the message as it should
GOOD_REPLIES = ("ack", "checklist cleared")


def message_cells(message, dark: bool = True) -> tuple:
    bad = state_style("failed", dark)
    reply = message.reply_type or ""
    return (message.id, short_time(message.received_at), message.source or "(unreadable)", message.type or "",
            Text(reply, style="" if reply in GOOD_REPLIES else bad),
            "" if message.run_id is None else str(message.run_id),
            Text(message.error or "", style=bad))


class MessagesTable(PagedTable):
    COLUMNS = COLUMNS

    def cells(self, message) -> tuple:
        return message_cells(message, self.dark)
