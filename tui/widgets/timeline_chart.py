"""Drawing a laid-out day: one line per worker, bars coloured by state.

Characters carry the meaning as well as colours, for terminals (and eyes)
without them: ``█`` today's runs, ``▓`` the chosen one, ``░`` the day before,
``│`` now.
"""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from nowcast_tui.formatting import REFERENCE_STYLES, palette_name, state_style
from nowcast_tui.timeline_layout import Layout

#: columns for the worker's name, left of the axis
LABEL_WIDTH = 16
BAR, CHOSEN, REFERENCE, NOW = "█", "▓", "░", "│"


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
        if layout.now_column is not None:
            cells[layout.now_column] = (NOW, "bold")
        for reference in row.references:
            for column in range(reference.first, reference.last + 1):
                cells[column] = (REFERENCE, reference_style)
        for bar_index, bar in enumerate(row.bars):
            picked = chosen == (row_index, bar_index)
            style = state_style(bar.state, dark)
            for column in range(bar.first, bar.last + 1):
                cells[column] = (CHOSEN if picked else BAR, style + (" underline" if picked else ""))
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
