"""The durable floor: the least a Python responder can do and still keep every
message before answering it.  Every message waiting on the socket is stored
as it came (its bytes, one row each, no parsing, no index but the row id) in
one SQLite transaction (WAL, synchronous=FULL, as the manager's), committed,
then each is answered with a fixed ack.

python bench/durable_responder.py MANAGER_PORT DATABASE_FILE

What the manager adds on top of this is its own work (parsing, deciding,
the history's tables and indexes); what this adds on top of the no-op
responder is the price of durability in Python on this machine.
"""
import signal
import sqlite3
import sys

import zmq

REPLY = b"payload: null\nsource: manager\ntype: ack\n"


def main():
    database = sqlite3.connect(sys.argv[2], isolation_level=None)
    database.execute("PRAGMA journal_mode=WAL")
    database.execute("PRAGMA synchronous=FULL")
    database.execute("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, body BLOB)")
    context = zmq.Context.instance()
    socket = context.socket(zmq.ROUTER)
    socket.connect(f"tcp://127.0.0.1:{sys.argv[1]}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        waiting = [socket.recv_multipart()]
        while socket.poll(0):
            waiting.append(socket.recv_multipart())
        database.execute("BEGIN IMMEDIATE")
        database.executemany("INSERT INTO messages (body) VALUES (?)", [(frames[-1],) for frames in waiting])
        database.execute("COMMIT")
        for frames in waiting:
            socket.send_multipart(frames[:-1] + [REPLY])


if __name__ == "__main__":
    main()
