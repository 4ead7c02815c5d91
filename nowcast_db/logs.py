"""Logging set-up from the config's ``logging`` section, local or distributed.

A config has either one plain dictConfig under ``logging:``, or the
distributed pair NEMO_Nowcast systems use: ``logging: aggregator:`` for the
long-running processes (broker, manager, scheduler, log aggregator) and
``logging: publisher:`` for workers.  A publisher's handler named ``zmq_pub``
sends every record over ZeroMQ to ``python -m nowcast_db.log_aggregator``, so
workers on other hosts end up in the same log files as everything else.

The ports come from ``zmq: ports: logging:``: process name → a port, a
``host:port`` string, or a list of those; ``workers`` lists the ports that
workers without an entry of their own share, one worker per port.
"""
from __future__ import annotations

import atexit
import copy
import logging
import logging.config
import logging.handlers
import pkgutil
import sys
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.log.handlers

from nowcast_db.errors import ConfigError

AGGREGATOR = "log_aggregator"
PUB_HANDLER = "zmq_pub"
ROTATING_HANDLERS = ("logging.handlers.RotatingFileHandler", "logging.handlers.TimedRotatingFileHandler")
# How long a new publisher waits for the aggregator to subscribe: PUB drops
# whatever it sends before then, which would lose a worker's first lines.
SUBSCRIBER_WAIT_SECONDS = 1.0
# How long a process may take at exit to hand its last log lines to the aggregator.
LINGER_MS = 2000
PORTS_EXPECTED = "a port number, a 'host:port' string, or a list of them"

_publication: _Publication | None = None


def configure_logging(config, long_running: bool = False, debug: bool = False, *, name: str | None = None) -> str:
    """Apply the ``logging`` section; return the line saying where logs go.

    Long-running processes (broker, manager, scheduler) get ``WatchedFileHandler``
    in place of the rotating handlers so they follow files that ``rotate_logs``
    rolled over.  With ``debug`` the handler named ``console`` goes to DEBUG, the
    others are silenced and nothing is published.  ``name`` is the process's name
    (its log topic and its key in ``zmq: ports: logging:``); it defaults to the
    module run with ``python -m``.
    """
    name = name or process_name()
    key, layout = _layout_for(config, long_running)
    layout = copy.deepcopy(layout)
    if long_running:
        layout = _watched_instead_of_rotating(layout)
    handlers = layout.get("handlers") if isinstance(layout.get("handlers"), dict) else {}
    publish = PUB_HANDLER in handlers and not debug and name != AGGREGATOR
    if publish and long_running:
        publish = name in (_logging_ports(config, required=False) or {})
    if key == "logging: publisher" and not debug and PUB_HANDLER not in handlers:
        raise ConfigError(f"{config.file}: missing key 'logging: publisher: handlers: {PUB_HANDLER}' "
                          f"(expected the zmq.log.handlers.PUBHandler handler that workers publish with)")
    if PUB_HANDLER in handlers and not publish:
        layout = _without_handler(layout, PUB_HANDLER)
    layout = _with_logger_name_default(layout)

    publication = None
    if publish:
        _require_pub_handler_class(config, key, handlers[PUB_HANDLER])
        publication = _publish(config, name)
        spec = {k: v for k, v in layout["handlers"][PUB_HANDLER].items() if k not in ("context", "root_topic")}
        layout["handlers"][PUB_HANDLER] = {**spec, "interface_or_socket": publication.socket}
    else:
        _stop_publishing()
    try:
        logging.config.dictConfig(layout)
    except (ValueError, TypeError, AttributeError, ImportError) as err:
        if publication is not None:
            _stop_publishing()
        cause = err.__cause__ or err
        raise ConfigError(f"{config.file}: key '{key}': {err}: {cause}") from None
    if publication is not None:
        publication.attach(handler_named(PUB_HANDLER), topic=name)
        return f"publishing log messages to {publication.address}"
    if debug:
        for handler in logging.getLogger().handlers:
            if handler.name == "console":
                handler.setLevel(logging.DEBUG)
            else:
                handler.setLevel(logging.CRITICAL + 100)
        return "**debug mode** writing log messages to console"
    return "writing log messages to local file system"


def process_name() -> str:
    """The name of the module run with ``python -m`` (``nowcast_db.workers.sleep`` → ``sleep``),
    which by NEMO_Nowcast convention is the worker's or process's name."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        parts = spec.name.split(".")
        return parts[-2] if parts[-1] == "__main__" and len(parts) > 1 else parts[-1]
    return Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "python"


def layouts(config) -> list[tuple[str, dict]]:
    """Every dictConfig in the ``logging`` section, with the key that names it."""
    section = config["logging"]
    found = []
    plain = {key: value for key, value in section.items() if key not in ("aggregator", "publisher")}
    if "handlers" in plain or not any(isinstance(section.get(k), dict) for k in ("aggregator", "publisher")):
        found.append(("logging", plain))
    for part in ("aggregator", "publisher"):
        if isinstance(section.get(part), dict):
            found.append((f"logging: {part}", section[part]))
    return found


def handler_named(name: str) -> logging.Handler | None:
    """The handler called ``name`` on the root logger or any other logger
    (``logging.getHandlerByName`` arrived only in Python 3.12)."""
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if handler.name == name:
                return handler
    return None


def logging_addresses(config) -> dict[str, list[tuple[str | None, int]]]:
    """``zmq: ports: logging:`` as process name → [(host or None, port)]."""
    ports = _logging_ports(config, required=True)
    return {str(name): _addresses(config, str(name), value) for name, value in ports.items()}


# --- choosing and adjusting the layout ---------------------------------------


def _layout_for(config, long_running: bool) -> tuple[str, dict]:
    section = config["logging"]
    if long_running and isinstance(section.get("aggregator"), dict):
        return "logging: aggregator", section["aggregator"]
    if not long_running and isinstance(section.get("publisher"), dict) and "handlers" not in section:
        return "logging: publisher", section["publisher"]
    plain = {key: value for key, value in section.items() if key not in ("aggregator", "publisher")}
    if long_running and not plain and isinstance(section.get("publisher"), dict):
        raise ConfigError(f"{config.file}: missing key 'logging: aggregator' (expected the logging dictConfig "
                          f"for long-running processes, which 'logging: publisher' is not)")
    return "logging", plain


def _watched_instead_of_rotating(layout: dict) -> dict:
    handlers = {}
    for name, handler in (layout.get("handlers") or {}).items():
        if isinstance(handler, dict) and handler.get("class") in ROTATING_HANDLERS:
            handler = {k: v for k, v in handler.items() if k not in ("maxBytes", "backupCount", "when", "interval", "utc", "atTime")}
            handler["class"] = "logging.handlers.WatchedFileHandler"
        handlers[name] = handler
    return {**layout, "handlers": handlers}


def _without_handler(layout: dict, name: str) -> dict:
    """The layout with handler ``name`` gone from the handlers and every logger
    that used it (a process that must not publish drops ``zmq_pub``)."""
    layout = {**layout, "handlers": {k: v for k, v in layout["handlers"].items() if k != name}}

    def drop(logger_spec):
        if isinstance(logger_spec, dict) and isinstance(logger_spec.get("handlers"), list):
            return {**logger_spec, "handlers": [h for h in logger_spec["handlers"] if h != name]}
        return logger_spec

    if "root" in layout:
        layout["root"] = drop(layout["root"])
    if isinstance(layout.get("loggers"), dict):
        layout["loggers"] = {logger: drop(spec) for logger, spec in layout["loggers"].items()}
    return layout


class LoggerNameDefault(logging.Filter):
    """Give records a ``logger_name`` attribute when they have none.

    NEMO_Nowcast's aggregator formats use ``%(logger_name)s``, which its
    processes supplied with ``extra=``; ours don't, and a missing attribute
    would turn every line into a logging error.
    """

    def filter(self, record):
        if not hasattr(record, "logger_name"):
            record.logger_name = record.name
        return True


def _with_logger_name_default(layout: dict) -> dict:
    handlers = layout.get("handlers")
    filters = layout.get("filters", {})
    if not isinstance(handlers, dict) or not isinstance(filters, dict):
        return layout
    filter_name = "nowcast_db_logger_name"
    layout = {**layout, "filters": {**filters, filter_name: {"()": LoggerNameDefault}}, "handlers": {}}
    for name, spec in handlers.items():
        if isinstance(spec, dict) and isinstance(spec.get("filters", []), list):
            spec = {**spec, "filters": [*spec.get("filters", []), filter_name]}
        layout["handlers"][name] = spec
    return layout


def _require_pub_handler_class(config, key: str, spec) -> None:
    where = f"{key}: handlers: {PUB_HANDLER}"
    if not isinstance(spec, dict):
        raise config.error(where, "a handler mapping", spec)
    try:
        handler_class = pkgutil.resolve_name(str(spec.get("class")))
    except (ImportError, AttributeError, ValueError):
        handler_class = None
    if not (isinstance(handler_class, type) and issubclass(handler_class, zmq.log.handlers.PUBHandler)):
        raise ConfigError(f"{config.file}: key '{where}: class': expected zmq.log.handlers.PUBHandler, "
                          f"got {spec.get('class')!r}")


# --- ports --------------------------------------------------------------------


def _logging_ports(config, required: bool) -> dict | None:
    ports = config["zmq"]["ports"].get("logging") if isinstance(config["zmq"].get("ports"), dict) else None
    if ports is None and not required:
        return None
    if ports is None:
        raise ConfigError(f"{config.file}: missing key 'zmq: ports: logging' "
                          f"(expected a mapping of process names to log publishing ports)")
    if not isinstance(ports, dict):
        raise config.error("zmq: ports: logging", "a mapping of process names to log publishing ports", ports)
    return ports


def _addresses(config, name: str, value) -> list[tuple[str | None, int]]:
    key = f"zmq: ports: logging: {name}"
    items = value if isinstance(value, list) else [value]
    if not items:
        raise config.error(key, PORTS_EXPECTED, value)
    addresses = []
    for item in items:
        host, port = None, None
        if isinstance(item, int) and not isinstance(item, bool):
            port = item
        elif isinstance(item, str):
            host, _, port_text = item.strip().rpartition(":")
            port = int(port_text) if port_text.isdigit() else None
            host = host or None
        if port is None or not 0 < port < 65536 or (isinstance(item, str) and ":" in item and host is None):
            raise config.error(key, PORTS_EXPECTED, item)
        addresses.append((host, port))
    return addresses


def _ports_for(config, name: str) -> tuple[str, list[int]]:
    """The key and the ports, in order of preference, that process ``name`` may publish on."""
    ports = _logging_ports(config, required=True)
    key = name if name in ports else "workers"
    if key not in ports:
        raise ConfigError(f"{config.file}: missing key 'zmq: ports: logging: workers' "
                          f"(expected the list of ports that workers publish log messages on)")
    candidates = []
    for _host, port in _addresses(config, key, ports[key]):
        if port not in candidates:
            candidates.append(port)
    return key, candidates


# --- publishing ---------------------------------------------------------------


@dataclass
class _Publication:
    """The bound socket a process publishes its log records on.

    It has a context of its own, so that at exit it can be terminated, which
    is what makes libzmq send the last lines (a worker's outcome) before the
    process goes, without waiting on sockets that other code left open.
    """

    context: zmq.Context
    socket: zmq.Socket
    host: str
    port: int
    handler: logging.Handler | None = None
    subscribed: bool = False

    @property
    def address(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def attach(self, handler: logging.Handler | None, topic: str) -> None:
        """Give the handler its topic and bare-message formats, then wait
        (briefly, and only once) for the aggregator to subscribe."""
        self.handler = handler
        if isinstance(handler, zmq.log.handlers.PUBHandler):
            handler.root_topic = topic
            for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
                handler.setFormatter(logging.Formatter("%(message)s"), level)
        if not self.subscribed and self.socket.poll(int(SUBSCRIBER_WAIT_SECONDS * 1000)):
            self.socket.recv(zmq.NOBLOCK)
        self.subscribed = True

    def close(self) -> None:
        if self.handler is not None:
            for logger in [logging.getLogger()] + list(logging.Logger.manager.loggerDict.values()):
                if isinstance(logger, logging.Logger) and self.handler in logger.handlers:
                    logger.removeHandler(self.handler)
        self.socket.close(linger=LINGER_MS)
        self.context.term()


def _publish(config, name: str) -> _Publication:
    """A socket bound to the first of this process's logging ports that is free
    (or the one it already has, when logging is configured again)."""
    global _publication
    from nowcast_db.message_broker import bind_address  # the broker imports this module

    key, ports = _ports_for(config, name)
    host = bind_address(config)
    if _publication is not None:
        if _publication.host == host and _publication.port in ports:
            return _publication
        _stop_publishing()
    context = zmq.Context()
    # XPUB rather than PUB: it tells us when the aggregator has subscribed
    socket = context.socket(zmq.XPUB)
    errors = []
    for port in ports:
        try:
            socket.bind(f"tcp://{host}:{port}")
        except zmq.ZMQError as err:
            errors.append(f"{port}: {err}")
            continue
        _publication = _Publication(context, socket, host, port)
        return _publication
    socket.close(linger=0)
    context.term()
    raise ConfigError(f"{config.file}: key 'zmq: ports: logging: {key}': no port free on {host} "
                      f"to publish log messages on ({'; '.join(errors)})")


@atexit.register
def _stop_publishing() -> None:
    global _publication
    if _publication is not None:
        publication, _publication = _publication, None
        publication.close()
