"""Optional CurveZMQ on the broker's two ports (``zmq: curve:`` in the config).

Off unless the config has a ``zmq: curve:`` mapping.  With it on, the broker's
sockets are CURVE servers and a ZAP handler (pyzmq's ThreadAuthenticator)
admits only clients whose public key is in ``authorized keys``: anyone else is
dropped during the ZeroMQ handshake, so nothing of theirs ever reaches the
manager or the database.  Every process that talks to the broker configures
its socket here, so there is one place that knows which config key holds which
key file.

The log aggregator's PUB/SUB ports are not covered: log records carry no
commands, and a worker on another host must be able to log even when its key
is wrong (that is how an operator finds out).
"""
from __future__ import annotations

import logging
import time

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

SERVER_SECRET_KEY = "server secret key"
SERVER_PUBLIC_KEY = "server public key"
CLIENT_SECRET_KEY = "client secret key"
AUTHORIZED_KEYS = "authorized keys"
KEYS = (SERVER_SECRET_KEY, SERVER_PUBLIC_KEY, CLIENT_SECRET_KEY, AUTHORIZED_KEYS)
# every process but the broker is a client; only the broker's host needs the
# broker's secret key and the authorized keys, so a worker host's config can
# leave them out (and should: the secret key stays on the broker's host)
CLIENT_KEYS = (SERVER_PUBLIC_KEY, CLIENT_SECRET_KEY)
BROKER_KEYS = (SERVER_SECRET_KEY, AUTHORIZED_KEYS)


def missing_broker_keys(config) -> list[str]:
    """The broker's keys the config leaves out while CurveZMQ is on."""
    curve = curve_config(config)
    return [key for key in BROKER_KEYS if curve is not None and key not in curve]


def curve_config(config) -> dict | None:
    """The ``zmq: curve:`` mapping, or None when CurveZMQ is off."""
    return config["zmq"].get("curve") or None


def server_socket(config, socket: zmq.Socket) -> bool:
    """Make a broker socket a CURVE server (before it binds); False when curve is off."""
    curve = curve_config(config)
    if curve is None:
        return False
    public, secret = zmq.auth.load_certificate(curve[SERVER_SECRET_KEY])
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True
    return True


def client_socket(config, socket: zmq.Socket) -> bool:
    """Give a socket that connects to the broker this host's key pair and the
    broker's public key (before it connects); False when curve is off."""
    curve = curve_config(config)
    if curve is None:
        return False
    server_public, _ = zmq.auth.load_certificate(curve[SERVER_PUBLIC_KEY])
    public, secret = zmq.auth.load_certificate(curve[CLIENT_SECRET_KEY])
    socket.curve_serverkey = server_public
    socket.curve_publickey = public
    socket.curve_secretkey = secret
    return True


def start_authenticator(config, context: zmq.Context,
                        logger: logging.Logger | None = None) -> ThreadAuthenticator | None:
    """Start the ZAP handler on the broker's context, allowing only the public
    keys in ``authorized keys``; None when curve is off.

    It must run before the broker binds: a CURVE server with no ZAP handler
    would accept any client that knows the server's public key.
    """
    curve = curve_config(config)
    if curve is None:
        return None
    log = (logger or logging.getLogger(__name__)).getChild("auth")
    auth = ThreadAuthenticator(context, log=_RefusalsAsWarnings(log, {"authorized keys": curve[AUTHORIZED_KEYS]}))
    auth.start()
    allow_keys(auth, config)
    return auth


class _RefusalsAsWarnings(logging.LoggerAdapter):
    """pyzmq's ZAP handler says everything at DEBUG; a refused client is what an
    operator needs to see (a worker host with a wrong or unlisted key), so its
    line is a WARNING that names the key and where authorized keys are read
    from — once a minute per key, since a refused client keeps reconnecting."""

    REPEAT_SECONDS = 60.0

    def __init__(self, logger: logging.Logger, extra: dict):
        super().__init__(logger, extra)
        self._last_said: dict[str, float] = {}

    def debug(self, msg, *args, **kwargs):
        text = msg % tuple(arg.decode(errors="replace") if isinstance(arg, bytes) else arg for arg in args)
        if not text.startswith("DENIED"):
            self.logger.debug(msg, *args, **kwargs)
            return
        now = time.monotonic()
        if now - self._last_said.get(text, -self.REPEAT_SECONDS) < self.REPEAT_SECONDS:
            return
        self._last_said[text] = now
        self.logger.warning(f"CurveZMQ refused a client: {text} (authorized keys are the public key files "
                            f"in {self.extra['authorized keys']}; add the client's there and send the "
                            f"broker SIGHUP)")


def allow_keys(auth: ThreadAuthenticator, config) -> int:
    """(Re)load the allowed public keys from the ``authorized keys`` folder;
    the number of keys now allowed.  Called again on SIGHUP so that a key can
    be added or revoked without restarting the broker."""
    location = curve_config(config)[AUTHORIZED_KEYS]
    auth.configure_curve(domain="*", location=location)
    return len(auth.certs.get("*", {}))
