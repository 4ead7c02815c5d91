"""The transport floor: answers every message at once with a fixed ack, doing no work.

python bench/noop_responder.py MANAGER_PORT
"""
import signal
import sys

import zmq

REPLY = b"payload: null\nsource: manager\ntype: ack\n"


def main():
    context = zmq.Context.instance()
    socket = context.socket(zmq.ROUTER)
    socket.connect(f"tcp://127.0.0.1:{sys.argv[1]}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        frames = socket.recv_multipart()
        socket.send_multipart(frames[:-1] + [REPLY])


if __name__ == "__main__":
    main()
