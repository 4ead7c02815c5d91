"""Asking the manager to launch a worker, as the scheduler, `nowcast launch`
and nowcast-tui do.

The message, sent through the broker's workers port like any other::

    source: scheduler            # or operator, or the client's name
    type: launch worker
    payload:
      module: nowcast_db.workers.sleep
      args: ["--sleep-time", "1"]
      host: localhost
      requested by: doug@workstation
    message id: 7f0c...          # resent unchanged on retry: launched once

The manager accepts it only for a worker in the message registry, records the
run (``launched_by`` = scheduler for source ``scheduler``, operator otherwise)
and replies ``ack`` with payload ``{run id: N}``; otherwise it replies
``launch refused`` with the reason.
"""
from __future__ import annotations

import getpass
import socket

from nowcast_db.client import ManagerClient
from nowcast_db.decision import LAUNCH_REQUEST
from nowcast_db.errors import NowcastError
from nowcast_db.message import Message, new_message_id


class LaunchRefused(NowcastError):
    """The manager refused the launch; the message says why."""


def requester() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in a bare container
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def launch_message(module: str, args=(), host: str = "localhost", source: str = "operator",
                   requested_by: str | None = None) -> Message:
    payload = {"module": module, "args": [str(arg) for arg in args], "host": host,
               "requested by": requested_by or f"{source} {requester()}"}
    return Message(source, LAUNCH_REQUEST, payload, id=new_message_id())


def request_launch(config, message: Message, client: ManagerClient | None = None) -> int:
    """Send a launch request; return the new run's id or raise LaunchRefused / ManagerUnreachable."""
    own_client = client is None
    client = client or ManagerClient(config)
    try:
        reply = client.send(message.serialize(), message.id)
    finally:
        if own_client:
            client.close()
    if reply.type == "ack" and isinstance(reply.payload, dict) and "run id" in reply.payload:
        return int(reply.payload["run id"])
    raise LaunchRefused(str(reply.payload) if reply.payload else f"manager replied ({reply.type})")
