"""Nowcast log aggregator: writes the log messages that other processes publish.

python -m nowcast_db.log_aggregator CONFIG

For systems whose workers run on other hosts: every publishing process sends
its records as [``process.LEVEL``, message] on its port in ``zmq: ports:
logging:``; the aggregator subscribes to all of them and hands each record to
the ``logging: aggregator:`` configuration under the publisher's name, so one
set of log files tells the whole story.  It is reached over the network by
anything that can connect, so a message it cannot read is reported and
skipped, never allowed to stop it.
"""
from __future__ import annotations

import logging

import zmq
from zmq.log.handlers import TOPIC_DELIM

from nowcast_db import process
from nowcast_db.errors import NowcastError
from nowcast_db.logs import AGGREGATOR, logging_addresses

POLL_MS = 200
LEVELS = {name: level for name, level in logging.getLevelNamesMapping().items() if level > logging.NOTSET}


class MalformedRecord(ValueError):
    """A published message that is not [``process.LEVEL[.subtopic]``, message]."""


def parse(frames: list[bytes]) -> tuple[str, int, str]:
    """(process name, level, message) from a published log message.

    pyzmq's PUBHandler moves the part of a message before ``::`` into the
    topic (``sleep.INFO.part``); it is put back, so the line reads as logged.
    """
    if len(frames) != 2:
        raise MalformedRecord(f"expected 2 frames (topic, message), got {len(frames)}")
    try:
        topic, message = (frame.decode("utf-8") for frame in frames)
    except UnicodeDecodeError as err:
        raise MalformedRecord(f"not UTF-8: {err}") from None
    parts = topic.split(".")
    at = next((i for i, part in enumerate(parts) if part in LEVELS), None)
    if at is None:
        raise MalformedRecord(f"topic {topic!r} names no log level")
    name, subtopic = ".".join(parts[:at]), ".".join(parts[at + 1:])
    if not name.strip("."):
        raise MalformedRecord(f"topic {topic!r} names no process")
    message = message.rstrip("\n")
    if subtopic:
        message = f"{subtopic}{TOPIC_DELIM}{message}"
    return name, LEVELS[parts[at]], message


class Aggregator:
    def __init__(self, config, logger: logging.Logger):
        self.config, self.logger = config, logger
        self.stopping = False
        self.reload_requested = False
        self.connected: dict[tuple[str, int], str] = {}  # (host, port) subscribed to → publisher's name

    def subscribe(self, socket: zmq.Socket) -> None:
        """Connect to every publisher's port in the config (bare ports are on
        ``zmq: host``) and let go of those no longer in it; called at start
        and after SIGHUP.  A port the config names that cannot be subscribed
        to raises NowcastError, the subscriptions made so far kept."""
        wanted: dict[tuple[str, int], str] = {}
        for name, addresses in logging_addresses(self.config).items():
            for host, port in addresses:
                wanted.setdefault((host or self.config["zmq"]["host"], port), name)
        for host, port in sorted(set(self.connected) - set(wanted)):
            socket.disconnect(f"tcp://{host}:{port}")
            self.logger.info(f"unsubscribed from {host} port {port} (no longer in zmq: ports: logging)")
            del self.connected[(host, port)]
        for (host, port), name in wanted.items():
            if (host, port) in self.connected:
                continue
            try:
                socket.connect(f"tcp://{host}:{port}")
            except zmq.ZMQError as err:
                raise NowcastError(f"{self.config.file}: key 'zmq: ports: logging: {name}': "
                                   f"cannot subscribe to {host}:{port}: {err}") from None
            self.connected[(host, port)] = name
            self.logger.info(f"subscribed to {host} port {port} for log messages from {name}")
        socket.setsockopt(zmq.SUBSCRIBE, b"")

    def reload(self, socket: zmq.Socket) -> None:
        """SIGHUP: logging reconfigured and subscriptions brought in line with
        the config; a bad config keeps what is running."""
        config = process.reload_logging(AGGREGATOR, self.config.file, self.logger)
        if config is None:
            return
        self.logger.info(f"logging reconfigured from {self.config.file}")
        try:
            logging_addresses(config)
        except NowcastError as err:
            self.logger.error(f"{err}; log subscriptions kept as they were")
            return
        self.config = config
        try:
            self.subscribe(socket)
        except NowcastError as err:
            self.logger.error(f"{err}; the other ports in zmq: ports: logging are followed")

    def handle(self, frames: list[bytes]) -> None:
        try:
            name, level, message = parse(frames)
        except MalformedRecord as err:
            self.logger.warning(f"malformed log message skipped: {err}: {_preview(frames)}")
            return
        logging.getLogger(name).log(level, message)

    def run(self) -> int:
        context = zmq.Context.instance()
        socket = context.socket(zmq.SUB)
        socket.setsockopt(zmq.LINGER, 0)
        try:
            try:
                self.subscribe(socket)
            except NowcastError as err:
                self.logger.critical(str(err))
                return 1
            process.on_stop_signals(self.logger, self.stop)
            process.on_hangup(self.logger, lambda: setattr(self, "reload_requested", True))
            poller = zmq.Poller()
            poller.register(socket, zmq.POLLIN)
            while not self.stopping:
                if poller.poll(POLL_MS):
                    self.handle(socket.recv_multipart(zmq.NOBLOCK))
                if self.reload_requested:
                    self.reload_requested = False
                    self.reload(socket)
        finally:
            socket.close()
            context.term()
        return 0

    def stop(self) -> None:
        self.stopping = True


def _preview(frames: list[bytes], limit: int = 200) -> str:
    text = repr(frames)
    return text if len(text) <= limit else text[:limit] + "..."


def main(args=None) -> None:
    parser = process.arg_parser(AGGREGATOR, __doc__.splitlines()[0])
    parsed = parser.parse_args(args)
    config, logger = process.start(AGGREGATOR, parsed)
    if not isinstance(config["logging"].get("aggregator"), dict):
        process.fail(AGGREGATOR, f"{config.file}: missing key 'logging: aggregator' "
                 f"(expected the logging dictConfig that aggregated messages are written with)")
    try:
        logging_addresses(config)
    except NowcastError as err:
        process.fail(AGGREGATOR, str(err))
    raise SystemExit(Aggregator(config, logger).run())


if __name__ == "__main__":
    main()
