"""How values look on screen; kept apart so screens stay about layout."""
from __future__ import annotations

import datetime as dt
import shlex

import yaml
from rich.markup import escape
from rich.text import Text

#: run state → style, for dark and for light terminals.  Textual's own
#: $success/$warning are too pale on a light background, so each palette is
#: chosen for its background (tests/test_tui_look.py checks the contrast).
STATE_PALETTES = {
    "dark": {
        "pending": "#5fd7ff",
        "running": "bold #ffd75f",
        "succeeded": "#5fd75f",
        "failed": "bold #ff6b6b",
        "crashed": "bold #ff6b6b",
        "died": "bold #ff6b6b",
        "timed out": "bold #ff6b6b",
        "lost": "#e08aff",
    },
    "light": {
        "pending": "#00506e",
        "running": "bold #7a4d00",
        "succeeded": "#145a14",
        "failed": "bold #b00020",
        "crashed": "bold #b00020",
        "died": "bold #b00020",
        "timed out": "bold #b00020",
        "lost": "#7a1f8a",
    },
}
#: the dark palette, for code that does not know the theme
STATE_STYLES = STATE_PALETTES["dark"]
#: yesterday's runs behind today's on the timeline: visible, but quiet
REFERENCE_STYLES = {"dark": "#6c6c6c", "light": "#8a8a8a"}


def palette_name(dark: bool) -> str:
    return "dark" if dark else "light"


def state_style(state: str, dark: bool = True) -> str:
    return STATE_PALETTES[palette_name(dark)].get(state, "")


def state_text(state: str, dark: bool = True) -> Text:
    return Text(state, style=state_style(state, dark))


def args_text(args) -> str:
    if not args:
        return ""
    if isinstance(args, list):
        return shlex.join(str(arg) for arg in args)
    return str(args)


def short_time(when: dt.datetime | None) -> str:
    """Month-day and time: enough to tell runs apart in an 80-column table."""
    return when.strftime("%m-%d %H:%M:%S") if when else ""


def full_time(when: dt.datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else "—"


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def duration_text(run, now: dt.datetime | None = None) -> str:
    """Finished runs: how long they ran; open runs: how long so far."""
    if run.started_at is None:
        return ""
    end = run.finished_at or now or dt.datetime.now(dt.timezone.utc)
    text = seconds_text((end - run.started_at).total_seconds())
    return text if run.finished_at else f"{text}…"


def value_text(value) -> str:
    """A payload or checklist value as the YAML an operator wrote it in."""
    if value is None:
        return "~"
    if not isinstance(value, (dict, list)):
        return str(value)
    try:
        return yaml.safe_dump(value, default_flow_style=False, sort_keys=False).rstrip()
    except yaml.YAMLError:  # sets and other values YAML's safe dumper does not write
        return repr(value)


def diff_markup(lines: list[tuple[str, str]], dark: bool, indent: str = "") -> str:
    """A change_diff as console markup: removed lines in the failure colour, added in the success colour."""
    styles = {"-": state_style("failed", dark), "+": state_style("succeeded", dark), "@": "dim", " ": ""}
    out = []
    for tag, line in lines:
        body = escape(f"{indent}{line}" if tag == "@" else f"{indent}{tag} {line}")
        out.append(f"[{styles[tag]}]{body}[/]" if styles[tag] else body)
    return "\n".join(out)
