"""Reading a run's captured output: its tail, then what the worker adds.

The manager captures each launched run's stdout and stderr to a plain text
file (``worker_runs.output_path``), capped with a last line starting
``[nowcast: output truncated``.  The TUI shows the last lines and, while the
run is running, reads on from where it stopped, like ``tail -f``.  No
Textual here, so it is tested on its own.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: lines kept on screen
TAIL_LINES = 500
#: read at most this much from the end for the first tail (lines are rarely longer than 400 bytes)
TAIL_BYTES = TAIL_LINES * 400
TRUNCATION_MARK = "[nowcast: output truncated"


@dataclass
class OutputTail:
    """The tail of one output file, read on from ``offset`` each ``poll``."""

    path: Path
    max_lines: int = TAIL_LINES
    lines: list[str] = field(default_factory=list)
    offset: int = 0
    #: an unfinished last line, held until its newline arrives
    partial: str = ""
    #: lines before the first one shown were not read (the file is longer than the tail)
    skipped: bool = False
    #: what is wrong with the file, in one line (None: readable)
    problem: str | None = None
    _identity: tuple | None = None

    @property
    def truncated(self) -> bool:
        """The capture hit its size cap: the worker printed more than was kept."""
        return any(line.startswith(TRUNCATION_MARK) for line in self.lines[-3:])

    def read_tail(self) -> list[str]:
        """Start from the last ``max_lines`` lines of the file; returns them."""
        self.lines, self.partial, self.skipped = [], "", False
        try:
            with open(self.path, "rb") as stream:
                stat = os.fstat(stream.fileno())
                start = max(0, stat.st_size - TAIL_BYTES)
                stream.seek(start)
                data = stream.read()
        except FileNotFoundError:
            self.problem = f"output file {self.path} not found"
            return []
        except OSError as err:
            self.problem = f"output file {self.path}: {err.strerror or err}"
            return []
        self.problem = None
        self._identity = (stat.st_dev, stat.st_ino)
        self.offset = start + len(data)
        text = data.decode("utf-8", errors="replace")
        if start > 0:  # began mid-file: the first line may be cut, drop it
            text = text.split("\n", 1)[1] if "\n" in text else ""
            self.skipped = True
        self._add(text)
        return list(self.lines)

    def poll(self) -> tuple[list[str], bool]:
        """What was added since the last read: (new complete lines, whether
        everything was read again because the file was replaced or shortened)."""
        try:
            stat = os.stat(self.path)
        except OSError:
            if self.problem is None:
                self.problem = f"output file {self.path} not found"
            return [], False
        if self.problem is not None or (stat.st_dev, stat.st_ino) != self._identity or stat.st_size < self.offset:
            return self.read_tail(), True
        if stat.st_size == self.offset:
            return [], False
        try:
            with open(self.path, "rb") as stream:
                stream.seek(self.offset)
                data = stream.read()
        except OSError as err:
            self.problem = f"output file {self.path}: {err.strerror or err}"
            return [], False
        self.offset += len(data)
        before = len(self.lines)
        dropped = self._add(data.decode("utf-8", errors="replace"))
        return self.lines[max(0, before - dropped):], False

    def finish(self) -> list[str]:
        """The run has ended: an unfinished last line is all there will be."""
        if not self.partial:
            return []
        line, self.partial = self.partial, ""
        self.lines.append(line)
        self._trim()
        return [line]

    def _add(self, text: str) -> int:
        """Add complete lines; returns how many old lines were dropped to stay within max_lines."""
        text = self.partial + text
        *complete, self.partial = text.split("\n")
        self.lines.extend(line.rstrip("\r") for line in complete)
        return self._trim()

    def _trim(self) -> int:
        extra = len(self.lines) - self.max_lines
        if extra > 0:
            del self.lines[:extra]
            self.skipped = True
            return extra
        return 0
