"""Logging set-up from the config's ``logging`` section."""
from __future__ import annotations

import logging
import logging.config
import logging.handlers

from nowcast_db.errors import ConfigError


def configure_logging(config, long_running: bool = False, debug: bool = False) -> str:
    """Apply the ``logging`` section; return the line saying where logs go.

    Long-running processes (broker, manager, scheduler) get ``WatchedFileHandler``
    in place of ``RotatingFileHandler`` so they follow files that ``rotate_logs``
    rolled over.  With ``debug`` the handler named ``console`` goes to DEBUG and
    the others are silenced.
    """
    layout = config["logging"]
    if long_running and isinstance(layout.get("aggregator"), dict):
        layout = layout["aggregator"]
    elif not long_running and isinstance(layout.get("publisher"), dict) and "handlers" not in layout:
        layout = layout["publisher"]
    layout = {key: value for key, value in layout.items() if key not in ("aggregator", "publisher")}
    if long_running:
        layout = _watched_instead_of_rotating(layout)
    try:
        logging.config.dictConfig(layout)
    except (ValueError, TypeError, AttributeError, ImportError) as err:
        cause = err.__cause__ or err
        raise ConfigError(f"{config.file}: key 'logging': {err}: {cause}") from None
    if debug:
        for handler in logging.getLogger().handlers:
            if handler.name == "console":
                handler.setLevel(logging.DEBUG)
            else:
                handler.setLevel(logging.CRITICAL + 100)
        return "**debug mode** writing log messages to console"
    return "writing log messages to local file system"


def _watched_instead_of_rotating(layout: dict) -> dict:
    handlers = {}
    for name, handler in (layout.get("handlers") or {}).items():
        if isinstance(handler, dict) and handler.get("class") in (
            "logging.handlers.RotatingFileHandler",
            "logging.handlers.TimedRotatingFileHandler",
        ):
            handler = {k: v for k, v in handler.items() if k not in ("maxBytes", "backupCount", "when", "interval", "utc", "atTime")}
            handler["class"] = "logging.handlers.WatchedFileHandler"
        handlers[name] = handler
    return {**layout, "handlers": handlers}
