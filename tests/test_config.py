"""Unit tests for nowcast_db.config: loading nowcast.yaml, $(NOWCAST.ENV.X)
substitution, validation errors and dict-like access."""
from __future__ import annotations

import os

import pytest
import yaml

from nowcast_db.config import Config, load_config
from nowcast_db.errors import ConfigError
from nowcast_db.toy import write_toy_system


@pytest.fixture
def env(tmp_path, monkeypatch):
    """NOWCAST_ENV and NOWCAST_LOGS set to known folders; returns them."""
    nowcast_env = tmp_path / "env"
    logs = tmp_path / "logs"
    monkeypatch.setenv("NOWCAST_ENV", str(nowcast_env))
    monkeypatch.setenv("NOWCAST_LOGS", str(logs))
    monkeypatch.delenv("NOWCAST_TEST_UNSET_VARIABLE", raising=False)
    return {"NOWCAST_ENV": str(nowcast_env), "NOWCAST_LOGS": str(logs)}


@pytest.fixture
def toy_config_file(tmp_path, env):
    write_toy_system(tmp_path / "toy", manager_port=5555, workers_port=5556)
    return tmp_path / "toy" / "nowcast.yaml"


def edit(config_file, change):
    """Load the YAML document, let ``change`` edit it, write it back."""
    data = yaml.safe_load(config_file.read_text())
    change(data)
    config_file.write_text(yaml.safe_dump(data, sort_keys=False))
    return config_file


def load_error(config_file) -> str:
    with pytest.raises(ConfigError) as excinfo:
        Config(config_file)
    text = str(excinfo.value)
    assert "\n" not in text, f"ConfigError message is not one line: {text!r}"
    assert str(config_file) in text, f"ConfigError message does not name the file: {text!r}"
    return text


# --------------------------------------------------------------------------
# loading the toy system's config


def test_toy_config_loads_with_env_vars_substituted(toy_config_file, env):
    config = Config(toy_config_file)

    assert config["checklist file"] == f"{env['NOWCAST_LOGS']}/nowcast_checklist.yaml"
    assert config["python"] == f"{env['NOWCAST_ENV']}/bin/python"
    assert config["zmq"]["ports"] == {"manager": 5555, "workers": 5556}
    assert config["message registry"]["next workers module"] == "next_workers"
    assert set(config["message registry"]["workers"]) == {"sleep", "awaken", "rotate_logs", "clear_checklist"}


def test_toy_config_keeps_nemo_manager_reply_types(toy_config_file):
    config = Config(toy_config_file)
    assert set(config["message registry"]["manager"]) == {
        "ack", "checklist cleared", "unregistered worker", "unregistered message type", "no after_worker function",
    }


def test_load_config_function_and_file_attribute(toy_config_file):
    config = load_config(toy_config_file)
    assert isinstance(config, Config)
    assert config.file == str(toy_config_file)
    assert Config(str(toy_config_file)).file == str(toy_config_file)


def test_config_file_given_as_relative_path(toy_config_file, monkeypatch):
    monkeypatch.chdir(toy_config_file.parent)
    config = Config("nowcast.yaml")
    assert config.file == "nowcast.yaml"
    assert "zmq" in config


# --------------------------------------------------------------------------
# $(NOWCAST.ENV.X) substitution


def test_env_var_substituted_in_top_level_logging_handler_filenames(toy_config_file, env):
    def change(data):
        data["logging"]["handlers"]["info_text"] = {
            "class": "logging.handlers.RotatingFileHandler",
            "filename": "$(NOWCAST.ENV.NOWCAST_LOGS)/nowcast.log",
        }
        data["logging"]["handlers"]["debug_text"] = {
            "class": "logging.handlers.RotatingFileHandler",
            "filename": "$(NOWCAST.ENV.NOWCAST_LOGS)/nowcast.debug.log",
        }

    config = Config(edit(toy_config_file, change))

    handlers = config["logging"]["handlers"]
    assert handlers["info_text"]["filename"] == f"{env['NOWCAST_LOGS']}/nowcast.log"
    assert handlers["debug_text"]["filename"] == f"{env['NOWCAST_LOGS']}/nowcast.debug.log"
    assert "filename" not in handlers["console"]


@pytest.mark.parametrize("layout", ["aggregator", "publisher"])
def test_env_var_substituted_in_aggregator_and_publisher_handler_filenames(toy_config_file, env, layout):
    def change(data):
        data["logging"][layout] = {
            "version": 1,
            "handlers": {
                "checklist": {"class": "logging.FileHandler",
                              "filename": "$(NOWCAST.ENV.NOWCAST_LOGS)/checklist.log"},
                "zmq_pub": {"class": "zmq.log.handlers.PUBHandler"},
            },
        }

    config = Config(edit(toy_config_file, change))

    handlers = config["logging"][layout]["handlers"]
    assert handlers["checklist"]["filename"] == f"{env['NOWCAST_LOGS']}/checklist.log"
    assert handlers["zmq_pub"] == {"class": "zmq.log.handlers.PUBHandler"}


def test_env_var_substituted_in_database_url(toy_config_file, env):
    config = Config(edit(toy_config_file, lambda d: d.update(
        {"database url": "sqlite:///$(NOWCAST.ENV.NOWCAST_LOGS)/history.sqlite"})))
    assert config["database url"] == f"sqlite:///{env['NOWCAST_LOGS']}/history.sqlite"


def test_text_after_closing_paren_is_kept(toy_config_file, env):
    def change(data):
        data["checklist file"] = "$(NOWCAST.ENV.NOWCAST_LOGS)/logs/checklist.yaml"
        data["python"] = "$(NOWCAST.ENV.NOWCAST_ENV)abc"

    config = Config(edit(toy_config_file, change))

    assert config["checklist file"] == f"{env['NOWCAST_LOGS']}/logs/checklist.yaml"
    assert config["python"] == f"{env['NOWCAST_ENV']}abc"


def test_several_env_vars_in_one_value_are_all_substituted(toy_config_file, env):
    config = Config(edit(toy_config_file, lambda d: d.update(
        {"python": "$(NOWCAST.ENV.NOWCAST_ENV)/x/$(NOWCAST.ENV.NOWCAST_LOGS)/y"})))
    assert config["python"] == f"{env['NOWCAST_ENV']}/x/{env['NOWCAST_LOGS']}/y"


def test_shell_style_variables_stay_literal(toy_config_file, monkeypatch):
    monkeypatch.setenv("HOME", "/home/should-not-appear")

    def change(data):
        data["checklist file"] = "${HOME}/checklist.yaml"
        data["python"] = "$PATH/python"
        data["database url"] = "sqlite:///$HOME/x.sqlite"
        data["logging"]["handlers"]["file"] = {"class": "logging.FileHandler", "filename": "${HOME}/nowcast.log"}

    config = Config(edit(toy_config_file, change))

    assert config["checklist file"] == "${HOME}/checklist.yaml"
    assert config["python"] == "$PATH/python"
    assert config["database url"] == "sqlite:///$HOME/x.sqlite"
    assert config["logging"]["handlers"]["file"]["filename"] == "${HOME}/nowcast.log"


def test_lowercase_or_misspelled_env_syntax_stays_literal(toy_config_file):
    config = Config(edit(toy_config_file, lambda d: d.update({"python": "$(NOWCAST.ENVX.HOME)/python"})))
    assert config["python"] == "$(NOWCAST.ENVX.HOME)/python"


def test_unset_env_var_raises_config_error_naming_file_key_and_variable(toy_config_file):
    text = load_error(edit(toy_config_file, lambda d: d.update(
        {"python": "$(NOWCAST.ENV.NOWCAST_TEST_UNSET_VARIABLE)/bin/python"})))
    assert "python" in text
    assert "NOWCAST_TEST_UNSET_VARIABLE" in text


def test_unset_env_var_in_handler_filename_names_handler_key(toy_config_file):
    def change(data):
        data["logging"]["publisher"] = {"handlers": {"info_text": {
            "class": "logging.FileHandler",
            "filename": "$(NOWCAST.ENV.NOWCAST_TEST_UNSET_VARIABLE)/nowcast.log"}}}

    text = load_error(edit(toy_config_file, change))
    assert "publisher" in text and "info_text" in text and "filename" in text
    assert "NOWCAST_TEST_UNSET_VARIABLE" in text


def test_unset_env_var_in_checklist_file_raises(toy_config_file, monkeypatch):
    monkeypatch.delenv("NOWCAST_LOGS")
    text = load_error(toy_config_file)
    assert "checklist file" in text and "NOWCAST_LOGS" in text


# --------------------------------------------------------------------------
# validation errors


def _delete(*path):
    def change(data):
        target = data
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]
    return change


def _set(value, *path):
    def change(data):
        target = data
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    return change


@pytest.mark.parametrize(
    "path",
    [
        ("checklist file",),
        ("logging",),
        ("zmq",),
        ("zmq", "host"),
        ("zmq", "ports", "manager"),
        ("zmq", "ports", "workers"),
        ("message registry",),
        ("message registry", "manager"),
        ("message registry", "next workers module"),
        ("message registry", "workers"),
    ],
    ids=lambda p: ": ".join(p),
)
def test_missing_required_key_raises_config_error_naming_key(toy_config_file, path):
    text = load_error(edit(toy_config_file, _delete(*path)))
    assert ": ".join(path) in text


@pytest.mark.parametrize("path, expected", [
    (("zmq",), "missing key 'zmq' (expected a mapping with host and ports)"),
    (("zmq", "ports"), "missing key 'zmq: ports' (expected a mapping with manager and workers port numbers)"),
    (("zmq", "host"), "missing key 'zmq: host' (expected a host name string)"),
    (("message registry",),
     "missing key 'message registry' (expected a mapping with manager, next workers module and workers)"),
])
def test_missing_key_says_what_that_key_holds(toy_config_file, path, expected):
    assert load_error(edit(toy_config_file, _delete(*path))).endswith(expected)


@pytest.mark.parametrize("value, path, expected", [
    (5, ("zmq",), "key 'zmq': expected a mapping with host and ports, got int 5"),
    ("4343", ("zmq", "ports"), "key 'zmq: ports': expected a mapping with manager and workers port numbers, "
                               "got str '4343'"),
])
def test_section_that_is_not_a_mapping_says_what_it_should_hold(toy_config_file, value, path, expected):
    assert load_error(edit(toy_config_file, _set(value, *path))).endswith(expected)


@pytest.mark.parametrize(
    "value, path, key",
    [
        ("not a port", ("zmq", "ports", "manager"), "zmq: ports: manager"),
        (True, ("zmq", "ports", "workers"), "zmq: ports: workers"),
        (4343.5, ("zmq", "ports", "workers"), "zmq: ports: workers"),
        (["a", "b"], ("zmq", "host"), "zmq: host"),
        ({"a": 1}, ("checklist file",), "checklist file"),
        ("a string", ("logging",), "logging"),
        (["sleep"], ("message registry", "workers"), "message registry: workers"),
        ("sleep", ("message registry", "workers", "sleep"), "message registry: workers: sleep"),
        (["x"], ("message registry", "workers", "sleep", "checklist key"),
         "message registry: workers: sleep: checklist key"),
        (42, ("message registry", "next workers module"), "message registry: next workers module"),
        (["/usr/bin/python"], ("python",), "python"),
        (5, ("database url",), "database url"),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_wrong_type_raises_config_error_naming_key(toy_config_file, value, path, key):
    text = load_error(edit(toy_config_file, _set(value, *path)))
    assert key in text


def test_missing_file_raises_config_error_naming_file(tmp_path):
    missing = tmp_path / "no-such" / "nowcast.yaml"
    text = load_error(missing)
    assert "cannot read" in text


def test_invalid_yaml_raises_config_error_naming_file_and_line(tmp_path):
    config_file = tmp_path / "nowcast.yaml"
    config_file.write_text("checklist file: x\nzmq:\n  host: [unclosed\n  ports: {manager: 1\n")
    text = load_error(config_file)
    assert "YAML" in text
    assert "line" in text


def test_tab_indented_yaml_raises_config_error(tmp_path):
    config_file = tmp_path / "nowcast.yaml"
    config_file.write_text("zmq:\n\thost: localhost\n")
    load_error(config_file)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "", "42\n"],
                         ids=["list", "string", "empty", "int"])
def test_non_mapping_document_raises_config_error(tmp_path, text):
    config_file = tmp_path / "nowcast.yaml"
    config_file.write_text(text)
    message = load_error(config_file)
    assert "mapping" in message


def test_config_yaml_is_loaded_safely(tmp_path):
    marker = tmp_path / "made-by-yaml"
    config_file = tmp_path / "nowcast.yaml"
    config_file.write_text(f"checklist file: !!python/object/apply:os.mkdir ['{marker}']\n")
    load_error(config_file)
    assert not marker.exists()


def test_registered_worker_with_no_types_is_accepted(toy_config_file):
    config = Config(edit(toy_config_file, _set(None, "message registry", "workers", "bare")))
    assert config["message registry"]["workers"]["bare"] is None
    assert config.worker_registry("bare") == {}
    assert config.worker_registry("nobody") is None
    assert config.worker_registry("sleep")["checklist key"] == "sleepyhead"


# --------------------------------------------------------------------------
# dict-like access


def test_dict_like_access(toy_config_file):
    config = Config(toy_config_file)

    assert config["zmq"]["host"] == "localhost"
    assert "zmq" in config
    assert "no such key" not in config
    assert config.get("no such key") is None
    assert config.get("no such key", "default") == "default"
    assert config.get("zmq")["host"] == "localhost"
    with pytest.raises(KeyError):
        config["no such key"]

    config["run"] = {"enabled hosts": {}}
    assert "run" in config
    assert config["run"] == {"enabled hosts": {}}
    assert config.get("run") == {"enabled hosts": {}}

    config["zmq"]["host"] = "example.org"
    assert config["zmq"]["host"] == "example.org"


def test_config_from_data_has_no_file_and_supports_access():
    config = Config(data={"a": 1})
    assert config.file is None
    assert config["a"] == 1
    assert "a" in config
    assert config.get("b", 2) == 2


def test_empty_config_then_load(toy_config_file):
    config = Config()
    assert config.file is None
    assert "zmq" not in config
    config.load(toy_config_file)
    assert config.file == os.fspath(toy_config_file)
    assert config["zmq"]["ports"]["manager"] == 5555


def test_config_error_helper_names_file_key_and_value(toy_config_file):
    config = Config(toy_config_file)
    error = config.error("run: enabled hosts", "a mapping", ["x"])
    assert isinstance(error, ConfigError)
    assert str(toy_config_file) in str(error)
    assert "run: enabled hosts" in str(error)
