"""Drawing a laid-out day: one line per worker, bars coloured by state.

Characters carry the meaning as well as colours, for terminals (and eyes)
without them: ``█`` today's runs, ``▓`` the chosen one, ``░`` the day before,
``│`` now.
"""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from nowcast_db.runs import OPEN_STATES
from nowcast_tui.filters import BAD_STATES
from nowcast_tui.formatting import REFERENCE_STYLES, palette_name, state_style
from nowcast_tui.timeline_layout import Bar, Layout

#: columns for the worker's name, left of the axis
LABEL_WIDTH = 16
BAR, CHOSEN, REFERENCE, NOW = "█", "▓", "░", "│"


def severity(state: str) -> int:
    """Which of the runs sharing a cell it shows: an end gone wrong, then an open run, then a success."""
    if state in BAD_STATES:
        return 2
    return 1 if state in OPEN_STATES else 0


def label(worker: str) -> str:
    name = worker if len(worker) < LABEL_WIDTH else worker[:LABEL_WIDTH - 2] + "…"
    return name.ljust(LABEL_WIDTH)


def axis_text(layout: Layout) -> Text:
    line = [" "] * layout.width
    for column, hour in layout.ticks:
        for offset, char in enumerate(hour):
            if column + offset < layout.width:
                line[column + offset] = char
    return Text(" " * LABEL_WIDTH + "".join(line) + " UTC", style="bold")


def rows_text(layout: Layout, chosen: tuple[int, int | None] | None, dark: bool) -> Text:
    """Every worker's line; ``chosen`` is (row, bar index or None)."""
    reference_style = REFERENCE_STYLES[palette_name(dark)]
    text = Text(no_wrap=True, overflow="crop")
    for row_index, row in enumerate(layout.rows):
        cells: list[tuple[str, str]] = [(" ", "")] * layout.width
        for column, _ in layout.ticks:
            cells[column] = ("·", reference_style)
        for reference in row.references:
            for column in range(reference.first, reference.last + 1):
                cells[column] = (REFERENCE, reference_style)
        # now over the day before, today's runs over now: they matter more than the time
        if layout.now_column is not None:
            cells[layout.now_column] = (NOW, "bold")
        # a cell several runs share shows the chosen one, else the worst: a later success never hides a failure
        drawn: dict[int, tuple[tuple[bool, int], Bar]] = {}
        for bar_index, bar in enumerate(row.bars):
            rank = (chosen == (row_index, bar_index), severity(bar.state))
            for column in range(bar.first, bar.last + 1):
                if column not in drawn or rank >= drawn[column][0]:
                    drawn[column] = (rank, bar)
        for column, ((picked, _), bar) in drawn.items():
            cells[column] = (CHOSEN if picked else BAR, state_style(bar.state, dark) + (" underline" if picked else ""))
        is_chosen_row = chosen is not None and chosen[0] == row_index
        text.append(label(row.worker), style="bold reverse" if is_chosen_row else "bold")
        for char, style in cells:
            text.append(char, style=style)
        text.append("\n")
    text.rstrip()
    return text


class TimelineChart(Static):
    """The worker lines (the axis and the chosen run's details are the screen's)."""

    DEFAULT_CSS = """
    TimelineChart { width: 100%; height: auto; }
    """
