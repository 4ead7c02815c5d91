"""The nowcast system configuration file (nowcast.yaml).

Only ``$(NOWCAST.ENV.NAME)`` is substituted, and only in the keys NEMO_Nowcast
substitutes (plus ``database url``): shell-style ``$HOME`` stays literal so
workers can expand it themselves.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from nowcast_db.errors import ConfigError

_ENV_VAR = re.compile(r"\$\(NOWCAST\.ENV\.(\w+)\)")


class Config:
    """Dict-like access to a loaded nowcast.yaml; ``.file`` is its path."""

    def __init__(self, file: str | os.PathLike | None = None, data: dict | None = None):
        self.file: str | None = None
        self._dict: dict = data if data is not None else {}
        if file is not None:
            self.load(file)

    def load(self, config_file: str | os.PathLike) -> None:
        self.file = os.fspath(config_file)
        data = read_yaml_file(config_file, "config file")
        if not isinstance(data, dict):
            raise ConfigError(f"{config_file}: expected a YAML mapping of config keys, got {_kind(data)}")
        self._dict = data
        _substitute_env_vars(self)
        validate(self)

    def __getitem__(self, key):
        return self._dict[key]

    def __setitem__(self, key, value):
        self._dict[key] = value

    def __contains__(self, key):
        return key in self._dict

    def get(self, key, default=None):
        return self._dict.get(key, default)

    def __repr__(self):
        return f"Config(file={self.file!r})"

    # Convenience accessors used by the framework's processes.

    @property
    def registry(self) -> dict:
        return self._dict["message registry"]

    def worker_registry(self, worker: str) -> dict | None:
        """The registry entry of a worker, or None when it is not registered."""
        workers = self.registry.get("workers") or {}
        if worker not in workers:
            return None
        return workers[worker] or {}

    def error(self, key: str, expected: str, got: Any = None) -> ConfigError:
        got_text = "" if got is None else f", got {_kind(got)}"
        return ConfigError(f"{self.file}: key '{key}': expected {expected}{got_text}")


def read_yaml_file(path: str | os.PathLike, what: str, error: type[Exception] = ConfigError):
    """A YAML file's content (safe loader), or ``error`` with one line naming the file and the problem."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise error(f"{os.fspath(path)}: cannot read {what}: {err.strerror or err}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise error(f"{os.fspath(path)}: not valid YAML{line}: {problem}") from None


def load_config(config_file: str | os.PathLike) -> Config:
    return Config(config_file)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, (dict, list)):
        return "a " + {dict: "mapping", list: "list"}[type(value)]
    return f"{type(value).__name__} {value!r}"


def _expand(config: Config, key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(
                f"{config.file}: key '{key}': environment variable {name} is not set "
                f"(used as $(NOWCAST.ENV.{name}))"
            )
        return os.environ[name]

    return _ENV_VAR.sub(replace, value)


def _substitute_env_vars(config: Config) -> None:
    data = config._dict
    for key in ("checklist file", "python", "database url"):
        if key in data:
            data[key] = _expand(config, key, data[key])
    output = data.get("run output")
    if isinstance(output, dict) and "directory" in output:
        output["directory"] = _expand(config, "run output: directory", output["directory"])
    zmq_config = data.get("zmq")
    curve = zmq_config.get("curve") if isinstance(zmq_config, dict) else None
    if isinstance(curve, dict):
        from nowcast_db.curve import KEYS

        for key in KEYS:
            if key in curve:
                curve[key] = _expand(config, f"zmq: curve: {key}", curve[key])
    logging_config = data.get("logging")
    if not isinstance(logging_config, dict):
        return
    layouts = [("logging", logging_config)] + [
        (f"logging: {name}", logging_config[name])
        for name in ("aggregator", "publisher")
        if isinstance(logging_config.get(name), dict)
    ]
    for where, layout in layouts:
        handlers = layout.get("handlers")
        if not isinstance(handlers, dict):
            continue
        for name, handler in handlers.items():
            if isinstance(handler, dict) and "filename" in handler:
                handler["filename"] = _expand(
                    config, f"{where}: handlers: {name}: filename", handler["filename"]
                )


# what a key that holds other keys is expected to be, for a missing or wrong one
_SECTIONS = {
    "zmq": "a mapping with host and ports",
    "zmq: ports": "a mapping with manager and workers port numbers",
    "message registry": "a mapping with manager, next workers module and workers",
    "run output": "a mapping with directory and max bytes",
}


def _require(config: Config, path: list[str], expected: type | tuple, description: str):
    value: Any = config._dict
    for depth, part in enumerate(path):
        key = ": ".join(path[: depth + 1])
        last = depth == len(path) - 1
        if part not in value:
            raise ConfigError(f"{config.file}: missing key '{key}' "
                              f"(expected {description if last else _SECTIONS.get(key, 'a mapping')})")
        value = value[part]
        if not last and not isinstance(value, dict):
            raise config.error(key, _SECTIONS.get(key, "a mapping"), value)
    if not isinstance(value, expected) or isinstance(value, bool) and expected is not bool:
        raise config.error(": ".join(path), description, value)
    return value


def validate(config: Config) -> None:
    """Check the keys every nowcast process relies on, with one-line errors."""
    _require(config, ["checklist file"], str, "a file path string")
    _require(config, ["logging"], dict, "a logging dictConfig mapping")
    _require(config, ["zmq", "host"], str, "a host name string")
    for port in ("manager", "workers"):
        _require(config, ["zmq", "ports", port], int, "an integer port number")
    _require(config, ["message registry", "manager"], dict, "a mapping of reply types to meanings")
    _require(config, ["message registry", "next workers module"], str, "a module name or .py file path")
    workers = _require(config, ["message registry", "workers"], dict, "a mapping of worker names")
    for name, entry in workers.items():
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise config.error(f"message registry: workers: {name}", "a mapping of message types", entry)
        key = entry.get("checklist key")
        if key is not None and not isinstance(key, str):
            raise config.error(f"message registry: workers: {name}: checklist key", "a string", key)
        if "time limit" in entry:
            from nowcast_db.launcher import parse_time_limit

            try:
                parse_time_limit(entry["time limit"])
            except ValueError as err:
                raise ConfigError(f"{config.file}: key 'message registry: workers: {name}: time limit': {err}") \
                    from None
    for key in ("python", "database url"):
        if key in config and not isinstance(config[key], str):
            raise config.error(key, "a string", config[key])
    if config.get("run output") is not None:
        _require(config, ["run output"], dict, "a mapping with directory and max bytes")
        if "directory" in config["run output"]:
            _require(config, ["run output", "directory"], str, "a folder path string")
        if "max bytes" in config["run output"]:
            max_bytes = _require(config, ["run output", "max bytes"], int, "a whole number of bytes, at least 1024")
            if max_bytes < 1024:
                raise config.error("run output: max bytes", "a whole number of bytes, at least 1024", max_bytes)
    if config["zmq"].get("curve") is not None:
        _validate_curve(config)


def _validate_curve(config: Config) -> None:
    """CurveZMQ is on: every key file must be there and readable now, because a
    broker or client that found out later would fail silently (ZeroMQ drops a
    connection whose keys are wrong without telling either side)."""
    import zmq.auth

    from nowcast_db.curve import AUTHORIZED_KEYS, CLIENT_KEYS, KEYS, SERVER_PUBLIC_KEY

    curve = _require(config, ["zmq", "curve"], dict, "a mapping of CurveZMQ key files")
    for key in KEYS:
        where = f"zmq: curve: {key}"
        if key not in curve and key not in CLIENT_KEYS:
            continue  # the broker's own keys: needed only on the broker's host (checked when it starts)
        if key == AUTHORIZED_KEYS:
            folder = _require(config, ["zmq", "curve", key], str, "a folder of allowed clients' public key files")
            if not Path(folder).is_dir():
                raise ConfigError(f"{config.file}: key '{where}': {folder} is not a folder")
            try:
                zmq.auth.load_certificates(folder)
            except (OSError, ValueError) as err:
                raise ConfigError(f"{config.file}: key '{where}': {folder}: unreadable public key file: {err}") \
                    from None
            continue
        path = _require(config, ["zmq", "curve", key], str, "a key file path string")
        if not Path(path).is_file():
            raise ConfigError(f"{config.file}: key '{where}': no key file {path}")
        try:
            _public, secret = zmq.auth.load_certificate(path)
        except (OSError, ValueError) as err:
            raise ConfigError(f"{config.file}: key '{where}': {path}: not a key file: {err}") from None
        if secret is None and key != SERVER_PUBLIC_KEY:
            raise ConfigError(f"{config.file}: key '{where}': {path} holds no secret key "
                              f"(give the .key_secret file)")
