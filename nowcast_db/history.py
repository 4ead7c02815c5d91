"""Reading the recorded history back for people and scripts: ``nowcast
history`` and ``nowcast checklist --at``.

The database is the record; this module only shapes what the queries return
(a table for people, JSON lines or CSV for scripts), parses the times
operators type, and rebuilds the checklist at a moment from its mutations.
Nothing here writes.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any, Iterable

from nowcast_db.database import values
from nowcast_db.errors import NowcastError

TIME_HELP = ("ISO 8601: 2026-11-29, 2026-11-29T05:00, 2026-11-29T05:00:00-08:00; "
             "a time without an offset is UTC, a date alone is midnight UTC")
FORMATS = ("table", "jsonl", "csv")
TABLE_CELL_WIDTH = 60  # longer cells (payloads, reasons) are cut in tables only


class HistoryError(NowcastError):
    """An argument of a history command is not what it should be."""


def parse_time(text: str, option: str) -> dt.datetime:
    """An operator's time as an aware UTC datetime; naive times are UTC."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise HistoryError(f"{option}: expected an ISO 8601 date or time such as 2026-11-29 or "
                           f"2026-11-29T05:00 (UTC unless an offset is given), got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def fold_checklist(mutations: Iterable, start: dict | None = None) -> dict:
    """The checklist after these mutations, applied in order to ``start``.

    Each mutation's ``after`` is the key's whole new value (an update's merge
    is already done), so the fold is a replay of assignments; ``clear``
    removes the key.
    """
    checklist = dict(start or {})
    for mutation in mutations:
        if mutation.operation == "clear":
            checklist.pop(mutation.key, None)
        else:
            checklist[mutation.key] = mutation.after
    return checklist


# --- rows for the history views --------------------------------------------

def seconds_between(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def run_record(row) -> dict:
    return {
        "id": row.id, "worker": row.worker, "state": row.state, "launched by": row.launched_by,
        "host": row.host, "args": row.args, "launched at": row.launched_at, "started at": row.started_at,
        "finished at": row.finished_at, "seconds": seconds_between(row.started_at, row.finished_at),
        "exit code": row.exit_code, "final message": row.final_message_type, "triggered by message": row.triggered_by,
        "requested by": row.requested_by, "module": row.module, "pid": row.pid, "reason": row.reason,
    }


def message_record(row) -> dict:
    return {
        "id": row.id, "received at": row.received_at, "source": row.source, "type": row.type,
        "reply": row.reply_type, "run id": row.run_id, "payload": row.payload, "error": row.error,
        "reply payload": row.reply_payload, "raw": row.raw, "message id": row.message_id,
    }


def mutation_record(row) -> dict:
    return {
        "id": row.id, "at": row.at, "key": row.key, "operation": row.operation, "before": row.before,
        "after": row.after, "message": row.message_id, "source": row.source, "type": row.type,
    }


def chain_records(chain: list[tuple]) -> list[dict]:
    """One record per run of a chain, first run first, with the message that triggered it."""
    records = []
    for step, (run, message) in enumerate(chain):
        records.append({
            "step": step, "run": run.id, "worker": run.worker, "state": run.state,
            "launched by": run.launched_by, "host": run.host, "args": run.args,
            "launched at": run.launched_at, "finished at": run.finished_at,
            "seconds": seconds_between(run.started_at, run.finished_at),
            "triggered by message": message.id if message is not None else None,
            "message": f"{message.source} ({message.type})" if message is not None else None,
            "message run": message.run_id if message is not None else None,
        })
    return records


# Columns shown in a table; jsonl and csv carry every field.
TABLE_COLUMNS = {
    "runs": ["id", "worker", "state", "launched by", "host", "args", "launched at", "seconds", "exit code",
             "triggered by message"],
    "messages": ["id", "received at", "source", "type", "reply", "run id", "payload", "error"],
    "checklist": ["id", "at", "key", "operation", "after", "message", "source", "type"],
    "chain": ["step", "run", "worker", "state", "launched by", "args", "launched at", "seconds",
              "triggered by message", "message"],
}


def render(records: list[dict], kind: str, output_format: str) -> str:
    if output_format == "jsonl":
        return "".join(json.dumps(_plain(record), ensure_ascii=False) + "\n" for record in records)
    if output_format == "csv":
        return _csv(records)
    return _table(records, TABLE_COLUMNS[kind])


def _plain(record: dict) -> dict:
    """A record as plain JSON: times as ISO 8601 UTC text, other values in the
    database's own lossless encoding (so a date payload stays a date)."""
    return values.encode({key: _iso(value) if isinstance(value, dt.datetime) else value
                          for key, value in record.items()})


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat()


def _cell(value: Any) -> str:
    """A value as text for csv and tables: plain scalars as they are, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return json.dumps(values.encode(value), ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _csv(records: list[dict]) -> str:
    out = io.StringIO()
    if records:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(list(records[0]))
        for record in records:
            writer.writerow([_cell(value) for value in record.values()])
    return out.getvalue()


def _table(records: list[dict], columns: list[str]) -> str:
    if not records:
        return "(nothing recorded)\n"
    rows = [[_table_cell(record.get(column)) for column in columns] for record in records]
    headers = [column + (" (UTC)" if column.endswith(" at") else "") for column in columns]
    widths = [max(len(text) for text in [header, *(row[i] for row in rows)]) for i, header in enumerate(headers)]
    lines = ["  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip()
             for line in [headers, *rows]]
    return "\n".join(lines) + "\n"


def _table_cell(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        text = " ".join(value)
    else:
        text = _cell(value)
    text = " ".join(text.split())  # one line per row
    return text if len(text) <= TABLE_CELL_WIDTH else text[:TABLE_CELL_WIDTH - 1] + "…"
