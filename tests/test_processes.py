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


def test_manager_creating_its_database_says_so_in_one_line_without_alembic_logging_config(toy):
    """A NEMO-era logging config knows nothing of Alembic: its migrations are not each a line."""
    toy.edit_config(lambda config: config["logging"].pop("loggers", None))
    toy.start_system()
    toy.stop("manager")
    log = toy.log("manager")
    assert "Running upgrade" not in log and "[alembic" not in log
    assert len([line for line in log.splitlines() if "history database schema at revision" in line]) == 1
    assert "(was empty)" in log
    # started again on an up-to-date database: nothing to say
    toy.start("manager")
    toy.stop("manager")
    assert len([line for line in toy.log("manager").splitlines() if "history database schema" in line]) == 1


def test_manager_started_with_a_broken_next_workers_module_says_what_and_where(toy):
    toy.write_next_workers("def after_sleep(msg, config, checklist)\n    return []\n")
    toy.start_system()
    toy.stop("manager")
    path = toy.directory / "next_workers.py"
    assert f"next workers module failed to load: SyntaxError: expected ':' ({path}, line 1)" in toy.log("manager")
