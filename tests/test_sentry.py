"""With sentry-sdk installed and SENTRY_DSN set, a worker's unhandled
exception reaches Sentry.  The Sentry server is a local HTTP server that
records what the real sentry-sdk sends (sentry.io cannot be reached here)."""
import http.server
import threading

import pytest

pytest.importorskip("sentry_sdk", reason="the sentry extra is not installed (pip install '.[sentry]')")

CRASHING_WORKER = '''
from nowcast_db import NowcastWorker


def main():
    worker = NowcastWorker("sleep", description="crashes")
    worker.init_cli()
    worker.run(work, lambda args: "success", lambda args: "failure")


def work(parsed_args, config, *args):
    raise RuntimeError("reported to sentry from the worker")


if __name__ == "__main__":
    main()
'''


@pytest.fixture
def sentry_server():
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append((self.path, self.headers.get("Content-Encoding"), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], received
    server.shutdown()


def _bodies(received) -> str:
    import gzip
    import zlib

    texts = []
    for _, encoding, body in received:
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            continue
        texts.append(body.decode(errors="replace"))
    return "\n".join(texts)


def test_worker_crash_is_reported_to_sentry(running_toy, sentry_server):
    port, received = sentry_server
    toy = running_toy
    (toy.directory / "crashing.py").write_text(CRASHING_WORKER)
    toy.env["SENTRY_DSN"] = f"http://publickey@127.0.0.1:{port}/42"
    result = toy.run_worker("crashing")
    assert result.returncode == 1, result.stderr  # a crashed worker exits 1, after telling the manager
    assert toy.sql("SELECT type FROM messages WHERE source = 'sleep'") == [("crash",)]
    assert received, "sentry-sdk sent nothing to the Sentry server"
    assert {path for path, _, _ in received} == {"/api/42/envelope/"}
    assert "reported to sentry from the worker" in _bodies(received)


def test_sentry_dsn_without_sentry_sdk_says_so(running_toy, tmp_path):
    toy = running_toy
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sentry_sdk.py").write_text("raise ImportError('sentry-sdk hidden by the test')\n")
    toy.env["SENTRY_DSN"] = "http://publickey@127.0.0.1:9/1"
    toy.env["PYTHONPATH"] = f"{hide}:{toy.env.get('PYTHONPATH', '')}"
    result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
    assert result.returncode == 0, result.stderr
    assert "SENTRY_DSN is set but sentry-sdk is not installed" in result.stderr


def test_manager_reports_a_failing_after_function_to_sentry(toy, sentry_server):
    from conftest import raw_message, wait_until

    port, received = sentry_server
    toy.env["SENTRY_DSN"] = f"http://publickey@127.0.0.1:{port}/7"
    toy.write_next_workers("def after_sleep(msg, config, checklist):\n"
                           "    raise ValueError('after_sleep is broken for sentry')\n")
    toy.start_system()
    reply = raw_message(toy.workers_port, {"source": "sleep", "type": "success", "payload": None})
    assert reply["type"] == "after_worker function failed"
    wait_until(lambda: "after_sleep is broken for sentry" in _bodies(received), timeout=20,
               what="the manager's event at the Sentry server")
