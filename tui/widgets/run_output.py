"""A run's captured output: the tail, following while the run runs, and search.

The screen reads the file (in a thread, with ``OutputTail``) and hands lines
here; this widget only shows them.  Search marks every matching line and
jumps between them; ``n`` and ``N`` go to the next and previous match.
"""
from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, RichLog, Static

from nowcast_tui.output_tail import TAIL_LINES, TRUNCATION_MARK


class RunOutput(Vertical):
    DEFAULT_CSS = """
    RunOutput { height: 1fr; }
    RunOutput #output-note { height: auto; padding: 0 1; color: $text-muted; }
    RunOutput #output-note.bad { color: $text-error; text-style: bold; }
    RunOutput RichLog { height: 1fr; }
    RunOutput Input { display: none; border: tall $accent; }
    RunOutput.searching Input { display: block; }
    """
    BINDINGS = [Binding("escape", "close_search", "Close search", show=False)]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lines: list[str] = []
        self.term = ""
        self.matches: list[int] = []
        self.current: int | None = None
        self.note = ""
        self.skipped = False

    def compose(self) -> ComposeResult:
        yield Static("reading the output…", id="output-note")
        yield RichLog(id="output-log", max_lines=TAIL_LINES, wrap=False, markup=False, highlight=False,
                      auto_scroll=False)
        yield Input(placeholder="search the output (Enter finds, n/N next/previous, Esc closes)",
                    id="output-search")

    @property
    def output_log(self) -> RichLog:
        return self.query_one(RichLog)

    # --- what the screen hands in --------------------------------------------

    def show_problem(self, text: str) -> None:
        self.lines = []
        self.output_log.clear()
        self._note(text, problem=True)

    def show_lines(self, lines: list[str], note: str, replace: bool, skipped: bool = False) -> None:
        """All lines (``replace``) or lines added at the end; keeps the view at
        the bottom when it was there, so following works like tail -f."""
        log = self.output_log
        at_end = not self.lines or log.scroll_y >= log.max_scroll_y
        self.skipped = skipped or self.skipped and not replace
        if replace:
            self.lines = list(lines)
        else:
            self.lines = (self.lines + lines)[-TAIL_LINES:]
        if replace or self.term:
            self._render_all()
        else:
            for line in lines:
                log.write(self._line_text(line, False), scroll_end=False)
        if self.term:
            self._find_matches()
        self.note = note
        self._note(self._status())
        if at_end and not self.term:
            log.scroll_end(animate=False, immediate=True)

    # --- search ---------------------------------------------------------------

    def open_search(self) -> None:
        self.add_class("searching")
        field = self.query_one(Input)
        field.value = self.term
        field.focus()

    def action_close_search(self) -> None:
        self.remove_class("searching")
        self.output_log.focus()

    @on(Input.Submitted, "#output-search")
    def _search(self, event: Input.Submitted) -> None:
        event.stop()
        self.search(event.value)
        self.action_close_search()

    def search(self, term: str) -> None:
        self.term = term.strip()
        self.current = None
        self._find_matches()
        self._render_all()
        if self.matches:
            self.jump(1)
        else:
            self._note(self._status())

    def jump(self, step: int) -> None:
        """To the next (1) or previous (-1) matching line, round the end."""
        if not self.matches:
            self._note(self._status())
            return
        if self.current is None:
            top = int(self.output_log.scroll_y)
            after = [index for index, line in enumerate(self.matches) if line >= top]
            self.current = after[0] if after and step > 0 else (len(self.matches) - 1 if step < 0 else 0)
        else:
            self.current = (self.current + step) % len(self.matches)
        self._render_all()
        self.output_log.scroll_to(y=max(0, self.matches[self.current] - 2), animate=False, immediate=True)
        self._note(self._status())

    def _find_matches(self) -> None:
        needle = self.term.lower()
        self.matches = [index for index, line in enumerate(self.lines) if needle and needle in line.lower()]
        if self.current is not None and self.current >= len(self.matches):
            self.current = None

    # --- drawing --------------------------------------------------------------

    def _render_all(self) -> None:
        log = self.output_log
        scroll_y = log.scroll_y
        log.clear()
        chosen = self.matches[self.current] if self.current is not None and self.matches else None
        for index, line in enumerate(self.lines):
            log.write(self._line_text(line, index == chosen), scroll_end=False)
        log.scroll_to(y=scroll_y, animate=False, immediate=True)

    def _line_text(self, line: str, chosen: bool) -> Text:
        text = Text(line)
        if line.startswith(TRUNCATION_MARK):
            text.stylize("bold")
        if self.term:
            text.highlight_words([self.term], style="reverse", case_sensitive=False)
            if chosen:
                text.stylize("bold underline")
        return text

    def _status(self) -> str:
        parts = [self.note] if self.note else []
        if self.skipped:
            parts.append(f"last {len(self.lines)} lines")
        if self.term:
            if self.matches:
                where = f"{self.current + 1} of {len(self.matches)}" if self.current is not None else \
                    f"{len(self.matches)}"
                parts.append(f"“{self.term}”: match {where} (line {self.matches[self.current or 0] + 1})")
            else:
                parts.append(f"“{self.term}”: no match")
        return escape(" · ".join(parts))

    def _note(self, text: str, problem: bool = False) -> None:
        note = self.query_one("#output-note", Static)
        note.update(text)
        note.set_class(problem, "bad")
