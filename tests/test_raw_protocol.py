"""The wire protocol as a NEMO_Nowcast peer sees it.

The clients here are plain pyzmq sockets sending YAML documents
``{source, type, payload}``; the test bodies import nothing from nowcast_db,
so they pin what a worker written for NEMO_Nowcast, with none of our code,
gets back from our broker and manager, recording into SQLite and into
PostgreSQL.
"""
from __future__ import annotations

import json

import pytest
import yaml
import zmq

from conftest import both_backends, wait_until

pytestmark = both_backends

REPLY_TIMEOUT_MS = 5000
NEMO_REPLY_TYPES = {"ack", "checklist cleared", "unregistered worker", "unregistered message type",
                    "no after_worker function"}


# --- plain pyzmq clients ----------------------------------------------------

def req_send(port: int, body: bytes) -> bytes:
    """One request on a REQ socket, as NEMO_Nowcast's workers send it."""
    socket = zmq.Context.instance().socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(f"tcp://127.0.0.1:{port}")
    try:
        socket.send(body)
        assert socket.poll(REPLY_TIMEOUT_MS), f"no reply within {REPLY_TIMEOUT_MS} ms to {body[:80]!r}"
        return socket.recv()
    finally:
        socket.close()


def dealer_send(port: int, body: bytes) -> bytes:
    """One request on a DEALER socket that adds the empty delimiter frame itself."""
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(f"tcp://127.0.0.1:{port}")
    try:
        socket.send_multipart([b"", body])
        assert socket.poll(REPLY_TIMEOUT_MS), f"no reply within {REPLY_TIMEOUT_MS} ms to {body[:80]!r}"
        frames = socket.recv_multipart()
    finally:
        socket.close()
    assert len(frames) == 2 and frames[0] == b"", f"DEALER reply frames not [b'', body]: {frames!r}"
    return frames[1]


def read_reply(raw: bytes) -> dict:
    """A reply must be one YAML mapping from the manager with source, type and payload."""
    reply = yaml.safe_load(raw.decode("utf-8"))
    assert isinstance(reply, dict), f"reply is not a YAML mapping: {raw!r}"
    assert {"source", "type", "payload"} <= set(reply), f"reply lacks source/type/payload: {reply!r}"
    assert reply["source"] == "manager"
    return reply


def send(toy, document: dict) -> dict:
    return read_reply(req_send(toy.workers_port, yaml.safe_dump(document).encode("utf-8")))


def registry_manager_types(toy) -> set:
    return set(yaml.safe_load(toy.config_file.read_text())["message registry"]["manager"])


def last_message_row(toy, source: str, msg_type: str):
    rows = toy.sql("SELECT source, type, reply_type, error FROM messages WHERE source = ? AND type = ? "
                   "ORDER BY id DESC LIMIT 1", (source, msg_type))
    assert rows, f"no messages row for ({msg_type}) from {source}"
    return rows[0]


# --- the system under test --------------------------------------------------

# --- the tests --------------------------------------------------------------

def test_registered_worker_success_is_acked_and_recorded(system):
    reply = send(system, {"source": "sleep", "type": "success", "payload": {"sleep time": 3}})

    assert reply == {"source": "manager", "type": "ack", "payload": None}
    assert reply["type"] in registry_manager_types(system)
    assert last_message_row(system, "sleep", "success") == ("sleep", "success", "ack", None)
    wait_until(lambda: system.sql("SELECT 1 FROM worker_runs WHERE worker = 'awaken'"), what="awaken launch")


def test_need_is_acked_with_the_checklist_value_as_payload(system):
    send(system, {"source": "sleep", "type": "failure", "payload": {"sleep time": 3}})

    reply = send(system, {"source": "awaken", "type": "need", "payload": "sleepyhead"})

    assert reply == {"source": "manager", "type": "ack", "payload": {"sleep time": 3}}
    assert last_message_row(system, "awaken", "need") == ("awaken", "need", "ack", None)


def test_clear_checklist_request_is_answered_checklist_cleared_and_empties_the_checklist(system):
    send(system, {"source": "sleep", "type": "failure", "payload": {"sleep time": 3}})
    assert system.sql("SELECT key FROM checklist") == [("sleepyhead",)]

    reply = send(system, {"source": "clear_checklist", "type": "clear checklist", "payload": None})

    assert reply["type"] == "checklist cleared"
    assert reply["type"] in registry_manager_types(system)
    assert last_message_row(system, "clear_checklist", "clear checklist") == \
        ("clear_checklist", "clear checklist", "checklist cleared", None)
    assert system.sql("SELECT key FROM checklist") == []
    key, operation, before = system.sql(f"SELECT key, operation, {system.json_text('before')} "
                                        "FROM checklist_mutations ORDER BY id DESC LIMIT 1")[0]
    assert (key, operation, json.loads(before)) == ("sleepyhead", "clear", {"sleep time": 3})


def test_message_from_unknown_source_is_answered_unregistered_worker(system):
    reply = send(system, {"source": "no_such_worker", "type": "success", "payload": None})

    assert reply["type"] == "unregistered worker"
    assert reply["type"] in registry_manager_types(system)
    source, msg_type, reply_type, error = last_message_row(system, "no_such_worker", "success")
    assert reply_type == "unregistered worker"
    assert error and "no_such_worker" in error


def test_unknown_type_from_registered_worker_is_answered_unregistered_message_type(system):
    reply = send(system, {"source": "sleep", "type": "snored", "payload": None})

    assert reply["type"] == "unregistered message type"
    assert reply["type"] in registry_manager_types(system)
    source, msg_type, reply_type, error = last_message_row(system, "sleep", "snored")
    assert reply_type == "unregistered message type"
    assert error and "snored" in error


def test_registered_worker_without_after_function_is_answered_no_after_worker_function(system):
    # rotate_logs is in the toy registry, but the toy next_workers.py has no after_rotate_logs
    reply = send(system, {"source": "rotate_logs", "type": "success", "payload": {"log files": []}})

    assert reply["type"] == "no after_worker function"
    assert reply["type"] in registry_manager_types(system)
    source, msg_type, reply_type, error = last_message_row(system, "rotate_logs", "success")
    assert reply_type == "no after_worker function"
    assert error and "after_rotate_logs" in error


@pytest.mark.parametrize("flow_style", [False, None, True], ids=["block", "pyyaml-5-default", "pyyaml-3-flow"])
def test_nemo_era_document_made_with_yaml_dump_is_acked(system, flow_style):
    # NEMO_Nowcast's Message.serialize is yaml.dump of a plain dict (not safe_dump),
    # with whatever flow style the PyYAML of its day defaulted to
    document = {"source": "sleep", "type": "failure", "payload": {"sleep time": 3}}
    body = yaml.dump(document, default_flow_style=flow_style).encode("utf-8")

    reply = read_reply(req_send(system.workers_port, body))

    assert reply == {"source": "manager", "type": "ack", "payload": None}
    assert last_message_row(system, "sleep", "failure") == ("sleep", "failure", "ack", None)
    [(value,)] = system.sql(f"SELECT {system.json_text('value')} FROM checklist WHERE key = 'sleepyhead'")
    assert json.loads(value) == {"sleep time": 3}


def test_dealer_client_with_empty_delimiter_gets_the_same_reply_as_req(system):
    good = yaml.safe_dump({"source": "sleep", "type": "failure", "payload": None}).encode()
    unknown = yaml.safe_dump({"source": "stranger", "type": "success", "payload": None}).encode()

    for body in (good, unknown):
        from_dealer = read_reply(dealer_send(system.workers_port, body))
        from_req = read_reply(req_send(system.workers_port, body))
        assert from_dealer == from_req
    assert read_reply(dealer_send(system.workers_port, good))["type"] == "ack"
    assert system.sql("SELECT reply_type, count(*) FROM messages GROUP BY reply_type ORDER BY reply_type") == \
        [("ack", 3), ("unregistered worker", 2)]
