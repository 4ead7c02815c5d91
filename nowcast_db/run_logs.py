"""``nowcast logs``: print what a run printed (its captured stdout and stderr).

The manager captures every worker it launches into a file of its own (see
``nowcast_db.output_capture``); the run's row says where.  ``--follow`` keeps
printing while the run is open and stops once it has ended and its output
file has stopped growing.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from nowcast_db.database import queries
from nowcast_db.errors import NowcastError
from nowcast_db.runs import OPEN_STATES

SETTLE_SECONDS = 1.0  # after a run ends, its output may still be written (the truncated tail)


def _location(engine, run_id: int):
    row = queries.run_output_of(engine, run_id)
    if row is None:
        raise NowcastError(f"run {run_id}: no such run in the history")
    return row


def _no_output_reason(run_id: int, row) -> str:
    if row.launched_by == "external":
        return (f"run {run_id} ({row.worker}) was not launched by the manager (started by hand, cron or "
                f"NextWorker.launch): its output was not captured")
    if row.state in OPEN_STATES:
        return f"run {run_id} ({row.worker}) has not started yet"
    return (f"run {run_id} ({row.worker}) has no captured output (its process never started, or it was "
            f"recorded before output capture existed)")


def show_output(url: str, run_id: int, follow: bool = False, out=None, poll: float = 0.5) -> int:
    """Print run ``run_id``'s output to ``out``; with ``follow``, until the run has ended."""
    out = out or sys.stdout.buffer
    engine = queries.open_history(url)
    try:
        row = _location(engine, run_id)
        while follow and row.output_path is None and row.state == "pending":
            time.sleep(poll)
            row = _location(engine, run_id)
        if row.output_path is None:
            raise NowcastError(_no_output_reason(run_id, row))
        path = Path(row.output_path)
        if not path.is_file():
            raise NowcastError(f"run {run_id} ({row.worker}): output file {path} not found on this host "
                               f"(it is written on the manager's host; pruned runs' files are deleted)")
        with open(path, "rb") as f:
            _copy(f, out)
            if not follow:
                return 0
            settled_since = None
            while True:
                grew = _copy(f, out)
                if row.state in OPEN_STATES:
                    row = _location(engine, run_id)
                elif grew:
                    settled_since = None
                elif settled_since is None:
                    settled_since = time.monotonic()
                elif time.monotonic() - settled_since >= SETTLE_SECONDS:
                    return 0
                time.sleep(poll)
    finally:
        engine.dispose()


def _copy(f, out) -> bool:
    data = f.read()
    if data:
        out.write(data)
        out.flush()
    return bool(data)
