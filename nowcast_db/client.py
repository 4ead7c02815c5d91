"""Talking to the manager through the broker, as workers and other clients do.

A client never waits for ever (Lazy Pirate): it waits ``reply timeout``
seconds for the reply, then resends the same message (same message id, so the
manager answers a duplicate with the stored reply instead of acting twice) on
a fresh socket, until ``give up after`` seconds have passed.
"""
from __future__ import annotations

import logging
import math
import time

import zmq

from nowcast_db import curve
from nowcast_db.errors import NowcastError
from nowcast_db.message import Message, MessageError

DEFAULT_REPLY_TIMEOUT = 30.0
DEFAULT_GIVE_UP_AFTER = 3600.0


class ManagerUnreachable(NowcastError):
    """No reply came from the manager in the time allowed."""


class ManagerClient:
    def __init__(self, config, logger: logging.Logger | None = None,
                 reply_timeout: float | None = None, give_up_after: float | None = None):
        zmq_config = config["zmq"]
        self.config = config
        self.address = f"tcp://{zmq_config['host']}:{zmq_config['ports']['workers']}"
        self.reply_timeout = float(reply_timeout or zmq_config.get("reply timeout", DEFAULT_REPLY_TIMEOUT))
        self.give_up_after = float(give_up_after or zmq_config.get("give up after", DEFAULT_GIVE_UP_AFTER))
        self.logger = logger or logging.getLogger(__name__)
        self._context = zmq.Context.instance()
        self._socket = self._connect()

    def _connect(self) -> zmq.Socket:
        socket = self._context.socket(zmq.REQ)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.TCP_KEEPALIVE, 1)
        curve.client_socket(self.config, socket)
        socket.connect(self.address)
        return socket

    def send(self, serialized: str, message_id: str | None = None) -> Message:
        """Send one message and return the manager's reply."""
        deadline = time.monotonic() + self.give_up_after
        attempt = 0
        while True:
            attempt += 1
            self._socket.send_string(serialized)
            wait = max(0.0, min(self.reply_timeout, deadline - time.monotonic()))
            if self._socket.poll(math.ceil(wait * 1000), zmq.POLLIN):
                raw = self._socket.recv()
                try:
                    return Message.deserialize(raw)
                except MessageError as err:
                    raise ManagerUnreachable(f"unreadable reply from manager: {err}") from None
            self._socket.close()
            self._socket = self._connect()
            if deadline - time.monotonic() < 0.001:  # no time left for another try
                raise ManagerUnreachable(
                    f"no reply from manager via {self.address} after {attempt} tries "
                    f"in {self.give_up_after:g} s (message id {message_id})"
                )
            self.logger.warning(
                f"no reply from manager via {self.address} in {self.reply_timeout:g} s; "
                f"resending message {message_id} (try {attempt + 1})"
            )

    def close(self) -> None:
        self._socket.close()
