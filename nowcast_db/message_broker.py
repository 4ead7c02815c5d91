"""Nowcast message broker: passes messages between workers and the manager.

python -m nowcast_db.message_broker CONFIG

A ROUTER socket on the workers port and a DEALER on the manager port, joined
by ``zmq.proxy``.  It keeps no state, so the manager can restart while workers
wait.  It binds to ``zmq: bind address`` when set, otherwise to loopback for
a system whose ``zmq: host`` is localhost and to every interface for any other.
"""
from __future__ import annotations

import zmq

from nowcast_db import process

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def bind_address(config) -> str:
    zmq_config = config["zmq"]
    if zmq_config.get("bind address"):
        return str(zmq_config["bind address"])
    return "127.0.0.1" if zmq_config["host"] in LOOPBACK_NAMES else "*"


def main(args=None) -> None:
    parser = process.arg_parser("message_broker", __doc__.splitlines()[0])
    parsed = parser.parse_args(args)
    config, logger = process.start("message_broker", parsed)
    context = zmq.Context.instance()
    workers = context.socket(zmq.ROUTER)
    manager = context.socket(zmq.DEALER)
    host = bind_address(config)
    try:
        for socket, port_name in ((workers, "workers"), (manager, "manager")):
            socket.setsockopt(zmq.LINGER, 0)
            port = config["zmq"]["ports"][port_name]
            socket.bind(f"tcp://{host}:{port}")
            logger.info(f"{'worker' if port_name == 'workers' else 'manager'} socket bound to port {port}")
    except zmq.ZMQError as err:
        logger.critical(f"cannot bind {host}:{port}: {err}")
        raise SystemExit(f"message_broker: error: cannot bind {host}:{port}: {err}") from None

    def stop():
        raise SystemExit(0)

    process.on_stop_signals(logger, stop)
    try:
        zmq.proxy(workers, manager)
    except (SystemExit, KeyboardInterrupt):
        pass
    except zmq.ContextTerminated:
        pass
    finally:
        workers.close()
        manager.close()
        context.term()


if __name__ == "__main__":
    main()
