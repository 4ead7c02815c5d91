"""Copy one worker run's stdout and stderr into its own file, with a size cap.

For every worker it launches, the manager opens the run's output file and a
pipe, starts this small program reading the pipe into the file, and then the
worker writing its stdout and stderr into the pipe::

    python -S output_capture.py MAX_BYTES  < pipe  >> FILE

It copies what arrives to FILE at once (so ``nowcast logs --follow`` sees it)
until every writer has closed the pipe: the worker and anything it started.
Past MAX_BYTES it writes a truncation marker, keeps only the last part of the
output in memory and writes that at the end, so a runaway worker cannot fill
the disk and its final lines (a traceback) are still there.  When FILE cannot
be written (a full disk), it keeps reading and drops the output, so that the
worker never dies of a broken pipe.

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


def copy(read_fd: int, write_fd: int, max_bytes: int) -> None:
    """Pipe to file until end of file."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    output = CappedOutput(write_fd, max_bytes)
    writing = True
    while True:
        data = os.read(read_fd, CHUNK)
        if not data:
            break
        if writing:
            try:
                output.write(data)
            except OSError:
                writing = False  # keep draining the pipe: the worker must not die of it
    if writing:
        try:
            output.close()
        except OSError:
            pass


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        sys.stderr.write("usage: output_capture.py MAX_BYTES < OUTPUT >> FILE\n")
        return 2
    copy(0, 1, int(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
