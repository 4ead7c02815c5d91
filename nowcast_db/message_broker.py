"""Nowcast message broker: passes messages between workers and the manager.

python -m nowcast_db.message_broker CONFIG

A ROUTER socket on the workers port and a DEALER on the manager port, joined
by ``zmq.proxy_steerable``.  It keeps no state, so the manager can restart
while workers wait.  It binds to ``zmq: bind address`` when set, otherwise to
loopback for a system whose ``zmq: host`` is localhost and to every interface
for any other.

The proxy runs in its own thread and the main thread waits for signals: a
signal that arrives while the proxy is busy inside libzmq would otherwise
never reach Python, and the broker would ignore SIGTERM.

With ``zmq: curve:`` in the config both ports are CurveZMQ servers and only
clients whose public key is in ``authorized keys`` get through the handshake
(see nowcast_db.curve); SIGHUP re-reads that folder.
"""
from __future__ import annotations

import threading

import zmq

from nowcast_db import curve, process

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# A peer sending more than this in one message is disconnected by ZeroMQ
# itself, so no client can make the broker hold unbounded memory.
DEFAULT_SIZE_CAP = 64 * 1024 * 1024
CONTROL = "inproc://message-broker-control"


def bind_address(config) -> str:
    zmq_config = config["zmq"]
    if zmq_config.get("bind address"):
        return str(zmq_config["bind address"])
    return "127.0.0.1" if zmq_config["host"] in LOOPBACK_NAMES else "*"


class Broker:
    def __init__(self, config, logger):
        self.config, self.logger = config, logger
        self.context = zmq.Context.instance()
        self.control = self.context.socket(zmq.PAIR)
        self.control.bind(CONTROL)
        self.ready = threading.Event()
        self.error: str | None = None
        self.auth = curve.start_authenticator(config, self.context, logger)
        if self.auth is not None:
            logger.info(f"CurveZMQ on: {len(self.auth.certs.get('*', {}))} authorized client keys "
                        f"from {config['zmq']['curve'][curve.AUTHORIZED_KEYS]}")

    def _proxy(self) -> None:
        """Bind both ports and pass messages until told to TERMINATE (runs in the proxy thread)."""
        workers = self.context.socket(zmq.ROUTER)
        manager = self.context.socket(zmq.DEALER)
        control = self.context.socket(zmq.PAIR)
        control.connect(CONTROL)
        host = bind_address(self.config)
        try:
            cap = int(self.config["zmq"].get("broker message size cap", DEFAULT_SIZE_CAP))
            for socket, name in ((workers, "worker"), (manager, "manager")):
                socket.setsockopt(zmq.LINGER, 0)
                socket.setsockopt(zmq.MAXMSGSIZE, cap)
                curve.server_socket(self.config, socket)
                port = self.config["zmq"]["ports"]["workers" if name == "worker" else "manager"]
                try:
                    socket.bind(f"tcp://{host}:{port}")
                except zmq.ZMQError as err:
                    self.error = f"cannot bind {name} socket to {host}:{port}: {err}"
                    return
                self.logger.info(f"{name} socket bound to port {port}")
            self.ready.set()
            zmq.proxy_steerable(workers, manager, None, control)
        except zmq.ContextTerminated:
            pass
        finally:
            self.ready.set()
            for socket in (workers, manager, control):
                socket.close(linger=0)

    def run(self) -> int:
        stop, reload = threading.Event(), threading.Event()
        process.on_stop_signals(self.logger, stop.set)
        process.on_hangup(self.logger, reload.set)
        thread = threading.Thread(target=self._proxy, name="proxy", daemon=True)
        thread.start()
        self.ready.wait()
        if self.error:
            self.logger.critical(self.error)
            return 1
        while not stop.wait(1.0):
            if not thread.is_alive():
                self.logger.critical("proxy stopped unexpectedly")
                return 1
            if reload.is_set():
                reload.clear()
                self._reload()
        self.control.send(b"TERMINATE")
        thread.join(5)
        self.control.close(linger=0)
        if self.auth is not None:
            self.auth.stop()
        self.context.term()
        return 0


    def _reload(self) -> None:
        """SIGHUP: follow the config's logging; ports are bound once, so changing them needs a restart."""
        config = process.reload_logging("message_broker", self.config.file, self.logger)
        if config is None:
            return
        if config["zmq"]["ports"]["workers"] != self.config["zmq"]["ports"]["workers"] or \
                config["zmq"]["ports"]["manager"] != self.config["zmq"]["ports"]["manager"]:
            self.logger.warning("zmq ports changed in the config: restart the broker to use them")
        if self.auth is not None:
            if curve.curve_config(config) is None:
                self.logger.warning("zmq: curve removed from the config: restart the broker to turn CurveZMQ off")
            else:
                allowed = curve.allow_keys(self.auth, config)
                self.logger.info(f"authorized client keys reloaded: {allowed}")
        elif curve.curve_config(config) is not None:
            self.logger.warning("zmq: curve added to the config: restart the broker to turn CurveZMQ on")
        self.logger.info(f"config reloaded from {config.file}")


def main(args=None) -> None:
    parser = process.arg_parser("message_broker", __doc__.splitlines()[0])
    parsed = parser.parse_args(args)
    config, logger = process.start("message_broker", parsed)
    missing = curve.missing_broker_keys(config)
    if missing:
        process.fail("message_broker", f"{config.file}: missing key 'zmq: curve: {missing[0]}' "
                                       f"(the broker needs it when CurveZMQ is on)")
    raise SystemExit(Broker(config, logger).run())


if __name__ == "__main__":
    main()
