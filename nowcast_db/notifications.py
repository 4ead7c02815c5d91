"""Slack notifications of worker messages, from NEMO_Nowcast's
``slack notifications`` config section.

Each key that starts with ``SLACK`` names an environment variable holding a
Slack incoming-webhook URL (a secret, so it lives in the environment, not in
the config file); its value lists the workers whose messages go to that
webhook. ``website log url`` and ``website checklist url``, when present, are
added to every notification as NEMO_Nowcast does; other keys are ignored.

Posting happens in a background thread because the manager must never wait on
Slack: a slow or unreachable webhook would otherwise hold up every worker's
reply. A notification is worth less than the nowcast it reports on, so when
the queue is full it is dropped, and every failure only logs a warning.
Webhook URLs never appear in the log.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time

import requests

__all__ = ["Notifier"]

SECTION = "slack notifications"
LINK_KEYS = (("website log url", "Log"), ("website checklist url", "Checklist"))
_STOP = object()


class Notifier:
    """Posts worker messages to the Slack webhooks configured for them.

    The section is checked here, at start-up (ConfigError), so a mistake in
    it stops the manager with a clear message instead of silently losing
    notifications.
    """

    def __init__(self, config, logger: logging.Logger, queue_size: int = 1000, post_timeout: float = 5.0):
        self.logger = logger
        self.post_timeout = post_timeout
        self._routes, self._links = _read_section(config, logger)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stopping = threading.Event()
        self._deadline = float("inf")
        self._warned_unset: set[str] = set()
        self._thread: threading.Thread | None = None
        if self._routes:
            self._thread = threading.Thread(target=self._post_queued, name="slack-notifier", daemon=True)
            self._thread.start()

    def notify(self, message_source: str, message_type: str, text: str | None = None) -> None:
        """Queue the notification of a message for every webhook that wants
        messages from its source; return at once.

        ``text`` is the registry's description of the message type. Never
        raises: a notification problem must not stop the manager.
        """
        try:
            targets = self._targets(message_source)
            if not targets:
                return
            if self._stopping.is_set():
                self.logger.warning(f"slack notification of {message_source} ({message_type}) dropped: notifier closed")
                return
            body = {"text": self._text(message_source, message_type, text)}
            for env_var, url in targets:
                try:
                    self._queue.put_nowait((env_var, url, body))
                except queue.Full:
                    self.logger.warning(
                        f"slack notification of {message_source} ({message_type}) to {env_var} dropped: "
                        f"{self._queue.maxsize} notifications already waiting"
                    )
        except Exception:
            self.logger.warning(f"slack notification of {message_source} ({message_type}) failed", exc_info=True)

    def close(self, timeout: float = 5.0) -> bool:
        """Post what is already queued, for up to ``timeout`` seconds, then stop.

        Returns False if the thread was still busy (a webhook that does not
        answer) when the time ran out; it is a daemon thread, so it does not
        keep the process alive.
        """
        self._deadline = time.monotonic() + timeout
        self._stopping.set()
        if self._thread is None:
            return True
        try:
            self._queue.put_nowait(_STOP)
        except queue.Full:
            pass  # the thread stops when it has emptied the queue
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.logger.warning(
                f"slack notifications: still posting after {timeout:g} s at shutdown; "
                f"{self._queue.qsize()} left unsent"
            )
            return False
        return True

    # --- in the caller's thread ------------------------------------------------

    def _targets(self, source: str) -> list[tuple[str, str]]:
        targets = []
        for env_var, workers in self._routes:
            if source not in workers:
                continue
            url = os.environ.get(env_var)
            if url:
                targets.append((env_var, url))
            elif env_var not in self._warned_unset:
                # once: a test host run without Slack would otherwise fill its log
                self._warned_unset.add(env_var)
                self.logger.warning(f"slack notifications: environment variable {env_var} is not set; not posting to it")
        return targets

    def _text(self, source: str, msg_type: str, description: str | None) -> str:
        first = f"{source}: ({msg_type}) {description}" if description else f"{source}: ({msg_type})"
        return "\n".join([first] + [f"{label}: {url}" for label, url in self._links])

    # --- in the notifier thread ---------------------------------------------------

    def _post_queued(self) -> None:
        abandoned = 0
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            if self._stopping.is_set() and time.monotonic() >= self._deadline:
                abandoned += 1
            else:
                self._post(*item)
            if self._stopping.is_set() and self._queue.empty():
                break
        if abandoned:
            self.logger.warning(f"slack notifications: {abandoned} left unsent at shutdown")

    def _post(self, env_var: str, url: str, body: dict) -> None:
        # the exception text would carry the webhook URL, a secret: say only what happened
        try:
            response = requests.post(url, json=body, timeout=self.post_timeout)
        except requests.Timeout:
            self._warn_unposted(env_var, f"no answer within {self.post_timeout:g} s")
        except requests.ConnectionError:
            self._warn_unposted(env_var, "connection failed")
        except Exception as err:
            self._warn_unposted(env_var, type(err).__name__)
        else:
            response.close()
            if response.status_code >= 400:
                self._warn_unposted(env_var, f"HTTP {response.status_code} {response.reason or ''}".rstrip())

    def _warn_unposted(self, env_var: str, reason: str) -> None:
        self.logger.warning(f"slack notification to {env_var} not posted: {reason}")


def _read_section(config, logger) -> tuple[list[tuple[str, frozenset]], list[tuple[str, str]]]:
    """The (env var, worker names) routes and the (label, url) links of the section."""
    section = config.get(SECTION)
    if section is None:
        return [], []
    if not isinstance(section, dict):
        raise config.error(SECTION, "a mapping of SLACK_... environment variable names to lists of worker names", section)
    workers_registry = _registered_workers(config)
    routes = []
    for key, value in section.items():
        if not (isinstance(key, str) and key.startswith("SLACK")):
            continue
        where = f"{SECTION}: {key}"
        if not isinstance(value, list):
            raise config.error(where, "a list of worker names", value)
        for name in value:
            if not isinstance(name, str):
                raise config.error(where, "a list of worker names", name)
        unknown = [name for name in value if workers_registry is not None and name not in workers_registry]
        if unknown:
            logger.warning(f"{config.file}: key '{where}': not in the message registry: {', '.join(unknown)}")
        routes.append((key, frozenset(value)))
    links = []
    for key, label in LINK_KEYS:
        if key in section:
            if not isinstance(section[key], str):
                raise config.error(f"{SECTION}: {key}", "a URL string", section[key])
            links.append((label, section[key]))
    return routes, links


def _registered_workers(config):
    registry = config.get("message registry")
    workers = registry.get("workers") if isinstance(registry, dict) else None
    return workers if isinstance(workers, dict) else None
