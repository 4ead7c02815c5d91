"""Hostile and broken input never stops the manager.

Each case is sent from a plain pyzmq REQ socket through the real broker to the
real manager.  For each one: the sender gets a reply within a few seconds, the
message is recorded in `messages` (with the error, and the raw text when it
could not be read), and the manager is still running and acks the next good
message.
"""
from __future__ import annotations


import pytest
import yaml
import zmq

from conftest import wait_until

REPLY_TIMEOUT_MS = 5000
# a good message whose after_ function launches nothing and leaves the checklist alone
PROBE = {"source": "awaken", "type": "failure", "payload": None}

RAISING_NEXT_WORKERS = '''\
def after_sleep(msg, config, checklist):
    raise RuntimeError("after_sleep is broken on purpose")


def after_awaken(msg, config, checklist):
    return []
'''
SYNTAX_ERROR_NEXT_WORKERS = '''\
def after_sleep(msg, config, checklist:
    return []
'''


# --- helpers ----------------------------------------------------------------

def request(toy, body: bytes | list[bytes]) -> dict:
    """Send one message (one frame, or several) on a REQ socket; return the reply as a dict."""
    socket = zmq.Context.instance().socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(f"tcp://127.0.0.1:{toy.workers_port}")
    try:
        if isinstance(body, list):
            socket.send_multipart(body)
        else:
            socket.send(body)
        assert socket.poll(REPLY_TIMEOUT_MS), f"no reply within {REPLY_TIMEOUT_MS} ms to {body!r:.100}"
        raw = socket.recv()
    finally:
        socket.close()
    reply = yaml.safe_load(raw.decode("utf-8"))
    assert isinstance(reply, dict) and reply.get("source") == "manager", f"reply is not a manager message: {raw!r}"
    assert {"type", "payload"} <= set(reply)
    return reply


def document(**message) -> bytes:
    return yaml.safe_dump(message).encode("utf-8")


def latest_message(toy) -> dict:
    rows = toy.sql("SELECT id, source, type, raw, reply_type, error FROM messages ORDER BY id DESC LIMIT 1")
    assert rows, "no row in messages"
    return dict(zip(("id", "source", "type", "raw", "reply_type", "error"), rows[0]))


def assert_manager_still_serves(toy) -> None:
    assert toy.processes["manager"].poll() is None, f"manager exited:\n{toy.log('manager')}"
    reply = request(toy, document(**PROBE))
    assert reply["type"] == "ack"
    row = latest_message(toy)
    assert (row["source"], row["type"], row["reply_type"], row["error"]) == ("awaken", "failure", "ack", None)


def assert_malformed_recorded(toy, reply: dict, raw: str | None = None) -> dict:
    """The reply says `malformed message`; the row keeps the raw text and the error."""
    assert reply["type"] == "malformed message"
    assert isinstance(reply["payload"], str) and reply["payload"]
    row = latest_message(toy)
    assert row["reply_type"] == "malformed message"
    assert row["error"], "error column empty for a malformed message"
    assert row["source"] is None and row["type"] is None
    if raw is not None:
        assert row["raw"] == raw
    assert row["raw"], "raw text not kept for an unreadable message"
    return row


# --- unreadable messages ----------------------------------------------------

def test_malformed_yaml_gets_malformed_message_and_raw_text_is_recorded(system):
    body = "source: sleep\ntype: [success\npayload: {sleep time: 3\n"

    reply = request(system, body.encode())

    row = assert_malformed_recorded(system, reply, raw=body)
    assert "YAML" in row["error"]
    assert_manager_still_serves(system)


@pytest.mark.parametrize("body", ["- source: sleep\n- type: success\n", "just a sentence\n", "42\n"],
                         ids=["list", "string-scalar", "int-scalar"])
def test_yaml_document_that_is_not_a_mapping_gets_malformed_message(system, body):
    reply = request(system, body.encode())

    row = assert_malformed_recorded(system, reply, raw=body)
    assert "mapping" in row["error"]
    assert_manager_still_serves(system)


def test_message_without_source_gets_malformed_message(system):
    body = document(type="success", payload={"sleep time": 3})

    reply = request(system, body)

    row = assert_malformed_recorded(system, reply, raw=body.decode())
    assert "source" in row["error"]
    assert system.sql("SELECT count(*) FROM checklist") == [(0,)]
    assert_manager_still_serves(system)


def test_message_without_type_gets_malformed_message(system):
    body = document(source="sleep", payload={"sleep time": 3})

    reply = request(system, body)

    row = assert_malformed_recorded(system, reply, raw=body.decode())
    assert "type" in row["error"]
    assert system.sql("SELECT count(*) FROM checklist") == [(0,)]
    assert_manager_still_serves(system)


def test_non_utf8_bytes_get_malformed_message_and_raw_text_keeps_the_bad_bytes_visible(system):
    body = b"source: sleep\ntype: success\npayload: caf\xe9 \xff\xfe\n"

    reply = request(system, body)

    row = assert_malformed_recorded(system, reply)
    assert "UTF-8" in row["error"]
    assert row["raw"].startswith("source: sleep\ntype: success\npayload: caf")
    assert "\\xe9" in row["raw"] and "\\xff\\xfe" in row["raw"]
    assert_manager_still_serves(system)


def test_multi_frame_message_gets_malformed_message_and_all_frames_are_recorded(system):
    frames = [document(source="sleep", type="success", payload=None), b"second frame"]

    reply = request(system, frames)

    row = assert_malformed_recorded(system, reply)
    assert "frame" in row["error"]
    assert "source: sleep" in row["raw"] and "second frame" in row["raw"]
    assert system.sql("SELECT count(*) FROM worker_runs") == [(0,)]
    assert_manager_still_serves(system)


def test_python_object_yaml_tag_is_not_executed_and_gets_malformed_message(system):
    marker = system.directory / "os_system_ran"
    body = (f"source: sleep\ntype: success\n"
            f"payload: !!python/object/apply:os.system [\"touch {marker}\"]\n")

    reply = request(system, body.encode())

    assert not marker.exists(), "the manager executed a python/object/apply tag"
    row = assert_malformed_recorded(system, reply, raw=body)
    assert "YAML" in row["error"]
    assert system.sql("SELECT count(*) FROM checklist") == [(0,)]
    assert system.sql("SELECT count(*) FROM worker_runs") == [(0,)]
    assert_manager_still_serves(system)
    assert not marker.exists()


# --- readable messages the manager must refuse --------------------------------

def test_unknown_worker_gets_unregistered_worker_and_is_recorded_with_error(system):
    reply = request(system, document(source="intruder", type="success", payload={"x": 1}))

    assert reply["type"] == "unregistered worker"
    row = latest_message(system)
    assert (row["source"], row["type"], row["reply_type"]) == ("intruder", "success", "unregistered worker")
    assert row["error"] and "intruder" in row["error"]
    assert system.sql("SELECT count(*) FROM checklist") == [(0,)]
    assert system.sql("SELECT count(*) FROM worker_runs") == [(0,)]
    assert_manager_still_serves(system)


def test_unknown_type_gets_unregistered_message_type_and_is_recorded_with_error(system):
    reply = request(system, document(source="sleep", type="sleepwalked", payload={"sleep time": 3}))

    assert reply["type"] == "unregistered message type"
    row = latest_message(system)
    assert (row["source"], row["type"], row["reply_type"]) == ("sleep", "sleepwalked", "unregistered message type")
    assert row["error"] and "sleepwalked" in row["error"]
    assert system.sql("SELECT count(*) FROM checklist") == [(0,)]
    # a refused message opens no run that would never end
    assert system.sql("SELECT run_id FROM messages WHERE type = 'sleepwalked'") == [(None,)]
    assert system.sql("SELECT count(*) FROM worker_runs WHERE worker = 'sleep'") == [(0,)]
    assert_manager_still_serves(system)


def test_need_for_a_key_not_in_the_checklist_gets_checklist_key_not_found(system):
    reply = request(system, document(source="awaken", type="need", payload="no such key"))

    assert reply["type"] == "checklist key not found"
    row = latest_message(system)
    assert (row["source"], row["type"], row["reply_type"]) == ("awaken", "need", "checklist key not found")
    assert row["error"] and "no such key" in row["error"]
    assert_manager_still_serves(system)


# --- a broken next_workers module -----------------------------------------------

def test_after_function_that_raises_gets_after_worker_function_failed_and_checklist_is_still_updated(system):
    system.write_next_workers(RAISING_NEXT_WORKERS)

    reply = request(system, document(source="sleep", type="success", payload={"sleep time": 7}))

    assert reply["type"] == "after_worker function failed"
    row = latest_message(system)
    assert (row["source"], row["type"], row["reply_type"]) == ("sleep", "success", "after_worker function failed")
    assert "RuntimeError" in row["error"] and "broken on purpose" in row["error"]
    assert system.sql("SELECT json(value) FROM checklist WHERE key = 'sleepyhead'") == [('{"sleep time":7}',)]
    assert system.sql("SELECT key, operation, json(after), message_id FROM checklist_mutations") == \
        [("sleepyhead", "set", '{"sleep time":7}', row["id"])]
    assert system.sql("SELECT count(*) FROM worker_runs WHERE launched_by = 'manager'") == [(0,)]
    assert_manager_still_serves(system)


def test_next_workers_syntax_error_gets_next_workers_module_failed_until_the_file_is_fixed(system):
    next_workers = system.directory / "next_workers.py"
    original = next_workers.read_text()
    system.write_next_workers(SYNTAX_ERROR_NEXT_WORKERS)

    reply = request(system, document(source="sleep", type="success", payload={"sleep time": 1}))

    assert reply["type"] == "next workers module failed"
    row = latest_message(system)
    assert (row["source"], row["type"], row["reply_type"]) == ("sleep", "success", "next workers module failed")
    assert "SyntaxError" in row["error"]
    assert system.sql("SELECT count(*) FROM worker_runs WHERE launched_by = 'manager'") == [(0,)]
    assert system.processes["manager"].poll() is None

    system.write_next_workers(original)
    reply = request(system, document(source="sleep", type="success", payload={"sleep time": 2}))

    assert reply["type"] == "ack"
    assert latest_message(system)["error"] is None
    wait_until(lambda: system.sql("SELECT 1 FROM worker_runs WHERE worker = 'awaken' AND launched_by = 'manager'"),
               what="awaken to be launched once next_workers.py is fixed")


# --- odd but valid payloads -----------------------------------------------------

def test_list_payload_for_a_dict_checklist_key_replaces_the_value_and_records_before_and_after(system):
    assert request(system, document(source="sleep", type="failure", payload={"sleep time": 3}))["type"] == "ack"

    reply = request(system, document(source="sleep", type="failure", payload=["not", "a", "dict"]))

    assert reply["type"] == "ack"
    row = latest_message(system)
    assert (row["reply_type"], row["error"]) == ("ack", None)
    assert system.sql("SELECT json(value) FROM checklist WHERE key = 'sleepyhead'") == [('["not","a","dict"]',)]
    assert system.sql("SELECT key, operation, json(before), json(after), message_id FROM checklist_mutations "
                      "ORDER BY id") == [
        ("sleepyhead", "set", None, '{"sleep time":3}', row["id"] - 1),
        ("sleepyhead", "replace", '{"sleep time":3}', '["not","a","dict"]', row["id"]),
    ]
    assert_manager_still_serves(system)


# --- all of it, one after another ------------------------------------------------

def test_manager_keeps_running_through_every_kind_of_bad_input_in_sequence(system):
    marker = system.directory / "os_system_ran"
    bad = [
        (b"source: sleep\ntype: [success\n", "malformed message"),
        (b"- a list\n- not a mapping\n", "malformed message"),
        (b"a scalar\n", "malformed message"),
        (document(type="success", payload=None), "malformed message"),
        (document(source="sleep", payload=None), "malformed message"),
        (b"source: sleep\ntype: success\npayload: \xff\n", "malformed message"),
        ([document(source="sleep", type="success", payload=None), b"more"], "malformed message"),
        (f'source: sleep\ntype: success\npayload: !!python/object/apply:os.system ["touch {marker}"]\n'.encode(),
         "malformed message"),
        (document(source="intruder", type="success", payload=None), "unregistered worker"),
        (document(source="sleep", type="sleepwalked", payload=None), "unregistered message type"),
        (document(source="awaken", type="need", payload="no such key"), "checklist key not found"),
        (document(source="rotate_logs", type="success", payload=None), "no after_worker function"),
    ]
    replies = [request(system, body)["type"] for body, _ in bad]
    system.write_next_workers(RAISING_NEXT_WORKERS)
    replies.append(request(system, document(source="sleep", type="failure", payload={"a": 1}))["type"])
    system.write_next_workers(SYNTAX_ERROR_NEXT_WORKERS)
    replies.append(request(system, document(source="sleep", type="failure", payload={"b": 2}))["type"])

    assert replies == [expected for _, expected in bad] + ["after_worker function failed", "next workers module failed"]
    assert not marker.exists()
    assert system.processes["manager"].poll() is None
    assert system.processes["message_broker"].poll() is None
    assert system.sql("SELECT count(*), count(error) FROM messages") == [(len(replies), len(replies))]
    assert system.sql("SELECT count(*) FROM messages WHERE raw IS NOT NULL") == [(8,)]

    system.write_next_workers(RAISING_NEXT_WORKERS)  # valid again: after_awaken returns []
    assert_manager_still_serves(system)
    assert system.processes["manager"].poll() is None
