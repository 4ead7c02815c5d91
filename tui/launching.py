"""Asking the manager for a launch, and saying plainly what happened.

The TUI never starts a process: it sends the same launch request as
`nowcast launch`, so the run is recorded (``launched_by = operator``) and
started by the manager like any other.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from nowcast_db.client import ManagerClient, ManagerUnreachable
from nowcast_db.errors import NowcastError
from nowcast_db.launch_request import LaunchRefused, launch_message, request_launch
from nowcast_db.message import Message

#: the operator is waiting at the screen: give up soon and say so
REPLY_TIMEOUT = 5.0
GIVE_UP_AFTER = 5.0
NEEDS_CONFIG = ("cannot launch: launching needs the system's config file (nowcast-tui CONFIG); "
                "this nowcast-tui was started with --db alone")


@dataclass(frozen=True)
class LaunchOutcome:
    run_id: int | None
    text: str

    @property
    def ok(self) -> bool:
        return self.run_id is not None


class LaunchRequests:
    """The launch requests this nowcast-tui sent that the manager has not
    answered, by what they launch.

    An unanswered request may still be waiting in the broker, to be acted on
    when the manager is back.  Asking for the same launch again (same module,
    arguments and host, from any dialog) sends that same request again, with
    its message id: the manager launches it once, and answers a repeat of one
    it has acted on with the run it recorded."""

    def __init__(self):
        self._unanswered: dict[tuple, Message] = {}
        self._lock = threading.Lock()  # dialogs send from their own threads

    def message_for(self, module: str, args: list[str], host: str) -> Message:
        with self._lock:
            key = (module, tuple(args), host)
            if key not in self._unanswered:
                self._unanswered[key] = launch_message(module, args, host, source="operator")
            return self._unanswered[key]

    def answered(self, message: Message) -> None:
        with self._lock:
            self._unanswered = {key: sent for key, sent in self._unanswered.items() if sent is not message}


def relaunch(config, module: str, args: list[str], host: str, requests: LaunchRequests) -> LaunchOutcome:
    if config is None:
        return LaunchOutcome(None, NEEDS_CONFIG)
    try:
        message = requests.message_for(module, args, host)
        client = ManagerClient(config, reply_timeout=REPLY_TIMEOUT, give_up_after=GIVE_UP_AFTER)
        try:
            run_id = request_launch(config, message, client)
        finally:
            client.close()
    except LaunchRefused as err:
        requests.answered(message)
        return LaunchOutcome(None, f"manager refused: {err}")
    except ManagerUnreachable as err:
        return LaunchOutcome(None, f"manager not answering: {err}. The request may still be waiting in the "
                                   f"broker and run when the manager is back; Launch again sends this same "
                                   f"request, which the manager acts on once")
    except NowcastError as err:
        return LaunchOutcome(None, f"cannot launch: {err}")
    requests.answered(message)
    return LaunchOutcome(run_id, f"launched as run {run_id}")


def registered_workers(config) -> list[str]:
    """The workers in the config's message registry, in the order written."""
    workers = (config.get("message registry") or {}).get("workers") or {} if config is not None else {}
    return [str(name) for name in workers] if isinstance(workers, dict) else []


def module_of(config, worker: str) -> str | None:
    """The module to launch a registered worker with: the one its last run
    used, or a built-in worker's; None when neither is known."""
    from nowcast_db.cli import resolve_worker_module

    try:
        return resolve_worker_module(config, worker)
    except NowcastError:
        return None
