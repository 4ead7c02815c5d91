"""Nowcast system messages and their YAML wire format.

A message is one YAML mapping ``{source, type, payload}`` in one ZeroMQ frame,
as in NEMO_Nowcast.  We add two optional keys, ``message id`` (so a retried
message is recognised) and ``run id`` (the run the manager gave the worker);
NEMO_Nowcast peers ignore them.  Only the safe YAML loader and dumper are used.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import yaml

from nowcast_db.errors import MessageError

try:  # the C implementations are several times faster
    from yaml import CSafeDumper as _Dumper
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - libyaml missing
    from yaml import SafeDumper as _Dumper
    from yaml import SafeLoader as _Loader

MESSAGE_ID_KEY = "message id"
RUN_ID_KEY = "run id"

# Limits on what the manager reads (hostile or broken senders): the size of
# the message, and the size and depth of what it holds once YAML aliases are
# followed (a few lines of aliases can stand for billions of values).
MAX_MESSAGE_BYTES = 1024 * 1024
MAX_VALUES = 100_000
MAX_DEPTH = 64
MAX_NAME_LENGTH = {"source": 200, "type": 200, MESSAGE_ID_KEY: 64}


@dataclass
class Message:
    """A message; compares by source, type and payload only."""

    source: str
    type: str
    payload: Any = None
    id: str | None = field(default=None, compare=False)
    run_id: int | None = field(default=None, compare=False)

    def serialize(self) -> str:
        document = {"source": self.source, "type": self.type, "payload": self.payload}
        if self.id is not None:
            document[MESSAGE_ID_KEY] = self.id
        if self.run_id is not None:
            document[RUN_ID_KEY] = self.run_id
        return dump_yaml(document, what=f"payload of ({self.type}) message from {self.source}")

    @classmethod
    def deserialize(cls, message: bytes | str, max_bytes: int = MAX_MESSAGE_BYTES) -> "Message":
        """Read a message; raises MessageError saying what is wrong with it."""
        size = len(message)
        if size > max_bytes:
            raise MessageError(f"message is {size:,} bytes; the limit is {max_bytes:,} (zmq: max message size)")
        if isinstance(message, bytes):
            try:
                message = message.decode("utf-8")
            except UnicodeDecodeError as err:
                raise MessageError(f"message is not UTF-8 text (bad byte at offset {err.start})") from None
        try:
            document = yaml.load(message, Loader=_Loader)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise MessageError(f"message is not valid YAML: {problem}") from None
        except RecursionError:
            raise MessageError("message is nested too deeply to read") from None
        if not isinstance(document, dict):
            raise MessageError(f"message must be a YAML mapping with source and type, got {type(document).__name__}")
        _check_shape(document)
        missing = [key for key in ("source", "type") if key not in document]
        if missing:
            raise MessageError(f"message has no {' or '.join(missing)} key")
        source, msg_type = document["source"], document["type"]
        for key, value in (("source", source), ("type", msg_type)):
            if not isinstance(value, str):
                raise MessageError(f"message {key} must be a string, got {type(value).__name__}")
        msg_id = document.get(MESSAGE_ID_KEY)
        for key, value in (("source", source), ("type", msg_type), (MESSAGE_ID_KEY, str(msg_id or ""))):
            if len(value) > MAX_NAME_LENGTH[key]:
                raise MessageError(f"message {key} is {len(value)} characters; the limit is {MAX_NAME_LENGTH[key]}")
        run_id = document.get(RUN_ID_KEY)
        return cls(
            source=source,
            type=msg_type,
            payload=document.get("payload"),
            id=str(msg_id) if msg_id is not None else None,
            run_id=run_id if isinstance(run_id, int) and not isinstance(run_id, bool) else None,
        )


def _check_shape(document) -> None:
    """Refuse documents whose values, counted with aliases followed, exceed
    MAX_VALUES or nest deeper than MAX_DEPTH — before anything expands them."""
    budget = MAX_VALUES
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise MessageError(f"message holds more than {MAX_VALUES:,} values once its YAML aliases are followed")
        if depth > MAX_DEPTH:
            raise MessageError(f"message is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, (list, tuple, set, frozenset)):
            stack.extend((item, depth + 1) for item in value)


def new_message_id() -> str:
    return uuid.uuid4().hex


def dump_yaml(value: Any, what: str = "value") -> str:
    """Safe-dump a value; anything YAML's safe loader could not read back is refused."""
    try:
        text = yaml.dump(value, Dumper=_Dumper, default_flow_style=False, allow_unicode=True)
    except yaml.representer.RepresenterError as err:
        bad = err.args[1] if len(err.args) > 1 else None
        kind = type(bad).__name__ if bad is not None else "a value"
        raise MessageError(
            f"{what} holds a {kind} ({bad!r}), which is not a plain YAML value; "
            f"convert it (for example with str()) before sending"
        ) from None
    try:  # e.g. tuple keys dump as sequences, which the safe loader refuses
        yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise MessageError(f"{what} would not read back as YAML ({problem}); use plain keys and values") from None
    return text
