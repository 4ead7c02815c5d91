"""Nowcast system messages and their YAML wire format.

A message is one YAML mapping ``{source, type, payload}`` in one ZeroMQ frame,
as in NEMO_Nowcast.  We add optional keys, ``message id`` (so a retried
message is recognised), ``run id`` (the run the manager gave the worker) and,
from a worker the manager did not launch, ``pid`` and ``host`` (its process,
so the manager can see it end); NEMO_Nowcast peers ignore them.  Only the
safe YAML loader and dumper are used.
"""
from __future__ import annotations

import re
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
PID_KEY, HOST_KEY = "pid", "host"

# Limits on what the manager reads (hostile or broken senders): the size of
# the message, and the size and depth of what it holds once YAML aliases are
# followed (a few lines of aliases can stand for billions of values).
MAX_MESSAGE_BYTES = 1024 * 1024
MAX_VALUES = 100_000
MAX_DEPTH = 64
MAX_NAME_LENGTH = {"source": 200, "type": 200, MESSAGE_ID_KEY: 64, HOST_KEY: 200}


@dataclass
class Message:
    """A message; compares by source, type and payload only."""

    source: str
    type: str
    payload: Any = None
    id: str | None = field(default=None, compare=False)
    run_id: int | None = field(default=None, compare=False)
    # the sender's process, sent by a worker started by hand (no run id)
    pid: int | None = field(default=None, compare=False)
    host: str | None = field(default=None, compare=False)

    def serialize(self) -> str:
        document = {"source": self.source, "type": self.type, "payload": self.payload}
        if self.id is not None:
            document[MESSAGE_ID_KEY] = self.id
        if self.run_id is not None:
            document[RUN_ID_KEY] = self.run_id
        if self.pid is not None:
            document[PID_KEY], document[HOST_KEY] = self.pid, self.host
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
            document = _load(message)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise MessageError(f"message is not valid YAML: {problem}") from None
        except RecursionError:
            raise MessageError("message is nested too deeply to read") from None
        if not isinstance(document, dict):
            raise MessageError(f"message must be a YAML mapping with source and type, got {type(document).__name__}")
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
            if "\x00" in value:  # a name, and PostgreSQL text cannot hold it
                raise MessageError(f"message {key} holds a NUL character")
        run_id, pid, host = document.get(RUN_ID_KEY), document.get(PID_KEY), document.get(HOST_KEY)
        known_process = (_is_int(pid) and pid > 0 and isinstance(host, str) and 0 < len(host)
                         <= MAX_NAME_LENGTH[HOST_KEY] and "\x00" not in host)
        return cls(
            source=source,
            type=msg_type,
            payload=document.get("payload"),
            id=str(msg_id) if msg_id is not None else None,
            run_id=run_id if _is_int(run_id) else None,
            pid=pid if known_process else None,
            host=host if known_process else None,
        )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_STR, _MAP, _SEQ = "tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


class _Unusual(Exception):
    """The document uses something the plain builder leaves to PyYAML's own constructor."""


def _load(text: str):
    """``yaml.load(text, Loader=CSafeLoader)``, checked against MAX_VALUES and
    MAX_DEPTH, and faster for the messages the manager sees all day.

    A message written the way workers write them (see ``_load_simple``) is
    read line by line.  Otherwise libyaml parses and composes the node tree;
    plain mappings, sequences and scalars are then built from it here,
    counting values and depth as they go.  A document with anything else —
    an alias or anchor shared between nodes, a merge key, a non-default
    collection tag, an unhashable key — is built by PyYAML's safe constructor
    and checked afterwards, so the result is always exactly what the safe
    loader would return.
    """
    document = _load_simple(text)
    if document is not _NOT_SIMPLE:
        return document
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            return _Builder(loader).build(node, 1)
        except _Unusual:
            document = loader.construct_document(node)
            _check_shape(document)
            return document
    finally:
        loader.dispose()


# --- messages as workers write them -------------------------------------------
#
# ``yaml.dump`` of a message whose payload is a mapping of names to plain
# values (the usual case) is a block of ``key: value`` lines, nested mappings
# indented two spaces.  For such a text the only YAML rule left is how a
# plain scalar resolves (``yes`` is True, ``12:30`` is 750, ``2026-11-30`` a
# date): that is PyYAML's own resolver and constructors, called directly.
# Anything else — quotes, flow collections, sequences, comments, anchors,
# tags, block scalars, continuation lines, non-ASCII text, a key that is not a
# string, a document over 4 KiB — goes to the full loader.  A test compares
# the two on generated documents built to hit the edges.

_NOT_SIMPLE = object()
_SIMPLE_LIMIT = 4096
_SIMPLE_TEXT = re.compile(r"[A-Za-z0-9 _./+:\n-]*\Z")
_SIMPLE_LINE = re.compile(
    r"((?:  )*)"  # indentation, two spaces a level
    r"([A-Za-z0-9_](?:[A-Za-z0-9 _./+-]*[A-Za-z0-9_./+-])?):"  # key, no colon, no space at either end
    r"(?: (-?[A-Za-z0-9_./+](?:[A-Za-z0-9 _./+:-]*[A-Za-z0-9_./+-])?))?\Z")  # value, not ending in a colon
_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_SCALAR_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float", "timestamp")}


def _load_simple(text: str):
    """The document, when ``text`` is a block of ``key: value`` lines; else _NOT_SIMPLE."""
    if len(text) > _SIMPLE_LIMIT or not _SIMPLE_TEXT.match(text):
        return _NOT_SIMPLE
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines:
        return _NOT_SIMPLE
    root: dict = {}
    open_mappings = [(0, root)]  # (indentation, mapping), innermost last
    empty = None  # (indentation, mapping, key) of the last line, when it had no value
    for line in lines:
        match = _SIMPLE_LINE.match(line)
        if match is None:
            return _NOT_SIMPLE
        indent, key, value = len(match[1]), match[2], match[3]
        if empty is not None and indent == empty[0] + 2:  # the key above holds a mapping
            child = empty[1][empty[2]] = {}
            open_mappings.append((indent, child))
            if len(open_mappings) >= MAX_DEPTH // 2:  # let the full loader say how deep is too deep
                return _NOT_SIMPLE
        while open_mappings[-1][0] > indent:
            open_mappings.pop()
        if open_mappings[-1][0] != indent:
            return _NOT_SIMPLE
        mapping = open_mappings[-1][1]
        if _resolve(key) is not str:
            return _NOT_SIMPLE
        if value is None:
            mapping[key], empty = None, (indent, mapping, key)
            continue
        empty = None
        if ": " in value:
            return _NOT_SIMPLE
        scalar = _resolve(value)
        if scalar is _NOT_SIMPLE:
            return _NOT_SIMPLE
        mapping[key] = value if scalar is str else scalar
    return root


def _resolve(value: str):
    """``str`` for a plain scalar that stays a string; else its value as
    PyYAML's safe loader constructs it, or _NOT_SIMPLE for a tag left to it."""
    if value[0] not in _RESOLVER.yaml_implicit_resolvers:  # PyYAML looks its resolvers up by first character
        return str
    tag = _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))
    if tag == _STR:
        return str
    if tag not in _SCALAR_TAGS:
        return _NOT_SIMPLE
    return _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, yaml.ScalarNode(tag, value))


class _Builder:
    def __init__(self, loader):
        self.loader = loader
        self.budget = MAX_VALUES
        self.seen: set[int] = set()

    def build(self, node, depth: int):
        self.budget -= 1
        if self.budget < 0:
            raise MessageError(f"message holds more than {MAX_VALUES:,} values once its YAML aliases are followed")
        if depth > MAX_DEPTH:
            raise MessageError(f"message is nested more than {MAX_DEPTH} levels deep")
        if id(node) in self.seen:  # an alias: the safe constructor shares the object, and the check counts it
            raise _Unusual
        self.seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR:
                return node.value
            return self.loader.construct_object(node)
        if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
            return [self.build(item, depth + 1) for item in node.value]
        if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
            mapping = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise _Unusual
                key = self.build(key_node, depth + 1)
                try:
                    hash(key)
                except TypeError:
                    raise _Unusual from None
                mapping[key] = self.build(value_node, depth + 1)
            return mapping
        raise _Unusual


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
