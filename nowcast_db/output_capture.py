"""Copy one worker run's stdout and stderr into its own file, with a size cap.

For every worker it launches, the manager makes a pipe, starts this small
program reading the pipe, and then the worker writing its stdout and stderr
into it::

    python -S output_capture.py FILE MAX_BYTES  < pipe

It copies what arrives to FILE at once (so ``nowcast logs --follow`` sees it)
until every writer has closed the pipe: the worker and anything it started.
Past MAX_BYTES it writes a truncation marker, keeps only the last part of the
output in memory and writes that at the end, so a runaway worker cannot fill
the disk and its final lines (a traceback) are still there.

It runs in a session of its own, so a manager restart does not break the
pipe, and it ignores SIGTERM, SIGINT and SIGHUP so that it keeps a terminated
worker's last words.  The worker is the manager's own child: the pid, the
signals and the exit status recorded are the worker's.

Standard library only, and started with ``python -S``: it must cost little.
"""
from __future__ import annotations

import os
import signal
import sys

CHUNK = 65536


def truncation_marker(kept: int) -> bytes:
    return (f"\n[nowcast: output truncated after {kept} bytes; "
            f"the last part of the output follows when the run ends]\n").encode()


def omitted_marker(omitted: int) -> bytes:
    return f"\n[nowcast: {omitted} bytes omitted; the last part of the output follows]\n".encode()


class CappedOutput:
    """Writes the head of a stream to a file descriptor, then remembers its tail."""

    def __init__(self, fd: int, max_bytes: int):
        self.fd = fd
        self.head_limit = max_bytes // 2
        self.tail_limit = max_bytes - self.head_limit
        self.written = 0
        self.tail = bytearray()
        self.omitted = 0
        self.truncated = False

    def write(self, data: bytes) -> None:
        if not self.truncated:
            room = self.head_limit - self.written
            head, data = data[:room], data[room:]
            if head:
                os.write(self.fd, head)
                self.written += len(head)
            if not data:
                return
            self.truncated = True
            os.write(self.fd, truncation_marker(self.written))
        self.tail += data
        excess = len(self.tail) - self.tail_limit
        if excess > self.tail_limit:  # trim now and then, not on every chunk
            del self.tail[:excess]
            self.omitted += excess

    def close(self) -> None:
        if self.truncated:
            excess = max(0, len(self.tail) - self.tail_limit)
            del self.tail[:excess]
            os.write(self.fd, omitted_marker(self.omitted + excess))
            os.write(self.fd, bytes(self.tail))
        os.close(self.fd)


def copy(read_fd: int, path: str, max_bytes: int) -> None:
    """Pipe to file until end of file."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    output = CappedOutput(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o664), max_bytes)
    while True:
        data = os.read(read_fd, CHUNK)
        if not data:
            break
        output.write(data)
    output.close()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        sys.stderr.write("usage: output_capture.py FILE MAX_BYTES < OUTPUT\n")
        return 2
    copy(0, argv[0], int(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
