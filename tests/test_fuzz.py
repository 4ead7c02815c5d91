"""Fuzz: 10,000 generated hostile messages from plain pyzmq clients.  The
manager stays alive, answers every one, records every one, and the database
stays consistent.  Bounded: a fixed seed and count (30 s to 95 s per backend
on the 2-core machines here)."""
import random
import threading

import yaml
import zmq

from conftest import both_backends

COUNT = 10_000
CLIENTS = 4
SOURCES = ["sleep", "awaken", "rotate_logs", "nobody", "", "sleep\x00", "m" * 300]
TYPES = ["success", "failure", "crash", "need", "bogus", "", "launch worker", "t" * 300]


def random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(9 if depth < 4 else 5)
    if kind == 0:
        return rng.randint(-2**70, 2**70)
    if kind == 1:
        return rng.random() * 1e300
    if kind == 2:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(20)))
    if kind == 3:
        return None
    if kind == 4:
        return rng.choice([True, False, "2026-11-29", "12:30", "~", "null", "!!python/object"])
    if kind in (5, 6):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {str(random_value(rng, depth + 1))[:20]: random_value(rng, depth + 1) for _ in range(rng.randrange(5))}


def hostile(rng: random.Random, n: int) -> bytes:
    kind = n % 10
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 200))
    if kind == 1:
        return b"source: sleep\ntype: [success\npayload: {" + rng.randbytes(10)
    if kind == 2:
        return ("source: sleep\ntype: success\npayload:\n  a: &a [" + ",".join(["x"] * 30) + "]\n"
                + "".join(f"  b{i}: &b{i} [" + ",".join([f"*{'a' if i == 0 else f'b{i - 1}'}"] * 30) + "]\n"
                          for i in range(4))).encode()
    if kind == 3:
        return ("source: sleep\ntype: success\npayload: " + "[" * 200 + "]" * 200 + "\n").encode()
    if kind == 4:
        return yaml.safe_dump(rng.choice([[1, 2], "text", 42, None, {"source": 1, "type": 2}])).encode()
    if kind == 5:
        return yaml.safe_dump({"source": rng.choice(SOURCES), "type": rng.choice(TYPES),
                               "payload": random_value(rng)}).encode()
    if kind == 6:
        return yaml.safe_dump({"source": "operator", "type": "launch worker",
                               "payload": random_value(rng)}).encode()
    if kind == 7 and n % 500 == 7:
        return b"source: sleep\ntype: success\npayload: '" + b"x" * (1024 * 1024 + 10) + b"'\n"
    if kind == 8:
        return yaml.safe_dump({"source": "sleep", "type": "need", "payload": random_value(rng)}).encode()
    return yaml.safe_dump({"source": "sleep", "type": rng.choice(["success", "failure"]),
                           "payload": {"sleep time": rng.randrange(100)}}).encode()


@both_backends
def test_ten_thousand_hostile_messages_are_all_answered_and_recorded(toy):
    toy.register_need("sleep")
    toy.write_next_workers("def after_sleep(msg, config, checklist):\n    return []\n"
                           "def after_awaken(msg, config, checklist):\n    return []\n")
    toy.start_system()
    replies: list[bytes] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        rng = random.Random(index)
        socket = zmq.Context.instance().socket(zmq.REQ)
        socket.setsockopt(zmq.LINGER, 0)
        socket.connect(f"tcp://127.0.0.1:{toy.workers_port}")
        try:
            for n in range(index, COUNT, CLIENTS):
                socket.send(hostile(rng, n))
                assert socket.poll(10_000), f"no reply to message {n}"
                reply = socket.recv()
                with lock:
                    replies.append(reply)
        finally:
            socket.close()

    threads = [threading.Thread(target=client, args=(index,)) for index in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert len(replies) == COUNT
    types = {yaml.safe_load(reply)["type"] for reply in replies}
    assert "ack" in types and "malformed message" in types and "unregistered worker" in types
    assert "manager error" not in types  # nothing the database could not store (NUL, huge numbers, ...)
    assert toy.processes["manager"].poll() is None
    assert toy.sql("SELECT count(*) FROM messages") == [(COUNT,)]
    if toy.backend == "sqlite":  # PostgreSQL enforces foreign keys on every statement itself
        assert toy.sql("PRAGMA integrity_check") == [("ok",)]
        assert toy.sql("PRAGMA foreign_key_check") == []
    # the checklist table is the fold of the recorded mutations
    folded = {}
    for key, operation, after in toy.sql("SELECT key, operation, after FROM checklist_mutations ORDER BY id"):
        if operation == "clear":
            folded.pop(key, None)
        else:
            folded[key] = after
    assert dict(toy.sql("SELECT key, value FROM checklist")) == folded
    assert folded, "no good message changed the checklist: the generator is broken"
