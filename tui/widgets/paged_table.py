"""A table of history rows, newest first, keyed by id and loaded a page at a time.

The Runs and Messages tables are both this.  Rows are keyed by their id and
changed cell by cell, so the cursor stays on the row the operator chose;
rows that arrive at the top move what is on screen down, so the scroll
position moves with them and the operator keeps looking at the same rows.
When the cursor comes within a screenful of the bottom, the table asks for
the next (older) page with ``NeedOlder``.
"""
from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message
from textual.widgets import DataTable


class PagedTable(DataTable):
    DEFAULT_CSS = """
    PagedTable { height: 1fr; }
    """

    #: (column key, label) pairs, in order
    COLUMNS: tuple[tuple[str, str], ...] = ()

    @dataclass
    class NeedOlder(Message):
        """The cursor is near the bottom and older rows may exist."""

        table: "PagedTable"
        before: int

    def __init__(self, **kwargs):
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.records: dict[int, object] = {}
        #: whether older rows than the last one shown may exist
        self.more_below = False
        self._asked_before: int | None = None
        self._adding = False

    async def _on_idle(self, event) -> None:
        """Textual measures new rows' columns when idle; lines it drew before that are
        cached under the same key, narrower (a worker name cut short until the row
        changes).  When the widths moved, those lines are drawn again."""
        widths = [column.content_width for column in self.columns.values()]
        await super()._on_idle(event)
        if [column.content_width for column in self.columns.values()] != widths:
            self._clear_caches()
            self.refresh()

    def on_mount(self) -> None:
        for key, label in self.COLUMNS:
            self.add_column(label, key=key)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.redraw())

    # --- for subclasses -------------------------------------------------------

    def cells(self, record) -> tuple:
        """The cells of one row, in COLUMNS order."""
        raise NotImplementedError

    @property
    def dark(self) -> bool:
        return self.app.current_theme.dark

    # --- what the screen asks -------------------------------------------------

    @property
    def selected_id(self) -> int | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return int(row_key.value)

    @property
    def selected(self):
        chosen = self.selected_id
        return self.records.get(chosen) if chosen is not None else None

    @property
    def newest_id(self) -> int | None:
        return max(self.records) if self.records else None

    @property
    def oldest_id(self) -> int | None:
        return min(self.records) if self.records else None

    def show_first_page(self, records: list, page_size: int) -> None:
        """Start again from these rows (newest first): a new filter, or too much new to merge."""
        self.clear()
        self.records = {}
        self._asked_before = None
        for record in records:
            self.records[record.id] = record
            self.add_row(*self.cells(record), key=str(record.id))
        self.more_below = len(records) >= page_size
        self.move_cursor(row=0, animate=False)
        self.scroll_to(y=0, animate=False)

    def add_older(self, records: list, page_size: int) -> None:
        """The next page down: older rows go at the bottom, where they belong."""
        oldest = self.oldest_id
        self._adding = True  # rows being added move the scroll: no asking for more half way
        try:
            for record in records:
                if oldest is None or record.id < oldest:
                    self.records[record.id] = record
                    self.add_row(*self.cells(record), key=str(record.id))
        finally:
            self._adding = False
        self.more_below = len(records) >= page_size
        self._asked_before = None

    def add_newer(self, records: list) -> None:
        """Rows newer than any shown go on top; the cursor stays on its row and
        the rows on screen stay on screen."""
        new = [record for record in records if record.id not in self.records]
        if not new:
            return
        chosen, scroll_y = self.selected_id, self.scroll_y
        for record in new:
            self.records[record.id] = record
            self.add_row(*self.cells(record), key=str(record.id))
        self.sort("id", key=lambda value: int(value), reverse=True)
        if chosen is None:
            return
        row = self.get_row_index(str(chosen))
        height = self.scrollable_content_region.height - 1  # less the header
        if scroll_y > 0 or row >= height:
            # keep looking at the same rows; new ones are above, a scroll up away
            target = scroll_y + len(new)
            self.move_cursor(row=row, animate=False, scroll=False)
            self.call_after_refresh(self.scroll_to, y=target, animate=False)
        else:  # at the top with the cursor in view: show the new rows
            self.move_cursor(row=row, animate=False, scroll=False)

    def update_records(self, records: list) -> None:
        """Rows that changed (a run that ended); only changed cells are redrawn."""
        for record in records:
            if record.id not in self.records:
                continue
            self.records[record.id] = record
            self._update_cells(record)

    def redraw(self) -> None:
        """Every row again (the theme changed, or elapsed times moved on)."""
        for record in self.records.values():
            self._update_cells(record)

    def _update_cells(self, record) -> None:
        key = str(record.id)
        for (column, _), old, new in zip(self.COLUMNS, self.get_row(key), self.cells(record)):
            if old != new:
                self.update_cell(key, column, new)

    # --- asking for more ------------------------------------------------------

    def watch_cursor_coordinate(self, old, new) -> None:
        super().watch_cursor_coordinate(old, new)
        self._maybe_ask_for_older()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._maybe_ask_for_older(scrolled=True)

    def _maybe_ask_for_older(self, scrolled: bool = False) -> None:
        """Near the bottom, by cursor or by scrolling (the mouse wheel moves no cursor)."""
        if not self.more_below or not self.records or self._adding:
            return
        screenful = max(1, self.scrollable_content_region.height)
        if scrolled:
            if self.scroll_y < self.max_scroll_y - screenful:
                return
        elif self.cursor_row < self.row_count - screenful:
            return
        before = self.oldest_id
        if self._asked_before == before:
            return  # already asked for this page
        self._asked_before = before
        self.post_message(self.NeedOlder(self, before))
