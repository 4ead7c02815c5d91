"""Worker run states, in the operator's words."""
from __future__ import annotations

LAUNCHED_BY = ("manager", "scheduler", "operator", "external")
STATES = ("pending", "running", "succeeded", "failed", "crashed", "died", "timed out", "lost")
OPEN_STATES = ("pending", "running")

_FINAL_PREFIXES = (("success", "succeeded"), ("failure", "failed"), ("crash", "crashed"))


def final_state(message_type: str) -> str | None:
    """The state a run ends in when it sends this message type, or None when
    the type does not end a run.  Systems use types like ``success 2.5km 06``."""
    for prefix, state in _FINAL_PREFIXES:
        if message_type.startswith(prefix):
            return state
    return None
