"""Unit tests for the worker side: the worker command line, NextWorker,
tell_manager's registry checks, launcher.command_for and runs.final_state."""
from __future__ import annotations

import argparse
import logging
import shlex
import types

import arrow
import pytest

from nowcast_db import CommandLineInterface, NextWorker, NowcastWorker, WorkerError
from nowcast_db.config import Config
from nowcast_db.launcher import RUN_ID_ENV, LaunchError, command_for
from nowcast_db.message import Message
from nowcast_db.runs import final_state

# --------------------------------------------------------------------------
# CommandLineInterface


def make_cli(name="sleep", package="nowcast_db.workers"):
    cli = CommandLineInterface(name, description="Test worker.", package=package)
    cli.build_parser()
    return cli


def test_prog_is_python_dash_m_package_dot_name():
    cli = make_cli("make_plots", package="nowcast.workers")
    assert cli.parser.prog == "python -m nowcast.workers.make_plots"
    assert make_cli("awaken", package="my_system.workers").parser.prog == "python -m my_system.workers.awaken"


def test_default_package_is_nowcast_workers():
    cli = CommandLineInterface("download_weather")
    cli.build_parser()
    assert cli.parser.prog == "python -m nowcast.workers.download_weather"


def test_usage_shows_prog(capsys):
    cli = make_cli("sleep", package="nowcast_db.workers")
    cli.parser.print_usage()
    assert capsys.readouterr().out.startswith("usage: python -m nowcast_db.workers.sleep")


def test_config_file_is_first_positional_argument():
    cli = make_cli()
    cli.add_argument("run_type", choices=["nowcast", "forecast"])
    cli.add_argument("--sleep-time", type=int, default=5)

    parsed = cli.parser.parse_args(["nowcast.yaml", "forecast", "--sleep-time", "2"])

    assert parsed.config_file == "nowcast.yaml"
    assert parsed.run_type == "forecast"
    assert parsed.sleep_time == 2


def test_config_file_is_required(capsys):
    cli = make_cli()
    with pytest.raises(SystemExit) as excinfo:
        cli.parser.parse_args([])
    assert excinfo.value.code == 2
    assert "config_file" in capsys.readouterr().err


def add_run_date(cli, default="2024-03-05"):
    return cli.add_date_option("--run-date", default=arrow.get(default), help="Date to execute the run for.")


def test_date_option_value_is_arrow_at_utc_midnight():
    cli = make_cli()
    add_run_date(cli)

    run_date = cli.parser.parse_args(["nowcast.yaml", "--run-date", "2024-02-29"]).run_date

    assert isinstance(run_date, arrow.Arrow)
    assert run_date == arrow.Arrow(2024, 2, 29, tzinfo="UTC")
    assert run_date.utcoffset().total_seconds() == 0
    assert (run_date.hour, run_date.minute, run_date.second, run_date.microsecond) == (0, 0, 0, 0)


def test_date_option_value_supports_format_and_shift():
    cli = make_cli()
    add_run_date(cli)

    run_date = cli.parser.parse_args(["nowcast.yaml", "--run-date", "2024-03-01"]).run_date

    assert run_date.format("YYYY-MM-DD") == "2024-03-01"
    assert run_date.shift(days=-1).format("YYYY-MM-DD") == "2024-02-29"
    assert run_date.format("DDMMMYY").lower() == "01mar24"


def test_date_option_default_is_used_when_option_absent():
    cli = make_cli()
    add_run_date(cli, default="2024-03-05")

    run_date = cli.parser.parse_args(["nowcast.yaml"]).run_date

    assert isinstance(run_date, arrow.Arrow)
    assert run_date.format("YYYY-MM-DD") == "2024-03-05"
    assert run_date.shift(days=-1).format("YYYY-MM-DD") == "2024-03-04"


def test_date_option_default_time_of_day_is_floored_to_midnight():
    cli = make_cli()
    cli.add_date_option("--run-date", default=arrow.get("2024-03-05T17:45:12+00:00"), help="Run date.")
    run_date = cli.parser.parse_args(["nowcast.yaml"]).run_date
    assert run_date == arrow.Arrow(2024, 3, 5, tzinfo="UTC")


def test_date_option_help_ends_with_format_and_default_date():
    cli = make_cli()
    action = add_run_date(cli, default="2024-03-05")

    assert action.help == "Date to execute the run for. Use YYYY-MM-DD format. Defaults to 2024-03-05."
    assert action.help.endswith("Use YYYY-MM-DD format. Defaults to 2024-03-05.")
    help_text = " ".join(cli.parser.format_help().split())
    assert "Use YYYY-MM-DD format. Defaults to 2024-03-05." in help_text


def test_date_option_help_uses_default_of_today_like_nemo_workers():
    cli = make_cli()
    today = arrow.now().floor("day")
    action = cli.add_date_option("--run-date", default=today, help="Date to execute the run for.")
    assert action.help.endswith(f"Use YYYY-MM-DD format. Defaults to {today.format('YYYY-MM-DD')}.")


@pytest.mark.parametrize("offset", ["+10:00", "-08:00"])
def test_date_option_default_keeps_its_calendar_date(offset):
    cli = make_cli()
    action = cli.add_date_option("--run-date", default=arrow.get(f"2024-03-05T00:00:00{offset}"), help="Run date.")
    assert action.help.endswith("Defaults to 2024-03-05.")
    assert cli.parser.parse_args(["nowcast.yaml"]).run_date.format("YYYY-MM-DD") == "2024-03-05"


@pytest.mark.parametrize("bad", ["2024-13-01", "2024-02-30", "yesterday", "2024-2-3", "20240203", "05mar24", ""])
def test_bad_date_is_argparse_error_with_clear_message(capsys, bad):
    cli = make_cli()
    add_run_date(cli)

    with pytest.raises(SystemExit) as excinfo:
        cli.parser.parse_args(["nowcast.yaml", "--run-date", bad])

    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert "--run-date" in err
    assert "YYYY-MM-DD" in err
    assert f"{bad}" in err
    assert "Traceback" not in err


def test_arrow_date_raises_argument_type_error():
    with pytest.raises(argparse.ArgumentTypeError, match="YYYY-MM-DD"):
        CommandLineInterface.arrow_date("not a date")
    assert CommandLineInterface.arrow_date("2024-01-31") == arrow.Arrow(2024, 1, 31)


# --------------------------------------------------------------------------
# NextWorker


def test_next_worker_compares_by_value():
    assert NextWorker("pkg.workers.y", args=["06"]) == NextWorker("pkg.workers.y", args=["06"])
    assert NextWorker("pkg.workers.y", args=["06"], host="arbutus") == NextWorker("pkg.workers.y", ["06"], "arbutus")
    assert [NextWorker("pkg.workers.y", args=["06"])] == [NextWorker("pkg.workers.y", args=["06"])]


@pytest.mark.parametrize(
    "other",
    [
        NextWorker("pkg.workers.z", args=["06"]),
        NextWorker("pkg.workers.y", args=["18"]),
        NextWorker("pkg.workers.y", args=[]),
        NextWorker("pkg.workers.y", args=["06"], host="arbutus"),
    ],
    ids=["module", "args", "no-args", "host"],
)
def test_next_workers_differing_in_module_args_or_host_are_unequal(other):
    assert NextWorker("pkg.workers.y", args=["06"]) != other


def test_next_worker_defaults_are_empty_args_and_localhost():
    worker = NextWorker("pkg.workers.y")
    assert worker.module == "pkg.workers.y"
    assert worker.args == []
    assert worker.host == "localhost"
    assert worker == NextWorker("pkg.workers.y", args=[], host="localhost")


def test_next_worker_default_args_are_not_shared():
    one, two = NextWorker("pkg.workers.a"), NextWorker("pkg.workers.b")
    one.args.append("06")
    assert two.args == []
    assert NextWorker("pkg.workers.c").args == []


def test_next_worker_has_launch_method():
    assert callable(NextWorker("pkg.workers.y").launch)


# --------------------------------------------------------------------------
# tell_manager registry checks


REGISTRY = {
    "manager": {
        "ack": "message acknowledged",
        "checklist cleared": "system checklist cleared",
        "unregistered worker": "ERROR - message received from unregistered worker",
        "unregistered message type": "ERROR - unregistered message type received from worker",
        "no after_worker function": "ERROR - after_worker function not found in next_workers module",
    },
    "next workers module": "next_workers",
    "workers": {
        "sleep": {"checklist key": "sleepyhead", "success": "slept", "failure": "failed", "crash": "crashed"},
        "bare": None,
    },
}


class FakeClient:
    def __init__(self, reply: Message):
        self.reply = reply
        self.sent: list[tuple[str, str]] = []

    def send(self, serialized, message_id=None):
        self.sent.append((serialized, message_id))
        return self.reply


def make_worker(monkeypatch, name="sleep", reply=Message("manager", "ack"), debug=False):
    monkeypatch.delenv(RUN_ID_ENV, raising=False)
    worker = NowcastWorker(name, "test worker", package="nowcast_db.workers")
    worker.config = Config(data={"message registry": REGISTRY})
    worker.config.file = "/sys/nowcast.yaml"
    worker.logger = logging.getLogger(f"test.{name}")
    worker._parsed_args = types.SimpleNamespace(debug=debug)
    worker._client = FakeClient(reply)
    return worker


def test_tell_manager_sends_message_and_returns_reply(monkeypatch):
    worker = make_worker(monkeypatch)

    reply = worker.tell_manager("success", {"sleep time": 5})

    assert reply == Message("manager", "ack")
    [(serialized, message_id)] = worker._client.sent
    sent = Message.deserialize(serialized)
    assert sent == Message("sleep", "success", {"sleep time": 5})
    assert sent.id == message_id and message_id


def test_tell_manager_unregistered_worker_raises_worker_error(monkeypatch):
    worker = make_worker(monkeypatch, name="stranger")
    with pytest.raises(WorkerError, match="stranger"):
        worker.tell_manager("success")
    assert worker._client.sent == []


def test_tell_manager_unregistered_message_type_raises_worker_error(monkeypatch):
    worker = make_worker(monkeypatch)
    with pytest.raises(WorkerError) as excinfo:
        worker.tell_manager("success 2.5km")
    assert "success 2.5km" in str(excinfo.value) and "sleep" in str(excinfo.value)
    assert worker._client.sent == []


def test_tell_manager_worker_registered_without_types_raises_worker_error(monkeypatch):
    worker = make_worker(monkeypatch, name="bare")
    with pytest.raises(WorkerError):
        worker.tell_manager("success")
    assert worker._client.sent == []


def test_tell_manager_reply_type_missing_from_manager_registry_raises_worker_error(monkeypatch):
    worker = make_worker(monkeypatch, reply=Message("manager", "weird reply"))
    with pytest.raises(WorkerError, match="weird reply"):
        worker.tell_manager("success")


@pytest.mark.parametrize("reply_type", ["malformed message", "after_worker function failed",
                                        "next workers module failed", "checklist key not found"])
def test_tell_manager_error_reply_from_manager_raises_worker_error(monkeypatch, reply_type):
    worker = make_worker(monkeypatch, reply=Message("manager", reply_type, "what went wrong"))
    with pytest.raises(WorkerError) as excinfo:
        worker.tell_manager("success")
    assert reply_type in str(excinfo.value)
    assert "what went wrong" in str(excinfo.value)


@pytest.mark.parametrize("reply_type", ["unregistered worker", "unregistered message type", "no after_worker function"])
def test_tell_manager_returns_registry_error_replies(monkeypatch, reply_type):
    """Registry `manager` reply types are returned (NEMO_Nowcast behaviour), not raised."""
    worker = make_worker(monkeypatch, reply=Message("manager", reply_type, "detail"))
    assert worker.tell_manager("success").type == reply_type


def test_tell_manager_in_debug_mode_sends_nothing_and_returns_none(monkeypatch):
    worker = make_worker(monkeypatch, debug=True)
    assert worker.tell_manager("success", {"sleep time": 5}) is None
    assert worker._client.sent == []


def test_tell_manager_in_debug_mode_still_checks_registry(monkeypatch):
    worker = make_worker(monkeypatch, debug=True)
    with pytest.raises(WorkerError):
        worker.tell_manager("not a type")


def test_worker_run_id_comes_from_environment(monkeypatch):
    monkeypatch.setenv(RUN_ID_ENV, "42")
    worker = NowcastWorker("sleep", "test worker")
    assert worker.run_id == 42
    monkeypatch.setenv(RUN_ID_ENV, "garbage")
    assert NowcastWorker("sleep", "test worker").run_id is None


# --------------------------------------------------------------------------
# launcher.command_for


def launch_config(**extra):
    config = Config(data={"python": "/opt/nowcast-env/bin/python", **extra})
    config.file = "/sys/config/nowcast.yaml"
    return config


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", None, ""])
def test_command_for_localhost_runs_python_dash_m(host):
    command = command_for("nowcast_db.workers.sleep", ["--sleep-time", 2], host, launch_config())
    assert command == [
        "/opt/nowcast-env/bin/python", "-m", "nowcast_db.workers.sleep",
        "/sys/config/nowcast.yaml", "--sleep-time", "2",
    ]


def test_command_for_localhost_without_args():
    assert command_for("nowcast_db.workers.awaken", [], "localhost", launch_config()) == [
        "/opt/nowcast-env/bin/python", "-m", "nowcast_db.workers.awaken", "/sys/config/nowcast.yaml",
    ]
    assert command_for("nowcast_db.workers.awaken", None, "localhost", launch_config())[-1] == \
        "/sys/config/nowcast.yaml"


def test_command_for_localhost_without_python_key_raises_launch_error():
    config = Config(data={})
    config.file = "/sys/config/nowcast.yaml"
    with pytest.raises(LaunchError) as excinfo:
        command_for("nowcast_db.workers.sleep", [], "localhost", config)
    assert "python" in str(excinfo.value) and "/sys/config/nowcast.yaml" in str(excinfo.value)


REMOTE = {
    "python": "/remote env/bin/python",
    "config file": "/remote/sys/nowcast.yaml",
    "envvars": "/remote/nowcast.env",
}


def test_command_for_ssh_host_quotes_remote_command():
    config = launch_config(run={"enabled hosts": {"arbutus": REMOTE}})

    command = command_for("sys.workers.run_NEMO", ["nowcast", "it's; rm -rf /"], "arbutus", config)

    assert command[:2] == ["ssh", "arbutus"]
    assert len(command) == 3
    remote = command[2]
    assert remote == (
        "source /remote/nowcast.env ; PYTHONUNBUFFERED=1 "
        + " ".join(shlex.quote(part) for part in
                   ["/remote env/bin/python", "-m", "sys.workers.run_NEMO", "/remote/sys/nowcast.yaml",
                    "nowcast", "it's; rm -rf /"])
    )
    # what the remote shell sees after `source ... ;`
    words = shlex.split(remote.split(" ; ", 1)[1])
    assert words == ["PYTHONUNBUFFERED=1", "/remote env/bin/python", "-m", "sys.workers.run_NEMO",
                     "/remote/sys/nowcast.yaml", "nowcast", "it's; rm -rf /"]


def test_command_for_ssh_host_uses_remote_python_and_config_file():
    config = launch_config(run={"enabled hosts": {"arbutus": {"python": "/r/python", "config file": "/r/n.yaml"}}})
    command = command_for("sys.workers.x", ["06"], "arbutus", config)
    # PYTHONUNBUFFERED: its output comes back over ssh as it is printed, into the run's output file
    assert command == ["ssh", "arbutus", "PYTHONUNBUFFERED=1 /r/python -m sys.workers.x /r/n.yaml 06"]
    assert "/opt/nowcast-env/bin/python" not in command[2]
    assert "/sys/config/nowcast.yaml" not in command[2]


def test_command_for_ssh_host_includes_run_id_when_given():
    config = launch_config(run={"enabled hosts": {"arbutus": REMOTE}})

    command = command_for("sys.workers.x", [6], "arbutus", config, run_id=1234)

    words = shlex.split(command[2].split(" ; ", 1)[1])
    assert words[0] == f"{RUN_ID_ENV}=1234"
    assert words[1:] == ["PYTHONUNBUFFERED=1", "/remote env/bin/python", "-m", "sys.workers.x",
                         "/remote/sys/nowcast.yaml", "6"]


def test_command_for_ssh_host_without_run_id_has_no_run_id():
    config = launch_config(run={"enabled hosts": {"arbutus": REMOTE}})
    assert RUN_ID_ENV not in command_for("sys.workers.x", [], "arbutus", config)[2]


def test_command_for_localhost_does_not_put_run_id_on_command_line():
    command = command_for("sys.workers.x", [], "localhost", launch_config(), run_id=7)
    assert not any(RUN_ID_ENV in part for part in command)


@pytest.mark.parametrize(
    "run",
    [
        None,
        {},
        {"enabled hosts": {}},
        {"enabled hosts": {"other": REMOTE}},
        {"enabled hosts": None},
    ],
    ids=["no-run", "empty-run", "no-hosts", "other-host", "hosts-none"],
)
def test_command_for_missing_host_entry_raises_launch_error_naming_key(run):
    config = launch_config() if run is None else launch_config(run=run)
    with pytest.raises(LaunchError) as excinfo:
        command_for("sys.workers.x", [], "arbutus", config)
    text = str(excinfo.value)
    assert "run: enabled hosts: arbutus" in text
    assert "/sys/config/nowcast.yaml" in text
    assert "sys.workers.x" in text


@pytest.mark.parametrize("missing", ["python", "config file"])
def test_command_for_host_entry_missing_key_names_that_key(missing):
    entry = {key: value for key, value in REMOTE.items() if key != missing}
    config = launch_config(run={"enabled hosts": {"arbutus": entry}})
    with pytest.raises(LaunchError) as excinfo:
        command_for("sys.workers.x", [], "arbutus", config)
    assert f"run: enabled hosts: arbutus: {missing}" in str(excinfo.value)


# --------------------------------------------------------------------------
# runs.final_state


@pytest.mark.parametrize(
    "message_type, state",
    [
        ("success", "succeeded"),
        ("success 2.5km 06", "succeeded"),
        ("success nowcast", "succeeded"),
        ("failure", "failed"),
        ("failure forecast2", "failed"),
        ("crash", "crashed"),
        ("need", None),
        ("clear checklist", None),
    ],
)
def test_final_state_of_message_type(message_type, state):
    assert final_state(message_type) == state
