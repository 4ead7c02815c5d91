"""``nowcast db prune``: delete history older than a date while the manager runs.

The deleting is done in short batches by the database layer
(``nowcast_db.database.prune``); this module checks the arguments, opens the
database and words the report.  What is kept, and why, is in
docs/schema.md ("Pruning old history"): in short, the current checklist,
open runs and their messages, and each checklist key's newest change before
the date, so ``nowcast checklist --at T`` still works for any T from the date
on.  Earlier times can no longer be rebuilt.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nowcast_db.errors import NowcastError
from nowcast_db.history import parse_time


class PruneError(NowcastError):
    """The prune cannot start: a bad date or batch size, or an unreadable database."""


@dataclass
class PruneReport:
    before: dt.datetime
    database: str
    counts: object  # nowcast_db.database.prune.PruneCounts

    def lines(self) -> list[str]:
        c = self.counts
        return [
            f"pruned {self.database} before {self.before.isoformat()}:",
            f"  messages: {c.messages} removed, {c.kept_messages} older kept (still needed)",
            f"  worker_runs: {c.worker_runs} removed, {c.kept_worker_runs} older kept (still needed)",
            (f"  checklist_mutations: {c.checklist_mutations} removed, "
             f"{c.kept_checklist_mutations} older kept (each key's newest before the date)"),
            f"  run output files: {c.output_files} deleted"
            + (f", {c.output_files_missing} not found on this host" if c.output_files_missing else ""),
        ]


def parse_before(text: str, now: dt.datetime | None = None) -> dt.datetime:
    before = parse_time(text, "--before")
    now = now or dt.datetime.now(dt.timezone.utc)
    if before > now:
        raise PruneError(f"--before {text}: that is in the future; prune deletes only history older than "
                         f"a past date")
    return before


def parse_batch_size(text: str | int) -> int:
    try:
        size = int(text)
    except (TypeError, ValueError):
        size = 0
    if size < 1:
        raise PruneError(f"--batch-size: expected a whole number of rows, at least 1, got {text!r}")
    return size


def prune_history(url: str, before: dt.datetime, batch_size: int, progress=None) -> PruneReport:
    """Prune the history database at ``url``; raises a NowcastError with a
    one-line message.  ``progress``: a nowcast_db.progress.Progress."""
    from nowcast_db.database import make_engine, queries
    from nowcast_db.database.prune import prune

    queries.open_history(url).dispose()  # a missing or foreign database is an error, not created
    engine = make_engine(url, writer=True)
    try:
        shown = progress if progress is not None and progress.enabled else None  # totals cost a count
        counts = prune(engine, before, batch_size, shown)
        database = engine.url.render_as_string(hide_password=True)
    finally:
        engine.dispose()
    return PruneReport(before, database, counts)
