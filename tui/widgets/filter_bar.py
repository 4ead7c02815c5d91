"""The `/` filter line under a table, and the note saying which filter is on.

The bar only collects text: the screen parses it and answers with
``accepted`` (the filter is on) or ``rejected`` (one line saying what was
wrong, the text left to correct).
"""
from __future__ import annotations

from dataclasses import dataclass

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static


class FilterBar(Vertical):
    DEFAULT_CSS = """
    FilterBar { height: auto; }
    FilterBar Input { display: none; border: tall $accent; }
    FilterBar.editing Input { display: block; }
    FilterBar #filter-note { height: auto; padding: 0 1; color: $text-muted; display: none; }
    FilterBar #filter-note.shown { display: block; }
    FilterBar #filter-note.error { color: $text-error; text-style: bold; }
    """
    BINDINGS = [Binding("escape", "close", "Close filter", show=False)]

    @dataclass
    class Applied(Message):
        bar: "FilterBar"
        text: str

    def __init__(self, hint: str, **kwargs):
        super().__init__(**kwargs)
        self.hint = hint
        self.text = ""
        self._return_to = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder=self.hint, id="filter-input")
        yield Static("", id="filter-note")

    @property
    def editing(self) -> bool:
        return self.has_class("editing")

    def open(self, return_to=None) -> None:
        """Show the input; focus goes back to ``return_to`` when it closes."""
        self._return_to = return_to
        self.add_class("editing")
        field = self.query_one(Input)
        field.value = self.text
        field.cursor_position = len(self.text)
        field.focus()
        self._note(f"filter: {escape(self.hint)}  (Enter applies, empty clears, Esc closes)")

    def action_close(self) -> None:
        self.remove_class("editing")
        self._show_current()
        self._give_back_focus()

    @on(Input.Submitted, "#filter-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Applied(self, event.value.strip()))

    def accepted(self, text: str) -> None:
        self.text = text
        self.remove_class("editing")
        self._show_current()
        self._give_back_focus()

    def _give_back_focus(self) -> None:
        if self._return_to is not None:
            self._return_to.focus()

    def rejected(self, error: str) -> None:
        self._note(escape(error), error=True)

    def _show_current(self) -> None:
        if self.text:
            self._note(f"filter: [b]{escape(self.text)}[/b]  (/ to change)")
        else:
            self._note("")

    def _note(self, text: str, error: bool = False) -> None:
        note = self.query_one("#filter-note", Static)
        note.update(text)
        note.set_class(bool(text), "shown")
        note.set_class(error, "error")
