"""Exceptions that carry a one-line explanation for the operator."""


class NowcastError(Exception):
    """Base class: the message is meant to be shown to a person as it is."""


class ConfigError(NowcastError):
    """The configuration file is missing, unreadable or has a wrong value."""


class MessageError(NowcastError):
    """A message could not be built, serialized or read."""


class WorkerError(NowcastError):
    """Raised when a worker meets an error it can't recover from.

    Raising it from a worker function makes the worker send its failure message.
    """
