"""How values look on screen; kept apart so screens stay about layout."""
from __future__ import annotations

import datetime as dt
import shlex

import yaml
from rich.text import Text

STATE_STYLES = {
    "pending": "cyan",
    "running": "bold yellow",
    "succeeded": "green",
    "failed": "bold red",
    "crashed": "bold red",
    "died": "bold red",
    "timed out": "bold red",
    "lost": "magenta",
}


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


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
