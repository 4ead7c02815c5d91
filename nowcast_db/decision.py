"""The manager's decision core: pure, no I/O.

``decide(state, msg, config, next_workers)`` returns what the manager must do
for one message: the new state, the reply, the checklist mutations, the
launches and the log lines.  The live manager and ``nowcast replay`` both call
it, which is what makes replay exact.  It never writes anything itself.

Race-condition holds (an ``after_`` function returned ``(launches, workers)``):
the launches are held until every named worker has reported, then released
together with whatever those workers' own ``after_`` functions returned
meanwhile.  Unlike NEMO_Nowcast, several holds may be pending at once and a
held launch is never dropped: a report counts for *every* pending hold that
names its worker, and the reporting worker's own launches join the oldest of
those holds.  A worker that names itself counts as having reported already.
An empty set starts no hold.
"""
from __future__ import annotations

import copy
import logging
import pprint
import traceback
from dataclasses import dataclass, field, replace
from typing import Any

from nowcast_db.message import Message

MANAGER = "manager"

# Reply types beyond the registry's `manager` section.  Each tells the sender
# plainly what went wrong; the payload is the explanation.
EXTRA_REPLY_TYPES = {
    "malformed message": "ERROR - message could not be read (not UTF-8, not YAML, not a mapping, "
    "no source or type, or too large)",
    "checklist key not found": "ERROR - need message asked for a checklist key that is not in the checklist",
    "after_worker function failed": "ERROR - after_worker function raised an exception or returned "
    "something that is not a list of next workers",
    "next workers module failed": "ERROR - next workers module could not be imported",
    "launch refused": "ERROR - launch request refused (worker not registered, bad arguments or unknown host)",
    "manager error": "ERROR - the manager could not record the message (database refused), so did not act on it",
}

# Message types that do not end a run; every other type is a report the
# after_ function sees.
NEED = "need"
CLEAR_CHECKLIST = "clear checklist"
# A client (scheduler, `nowcast launch`, nowcast-tui) asks the manager to
# launch a registered worker; see launch_request.py for the message.
LAUNCH_REQUEST = "launch worker"
REQUESTED_BY_LENGTH = 200


@dataclass(frozen=True)
class Launch:
    """A worker to start: its module, arguments and host."""

    module: str
    args: tuple[str, ...] = ()
    host: str = "localhost"
    # message id of the message whose after_ function (or launch request) decided this launch
    decided_by: str | None = field(default=None, compare=False)
    launched_by: str = field(default="manager", compare=False)
    requested_by: str | None = field(default=None, compare=False)

    @property
    def worker(self) -> str:
        return self.module.rsplit(".", 1)[-1]

    def as_dict(self) -> dict:
        return {"module": self.module, "args": list(self.args), "host": self.host, "decided by": self.decided_by}

    @classmethod
    def from_dict(cls, data: dict) -> "Launch":
        return cls(data["module"], tuple(data.get("args") or ()), data.get("host", "localhost"), data.get("decided by"))


@dataclass(frozen=True)
class Hold:
    """Launches held until every worker in ``waiting_for`` has reported."""

    waiting_for: frozenset[str]
    launches: tuple[Launch, ...] = ()
    started_by: str = ""

    def as_dict(self) -> dict:
        return {
            "waiting for": sorted(self.waiting_for),
            "launches": [launch.as_dict() for launch in self.launches],
            "started by": self.started_by,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Hold":
        return cls(
            frozenset(data["waiting for"]),
            tuple(Launch.from_dict(item) for item in data["launches"]),
            data.get("started by", ""),
        )


@dataclass(frozen=True)
class ManagerState:
    checklist: dict = field(default_factory=dict)
    holds: tuple[Hold, ...] = ()


@dataclass(frozen=True)
class Mutation:
    """A change to one checklist key.  ``operation`` is update, replace, set or clear."""

    key: Any
    operation: str
    before: Any
    after: Any


@dataclass
class Decision:
    state: ManagerState
    reply: Message
    mutations: list[Mutation] = field(default_factory=list)
    launches: list[Launch] = field(default_factory=list)
    error: str | None = None
    log: list[tuple[int, str, str]] = field(default_factory=list)
    # the reply's payload is to carry the run id of the (single) launch
    reply_with_run_id: bool = False


def reply(msg_type: str, payload: Any = None) -> Message:
    return Message(MANAGER, msg_type, payload)


def decide(state: ManagerState, msg: Message, registry: dict, next_workers: Any, config: Any = None) -> Decision:
    """Decide what to do for one message.

    ``registry`` is the config's ``message registry`` section; ``next_workers``
    is the loaded next workers module, or the exception that loading it raised.
    ``config`` is handed to ``after_`` functions.
    """
    workers = registry.get("workers") or {}
    if msg.type == LAUNCH_REQUEST:
        return _launch_request(state, msg, workers, config)
    if msg.source not in workers:
        return _error(state, "unregistered worker", f"message received from unregistered worker: {msg.source}")
    worker_types = workers[msg.source] or {}
    if msg.type not in worker_types:
        return _error(
            state,
            "unregistered message type",
            f"unregistered message type received from {msg.source} worker: {msg.type}",
        )
    received = (logging.DEBUG, MANAGER, f"received message from {msg.source}: ({msg.type}) {worker_types[msg.type]}")
    if msg.type == NEED:
        return _need(state, msg, received)
    if msg.type == CLEAR_CHECKLIST:
        return _clear_checklist(state, received)
    return _report(state, msg, worker_types, next_workers, config, received)


def _error(state: ManagerState, reply_type: str, text: str, log: list | None = None) -> Decision:
    lines = (log or []) + [(logging.ERROR, MANAGER, text)]
    return Decision(state, reply(reply_type, text), error=text, log=lines)


def _launch_request(state: ManagerState, msg: Message, workers: dict, config) -> Decision:
    payload = msg.payload if isinstance(msg.payload, dict) else {}
    module, args, host = payload.get("module"), payload.get("args") or [], payload.get("host") or "localhost"
    # recorded in worker_runs.requested_by: a name of bounded length, without NULs (PostgreSQL text has none)
    requested_by = str(payload.get("requested by") or msg.source).replace("\x00", "\\x00")[:REQUESTED_BY_LENGTH]
    problem = None
    if not isinstance(module, str) or not module.strip(".") or " " in module:
        problem = f"payload must give the worker's module (dotted name), got {module!r}"
    elif module.rsplit(".", 1)[-1] not in workers:
        problem = f"worker {module.rsplit('.', 1)[-1]!r} is not in the message registry"
    elif not isinstance(args, list) or not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in args):
        problem = f"args must be a list of strings, got {args!r}"
    elif not isinstance(host, str):
        problem = f"host must be a string, got {host!r}"
    elif host not in ("localhost", "127.0.0.1") and config is not None and host not in _enabled_hosts(config):
        problem = f"host {host!r} is not in the config's run: enabled hosts"
    if problem:
        return _error(state, "launch refused", f"launch request from {requested_by} refused: {problem}")
    launched_by = "scheduler" if msg.source == "scheduler" else "operator"
    launch = Launch(module, tuple(str(a) for a in args), host, decided_by=msg.id,
                    launched_by=launched_by, requested_by=requested_by)
    line = (logging.INFO, MANAGER, f"launch of {module} {' '.join(launch.args)} on {host} requested by {requested_by}")
    return Decision(state, reply("ack"), launches=[launch], log=[line], reply_with_run_id=True)


def _enabled_hosts(config) -> dict:
    run = config.get("run") if hasattr(config, "get") else None
    hosts = run.get("enabled hosts") if isinstance(run, dict) else None
    return hosts if isinstance(hosts, dict) else {}


def _need(state: ManagerState, msg: Message, received) -> Decision:
    key = msg.payload
    try:
        value = state.checklist[key]
    except (KeyError, TypeError):
        return _error(state, "checklist key not found", f"need message from {msg.source}: checklist has no key {key!r}", [received])
    return Decision(state, reply("ack", copy.deepcopy(value)), log=[received])


def _clear_checklist(state: ManagerState, received) -> Decision:
    mutations = [Mutation(key, "clear", value, None) for key, value in state.checklist.items()]
    log = [
        received,
        (logging.INFO, "checklist", f"checklist:\n{pprint.pformat(state.checklist)}"),
        (logging.INFO, MANAGER, "checklist cleared"),
    ]
    return Decision(replace(state, checklist={}), reply("checklist cleared"), mutations, log=log)


def _report(state, msg, worker_types, next_workers, config, received) -> Decision:
    log = [received]
    checklist, mutations = state.checklist, []
    if msg.payload is not None:
        checklist, mutation, line = update_checklist(state.checklist, msg, worker_types)
        log.append(line)
        if mutation is not None:
            mutations.append(mutation)
    state = replace(state, checklist=checklist)

    if isinstance(next_workers, BaseException):
        text = f"next workers module failed to load: {one_line(next_workers)}"
        return Decision(state, reply("next workers module failed", text), mutations, error=text,
                        log=log + [(logging.ERROR, MANAGER, text)])
    after = getattr(next_workers, f"after_{msg.source}", None)
    if after is None:
        text = f"no after_{msg.source} function in next workers module"
        return Decision(state, reply("no after_worker function", text), mutations, error=text,
                        log=log + [(logging.ERROR, MANAGER, text)])
    try:
        result = after(msg, config, copy.deepcopy(checklist))
        launches, racers = _read_after_result(result, msg)
    except Exception as err:  # a bug in the system's next_workers module
        text = f"after_{msg.source} failed: {one_line(err)}"
        detail = "".join(traceback.format_exception(err)).rstrip()
        return Decision(state, reply("after_worker function failed", text), mutations, error=text,
                        log=log + [(logging.ERROR, MANAGER, f"{text}\n{detail}")])
    state, to_launch, hold_log = _apply_holds(state, msg, launches, racers)
    log += hold_log
    return Decision(state, reply("ack"), mutations, to_launch, log=log)


def update_checklist(checklist: dict, msg: Message, worker_types: dict):
    """Fold a payload into the checklist at the worker's checklist key."""
    key = worker_types.get("checklist key")
    if key is None:
        return checklist, None, (
            logging.WARNING, MANAGER,
            f"payload from {msg.source} not kept: no checklist key for it in the message registry",
        )
    before = checklist.get(key)
    if isinstance(before, dict) and isinstance(msg.payload, dict):
        after = {**before, **msg.payload}
        operation = "update"
    else:
        after = msg.payload
        operation = "set" if key not in checklist else "replace"
    new = dict(checklist)
    new[key] = after
    line = (logging.INFO, MANAGER, f"checklist updated with [{key}] items from {msg.source} worker")
    return new, Mutation(key, operation, before, after), line


def _read_after_result(result, msg: Message) -> tuple[list[Launch], frozenset[str]]:
    racers: frozenset[str] = frozenset()
    if isinstance(result, tuple):
        if len(result) != 2:
            raise TypeError(f"returned a tuple of {len(result)} items; expected (next workers, race condition workers)")
        result, racer_names = result
        if racer_names is None:
            racer_names = ()
        if isinstance(racer_names, (str, bytes)) or not isinstance(racer_names, (set, frozenset, list, tuple)):
            raise TypeError(f"returned race condition workers {racer_names!r}; expected a set of worker names")
        if not all(isinstance(name, str) for name in racer_names):
            raise TypeError(f"returned race condition workers {racer_names!r}; expected worker names as strings")
        racers = frozenset(racer_names)
    if result is None:
        result = []
    if not isinstance(result, (list, tuple)):
        raise TypeError(f"returned {type(result).__name__}; expected a list of NextWorker")
    return [_as_launch(item, msg) for item in result], racers


def _as_launch(item, msg: Message) -> Launch:
    try:
        module, args, host = item.module, item.args, item.host
    except AttributeError:
        raise TypeError(f"returned {item!r}, which has no module, args and host") from None
    if not isinstance(module, str) or not module:
        raise TypeError(f"returned a next worker whose module is {module!r}; expected a dotted module name")
    if isinstance(args, str) or not isinstance(args, (list, tuple)):
        raise TypeError(f"returned next worker {module} with args {args!r}; expected a list")
    return Launch(module, tuple(str(arg) for arg in args), str(host or "localhost"), decided_by=msg.id)


def _apply_holds(state: ManagerState, msg: Message, launches: list[Launch], racers: frozenset[str]):
    log = []
    holds = list(state.holds)
    to_launch: list[Launch] = []
    if racers:
        holds.append(Hold(racers, tuple(launches), started_by=msg.id or ""))
        log.append((logging.INFO, MANAGER, f"starting race condition management for workers: {sorted(racers)}"))
        launches = []
    if launches:
        waiting = [i for i, hold in enumerate(holds) if msg.source in hold.waiting_for]
        if waiting:
            first = waiting[0]
            holds[first] = replace(holds[first], launches=holds[first].launches + tuple(launches))
        else:
            to_launch.extend(launches)
    still_held = []
    for hold in holds:
        if msg.source in hold.waiting_for:
            hold = replace(hold, waiting_for=hold.waiting_for - {msg.source})
            log.append((logging.INFO, MANAGER, f"race condition: {msg.source} reported"))
        if hold.waiting_for:
            still_held.append(hold)
        else:
            log.append((logging.INFO, MANAGER, "race condition management complete; releasing held launches"))
            to_launch.extend(hold.launches)
    if still_held:
        names = sorted(set().union(*(hold.waiting_for for hold in still_held)))
        log.append((logging.DEBUG, MANAGER, f"race condition management: waiting for {names}"))
    return replace(state, holds=tuple(still_held)), to_launch, log


def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    detail = text[0] if text else ""
    if isinstance(err, SyntaxError) and err.filename:
        detail = f"{err.msg} ({err.filename}, line {err.lineno})"
    return f"{type(err).__name__}: {detail}" if detail else type(err).__name__
