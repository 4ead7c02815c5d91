"""Long-running processes stop cleanly on SIGINT and SIGTERM, and say so."""
import signal

import pytest

from conftest import raw_request


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_broker_and_manager_exit_cleanly_on_signal(toy, sig):
    toy.start_system()
    assert toy.stop("manager", sig) == 0
    assert toy.stop("message_broker", sig) == 0
    name = signal.Signals(sig).name
    assert f"{name} received; shutting down" in toy.log("manager")
    assert f"{name} received; shutting down" in toy.log("message_broker")


def test_broker_stops_on_sigterm_right_after_client_traffic(toy):
    """A SIGTERM landing while the proxy is busy inside libzmq must not be lost."""
    for _ in range(5):
        toy.start_system()
        raw_request(toy.workers_port, b"source: sleep\ntype: failure\npayload: null\n")
        assert toy.stop("message_broker", signal.SIGTERM) == 0
        toy.stop("manager")


def test_bad_config_is_one_line_error_not_traceback(toy):
    toy.config_file.write_text(toy.config_file.read_text().replace("workers: ", "workers_port: ", 1))
    for name in ("message_broker", "manager"):
        process = toy.start(name)
        assert process.wait(30) != 0
        log = toy.log(name)
        assert "Traceback" not in log
        assert f"{name}: error: {toy.config_file}: missing key 'zmq: ports: workers'" in log


def test_sighup_reloads_every_long_running_process_and_none_dies(toy):
    toy.start_system()
    scheduler = toy.start("scheduler")
    names = ("message_broker", "manager", "scheduler")
    from conftest import wait_until

    wait_until(lambda: "running in process" in toy.log("scheduler"), what="scheduler start")
    for name in names:
        toy.processes[name].send_signal(signal.SIGHUP)
    for name in names:
        wait_until(lambda: "reloaded" in toy.log(name), what=f"{name} reload")
        assert toy.processes[name].poll() is None, f"{name} died on SIGHUP"
    assert raw_request(toy.workers_port, b"source: sleep\ntype: failure\npayload: null\n")
    assert scheduler.poll() is None
