"""Before and after of a checklist change, as a diff of their YAML.

Pure: the screen decides the colours.  A value shown as YAML is what the
operator wrote it as, so a diff over those lines reads like a diff of the
config or checklist file would.
"""
from __future__ import annotations

import difflib

from nowcast_tui.formatting import value_text

#: lines of unchanged YAML kept around each change
CONTEXT = 3


def value_lines(value, present: bool) -> list[str]:
    """A value's YAML lines; an absent value (a key not there yet, or cleared) has none."""
    return value_text(value).splitlines() if present else []


def change_diff(operation: str, before, after) -> list[tuple[str, str]]:
    """The change as (tag, line) pairs: ``-`` removed, ``+`` added, `` `` kept,
    ``@`` a hunk header.  ``set`` has no before, ``clear`` no after."""
    old = value_lines(before, present=operation != "set")
    new = value_lines(after, present=operation != "clear")
    if old == new:
        return [(" ", line) for line in new] or [(" ", "(no change)")]
    lines = []
    for line in difflib.unified_diff(old, new, lineterm="", n=CONTEXT):
        if line.startswith(("---", "+++")):
            continue
        tag = "@" if line.startswith("@@") else line[:1]
        lines.append((tag, line if tag == "@" else line[1:]))
    return lines
