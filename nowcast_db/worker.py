"""Building blocks for workers: NowcastWorker, NextWorker, WorkerError."""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass, field


from nowcast_db import launcher
from nowcast_db.client import ManagerClient, ManagerUnreachable
from nowcast_db.command_line import CommandLineInterface
from nowcast_db.config import Config
from nowcast_db.decision import EXTRA_REPLY_TYPES
from nowcast_db.errors import ConfigError, MessageError, WorkerError
from nowcast_db.logs import configure_logging
from nowcast_db.message import Message, new_message_id
from nowcast_db.sentry import init_sentry
from nowcast_db.web import get_web_data  # where NEMO_Nowcast workers import it from

__all__ = ["NextWorker", "NowcastWorker", "WorkerError", "get_web_data"]


@dataclass
class NextWorker:
    """A worker for the manager to launch next; compares by value, so tests can
    assert ``after_x(msg, config, checklist) == [NextWorker("pkg.workers.y", args=["06"])]``."""

    module: str
    args: list = field(default_factory=list)
    host: str = "localhost"

    def launch(self, config, logger_name: str) -> None:
        """Start the worker now, without the manager (its run is recorded when
        its first message reaches the manager)."""
        logger = logging.getLogger(logger_name)
        command = launcher.command_for(self.module, self.args, self.host, config)
        logger.info(f"launching {self.module} worker on {self.host}")
        logger.debug(f"cmd = {command}")
        launcher.start(command)


class NowcastWorker:
    """A worker: parses its command line, loads the config, does its job and
    tells the manager how it went."""

    def __init__(self, name: str, description: str, package: str = "nowcast.workers"):
        self.name = name
        self.description = description
        self.package = package
        self.config = Config()
        self.logger: logging.Logger | None = None
        self.cli: CommandLineInterface | None = None
        self.worker_func = self.success = self.failure = None
        self._parsed_args = None
        self._client: ManagerClient | None = None
        run_id = os.environ.get(launcher.RUN_ID_ENV, "")
        self.run_id = int(run_id) if run_id.isdigit() else None

    def init_cli(self, args=None) -> None:
        self.cli = CommandLineInterface(self.name, description=self.description, package=self.package)
        self.cli.build_parser()
        self.cli.parser.add_argument(
            "--debug",
            action="store_true",
            help="Send logging output to the console instead of the log file, and don't send "
            "messages to the nowcast manager. For running the worker by hand in the foreground.",
        )

    def run(self, worker_func, success, failure, args=None) -> None:
        """Parse the command line, load the config, set up logging, then do the work."""
        self.worker_func, self.success, self.failure = worker_func, success, failure
        if self.cli is None:
            self.init_cli()
        self._parsed_args = self.cli.parser.parse_args(args)
        try:
            self.config.load(self._parsed_args.config_file)
            where = configure_logging(self.config, debug=self._parsed_args.debug, name=self.name)
        except ConfigError as err:
            self.cli.parser.exit(2, f"{self.cli.parser.prog}: error: {err}\n")
        self.logger = logging.getLogger(self.name)
        if not self._parsed_args.debug:
            init_sentry()
        self.logger.info(f"running in process {os.getpid()}")
        self.logger.info(f"read config from {self.config.file}")
        self.logger.info(where)
        self._install_signal_handlers()
        if not self._parsed_args.debug:
            self._client = ManagerClient(self.config, self.logger)
            self.logger.info(f"connected to {self._client.address}")
        else:
            self.logger.debug("**debug mode** no connection to manager")
        sys.exit(self._do_work())

    def _install_signal_handlers(self) -> None:
        def handler(signum, _frame):
            self.logger.info(f"{signal.Signals(signum).name} received; shutting down")
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def _do_work(self) -> int:
        payload = None
        try:
            payload = self.worker_func(self._parsed_args, self.config, self.tell_manager)
            msg_type = self.success(self._parsed_args)
        except WorkerError as err:
            if str(err):
                self.logger.error(str(err))
            msg_type, payload = self.failure(self._parsed_args), None
        except Exception:
            self.logger.critical("unhandled exception:", exc_info=True)
            msg_type, payload = "crash", None
        status = self._tell_final(msg_type, payload)
        if self._client is not None:
            self._client.close()
        self.logger.debug("shutting down")
        return status

    def _tell_final(self, msg_type: str, payload) -> int:
        try:
            self.tell_manager(msg_type, payload)
        except MessageError as err:
            self.logger.critical(str(err))
            if msg_type == "crash":
                return 1
            try:
                self.tell_manager("crash")
            except (WorkerError, MessageError, ManagerUnreachable) as again:
                self.logger.critical(f"could not tell the manager about the crash: {again}")
            return 1
        except (WorkerError, ManagerUnreachable) as err:
            self.logger.critical(f"({msg_type}) message not acted on: {err}")
            return 1
        return 0 if msg_type.startswith("success") else 1

    def tell_manager(self, msg_type: str, payload=None) -> Message | None:
        """Send a message to the manager and return its reply (None in --debug mode).

        Raises WorkerError for a worker or message type missing from the registry,
        and for a reply the registry's ``manager`` section does not know.
        """
        workers = self.config["message registry"]["workers"]
        if self.name not in workers:
            raise WorkerError(f"worker not found in {self.config.file} message registry: {self.name}")
        worker_msgs = workers[self.name] or {}
        if msg_type not in worker_msgs:
            raise WorkerError(f"message type not found for {self.name} worker: {msg_type}")
        msg = Message(self.name, msg_type, payload, id=new_message_id(), run_id=self.run_id)
        if self.run_id is None:  # started by hand: say which process, so the manager can see it end
            msg.pid, msg.host = os.getpid(), socket.gethostname()
        serialized = msg.serialize()
        if self._parsed_args is not None and self._parsed_args.debug:
            self.logger.debug(f"**debug mode** message that would have been sent to manager: ({msg_type}) {worker_msgs[msg_type]}")
            return None
        reply = self._client.send(serialized, msg.id)
        self.logger.debug(f"sent message: ({msg_type}) {worker_msgs[msg_type]}")
        manager_msgs = self.config["message registry"]["manager"]
        if reply.type in EXTRA_REPLY_TYPES:
            raise WorkerError(f"manager replied ({reply.type}): {reply.payload}")
        if reply.type not in manager_msgs:
            raise WorkerError(f"message type not found for manager: {reply.type}")
        meaning = str(manager_msgs[reply.type])
        # the registry says which replies are errors (NEMO_Nowcast's: "ERROR - ..."); a worker still goes on
        level = logging.ERROR if meaning.startswith("ERROR") else logging.DEBUG
        self.logger.log(level, f"received message from {reply.source}: ({reply.type}) {meaning}")
        return reply
