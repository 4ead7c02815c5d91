"""Slack notifications posted to real webhook servers on loopback ports."""
from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nowcast_db.config import Config
from nowcast_db.errors import ConfigError
from nowcast_db.notifications import Notifier

CONFIG_FILE = "/home/nowcast/nowcast.yaml"
DAILY = "SLACK_SSC_DAILY_PROGRESS"
HINDCAST = "SLACK_SSC_HINDCAST_PROGRESS"


class Webhook:
    """A local stand-in for a Slack incoming webhook.

    ``behaviour`` is "record" (answer 200 "ok"), "slow" (hold every request
    for up to 10 s, until the test ends) or "fail" (answer 500).
    """

    def __init__(self, behaviour: str = "record"):
        self.behaviour = behaviour
        self.posts: list[tuple[str, str, dict]] = []  # (path, content type, JSON body)
        self.arrived = threading.Semaphore(0)
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.posts.append((self.path, self.headers["Content-Type"], body))
                hook.arrived.release()
                if hook.behaviour == "slow":
                    hook.release.wait(10)
                code = 500 if hook.behaviour == "fail" else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda request, address: None  # clients that gave up
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def url(self, path: str = "/services/T0/B0/secret") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def wait_for_posts(self, count: int, timeout: float = 5.0) -> list:
        for _ in range(count):
            assert self.arrived.acquire(timeout=timeout), f"only {len(self.posts)} of {count} posts arrived"
        return self.posts

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hooks = []

    def make(behaviour="record"):
        hooks.append(Webhook(behaviour))
        return hooks[-1]

    yield make
    for hook in hooks:
        hook.close()


@pytest.fixture
def logger_name(request):
    """A logger of this test's own: notifier threads a slow webhook held up
    in an earlier test may still be logging on theirs."""
    return f"manager.{request.node.name}"


@pytest.fixture
def notifiers(logger_name):
    """Make Notifiers and close them after the test, quickly, whatever happened."""
    made = []

    def make(section, **kwargs):
        data = {"message registry": {"workers": {"sleep": {}, "awaken": {}, "clear_checklist": {}}}}
        if section is not ...:
            data["slack notifications"] = section
        config = Config(data=data)
        config.file = CONFIG_FILE
        made.append(Notifier(config, logging.getLogger(logger_name), **kwargs))
        return made[-1]

    yield make
    for notifier in made:
        notifier.close(timeout=0.2)


@pytest.fixture
def warnings(caplog, logger_name):
    caplog.set_level(logging.WARNING, logger=logger_name)
    return lambda: [r.getMessage() for r in caplog.records
                    if r.name == logger_name and r.levelno == logging.WARNING]


def wait_for(condition, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- what is posted, and where -------------------------------------------------------

def test_listed_worker_message_posted_as_json_with_registry_description(webhook, notifiers, monkeypatch, warnings):
    hook = webhook()
    monkeypatch.setenv(DAILY, hook.url())
    notifier = notifiers({DAILY: ["sleep", "awaken"]})
    notifier.notify("sleep", "success", "sleep worker slept well")
    path, content_type, body = hook.wait_for_posts(1)[0]
    assert path == "/services/T0/B0/secret"
    assert content_type == "application/json"
    assert body == {"text": "sleep: (success) sleep worker slept well"}
    assert notifier.close(timeout=1)
    assert warnings() == []


def test_website_links_added_and_other_keys_ignored(webhook, notifiers, monkeypatch):
    hook = webhook()
    monkeypatch.setenv(DAILY, hook.url())
    notifier = notifiers({
        "website log url": "https://example.org/logs",
        "website checklist url": "https://example.org/checklist.yaml",
        "extra": ["sleep"],  # not a SLACK key: not a webhook
        DAILY: ["awaken"],
    })
    notifier.notify("awaken", "failure", None)
    notifier.notify("sleep", "success", "sleep worker slept well")
    assert notifier.close(timeout=2)
    assert [body["text"] for _, _, body in hook.posts] == [
        "awaken: (failure)\nLog: https://example.org/logs\nChecklist: https://example.org/checklist.yaml"
    ]


def test_each_webhook_gets_only_the_workers_listed_for_it(webhook, notifiers, monkeypatch):
    hook = webhook()
    monkeypatch.setenv(DAILY, hook.url("/daily"))
    monkeypatch.setenv(HINDCAST, hook.url("/hindcast"))
    notifier = notifiers({DAILY: ["sleep", "awaken"], HINDCAST: ["awaken"]})
    notifier.notify("sleep", "success", "slept")
    notifier.notify("awaken", "success", "awoke")
    notifier.notify("clear_checklist", "success", "checklist cleared")
    assert notifier.close(timeout=2)
    assert sorted((path, body["text"]) for path, _, body in hook.posts) == [
        ("/daily", "awaken: (success) awoke"),
        ("/daily", "sleep: (success) slept"),
        ("/hindcast", "awaken: (success) awoke"),
    ]


def test_unlisted_worker_gets_no_post(webhook, notifiers, monkeypatch):
    hook = webhook()
    monkeypatch.setenv(DAILY, hook.url())
    notifier = notifiers({DAILY: ["sleep"]})
    notifier.notify("awaken", "success", "awoke")
    notifier.notify("sleep", "success", "slept")  # posted after the first, if that were posted
    hook.wait_for_posts(1)
    assert notifier.close(timeout=1)
    assert [body["text"] for _, _, body in hook.posts] == ["sleep: (success) slept"]


def test_no_section_means_no_notifications_and_no_thread(notifiers):
    before = set(threading.enumerate())
    notifier = notifiers(...)
    notifier.notify("sleep", "success", "slept")
    assert set(threading.enumerate()) - before == set()
    assert notifier.close(timeout=0.1)


# --- failures only warn -----------------------------------------------------------------

def test_unset_env_var_warns_once_and_other_webhooks_still_posted(webhook, notifiers, monkeypatch, warnings):
    hook = webhook()
    monkeypatch.delenv(DAILY, raising=False)
    monkeypatch.setenv(HINDCAST, hook.url())
    notifier = notifiers({DAILY: ["sleep"], HINDCAST: ["sleep"]})
    notifier.notify("sleep", "success", "slept")
    notifier.notify("sleep", "failure", "did not sleep")
    assert notifier.close(timeout=2)
    assert len(hook.posts) == 2
    assert warnings() == [f"slack notifications: environment variable {DAILY} is not set; not posting to it"]


def test_env_var_read_when_notifying(webhook, notifiers, monkeypatch):
    hook = webhook()
    monkeypatch.delenv(DAILY, raising=False)
    notifier = notifiers({DAILY: ["sleep"]})
    notifier.notify("sleep", "success", "not posted")
    monkeypatch.setenv(DAILY, hook.url())
    notifier.notify("sleep", "success", "posted")
    assert notifier.close(timeout=2)
    assert [body["text"] for _, _, body in hook.posts] == ["sleep: (success) posted"]


def test_failing_webhook_warns_without_its_url_and_later_posts_still_go(webhook, notifiers, monkeypatch, warnings):
    failing, working = webhook("fail"), webhook()
    monkeypatch.setenv(DAILY, failing.url())
    monkeypatch.setenv(HINDCAST, working.url())
    notifier = notifiers({DAILY: ["sleep"], HINDCAST: ["awaken"]})
    notifier.notify("sleep", "success", "slept")
    notifier.notify("awaken", "success", "awoke")
    working.wait_for_posts(1)
    assert notifier.close(timeout=2)
    assert len(failing.posts) == 1
    assert warnings() == [f"slack notification to {DAILY} not posted: HTTP 500 Internal Server Error"]


def test_unreachable_webhook_warns_without_its_url(webhook, notifiers, monkeypatch, warnings):
    hook = webhook()
    url = hook.url("/services/T0/B0/secret")
    hook.close()  # nothing listens there any more
    monkeypatch.setenv(DAILY, url)
    notifier = notifiers({DAILY: ["sleep"]})
    notifier.notify("sleep", "success", "slept")
    assert notifier.close(timeout=2)
    assert warnings() == [f"slack notification to {DAILY} not posted: connection failed"]
    assert "secret" not in "".join(warnings())


def test_slow_webhook_never_blocks_notify_and_close_gives_up_on_time(webhook, notifiers, monkeypatch, warnings):
    hook = webhook("slow")  # holds each request for 10 s
    monkeypatch.setenv(DAILY, hook.url())
    notifier = notifiers({DAILY: ["sleep"]})
    slowest = 0.0
    for n in range(20):
        started = time.monotonic()
        notifier.notify("sleep", "success", f"slept {n}")
        slowest = max(slowest, time.monotonic() - started)
    assert slowest < 0.1  # a blocking post would take the 5 s post timeout
    hook.wait_for_posts(1)
    started = time.monotonic()
    assert notifier.close(timeout=0.2) is False
    assert 0.2 <= time.monotonic() - started < 1
    assert any("still posting after 0.2 s at shutdown" in line for line in warnings())


def test_slow_webhook_times_out_with_a_warning(webhook, notifiers, monkeypatch, warnings):
    hook = webhook("slow")
    monkeypatch.setenv(DAILY, hook.url())
    notifier = notifiers({DAILY: ["sleep"]}, post_timeout=0.2)
    notifier.notify("sleep", "success", "slept")
    wait_for(lambda: warnings())
    assert warnings() == [f"slack notification to {DAILY} not posted: no answer within 0.2 s"]


def test_full_queue_drops_the_notification_with_a_warning(webhook, notifiers, monkeypatch, warnings):
    hook = webhook("slow")
    monkeypatch.setenv(DAILY, hook.url())
    notifier = notifiers({DAILY: ["sleep"]}, queue_size=2)
    notifier.notify("sleep", "success", "in flight")
    hook.wait_for_posts(1)  # the thread is now stuck posting it
    notifier.notify("sleep", "success", "queued 1")
    notifier.notify("sleep", "success", "queued 2")
    assert warnings() == []
    started = time.monotonic()
    notifier.notify("sleep", "failure", "no room")
    assert time.monotonic() - started < 0.1
    assert warnings() == [
        f"slack notification of sleep (failure) to {DAILY} dropped: 2 notifications already waiting"
    ]


# --- closing ---------------------------------------------------------------------------

def test_close_posts_what_was_queued_then_stops_the_thread(webhook, notifiers, monkeypatch):
    hook = webhook()
    monkeypatch.setenv(DAILY, hook.url())
    before = set(threading.enumerate())
    notifier = notifiers({DAILY: ["sleep"]})
    (thread,) = set(threading.enumerate()) - before
    for n in range(5):
        notifier.notify("sleep", "success", f"slept {n}")
    assert notifier.close(timeout=2) is True
    assert [body["text"] for _, _, body in hook.posts] == [f"sleep: (success) slept {n}" for n in range(5)]
    assert not thread.is_alive()


def test_notify_after_close_is_dropped_quietly(webhook, notifiers, monkeypatch, warnings):
    hook = webhook()
    monkeypatch.setenv(DAILY, hook.url())
    notifier = notifiers({DAILY: ["sleep"]})
    assert notifier.close(timeout=1)
    notifier.notify("sleep", "success", "too late")
    assert hook.posts == []
    assert warnings() == ["slack notification of sleep (success) dropped: notifier closed"]


# --- config checked at start-up ---------------------------------------------------------

@pytest.mark.parametrize(
    ("section", "message"),
    [
        (["sleep"], f"{CONFIG_FILE}: key 'slack notifications': expected a mapping of SLACK_... "
                    "environment variable names to lists of worker names, got a list"),
        ({DAILY: "sleep"}, f"{CONFIG_FILE}: key 'slack notifications: {DAILY}': "
                           "expected a list of worker names, got str 'sleep'"),
        ({DAILY: {"sleep": True}}, f"{CONFIG_FILE}: key 'slack notifications: {DAILY}': "
                                   "expected a list of worker names, got a mapping"),
        ({DAILY: ["sleep", 3]}, f"{CONFIG_FILE}: key 'slack notifications: {DAILY}': "
                                "expected a list of worker names, got int 3"),
        ({DAILY: None}, f"{CONFIG_FILE}: key 'slack notifications: {DAILY}': expected a list of worker names"),
        ({"website log url": ["x"]}, f"{CONFIG_FILE}: key 'slack notifications: website log url': "
                                     "expected a URL string, got a list"),
    ],
)
def test_bad_section_refused_with_one_line_error_naming_the_key(notifiers, section, message):
    with pytest.raises(ConfigError) as raised:
        notifiers(section)
    assert str(raised.value) == message


def test_unregistered_worker_name_warned_about_at_start_up(notifiers, warnings):
    notifiers({DAILY: ["sleep", "slepe"]})
    assert warnings() == [
        f"{CONFIG_FILE}: key 'slack notifications: {DAILY}': not in the message registry: slepe"
    ]
