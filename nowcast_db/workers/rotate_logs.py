"""Roll over the nowcast system's rotating log files.

python -m nowcast_db.workers.rotate_logs CONFIG [--debug]

Usually launched at the end of a processing cycle (after clear_checklist), so
that each cycle's log lines sit in files of their own; an operator can also
run it by hand.  Every RotatingFileHandler and TimedRotatingFileHandler in the
logging config is rolled over: the plain layout's, or the aggregator's (and
the publisher's) in a distributed system.  Long-running processes write
through WatchedFileHandlers, so they notice and carry on in the new files.
"""
import inspect
import logging
import logging.handlers
import os
import pkgutil

from nowcast_db import NowcastWorker, WorkerError
from nowcast_db.logs import ROTATING_HANDLERS, handler_named, layouts

NAME = "rotate_logs"
logger = logging.getLogger(NAME)
# rw-rw-r--: the operators' group shares the log files with the processes' user
LOG_FILE_MODE = 0o664


def main():
    worker = NowcastWorker(NAME, description=__doc__, package="nowcast_db.workers")
    worker.init_cli()
    worker.run(rotate_logs, success, failure)


def success(parsed_args):
    logger.info("log files rotated")
    return "success"


def failure(parsed_args):
    logger.critical("failed to rotate log files")
    return "failure"


def rotate_logs(parsed_args, config, *args):
    logger.info("rotating log files")
    rotated = []
    for key, name, spec in _rotating_handlers(config):
        path = os.path.abspath(str(spec.get("filename", "")))
        if path in rotated:
            continue
        try:
            rolled = _roll_over(name, spec, path)
            for file in [path, *rolled]:
                if os.path.exists(file):
                    os.chmod(file, LOG_FILE_MODE)
        except (OSError, TypeError, ValueError) as err:
            reason = getattr(err, "strerror", None) or err
            raise WorkerError(f"cannot rotate {path} (handler '{key}: handlers: {name}'): {reason}") from None
        logger.debug(f"{path} log file permissions set to rw-rw-r--")
        if not rolled:
            logger.warning(f"log file {path} not rotated: its handler '{key}: handlers: {name}' keeps no backups "
                           f"(backupCount is 0)")
            continue
        logger.info(f"log file rotated: {path} -> {', '.join(rolled)}")
        rotated.append(path)
    return {"log files": rotated}


def _rotating_handlers(config):
    """(layout key, handler name, handler spec) of each rotating file handler in the logging config."""
    for key, layout in layouts(config):
        handlers = layout.get("handlers")
        if not isinstance(handlers, dict):
            continue
        for name, spec in handlers.items():
            if isinstance(spec, dict) and spec.get("class") in ROTATING_HANDLERS and spec.get("filename"):
                yield key, name, spec


def _roll_over(name: str, spec: dict, path: str) -> list[str]:
    """Roll the file over and return the backup files it was renamed to.

    When this process writes to the file itself (plain layout), its own
    handler is rolled over, so that its later lines go to the new file;
    otherwise a handler is built from the spec just for the rollover.
    """
    rolled = []

    def rotator(source, dest):
        if os.path.exists(source):
            os.rename(source, dest)
            rolled.append(dest)

    live = handler_named(name)
    if isinstance(live, logging.handlers.BaseRotatingHandler) and live.baseFilename == path:
        handler, own = live, False
    else:
        handler, own = _handler_from(spec), True
    previous, handler.rotator = handler.rotator, rotator
    try:
        handler.acquire()
        try:
            handler.flush()
            handler.doRollover()
        finally:
            handler.release()
    finally:
        handler.rotator = previous
        if own:
            handler.close()
    return rolled


def _handler_from(spec: dict) -> logging.handlers.BaseRotatingHandler:
    """A handler like the one the spec configures, minus level, formatter and filters,
    which a rollover does not use."""
    handler_class = pkgutil.resolve_name(spec["class"])
    parameters = inspect.signature(handler_class).parameters
    return handler_class(**{key: value for key, value in spec.items() if key in parameters and key != "delay"})


if __name__ == "__main__":
    main()
