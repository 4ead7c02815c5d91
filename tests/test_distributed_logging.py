"""Distributed logging: workers publish their log lines over ZeroMQ and the
log aggregator writes them to the system's log files (real processes)."""
import signal

import pytest
import zmq

from conftest import wait_until
from nowcast_db.demo import free_ports

FORMAT = "%(asctime)s %(levelname)s [%(logger_name)s] %(message)s"


@pytest.fixture
def distributed(toy):
    """The toy system with the aggregator/publisher logging layout on free ports.

    ``toy.ports`` names the logging ports: message_broker, manager, and the
    two in the workers' list.
    """
    broker_port, manager_port, *worker_ports = free_ports(4)
    toy.ports = {"message_broker": broker_port, "manager": manager_port, "workers": worker_ports}

    def change(config):
        config["logging"] = {
            "aggregator": {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"simple": {"format": FORMAT}},
                "handlers": {
                    "info_text": {
                        "class": "logging.handlers.RotatingFileHandler",
                        "level": "DEBUG",
                        "formatter": "simple",
                        "filename": "$(NOWCAST.ENV.NOWCAST_LOGS)/nowcast.log",
                        "backupCount": 7,
                    },
                },
                "root": {"level": "DEBUG", "handlers": ["info_text"]},
            },
            "publisher": {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"simple": {"format": FORMAT}},
                "handlers": {
                    "console": {"class": "logging.StreamHandler", "level": 100, "formatter": "simple",
                                "stream": "ext://sys.stdout"},
                    "zmq_pub": {"class": "zmq.log.handlers.PUBHandler", "level": "DEBUG", "formatter": "simple"},
                },
                "root": {"level": "DEBUG", "handlers": ["console", "zmq_pub"]},
            },
        }
        config["zmq"]["ports"]["logging"] = dict(toy.ports)

    toy.edit_config(change)
    return toy


def log_file(toy) -> str:
    path = toy.directory / "nowcast.log"
    return path.read_text() if path.exists() else ""


def start_aggregator(toy):
    process = toy.start("log_aggregator")
    wait_until(lambda: "subscribed to localhost port" in log_file(toy) or process.poll() is not None,
               what="log aggregator to subscribe")
    assert process.poll() is None, toy.log("log_aggregator")
    return process


def test_worker_log_lines_reach_the_aggregator_log_file(distributed):
    toy = distributed
    start_aggregator(toy)
    toy.start_system()
    result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "slept for" not in result.stdout  # the console handler is off: the lines went over the network

    first_port = toy.ports["workers"][0]
    wait_until(lambda: "DEBUG [sleep] shutting down" in log_file(toy), what="the sleep worker's last line")
    lines = log_file(toy)
    # its first lines too: the worker waits for the aggregator to subscribe before logging
    assert f"INFO [sleep] publishing log messages to tcp://127.0.0.1:{first_port}" in lines
    assert "INFO [sleep] running in process" in lines
    assert "INFO [sleep] slept for 0 seconds" in lines
    assert "[sleep] received message from manager: (ack) message acknowledged" in lines
    # and the worker the manager launched next publishes on the same port, now free again
    wait_until(lambda: "INFO [awaken] awoke" in log_file(toy), what="the awaken worker's lines")


def test_worker_whose_first_port_is_taken_publishes_on_the_next(distributed):
    toy = distributed
    start_aggregator(toy)
    toy.start_system()
    first, second = toy.ports["workers"]
    context = zmq.Context.instance()
    squatter = context.socket(zmq.PUB)
    squatter.bind(f"tcp://127.0.0.1:{first}")
    try:
        result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
    finally:
        squatter.close(linger=0)
    assert result.returncode == 0, result.stdout + result.stderr
    wait_until(lambda: "INFO [sleep] slept for 0 seconds" in log_file(toy), what="the sleep worker's lines")
    assert f"INFO [sleep] publishing log messages to tcp://127.0.0.1:{second}" in log_file(toy)


def test_worker_with_every_port_taken_says_so_in_one_line(distributed):
    toy = distributed
    context = zmq.Context.instance()
    squatters = [context.socket(zmq.PUB) for _ in toy.ports["workers"]]
    try:
        for socket, port in zip(squatters, toy.ports["workers"]):
            socket.bind(f"tcp://127.0.0.1:{port}")
        result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
    finally:
        for socket in squatters:
            socket.close(linger=0)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert (f"{toy.config_file}: key 'zmq: ports: logging: workers': no port free on 127.0.0.1 "
            f"to publish log messages on") in result.stderr


def test_worker_with_its_own_logging_port_uses_it(distributed):
    toy = distributed
    own_port = free_ports(1)[0]
    toy.edit_config(lambda config: config["zmq"]["ports"]["logging"].update(sleep=f"localhost:{own_port}"))
    start_aggregator(toy)
    result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0", "--debug")
    assert result.returncode == 0  # --debug: logs to the console, publishes nothing
    assert "**debug mode** writing log messages to console" in result.stdout
    assert "slept for 0 seconds" in result.stdout

    toy.start_system()
    result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_until(lambda: "INFO [sleep] slept for 0 seconds" in log_file(toy), what="the sleep worker's lines")
    assert f"[sleep] publishing log messages to tcp://127.0.0.1:{own_port}" in log_file(toy)
    assert log_file(toy).count("[sleep] slept for 0 seconds") == 1  # the --debug run sent nothing


def test_long_running_process_with_a_port_publishes_when_aggregator_layout_has_zmq_pub(distributed, tmp_path):
    """A broker on another host: its own files there, its lines also in the aggregator's files here."""
    toy = distributed

    def add_zmq_pub(config):
        aggregator = config["logging"]["aggregator"]
        aggregator["handlers"]["zmq_pub"] = {"class": "zmq.log.handlers.PUBHandler", "level": "DEBUG"}
        aggregator["root"]["handlers"].append("zmq_pub")

    toy.edit_config(add_zmq_pub)
    start_aggregator(toy)
    remote = tmp_path / "remote"
    remote.mkdir()
    here = toy.env
    toy.env = dict(here, NOWCAST_LOGS=str(remote))
    try:
        toy.start("message_broker")
    finally:
        toy.env = here
    port = toy.ports["message_broker"]
    wait_until(lambda: "INFO [message_broker] worker socket bound to port" in log_file(toy), what="broker lines")
    assert f"INFO [message_broker] publishing log messages to tcp://127.0.0.1:{port}" in log_file(toy)
    assert "worker socket bound to port" in (remote / "nowcast.log").read_text()
    # the aggregator itself never publishes (it would hear its own lines)
    assert "[log_aggregator] writing log messages to local file system" in log_file(toy)

    assert toy.stop("message_broker") == 0
    # the last line, logged just before exit, still arrives
    wait_until(lambda: "INFO [message_broker] SIGTERM received; shutting down" in log_file(toy),
               what="the broker's last line")


def test_hostile_publications_do_not_stop_the_aggregator(distributed):
    toy = distributed
    aggregator = start_aggregator(toy)
    context = zmq.Context.instance()
    # stand in for the broker on its logging port; XPUB says when the aggregator has subscribed
    publisher = context.socket(zmq.XPUB)
    publisher.bind(f"tcp://127.0.0.1:{toy.ports['message_broker']}")
    try:
        assert publisher.poll(10_000), "the aggregator did not subscribe"
        publisher.recv()
        malformed = [
            [b"only one frame"],
            [b"sleep.INFO", b"three", b"frames"],
            [b"sleep.LOUD", b"no such level"],
            [b"INFO", b"no process name"],
            [b".INFO", b"empty process name"],
            [b"sl\xffeep.INFO", b"topic not UTF-8"],
            [b"sleep.INFO", b"bad bytes \xff\xfe"],
        ]
        for frames in malformed:
            publisher.send_multipart(frames)
        publisher.send_multipart([b"nowcast.workers.download.INFO", b"dotted process name\n"])
        # pyzmq's PUBHandler moves what comes before '::' into the topic
        publisher.send_multipart([b"sleep.ERROR.cannot reach tcp://[", b"1]:4343\n"])
        publisher.send_multipart([b"tester.WARNING", b"still listening\n"])
        wait_until(lambda: "WARNING [tester] still listening" in log_file(toy), what="the good line after the bad ones")
    finally:
        publisher.close(linger=0)
    lines = log_file(toy)
    assert aggregator.poll() is None
    assert lines.count("WARNING [log_aggregator] malformed log message skipped") == len(malformed)
    assert "expected 2 frames (topic, message), got 1" in lines
    assert "expected 2 frames (topic, message), got 3" in lines
    assert "topic 'sleep.LOUD' names no log level" in lines
    assert "topic 'INFO' names no process" in lines and "topic '.INFO' names no process" in lines
    assert lines.count("skipped: not UTF-8") == 2
    assert "INFO [nowcast.workers.download] dotted process name" in lines
    assert "ERROR [sleep] cannot reach tcp://[::1]:4343" in lines
    assert "Traceback" not in lines + toy.log("log_aggregator")


def test_aggregator_follows_logging_ports_added_and_removed_on_sighup(distributed):
    """A host added to zmq: ports: logging is listened to after SIGHUP, without a
    restart (the aggregator keeps every other host's lines meanwhile); a removed one is let go."""
    toy = distributed
    aggregator = start_aggregator(toy)
    new_port, = free_ports(1)

    def add_and_remove(config):
        config["zmq"]["ports"]["logging"]["hpc_worker"] = new_port
        del config["zmq"]["ports"]["logging"]["manager"]

    toy.edit_config(add_and_remove)
    aggregator.send_signal(signal.SIGHUP)
    wait_until(lambda: f"subscribed to localhost port {new_port} for log messages from hpc_worker" in log_file(toy),
               what="the aggregator to subscribe to the added port")
    assert f"unsubscribed from localhost port {toy.ports['manager']}" in log_file(toy)
    publisher = zmq.Context.instance().socket(zmq.XPUB)
    publisher.bind(f"tcp://127.0.0.1:{new_port}")
    try:
        assert publisher.poll(10_000), "the aggregator did not subscribe"
        publisher.recv()
        publisher.send_multipart([b"hpc_worker.INFO", b"run on the added host\n"])
        wait_until(lambda: "INFO [hpc_worker] run on the added host" in log_file(toy), what="the added host's line")
    finally:
        publisher.close(linger=0)
    assert aggregator.poll() is None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_aggregator_exits_cleanly_on_signal(distributed, sig):
    toy = distributed
    start_aggregator(toy)
    assert toy.stop("log_aggregator", sig) == 0
    assert f"INFO [log_aggregator] {signal.Signals(sig).name} received; shutting down" in log_file(toy)


@pytest.mark.parametrize("change, error", [
    (lambda config: config["zmq"]["ports"].pop("logging"),
     "missing key 'zmq: ports: logging' (expected a mapping of process names to log publishing ports)"),
    (lambda config: config["zmq"]["ports"]["logging"].update(workers=[4350, "not a port"]),
     "key 'zmq: ports: logging: workers': expected a port number, a 'host:port' string, or a list of them, "
     "got str 'not a port'"),
    (lambda config: config["logging"].pop("aggregator"),
     "missing key 'logging: aggregator'"),
])
def test_aggregator_bad_config_is_one_line_error(distributed, change, error):
    toy = distributed
    toy.edit_config(change)
    process = toy.start("log_aggregator")
    assert process.wait(30) != 0
    log = toy.log("log_aggregator")
    assert "Traceback" not in log
    assert f"log_aggregator: error: {toy.config_file}: {error}" in log
