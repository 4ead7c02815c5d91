"""The manager's message loop: receive → decide → persist → reply → launch.

The decisions come from the pure ``decision.decide``; this module does the
I/O around it.  The reply is sent only after the transaction that records the
message, its checklist mutations, the race-condition state and the launches
(as ``pending``) has committed, so a crash at any point loses nothing the
sender was told about and starts nothing twice.
"""
from __future__ import annotations

import logging
import os
import socket as host_socket
import time

import yaml
import zmq

from nowcast_db import launcher
from nowcast_db.config import Config
from nowcast_db.database.store import Incoming, Store, utcnow
from nowcast_db.decision import LAUNCH_REQUEST, Decision, Launch, ManagerState, decide, reply
from nowcast_db.errors import MessageError, NowcastError
from nowcast_db.logs import configure_logging
from nowcast_db.message import Message, new_message_id
from nowcast_db.next_workers import NextWorkersModule

MANAGER_ERROR = "manager error"
HEARTBEAT_SECONDS = 5.0
POLL_MS = 200


class ManagerLoop:
    def __init__(self, config, store: Store, state: ManagerState, logger: logging.Logger | None = None):
        self.config = config
        self.store = store
        self.state = state
        self.logger = logger or logging.getLogger("manager")
        self.next_workers = next_workers_module(config)
        self.children = launcher.Children()
        self.stopping = False
        self.reload_requested = False
        self._last_heartbeat = 0.0

    # --- one message -----------------------------------------------------

    def handle(self, body: bytes) -> tuple[bytes, list[tuple[Launch, int]]]:
        """Decide and record one message; return the reply to send and the launches to start."""
        received_at = utcnow()
        try:
            msg = Message.deserialize(body)
        except MessageError as err:
            return self._malformed(body, received_at, str(err)), []
        if msg.id is not None:
            stored = self.store.stored_reply(msg.id)
            if stored is not None:
                self.logger.info(f"message {msg.id} from {msg.source} seen before; resending its reply ({stored.type})")
                return stored.serialize().encode(), []
        incoming = Incoming(msg.id or new_message_id(), received_at, msg)
        msg.id = incoming.message_id
        decision = decide(self.state, msg, self.config["message registry"], self.next_workers.get(), self.config)
        # a message the registry refuses belongs to no run (it must not open one that never ends)
        incoming.registered = msg.type != LAUNCH_REQUEST and decision.reply.type not in (
            "unregistered worker", "unregistered message type")
        return self._commit(incoming, decision)

    def _malformed(self, body: bytes, received_at, error: str) -> bytes:
        self.logger.error(f"malformed message received: {error}")
        decision = Decision(self.state, reply("malformed message", error), error=error)
        raw = body.decode("utf-8", errors="backslashreplace")
        reply_bytes, _ = self._commit(Incoming(new_message_id(), received_at, None, raw=raw), decision)
        return reply_bytes

    def _commit(self, incoming: Incoming, decision: Decision):
        for level, logger_name, text in decision.log:
            logging.getLogger(logger_name).log(level, text)
        try:
            recorded = self.store.record(incoming, decision, self.state)
        except Exception as err:  # the database refused: act on nothing, say so
            text = f"could not record message, so it was not acted on: {type(err).__name__}: {err}"
            self.logger.critical(text.splitlines()[0], exc_info=True)
            return reply(MANAGER_ERROR, text.splitlines()[0]).serialize().encode(), []
        self.state = decision.state
        if decision.mutations:
            self._write_checklist_file()
        return recorded.reply.serialize().encode(), list(zip(decision.launches, recorded.launch_run_ids))

    def _write_checklist_file(self) -> None:
        """Keep NEMO_Nowcast's checklist file as a view for people; the database is the truth."""
        path = self.config["checklist file"]
        tmp = f"{path}.tmp"
        try:
            with open(tmp, "wt") as f:
                yaml.safe_dump(self.state.checklist, f, default_flow_style=False)
            os.replace(tmp, path)
        except (OSError, yaml.YAMLError) as err:
            self.logger.warning(f"checklist file {path} not written: {err}")

    # --- launching and reaping -------------------------------------------

    def launch(self, launch: Launch, run_id: int) -> None:
        command = None
        try:
            command = launcher.command_for(launch.module, launch.args, launch.host, self.config, run_id)
            self.logger.info(f"launching {launch.module} worker on {launch.host} (run {run_id})")
            self.logger.debug(f"cmd = {command}")
            process = launcher.start(command, run_id)
        except NowcastError as err:
            self.logger.error(f"launch of {launch.module} on {launch.host} failed: {err}")
            self.store.mark_launch_failed(run_id, command, str(err))
            return
        self.children.add(run_id, process, launch.host)
        self.store.mark_started(run_id, process.pid, command)

    def reap(self) -> None:
        for child, code in self.children.reap():
            ssh_failed = child.remote and code == launcher.SSH_FAILED
            state = self.store.mark_exited(child.run_id, code, ssh_host=child.host if ssh_failed else None)
            level = logging.DEBUG if state in ("succeeded", "failed", "crashed") and not ssh_failed else logging.ERROR
            self.logger.log(level, f"run {child.run_id} process exited with code {code}; run {state}")

    def heartbeat(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_heartbeat >= HEARTBEAT_SECONDS:
            self._last_heartbeat = now
            try:
                self.store.heartbeat({"pid": os.getpid(), "host": host_socket.gethostname(),
                                      "at": utcnow().isoformat()})
            except Exception as err:
                self.logger.warning(f"heartbeat not recorded: {err}")

    # --- the loop ----------------------------------------------------------

    def serve(self, socket: zmq.Socket) -> None:
        """Answer messages until ``stopping`` is set.  ``socket`` is a ROUTER
        connected to the broker's manager port."""
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        self.logger.debug("listening...")
        while not self.stopping:
            if poller.poll(POLL_MS):
                frames = socket.recv_multipart(zmq.NOBLOCK)
                envelope, parts = split_envelope(frames)
                if len(parts) == 1:
                    reply_bytes, launches = self.handle(parts[0])
                else:
                    error = f"message must be one frame, got {len(parts)}"
                    reply_bytes, launches = self._malformed(b"\n".join(parts), utcnow(), error), []
                socket.send_multipart(envelope + [reply_bytes])
                for launch, run_id in launches:
                    self.launch(launch, run_id)
            self.reap()
            self.heartbeat()
            if self.reload_requested:
                self.reload_requested = False
                self.reload_config()

    def reload_config(self) -> None:
        """Re-read the config file (SIGHUP); a bad file keeps the current config running."""
        try:
            config = Config(self.config.file)
            configure_logging(config, long_running=True)
        except NowcastError as err:
            self.logger.error(f"config not reloaded, keeping the current one: {err}")
            return
        self.config = config
        self.next_workers = next_workers_module(config)
        self.logger.info(f"config reloaded from {config.file}")


def next_workers_module(config) -> NextWorkersModule:
    """The registry's next workers module, looked for beside the config file too."""
    return NextWorkersModule(config["message registry"]["next workers module"],
                             os.path.dirname(os.path.abspath(config.file)))


def split_envelope(frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Split ROUTER frames into the routing envelope (through the empty
    delimiter) and the body frames (one, for a well-formed message)."""
    cut = frames.index(b"") + 1 if b"" in frames else len(frames) - 1
    return frames[:cut], frames[cut:]
