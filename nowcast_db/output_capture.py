"""Capture one worker run's stdout and stderr into its own file, with a size cap.

The manager starts every worker through this small program::

    python -S output_capture.py FILE MAX_BYTES COMMAND...

It makes a pipe and forks.  The parent puts the pipe on its stdout and stderr
and *execs* COMMAND, so the worker keeps the process id the manager started:
the manager records the worker's own pid and exit status, and a signal sent to
that pid reaches the worker itself.  The forked child is the copier: it copies
what comes down the pipe to FILE as it arrives (so ``nowcast logs --follow``
sees it at once) until every writer has closed it.  Past MAX_BYTES it writes a
truncation marker, keeps only the last part of the output in memory and writes
that at the end, so a runaway worker cannot fill the disk and its final lines
(a traceback) are still there.

The copier lives in the worker's session, not in the manager, so a manager
restart does not break the pipe; it ignores SIGTERM, SIGINT and SIGHUP (a time
limit signals the whole run) so that it keeps the worker's last words, and it
ends when the worker and anything it started have exited.

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
    """The copier: pipe to file until end of file."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    output = CappedOutput(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o664), max_bytes)
    while True:
        data = os.read(read_fd, CHUNK)
        if not data:
            break
        output.write(data)
    output.close()


def run(path: str, max_bytes: int, command: list[str]) -> int:
    read_fd, write_fd = os.pipe()
    if os.fork() == 0:
        os.close(write_fd)
        for fd in (0, 1, 2):  # hold nothing of the worker's, so nothing waits on us
            os.close(fd)
        try:
            copy(read_fd, path, max_bytes)
        finally:
            os._exit(0)
    os.close(read_fd)
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    try:
        os.execvp(command[0], command)
    except OSError as err:
        os.write(2, f"[nowcast: cannot run {command[0]}: {err.strerror}]\n".encode())
    return 127


def main(argv: list[str]) -> int:
    if len(argv) < 3 or not argv[1].isdigit():
        sys.stderr.write("usage: output_capture.py FILE MAX_BYTES COMMAND...\n")
        return 2
    return run(argv[0], int(argv[1]), argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
