"""``nowcast replay --live``: send a recorded or scripted message sequence to a
running system through its broker — for a staging system, to watch the real
manager launch real workers from last month's traffic or a scenario file.

Each message goes out with a new message id (a resend of the same id would
only get the stored reply back), as the worker named in its source; the
manager records and acts on it like any other.  Nothing is sent without a
yes at the prompt, or ``--yes``.
"""
from __future__ import annotations

import sys
from collections import Counter

from nowcast_db.client import ManagerClient
from nowcast_db.errors import NowcastError
from nowcast_db.message import Message, new_message_id


def recorded_messages(engine_url: str, since=None, until=None) -> list[Message]:
    from nowcast_db.database import queries

    engine = queries.open_history(engine_url)
    try:
        rows = queries.worker_messages(engine, until)
    finally:
        engine.dispose()
    return [Message(row.source, row.type, row.payload) for row in rows
            if since is None or row.received_at >= since]


def scenario_messages(scenario) -> list[Message]:
    from nowcast_db.replay import load_scenario

    _, steps = load_scenario(scenario)
    return [Message(step.source, step.type, step.payload) for step in steps]


def confirm(messages: list[Message], address: str, assume_yes: bool, answer=input) -> None:
    """Ask before sending; refuse when nobody can answer (not a terminal, no --yes)."""
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise NowcastError("--live: refusing to send without confirmation; add --yes to send without asking")
    reply = answer(f"Send {len(messages)} messages to the running system via {address}? [y/N] ")
    if reply.strip().lower() not in ("y", "yes"):
        raise NowcastError("--live: nothing sent")


def send_live(config, messages: list[Message], out=sys.stdout) -> int:
    """Send each message in order, print each reply; 0 when every one was acknowledged."""
    client = ManagerClient(config)
    replies: Counter = Counter()
    try:
        for number, message in enumerate(messages, start=1):
            message.id = new_message_id()
            reply = client.send(message.serialize(), message.id)
            replies[reply.type] += 1
            out.write(f"{number}: ({message.source}) {message.type} -> {reply.type}"
                      + (f": {reply.payload}" if reply.type != "ack" and reply.payload else "") + "\n")
    finally:
        client.close()
    summary = ", ".join(f"{count} {kind}" for kind, count in replies.most_common())
    out.write(f"sent {len(messages)} messages: {summary}\n")
    return 0 if set(replies) <= {"ack", "checklist cleared"} else 1
