"""What the operator types after `/`, as filters the queries turn into WHERE clauses.

One line of space-separated words, the way a search box works::

    worker:make_plots state:failed,crashed 2026-11-29      (Runs)
    worker:sleep type:success errors since:2026-11-29T05:00  (Messages)
    sleepy                                                 (Checklist)

``name:value`` words filter one column (a comma gives several values);
``state:bad`` means every state a run can end badly in; any other word is
free text, searched for in the worker, args and host of a run.  Quotes keep
spaces in a value (``"forecast 2"``).  Pure: no I/O, so tested on its own.
"""
from __future__ import annotations

import datetime as dt
import shlex
from dataclasses import dataclass, field

from nowcast_db.errors import NowcastError
from nowcast_db.history import parse_time
from nowcast_db.runs import STATES

BAD_STATES = ("failed", "crashed", "died", "timed out", "lost")


class FilterError(NowcastError):
    """The filter text cannot be understood; the message says which word and what was expected."""


@dataclass(frozen=True)
class RunFilter:
    workers: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    text: str = ""

    def __bool__(self) -> bool:
        return bool(self.workers or self.states or self.text)


@dataclass(frozen=True)
class MessageFilter:
    workers: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    errors_only: bool = False
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def __bool__(self) -> bool:
        return bool(self.workers or self.types or self.errors_only or self.since or self.until)


@dataclass
class _Words:
    named: dict[str, list[str]] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    free: list[str] = field(default_factory=list)


def _split(text: str, names: tuple[str, ...], flags: tuple[str, ...], free_text: bool) -> _Words:
    try:
        words = shlex.split(text)
    except ValueError as err:
        raise FilterError(f"filter {text!r}: {err}") from None
    result = _Words()
    for word in words:
        name, colon, value = word.partition(":")
        if colon and name in names:
            values = [part.strip() for part in value.split(",") if part.strip()]
            if not values:
                raise FilterError(f"filter word {word!r}: expected a value after '{name}:'")
            result.named.setdefault(name, []).extend(values)
        elif not colon and word in flags:
            result.flags.add(word)
        elif colon and name.isidentifier():
            raise FilterError(f"filter word {word!r}: unknown filter '{name}:'; expected "
                              + ", ".join(f"'{n}:'" for n in names) + "".join(f", '{f}'" for f in flags)
                              + (" or free text" if free_text else ""))
        elif free_text:
            result.free.append(word)
        else:
            raise FilterError(f"filter word {word!r}: expected " + ", ".join(f"'{n}:…'" for n in names)
                              + "".join(f" or '{f}'" for f in flags))
    return result


def parse_run_filter(text: str) -> RunFilter:
    words = _split(text, ("worker", "state"), (), free_text=True)
    states: list[str] = []
    for state in words.named.get("state", []):
        if state == "bad":
            states.extend(BAD_STATES)
        elif state in STATES:
            states.append(state)
        else:
            raise FilterError(f"filter word 'state:{state}': expected one of {', '.join(STATES)}, or bad")
    return RunFilter(workers=tuple(dict.fromkeys(words.named.get("worker", []))),
                     states=tuple(dict.fromkeys(states)), text=" ".join(words.free))


def parse_message_filter(text: str) -> MessageFilter:
    words = _split(text, ("worker", "type", "since", "until"), ("errors",), free_text=False)
    times = {}
    for name in ("since", "until"):
        values = words.named.get(name, [])
        if len(values) > 1:
            raise FilterError(f"filter: '{name}:' given {len(values)} times; expected one time")
        if values:
            try:
                times[name] = parse_time(values[0], f"filter word '{name}:{values[0]}'")
            except NowcastError as err:
                raise FilterError(str(err)) from None
    if times.get("since") and times.get("until") and times["since"] > times["until"]:
        raise FilterError(f"filter: since {times['since']:%Y-%m-%d %H:%M} is after until "
                          f"{times['until']:%Y-%m-%d %H:%M}; expected since before until")
    return MessageFilter(workers=tuple(dict.fromkeys(words.named.get("worker", []))),
                         types=tuple(dict.fromkeys(words.named.get("type", []))),
                         errors_only="errors" in words.flags, since=times.get("since"), until=times.get("until"))


def parse_key_filter(text: str) -> str:
    """Checklist keys: plain text, found anywhere in the key."""
    return text.strip()
