"""CurveZMQ on the broker's ports: keyed clients work, anyone else gets nothing and leaves no row."""
import os
import shutil
import signal
import stat
import subprocess
import sys

import pytest
import yaml
import zmq
import zmq.auth

from conftest import wait_until
from nowcast_db.config import Config
from nowcast_db.errors import ConfigError

NOWCAST = [sys.executable, "-m", "nowcast_db.cli"]


def generate_keys(toy, directory, name):
    """Make a key pair the way an operator would: with `nowcast keys generate`."""
    result = subprocess.run([*NOWCAST, "keys", "generate", str(directory), "--name", name],
                            capture_output=True, text=True, env=toy.env, timeout=60)
    assert result.returncode == 0, result.stderr
    return directory / f"{name}.key", directory / f"{name}.key_secret"


@pytest.fixture
def curve_toy(toy):
    """The toy system with CurveZMQ on: a broker key pair, one authorized client key pair."""
    keys = toy.directory / "keys"
    authorized = toy.directory / "authorized_keys"
    authorized.mkdir()
    server_public, server_secret = generate_keys(toy, keys, "broker")
    client_public, client_secret = generate_keys(toy, keys, "client")
    shutil.copy(client_public, authorized)

    def change(config):
        config["zmq"]["curve"] = {
            "server secret key": str(server_secret),
            "server public key": str(server_public),
            "client secret key": str(client_secret),
            "authorized keys": str(authorized),
        }

    toy.edit_config(change)
    toy.keys = keys
    return toy


def raw_send(toy, frame: bytes, key_pair=None, timeout: float = 2.0) -> bytes | None:
    """One request on a plain pyzmq REQ socket, optionally with a CURVE key pair; None when no reply came."""
    context = zmq.Context.instance()
    socket = context.socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    if key_pair is not None:
        server_public, _ = zmq.auth.load_certificate(toy.keys / "broker.key")
        public, secret = zmq.auth.load_certificate(key_pair)
        socket.curve_serverkey, socket.curve_publickey, socket.curve_secretkey = server_public, public, secret
    socket.connect(f"tcp://127.0.0.1:{toy.workers_port}")
    try:
        socket.send(frame)
        return socket.recv() if socket.poll(int(timeout * 1000)) else None
    finally:
        socket.close()


def launch_request(message_id: str) -> bytes:
    return yaml.safe_dump({"source": "operator", "type": "launch worker", "message id": message_id,
                           "payload": {"module": "nowcast_db.workers.awaken"}}).encode()


def test_keyed_worker_works_end_to_end_with_curve_on(curve_toy):
    toy = curve_toy
    toy.start_system()
    assert "CurveZMQ on: 1 authorized client keys" in toy.log("message_broker")
    result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
    assert result.returncode == 0, result.stderr
    wait_until(lambda: toy.sql("SELECT worker, state FROM worker_runs ORDER BY id")
               == [("sleep", "succeeded"), ("awaken", "succeeded")], what="sleep then awaken, both succeeded")


def test_keyless_client_gets_nothing_and_leaves_no_row(curve_toy):
    toy = curve_toy
    toy.start_system()
    assert raw_send(toy, launch_request("keyless")) is None
    # a keyed client right after is answered, so the manager was there and simply never saw the keyless one
    assert yaml.safe_load(raw_send(toy, launch_request("keyed"), toy.keys / "client.key_secret", timeout=10)) \
        ["type"] == "ack"
    assert toy.sql("SELECT message_id FROM messages") == [("keyed",)]


def test_client_with_unauthorized_key_pair_is_refused(curve_toy):
    toy = curve_toy
    _, stranger = generate_keys(toy, toy.keys, "stranger")
    toy.start_system()
    assert raw_send(toy, launch_request("stranger"), stranger) is None
    assert toy.sql("SELECT count(*) FROM messages") == [(0,)]
    assert toy.sql("SELECT count(*) FROM worker_runs") == [(0,)]
    stranger_public = zmq.auth.load_certificate(stranger)[0].decode()
    refusals = [line for line in toy.log("message_broker").splitlines() if "CurveZMQ refused a client" in line]
    assert refusals and "WARNING" in refusals[0] and stranger_public in refusals[0]


def test_key_authorized_on_sighup_is_let_in_without_restart(curve_toy):
    toy = curve_toy
    public, secret = generate_keys(toy, toy.keys, "newhost")
    toy.start_system()
    assert raw_send(toy, launch_request("before"), secret) is None
    shutil.copy(public, toy.directory / "authorized_keys")
    toy.processes["message_broker"].send_signal(signal.SIGHUP)
    wait_until(lambda: "authorized client keys reloaded: 2" in toy.log("message_broker"), what="keys reloaded")
    assert yaml.safe_load(raw_send(toy, launch_request("after"), secret, timeout=10))["type"] == "ack"
    assert toy.sql("SELECT message_id FROM messages") == [("after",)]


def test_missing_key_file_is_one_line_config_error_naming_the_key(curve_toy):
    toy = curve_toy
    missing = toy.keys / "gone.key_secret"
    toy.edit_config(lambda config: config["zmq"]["curve"].update({"server secret key": str(missing)}))
    broker = toy.start("message_broker")
    assert broker.wait(30) == 2
    lines = toy.log("message_broker").strip().splitlines()
    assert len(lines) == 1
    assert "key 'zmq: curve: server secret key'" in lines[0] and str(missing) in lines[0]
    assert str(toy.config_file) in lines[0]


@pytest.mark.parametrize("key, value, expected", [
    ("client secret key", "broker.key", "holds no secret key"),
    ("authorized keys", "nowhere", "is not a folder"),
    ("server public key", 42, "expected a key file path string"),
])
def test_bad_curve_keys_are_one_line_config_errors(curve_toy, monkeypatch, key, value, expected):
    toy = curve_toy
    for name in ("NOWCAST_ENV", "NOWCAST_LOGS"):
        monkeypatch.setenv(name, toy.env[name])
    value = str(toy.keys / value) if isinstance(value, str) else value
    toy.edit_config(lambda config: config["zmq"]["curve"].update({key: value}))
    with pytest.raises(ConfigError) as error:
        Config(toy.config_file)
    message = str(error.value)
    assert "\n" not in message and f"'zmq: curve: {key}'" in message and expected in message


def test_curve_key_paths_take_env_var_substitution(curve_toy, monkeypatch):
    toy = curve_toy
    for name in ("NOWCAST_ENV", "NOWCAST_LOGS"):
        monkeypatch.setenv(name, toy.env[name])
    monkeypatch.setenv("NOWCAST_KEYS", str(toy.keys))
    toy.edit_config(lambda config: config["zmq"]["curve"].update(
        {"client secret key": "$(NOWCAST.ENV.NOWCAST_KEYS)/client.key_secret"}))
    config = Config(toy.config_file)
    assert config["zmq"]["curve"]["client secret key"] == f"{toy.keys}/client.key_secret"


def test_keys_generate_writes_secret_file_0600_and_prints_config_lines(toy):
    result = subprocess.run([*NOWCAST, "keys", "generate", str(toy.directory / "k"), "--name", "hpc"],
                            capture_output=True, text=True, env=toy.env, timeout=60)
    assert result.returncode == 0, result.stderr
    secret = toy.directory / "k" / "hpc.key_secret"
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    assert f"client secret key: {secret}" in result.stdout
    public, secret_key = zmq.auth.load_certificate(secret)
    assert zmq.auth.load_certificate(toy.directory / "k" / "hpc.key") == (public, None)
    again = subprocess.run([*NOWCAST, "keys", "generate", str(toy.directory / "k"), "--name", "hpc"],
                           capture_output=True, text=True, env=toy.env, timeout=60)
    assert again.returncode == 1 and "already there" in again.stderr and "Traceback" not in again.stderr


def test_worker_host_needs_only_the_client_keys_and_the_broker_names_what_it_lacks(curve_toy, monkeypatch):
    """A worker host's config leaves out the broker's secret key and the authorized keys."""
    toy = curve_toy
    for name in ("NOWCAST_ENV", "NOWCAST_LOGS"):
        monkeypatch.setenv(name, toy.env[name])

    def worker_host(config):
        for key in ("server secret key", "authorized keys"):
            config["zmq"]["curve"].pop(key)

    toy.edit_config(worker_host)
    config = Config(toy.config_file)  # loads: a worker can run with this
    assert set(config["zmq"]["curve"]) == {"server public key", "client secret key"}
    broker = toy.start("message_broker")
    assert broker.wait(30) == 2
    assert "missing key 'zmq: curve: server secret key' (the broker needs it when CurveZMQ is on)" in \
        toy.log("message_broker")
