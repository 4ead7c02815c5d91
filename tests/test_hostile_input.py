"""Hostile input: oversized messages, alias bombs, deep nesting, oversize frames
at the broker.  Each is answered (or, above the broker's cap, disconnected),
recorded truncated, and never stops anything."""
import time

import pytest
import yaml
import zmq

from conftest import raw_request
from nowcast_db.errors import MessageError
from nowcast_db.message import Message

ALIAS_BOMB = """source: sleep
type: success
payload:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
  i: [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_alias_bomb_is_refused_quickly_without_expanding_it():
    started = time.monotonic()
    with pytest.raises(MessageError, match="more than 100,000 values once its YAML aliases are followed"):
        Message.deserialize(ALIAS_BOMB.encode())
    assert time.monotonic() - started < 1


def test_self_referencing_payload_is_refused():
    with pytest.raises(MessageError, match="nested more than 64 levels|YAML aliases"):
        Message.deserialize(b"source: sleep\ntype: success\npayload: &loop [1, *loop]\n")


def test_deeply_nested_payload_is_refused():
    deep = "[" * 100 + "]" * 100
    with pytest.raises(MessageError, match="nested more than 64 levels"):
        Message.deserialize(f"source: sleep\ntype: success\npayload: {deep}\n".encode())


def test_overlong_message_id_is_refused():
    with pytest.raises(MessageError, match="message id is 65 characters; the limit is 64"):
        Message.deserialize(f"source: sleep\ntype: success\nmessage id: {'x' * 65}\n".encode())


def reply_type(frame: bytes) -> str:
    return yaml.safe_load(frame)["type"]


def test_manager_answers_and_records_hostile_messages_then_carries_on(running_toy):
    toy = running_toy
    big = b"source: sleep\ntype: success\npayload: '" + b"x" * (1024 * 1024) + b"'\n"
    started = time.monotonic()
    for frame, expected in ((big, "message is 1,048,"), (ALIAS_BOMB.encode(), "YAML aliases"),
                            (f"source: sleep\ntype: success\npayload: {'[' * 80}{']' * 80}\n".encode(), "nested")):
        reply = yaml.safe_load(raw_request(toy.workers_port, frame))
        assert reply["type"] == "malformed message" and expected in reply["payload"]
    assert time.monotonic() - started < 10
    raw_lengths = toy.sql("SELECT length(raw), reply_type FROM messages ORDER BY id")
    assert raw_lengths[0] == (64 * 1024, "malformed message")  # kept, truncated
    assert all(row[1] == "malformed message" for row in raw_lengths)
    assert reply_type(raw_request(toy.workers_port, b"source: sleep\ntype: failure\npayload: null\n")) == "ack"


def test_configured_message_size_limit(toy):
    toy.edit_config(lambda config: config["zmq"].update({"max message size": 100}))
    toy.start_system()
    reply = yaml.safe_load(raw_request(toy.workers_port, b"source: sleep\ntype: failure\npayload: " + b"y" * 200))
    assert reply["type"] == "malformed message" and "the limit is 100" in reply["payload"]


def test_broker_drops_a_connection_sending_more_than_its_cap(toy):
    toy.edit_config(lambda config: config["zmq"].update({"broker message size cap": 1000}))
    toy.start_system()
    context = zmq.Context.instance()
    socket = context.socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(f"tcp://127.0.0.1:{toy.workers_port}")
    socket.send(b"source: sleep\ntype: failure\npayload: '" + b"z" * 5000 + b"'\n")
    assert socket.poll(2000) == 0  # disconnected: no reply ever comes
    socket.close()
    assert toy.sql("SELECT count(*) FROM messages") == [(0,)]
    # the broker itself is fine and serves the next client
    assert reply_type(raw_request(toy.workers_port, b"source: sleep\ntype: failure\npayload: null\n")) == "ack"
    assert toy.processes["message_broker"].poll() is None
