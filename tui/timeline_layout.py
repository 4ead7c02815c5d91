"""Where a day's runs go on the timeline: time → column, one row per worker.

Pure (no I/O, no Textual) so it is tested on its own.  The axis is the whole
UTC day squeezed into however many columns there are; a run is a bar from
its start (or launch, when it never started) to its end (or now, while it is
open), at least one column wide.  Each worker's runs of the day before are
laid on the same row shifted by a day, as a faint reference: a bar that
starts right of its reference is late, one that runs past it is slow.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

DAY = dt.timedelta(days=1)
#: hour marks, in hours, from the finest that fits
TICK_STEPS = (1, 2, 3, 4, 6, 12)
#: columns one hour mark needs ("06" and a space)
TICK_WIDTH = 3


@dataclass(frozen=True)
class Bar:
    run_id: int
    worker: str
    state: str
    first: int  # first column
    last: int  # last column (inclusive)
    start: dt.datetime
    end: dt.datetime | None  # None: still open
    clipped: bool = False  # began before the day (across midnight)


@dataclass(frozen=True)
class Reference:
    """The same worker's run the day before, shifted onto this day."""

    first: int
    last: int
    start: dt.datetime  # when it started, the day before
    seconds: float | None  # how long it ran; None: still open


@dataclass(frozen=True)
class WorkerRow:
    worker: str
    bars: tuple[Bar, ...]
    references: tuple[Reference, ...]


@dataclass(frozen=True)
class Layout:
    day: dt.datetime  # midnight UTC
    width: int  # columns of the time axis
    rows: tuple[WorkerRow, ...]
    ticks: tuple[tuple[int, str], ...]  # (column, "06")
    now_column: int | None  # where now is, when it is within the day

    @property
    def bars(self) -> list[Bar]:
        return [bar for row in self.rows for bar in row.bars]


def day_start(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def column_of(moment: dt.datetime, day: dt.datetime, width: int) -> int:
    """The column of ``moment`` on an axis of ``width`` columns for the day
    starting at ``day``; times outside the day stick to its edges."""
    fraction = (moment - day) / DAY
    return min(width - 1, max(0, int(fraction * width)))


def ticks(width: int) -> tuple[tuple[int, str], ...]:
    """Hour marks as close together as the width allows."""
    columns_per_hour = width / 24
    step = next((step for step in TICK_STEPS if step * columns_per_hour >= TICK_WIDTH), 24)
    return tuple((int(hour * columns_per_hour), f"{hour:02d}") for hour in range(0, 24, step))


def _span(run, now: dt.datetime) -> tuple[dt.datetime, dt.datetime | None]:
    start = run.started_at or run.launched_at
    end = run.finished_at
    if end is None and run.state not in ("pending", "running"):
        end = start  # ended without a recorded time (lost): a moment
    return start, end


def layout_day(runs, day: dt.datetime, width: int, now: dt.datetime) -> Layout:
    """Lay out ``runs`` (rows with id, worker, state, launched_at, started_at,
    finished_at; any runs from the day before ``day`` to its end) on an axis
    of ``width`` columns for the UTC day starting at ``day``."""
    width = max(1, width)
    day_end = day + DAY
    bars: dict[str, list[Bar]] = {}
    references: dict[str, list[Reference]] = {}
    first_seen: dict[str, dt.datetime] = {}
    for run in runs:
        start, end = _span(run, now)
        shown_end = end if end is not None else max(now, start)
        if start < day_end and shown_end >= day:
            bars.setdefault(run.worker, []).append(Bar(
                run.id, run.worker, run.state, column_of(start, day, width),
                column_of(min(shown_end, day_end - dt.timedelta(microseconds=1)), day, width),
                start, end, clipped=start < day))
            first_seen[run.worker] = min(first_seen.get(run.worker, start + DAY), max(start, day))
        if start < day and start >= day - DAY:
            seconds = (end - start).total_seconds() if end is not None else None
            shifted_end = (end if end is not None else min(shown_end, day)) + DAY
            references.setdefault(run.worker, []).append(Reference(
                column_of(start + DAY, day, width),
                column_of(min(shifted_end, day_end - dt.timedelta(microseconds=1)), day, width), start, seconds))
            first_seen[run.worker] = min(first_seen.get(run.worker, start + DAY), start + DAY)
    # rows in the order the workers first ran (yesterday's time for one that has not run yet today)
    workers = sorted(first_seen, key=lambda worker: (first_seen[worker], worker))
    rows = tuple(WorkerRow(worker, tuple(sorted(bars.get(worker, []), key=lambda bar: (bar.start, bar.run_id))),
                           tuple(references.get(worker, []))) for worker in workers)
    now_column = column_of(now, day, width) if day <= now < day_end else None
    return Layout(day, width, rows, ticks(width), now_column)


def nearest_reference(row: WorkerRow, column: int) -> Reference | None:
    """The run the day before closest in time of day to ``column``: what a bar there is compared with."""
    if not row.references:
        return None
    return min(row.references, key=lambda reference: abs(reference.first - column))


def nearest_bar(row: WorkerRow, column: int) -> int | None:
    """Index of the bar in ``row`` closest to ``column`` (moving the cursor up or down)."""
    if not row.bars:
        return None
    return min(range(len(row.bars)), key=lambda index: (abs(row.bars[index].first - column), index))
