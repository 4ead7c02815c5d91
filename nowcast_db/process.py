"""What every long-running process does at start: parse args, load config,
set up logging, and turn a bad config into one line on stderr."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from nowcast_db.config import Config
from nowcast_db.errors import NowcastError
from nowcast_db.logs import configure_logging
from nowcast_db.sentry import init_sentry


def arg_parser(name: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m nowcast_db.{name}", description=description)
    parser.add_argument("config_file", help="Path/name of YAML configuration file for nowcast system.")
    return parser


def start(name: str, parsed_args) -> tuple[Config, logging.Logger]:
    """Load the config and configure logging, or exit 2 with a one-line error."""
    try:
        config = Config(parsed_args.config_file)
        where = configure_logging(config, long_running=True, name=name)
    except NowcastError as err:
        fail(name, str(err))
    init_sentry()
    logger = logging.getLogger(name)
    logger.info(f"running in process {os.getpid()}")
    logger.info(f"read config from {config.file}")
    logger.info(where)
    return config, logger


def fail(name: str, error: str) -> None:
    """Stop at start-up: one line on stderr, exit status 2 (as argparse and the workers do)."""
    print(f"{name}: error: {error}", file=sys.stderr)
    raise SystemExit(2)


def on_stop_signals(logger: logging.Logger, callback) -> None:
    """Call ``callback`` on SIGINT or SIGTERM, after logging which one came."""

    def handler(signum, _frame):
        logger.info(f"{signal.Signals(signum).name} received; shutting down")
        callback()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def on_hangup(logger: logging.Logger, callback) -> None:
    """Call ``callback`` on SIGHUP (circus and supervisord send it to reload)."""

    def handler(_signum, _frame):
        logger.info("SIGHUP received; reloading config")
        callback()

    signal.signal(signal.SIGHUP, handler)


def reload_logging(name: str, config_file, logger: logging.Logger):
    """Re-read the config and re-apply its logging; the new config, or None
    (and an error logged) when the file is now broken."""
    try:
        config = Config(config_file)
        configure_logging(config, long_running=True, name=name)
    except NowcastError as err:
        logger.error(f"config not reloaded, keeping the current one: {err}")
        return None
    return config
