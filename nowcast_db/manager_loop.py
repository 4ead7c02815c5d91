"""The manager's message loop: receive → decide → persist → reply → launch.

The decisions come from the pure ``decision.decide``; this module does the
I/O around it.  The reply is sent only after the transaction that records the
message, its checklist mutations, the race-condition state and the launches
(as ``pending``) has committed, so a crash at any point loses nothing the
sender was told about and starts nothing twice.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket as host_socket
import time
from dataclasses import dataclass

import yaml
import zmq

from nowcast_db import launcher, process
from nowcast_db.database.store import RAW_LIMIT, Incoming, Store, utcnow
from nowcast_db.decision import (
    CLEAR_CHECKLIST, LAUNCH_REQUEST, NEED, Decision, Launch, ManagerState, decide, reply,
)
from nowcast_db.errors import MessageError, NowcastError
from nowcast_db.message import MAX_MESSAGE_BYTES, Message, new_message_id
from nowcast_db.next_workers import NextWorkersModule
from nowcast_db.notifications import Notifier

MANAGER_ERROR = "manager error"  # in decision.EXTRA_REPLY_TYPES
MAX_BATCH = 500  # messages committed together at most
HEARTBEAT_SECONDS = 5.0
CHECKLIST_FILE_SECONDS = 1.0
POLL_MS = 200


class ManagerLoop:
    def __init__(self, config, store: Store, state: ManagerState, logger: logging.Logger | None = None,
                 notifier: Notifier | None = None):
        self.config = config
        self.notifier = notifier
        self.store = store
        self.state = state
        self.logger = logger or logging.getLogger("manager")
        self.next_workers = next_workers_module(config)
        self.children = launcher.Children()
        self.stopping = False
        self.reload_requested = False
        self._last_heartbeat = 0.0
        self._checklist_file_stale = False
        self._checklist_file_written = 0.0

    # --- a batch of messages ----------------------------------------------

    def handle_batch(self, bodies: list[bytes | Unreadable],
                     synthesized: bool = False) -> list[tuple[bytes, list[tuple[Launch, int]]]]:
        """Decide a batch of messages in arrival order, record them all in one
        transaction, and return each one's reply and launches.

        Group commit: every message waiting on the socket shares one commit
        (one fsync), so a burst costs little more than a single message.  The
        resend check, the decisions and the writes share that transaction.
        """
        received_at = utcnow()
        max_bytes = int(self.config["zmq"].get("max message size", MAX_MESSAGE_BYTES))
        parsed = [_parse(body, max_bytes) for body in bodies]
        module = self.next_workers.get()
        try:
            with self.store.batch() as transaction:
                seen = transaction.stored_replies([m.id for m in parsed if isinstance(m, Message) and m.id])
                pending, outcome, state = self._decide_all(bodies, parsed, seen, module, received_at)
                for incoming, _, _ in pending:
                    incoming.synthesized = synthesized
                recorded = transaction.record(pending)
        except Exception as err:  # the database refused: act on nothing, say so
            if len(bodies) > 1:
                # one message's content may be what was refused: give each its own transaction,
                # so the others sharing its batch are not turned away with it
                self.logger.warning(f"batch of {len(bodies)} messages not recorded ({type(err).__name__}); "
                                    f"recording them one by one")
                return [result for body in bodies for result in self.handle_batch([body], synthesized)]
            text = f"could not record message, so it was not acted on: {type(err).__name__}: {err}".splitlines()[0]
            self.logger.critical(text, exc_info=True)
            return [(_serialize_reply(reply(MANAGER_ERROR, text)), []) for _ in bodies]
        self._checklist_file_stale |= state.checklist is not self.state.checklist
        self.state = state
        results = []
        for kind, item in outcome:
            if kind == "stored":
                results.append((item, []))
            elif kind == "same as":  # sent twice in one batch: one decision, launched once
                results.append((_serialize_reply(recorded[item].reply), []))
            else:
                incoming, decision, _ = pending[item]
                self._notify(incoming.message, decision)
                if recorded[item].opened_by_hand:
                    self._watch_by_hand(incoming.message, recorded[item].run_id)
                results.append((_serialize_reply(recorded[item].reply),
                                list(zip(decision.launches, recorded[item].launch_run_ids))))
        return results

    def _decide_all(self, bodies, parsed, seen: dict, module, received_at):
        """Decisions for a batch, each from the state the one before left.
        Returns the items to record, what to answer each message with, and the final state."""
        state = self.state
        pending: list[tuple[Incoming, Decision, ManagerState]] = []
        outcome: list[tuple[str, object]] = []
        first_in_batch: dict[str, int] = {}
        for body, msg in zip(bodies, parsed):
            if isinstance(msg, MessageError):
                raw = body.raw if isinstance(body, Unreadable) else body
                self.logger.error(f"malformed message received: {msg}")
                incoming = Incoming(new_message_id(), received_at, None,
                                    raw=raw[:RAW_LIMIT].decode("utf-8", errors="backslashreplace"))
                decision = Decision(state, reply("malformed message", str(msg)), error=str(msg))
            elif msg.id in seen:
                self.logger.info(f"message {msg.id} from {msg.source} seen before; resending its reply")
                outcome.append(("stored", _serialize_reply(seen[msg.id])))
                continue
            elif msg.id in first_in_batch:
                outcome.append(("same as", first_in_batch[msg.id]))
                continue
            else:
                incoming = Incoming(msg.id or new_message_id(), received_at, msg)
                msg.id = incoming.message_id
                decision = decide(state, msg, self.config["message registry"], module, self.config)
                # a message the registry refuses belongs to no run (it must not open one that never ends)
                incoming.registered = msg.type != LAUNCH_REQUEST and decision.reply.type not in (
                    "unregistered worker", "unregistered message type")
                first_in_batch[msg.id] = len(pending)
            for level, logger_name, text in decision.log:
                logging.getLogger(logger_name).log(level, text)
            outcome.append(("decided", len(pending)))
            pending.append((incoming, decision, state))
            state = decision.state
        return pending, outcome, state

    def _watch_by_hand(self, msg: Message, run_id: int) -> None:
        """A worker started by hand that named its process: watch it, when it runs
        on this host, so a run it leaves open without a final message is seen to end."""
        if msg.host != host_socket.gethostname():
            self.logger.info(f"run {run_id} of {msg.source} was started by hand on {msg.host}: "
                             f"only its final message can end it")
            return
        self.children.adopt(run_id, msg.pid, msg.source, None)
        self.logger.info(f"watching run {run_id} of {msg.source} (pid {msg.pid}), started by hand")

    def _notify(self, msg: Message | None, decision: Decision) -> None:
        """Queue a Slack notification for a worker's report (posted off this loop);
        when the manager could not act on it (e.g. its after_ function failed),
        the notification says so — that is when an operator most needs to know."""
        if self.notifier is None or msg is None or msg.type in (NEED, CLEAR_CHECKLIST):
            return
        workers = self.config["message registry"]["workers"]
        description = (workers.get(msg.source) or {}).get(msg.type)
        if description is None:
            return
        if decision.error:
            description = f"{description}; manager replied ({decision.reply.type}): {decision.error}"
        self.notifier.notify(msg.source, msg.type, description)

    def write_checklist_file(self, force: bool = False) -> None:
        """Keep NEMO_Nowcast's checklist file as a view for people (the
        database is the truth): rewritten when the checklist changed, at most
        every CHECKLIST_FILE_SECONDS so a burst of messages does not rewrite it
        for each one, and on the way out."""
        now = time.monotonic()
        if not self._checklist_file_stale or (not force and now - self._checklist_file_written < CHECKLIST_FILE_SECONDS):
            return
        self._checklist_file_stale, self._checklist_file_written = False, now
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
            output = launcher.run_output(self.config, launch.worker, run_id, dt.datetime.now())
            process, copier = launcher.start(command, run_id, output)
        except NowcastError as err:
            self.logger.error(f"launch of {launch.module} on {launch.host} failed: {err}")
            self.store.mark_launch_failed(run_id, command, str(err))
            return
        limit = (self.config.worker_registry(launch.worker) or {}).get("time limit")
        self.children.add(run_id, process, launch.worker, launch.host,
                          launcher.parse_time_limit(limit) if limit is not None else None, copier)
        self.store.mark_started(run_id, process.pid, command, os.fspath(output.path))

    def reap(self) -> None:
        """Record exits; a worker that died without its final message, or ran
        past its ``time limit`` (terminated, then killed), is handled as that
        worker's crash so its after_ function's crash branch runs."""
        for child in self.children.overdue():
            limit = self.config.worker_registry(child.worker).get("time limit")
            self.logger.error(f"run {child.run_id} of {child.worker} passed its time limit ({limit}); terminating it")
            self.children.terminate(child)
            self.store.mark_timed_out(child.run_id, f"ran longer than its time limit ({limit}); terminated")
            self._handle_as_crash(child)
        self.children.kill_unresponsive()
        for child, code in self.children.reap():
            ssh_failed = child.remote and code == launcher.SSH_FAILED
            state = self.store.mark_exited(child.run_id, code, ssh_host=child.host if ssh_failed else None)
            level = logging.DEBUG if state in ("succeeded", "failed", "crashed", "timed out") and not ssh_failed \
                else logging.ERROR
            self.logger.log(level, f"run {child.run_id} process exited with code {code}; run {state}")
            if state == "died":
                self._handle_as_crash(child)

    def _handle_as_crash(self, child: launcher.Child) -> None:
        """Feed a synthesized crash message for the run through the same path as a real one."""
        if "crash" not in (self.config.worker_registry(child.worker) or {}):
            self.logger.warning(f"{child.worker} has no crash message type registered; run {child.run_id} "
                                f"ended without one and nothing follows it")
            return
        crash = Message(child.worker, "crash", None, id=new_message_id(), run_id=child.run_id)
        self.logger.info(f"handling run {child.run_id} of {child.worker} as a crash")
        for _, launches in self.handle_batch([crash.serialize().encode()], synthesized=True):
            for launch, run_id in launches:
                self.launch(launch, run_id)

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
                envelopes, bodies = [], []
                while len(bodies) < MAX_BATCH:
                    try:
                        frames = socket.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    envelope, parts = split_envelope(frames)
                    envelopes.append(envelope)
                    bodies.append(parts[0] if len(parts) == 1 else Unreadable(
                        f"message must be one frame, got {len(parts)}", b"\n".join(parts)))
                results = self.handle_batch(bodies)
                for envelope, (reply_bytes, _) in zip(envelopes, results):
                    socket.send_multipart(envelope + [reply_bytes])
                for _, launches in results:
                    for launch, run_id in launches:
                        self.launch(launch, run_id)
            self.reap()
            self.heartbeat()
            self.write_checklist_file()
            if self.reload_requested:
                self.reload_requested = False
                self.reload_config()
        self.write_checklist_file(force=True)

    def reload_config(self) -> None:
        """Re-read the config file (SIGHUP); a bad file keeps the current config running."""
        config = process.reload_logging("manager", self.config.file, self.logger)
        if config is None:
            return
        try:
            notifier = Notifier(config, self.logger) if self.notifier is not None else None
        except NowcastError as err:
            self.logger.error(f"config not reloaded, keeping the current one: {err}")
            return
        if self.notifier is not None:
            self.notifier.close(timeout=0)
        self.config, self.notifier = config, notifier
        self.next_workers = next_workers_module(config)
        self.logger.info(f"config reloaded from {config.file}")


@dataclass
class Unreadable:
    """A message refused before it is read (several frames), kept to be recorded and answered as malformed."""

    error: str
    raw: bytes


def _parse(body: bytes | Unreadable, max_bytes: int) -> Message | MessageError:
    if isinstance(body, Unreadable):
        return MessageError(body.error)
    try:
        return Message.deserialize(body, max_bytes)
    except MessageError as err:
        return err


_PLAIN_REPLIES: dict[str, bytes] = {}


def _serialize_reply(message: Message) -> bytes:
    """Replies without a payload are the same bytes every time: make them once."""
    if message.payload is not None:
        return message.serialize().encode()
    if message.type not in _PLAIN_REPLIES:
        _PLAIN_REPLIES[message.type] = message.serialize().encode()
    return _PLAIN_REPLIES[message.type]


def next_workers_module(config) -> NextWorkersModule:
    """The registry's next workers module, looked for beside the config file too."""
    return NextWorkersModule(config["message registry"]["next workers module"],
                             os.path.dirname(os.path.abspath(config.file)))


def split_envelope(frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Split ROUTER frames into the routing envelope (through the empty
    delimiter) and the body frames (one, for a well-formed message)."""
    cut = frames.index(b"") + 1 if b"" in frames else len(frames) - 1
    return frames[:cut], frames[cut:]
