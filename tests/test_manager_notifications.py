"""The manager posts Slack notifications for workers' reports, off its message loop."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import raw_message, wait_until


class Webhook:
    """A local stand-in for Slack's incoming webhook, optionally slow."""

    def __init__(self, delay: float = 0.0):
        self.posts, self.delay, self.release = [], delay, threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.release.wait(hook.delay)
                hook.posts.append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_system(toy):
    def start(delay=0.0):
        hook = Webhook(delay)
        toy.env["SLACK_TOY"] = hook.url
        toy.edit_config(lambda config: config.update({"slack notifications": {"SLACK_TOY": ["sleep"]}}))
        toy.start_system()
        hooks.append(hook)
        return hook

    hooks = []
    yield start
    for hook in hooks:
        hook.close()


def test_report_from_listed_worker_is_posted(toy, webhook_system):
    hook = webhook_system()
    raw_message(toy.workers_port, {"source": "sleep", "type": "failure", "payload": None})
    raw_message(toy.workers_port, {"source": "awaken", "type": "failure", "payload": None})
    wait_until(lambda: hook.posts, what="slack post")
    time.sleep(0.3)  # give a wrongly posted awaken notification the time to arrive
    assert hook.posts == [{"text": "sleep: (failure) sleep worker slept badly"}]


def test_slow_webhook_never_delays_replies(toy, webhook_system):
    webhook_system(delay=10)
    started = time.monotonic()
    for _ in range(5):
        reply = raw_message(toy.workers_port, {"source": "sleep", "type": "failure", "payload": None})
        assert reply["type"] == "ack"
    assert time.monotonic() - started < 3


def test_report_the_manager_could_not_act_on_is_posted_with_the_reason(toy, webhook_system):
    toy.write_next_workers("def after_sleep(msg, config, checklist):\n    raise KeyError('forecast')\n")
    hook = webhook_system()
    reply = raw_message(toy.workers_port, {"source": "sleep", "type": "success", "payload": None})
    assert reply["type"] == "after_worker function failed"
    wait_until(lambda: hook.posts, what="slack post")
    assert hook.posts == [{"text": "sleep: (success) sleep worker slept well; manager replied "
                                   "(after_worker function failed): after_sleep failed: KeyError: 'forecast'"}]
