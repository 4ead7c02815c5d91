"""Progress of long command-line work (``nowcast replay``, ``nowcast db prune``,
``nowcast db copy``), written to standard error so that standard output stays
the command's result and scripts reading it are unaffected.

On a terminal the current stage is one line redrawn in place: a bar, done and
total, the rate and the time left.  Anywhere else (a log file, cron mail, a
pipe) a redrawn line would be garbage, so a plain line is written every
``PLAIN_INTERVAL`` seconds while a stage runs and one when it ends::

    copy: messages 300000/1000000 (30%), 51200/s
    copy: messages 1000000/1000000 (100%), 50800/s, 19.7 s

The formatting functions are pure; ``Progress`` only decides when to write.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Iterable, Iterator, TextIO

PLAIN_INTERVAL = 5.0  # seconds between plain lines
REDRAW_INTERVAL = 0.2  # seconds between redraws of the terminal line
BAR_WIDTH = (10, 30)  # narrowest and widest bar, in characters
ERASE_TO_END = "\x1b[K"


# --- pure formatting ---------------------------------------------------------------

def bar(fraction: float, width: int) -> str:
    """``[#####-----]``: ``width`` characters between the brackets."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = int(fraction * width)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def percent(done: int, total: int) -> str:
    """Whole percent, never rounded up to 100% before the work is done."""
    if total <= 0:
        return "100%"
    return f"{min(done * 100 // total, 100)}%"


def rate(done: int, seconds: float) -> float | None:
    return done / seconds if seconds > 0 else None


def rate_text(per_second: float | None) -> str:
    if per_second is None:
        return "?/s"
    return f"{per_second:.1f}/s" if per_second < 10 else f"{per_second:.0f}/s"


def duration_text(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``2h04m``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def time_left(done: int, total: int | None, seconds: float) -> float | None:
    """Seconds left at the average rate so far; None while that is unknown."""
    per_second = rate(done, seconds)
    if total is None or not per_second:
        return None
    return max(total - done, 0) / per_second


def counts_text(done: int, total: int | None) -> str:
    return f"{done}" if total is None else f"{done}/{total}"


def plain_line(command: str, what: str, done: int, total: int | None, seconds: float,
               finished: bool = False, stopped: bool = False) -> str:
    """One line for a log: ``copy: messages 300000/1000000 (30%), 51200/s``."""
    text = f"{command}: {what} {counts_text(done, total)}"
    if total is not None:
        text += f" ({percent(done, total)})"
    text += f", {rate_text(rate(done, seconds))}"
    if stopped:
        text += f", stopped after {seconds:.1f} s"
    elif finished:
        text += f", {seconds:.1f} s"
    return text


def terminal_line(command: str, what: str, done: int, total: int | None, seconds: float, columns: int,
                  finished: bool = False) -> str:
    """The redrawn line: ``copy: messages [####------] 30% 300000/1000000 51200/s 14s left``,
    cut to fit in ``columns`` (the cursor must not wrap, or ``\\r`` would redraw the wrong line)."""
    head = f"{command}: {what} "
    if finished:
        tail = f" {counts_text(done, total)} {rate_text(rate(done, seconds))} in {duration_text(seconds)}"
    else:
        tail = f" {counts_text(done, total)} {rate_text(rate(done, seconds))}"
        if total is not None:
            tail += f" {duration_text(time_left(done, total, seconds))} left"
    if total is None:
        return (head.rstrip() + tail)[:max(columns - 1, 0)]
    tail = f" {percent(done, total):>4}" + tail
    room = columns - 1 - len(head) - len(tail) - 2
    width = min(max(room, BAR_WIDTH[0]), BAR_WIDTH[1])
    return (head + bar(done / total if total else 1.0, width) + tail)[:max(columns - 1, 0)]


# --- when to write -----------------------------------------------------------------

class Progress:
    """The progress of one command, made of stages (one per table, or one for
    the whole work).  ``enabled=False`` (``--no-progress``) writes nothing."""

    def __init__(self, command: str, stream: TextIO | None = None, enabled: bool = True,
                 terminal: bool | None = None, clock=time.monotonic, interval: float = PLAIN_INTERVAL):
        self.command = command
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.terminal = _is_terminal(self.stream) if terminal is None else terminal
        self.clock = clock
        self.interval = interval

    def stage(self, what: str, total: int | None = None) -> "Stage":
        return Stage(self, what, total)

    def columns(self) -> int:
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            return 80


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Stage:
    """One piece of counted work: ``advance`` as it goes, ``close`` (or leave
    the ``with`` block) at the end."""

    def __init__(self, progress: Progress, what: str, total: int | None):
        self.progress, self.what, self.total = progress, what, total
        self.done = 0
        self.started = progress.clock()
        self._last_write = self.started
        self._closed = False

    def __enter__(self) -> "Stage":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self.close(stopped=kind is not None)

    def advance(self, count: int = 1) -> None:
        self.update(self.done + count)

    def update(self, done: int) -> None:
        self.done = done
        if not self.progress.enabled:
            return
        now = self.progress.clock()
        every = REDRAW_INTERVAL if self.progress.terminal else self.progress.interval
        if now - self._last_write >= every:
            self._last_write = now
            self._write(now - self.started)

    def track(self, items: Iterable) -> Iterator:
        """Yield ``items``, counting each one."""
        for item in items:
            yield item
            self.advance()

    def close(self, stopped: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        if self.progress.enabled:
            self._write(self.progress.clock() - self.started, finished=True, stopped=stopped)

    def _write(self, seconds: float, finished: bool = False, stopped: bool = False) -> None:
        p = self.progress
        if p.terminal:
            line = terminal_line(p.command, self.what, self.done, self.total, seconds, p.columns(),
                                 finished=finished and not stopped)
            text = "\r" + line + ERASE_TO_END + ("\n" if finished else "")
        else:
            text = plain_line(p.command, self.what, self.done, self.total, seconds, finished, stopped) + "\n"
        try:
            p.stream.write(text)
            p.stream.flush()
        except (OSError, ValueError):  # stderr closed or gone: the work matters more than its progress
            p.enabled = False
