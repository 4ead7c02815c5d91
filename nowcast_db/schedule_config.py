"""Reading the config's ``scheduled workers`` section (NEMO_Nowcast format)::

    scheduled workers:
      - nowcast.workers.download_weather:
          every: day          # day, hour, minute, or monday … sunday
          at: '05:15'         # HH:MM or HH:MM:SS for days; :MM for hours; :SS for minutes
          cmd line opts: 12   # the worker's arguments, split like a shell would
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass

import schedule

from nowcast_db.errors import ConfigError

EVERY = ("day", "hour", "minute", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class ScheduledLaunch:
    module: str
    every: str
    at: str | None
    args: tuple[str, ...]

    @property
    def description(self) -> str:
        when = f"every {self.every}" + (f" at {self.at}" if self.at else "")
        return f"{self.module} {' '.join(self.args)}".strip() + f" {when}"


def scheduled_launches(config) -> list[ScheduledLaunch]:
    """Every entry, checked; a bad one is an error naming it, not a silent skip."""
    section = config.get("scheduled workers") or []
    if not isinstance(section, list):
        raise ConfigError(f"{config.file}: key 'scheduled workers': expected a list of "
                          f"'- MODULE: {{every: ..., at: ...}}' entries, got {type(section).__name__}")
    workers = config["message registry"]["workers"]
    launches = []
    for index, entry in enumerate(section, start=1):
        where = f"{config.file}: key 'scheduled workers' entry {index}"
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ConfigError(f"{where}: expected one 'MODULE: {{every: ..., at: ...}}' mapping, got {entry!r}")
        (module, options), = entry.items()
        where = f"{where} ({module})"
        if not isinstance(options, dict):
            raise ConfigError(f"{where}: expected a mapping with every, at and cmd line opts, got {options!r}")
        if str(module).rsplit(".", 1)[-1] not in workers:
            raise ConfigError(f"{where}: worker {str(module).rsplit('.', 1)[-1]!r} is not in the message registry")
        unknown = set(options) - {"every", "at", "cmd line opts"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r} (expected every, at, cmd line opts)")
        every = str(options.get("every", "")).lower()
        if every not in EVERY:
            raise ConfigError(f"{where}: 'every' must be one of {', '.join(EVERY)}, got {options.get('every')!r}")
        at = options.get("at")
        opts = options.get("cmd line opts")
        # unquoted, YAML reads 23:59 as the number 1439 and 06 as 6: refuse rather than guess
        for key, value in (("at", at), ("cmd line opts", opts)):
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{where}: '{key}' must be a quoted string, e.g. {key}: '{value}', "
                                  f"got {type(value).__name__} {value!r} (YAML reads unquoted times and "
                                  f"numbers like 23:59 and 06 as numbers)")
        if at is not None:
            try:
                getattr(schedule.Scheduler().every(), every).at(at)
            except schedule.ScheduleValueError as err:
                raise ConfigError(f"{where}: bad 'at' {at!r} for every {every}: {err}") from None
        try:
            args = tuple(shlex.split(str(opts))) if opts is not None else ()
        except ValueError as err:
            raise ConfigError(f"{where}: 'cmd line opts' cannot be split: {err}") from None
        launches.append(ScheduledLaunch(str(module), every, str(at) if at is not None else None, args))
    return launches
