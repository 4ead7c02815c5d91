"""NUL characters from a raw client — in garbage, in a payload, in a name —
get their proper replies and are recorded on SQLite and on PostgreSQL
(whose text and JSONB cannot hold NUL): a payload losslessly, what people
read (raw text, errors, requested by) with NUL shown as \\x00."""
import json

from conftest import both_backends, raw_message, raw_request
from nowcast_db.database.values import decode


@both_backends
def test_nul_characters_are_answered_and_recorded(toy):
    toy.start_system()
    garbage = raw_request(toy.workers_port, b"\x00\x01not yaml\x00: [")
    assert b"malformed message" in garbage
    payload = raw_request(toy.workers_port, b'source: sleep\ntype: success\npayload: {"k\\0ey": "val\\0ue"}\n'
                                            b'message id: nul-payload\n')
    assert b"type: ack" in payload
    name = raw_request(toy.workers_port, b'source: "sle\\0ep"\ntype: success\n')
    assert b"malformed message" in name and b"NUL" in name
    launch = raw_message(toy.workers_port, {"source": "operator", "type": "launch worker", "payload": {
        "module": "nowcast_db.workers.sleep", "args": ["--sleep-time", "0"], "requested by": "op\x00" + "x" * 500}})
    assert launch["type"] == "ack"
    after = raw_message(toy.workers_port, {"source": "sleep", "type": "success", "payload": {"plain": 1}})
    assert after["type"] == "ack"  # nothing above disturbed the manager

    rows = toy.sql("SELECT raw, error FROM messages WHERE reply_type = 'malformed message' ORDER BY id")
    stored, = toy.sql("SELECT payload FROM messages WHERE message_id = 'nul-payload'")[0]
    requested_by, = toy.sql("SELECT requested_by FROM worker_runs WHERE launched_by = 'operator'")[0]
    assert rows[0][0] == "\\x00\x01not yaml\\x00: ["  # only NUL is rewritten
    assert rows[1][1] == "message source holds a NUL character"
    if isinstance(stored, str):  # SQLite hands JSON back as text
        stored = json.loads(stored)
    assert decode(stored) == {"k\x00ey": "val\x00ue"}
    assert requested_by == "op\\x00" + "x" * 194  # 200 characters
