"""get_web_data against a real HTTP server on a loopback port."""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from nowcast_db import web
from nowcast_db.errors import WorkerError
from nowcast_db.web import get_web_data

LOGGER = "download_weather"
FAST = {"first_retry_delay": 0.01, "retry_backoff": 2, "retry_time_limit": 5}


# --- what a path does on its Nth request ------------------------------------

def ok(body: bytes, headers: dict | None = None):
    def behave(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
    return behave


def status(code: int):
    def behave(handler):
        handler.send_response(code)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return behave


def drop(handler):
    """Close the connection without a word, as an overloaded server does."""
    handler.close_connection = True


def truncated(body: bytes, sent: int):
    """Promise the whole body, send part of it, hang up."""
    def behave(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body[:sent])
        handler.wfile.flush()
        handler.close_connection = True
    return behave


def stall(site: "Site", seconds: float):
    def behave(handler):
        site.release.wait(seconds)
        handler.close_connection = True
    return behave


class Site:
    """A local web server whose paths behave as each test scripts them: the
    Nth request to a path gets its Nth behaviour, the last one repeating."""

    def __init__(self):
        self.routes: dict[str, list] = {}
        self.hits: Counter = Counter()
        self.release = threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                behaviours = site.routes.get(self.path, [status(404)])
                n = site.hits[self.path]
                site.hits[self.path] += 1
                behaviours[min(n, len(behaviours) - 1)](self)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda request, address: None  # clients that gave up
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def serve(self, path: str, *behaviours) -> str:
        self.routes[path] = list(behaviours)
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site():
    server = Site()
    yield server
    server.close()


@pytest.fixture
def retries(caplog):
    """The retry warnings logged on the worker's logger."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    return lambda: [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


# --- success ------------------------------------------------------------------

def test_content_returned_when_no_filepath(site, retries):
    url = site.serve("/forecast.txt", ok(b"wind 12 kn NW"))
    assert get_web_data(url, LOGGER, **FAST) == b"wind 12 kn NW"
    assert site.hits["/forecast.txt"] == 1
    assert retries() == []


def test_content_streamed_to_file_and_headers_returned(site, tmp_path):
    body = os.urandom(350 * 1024)  # several chunks
    url = site.serve("/hrdps.grib2", ok(body, {"X-Forecast-Run": "06"}))
    target = tmp_path / "hrdps.grib2"
    headers = get_web_data(url, LOGGER, filepath=target, **FAST)
    assert target.read_bytes() == body
    assert headers["x-forecast-run"] == "06"
    assert headers["Content-Length"] == str(len(body))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hrdps.grib2"]


def test_filepath_may_be_a_string(site, tmp_path):
    url = site.serve("/tides.csv", ok(b"t,h\n0,1.2\n"))
    get_web_data(url, LOGGER, filepath=str(tmp_path / "tides.csv"), **FAST)
    assert (tmp_path / "tides.csv").read_bytes() == b"t,h\n0,1.2\n"


# --- retried failures -------------------------------------------------------------

def test_503_retried_with_exponentially_growing_waits_until_success(site, retries):
    url = site.serve("/rivers.csv", status(503), status(503), status(503), ok(b"flow 1234"))
    assert get_web_data(url, LOGGER, **FAST) == b"flow 1234"
    assert site.hits["/rivers.csv"] == 4
    logged = retries()
    assert len(logged) == 3
    assert all(url in line and "HTTP 503" in line for line in logged)
    assert [line.rsplit(" in ", 1)[1] for line in logged] == ["0.01 s", "0.02 s", "0.04 s"]


def test_retry_backoff_sets_the_growth_of_the_waits(site, retries):
    url = site.serve("/x", status(500), status(502), status(504), ok(b"x"))
    get_web_data(url, LOGGER, first_retry_delay=0.01, retry_backoff=3, retry_time_limit=5)
    assert [line.rsplit(" in ", 1)[1] for line in retries()] == ["0.01 s", "0.03 s", "0.09 s"]


def test_dropped_connection_retried(site, retries):
    url = site.serve("/obs.nc", drop, drop, ok(b"observations"))
    assert get_web_data(url, LOGGER, **FAST) == b"observations"
    assert site.hits["/obs.nc"] == 3
    assert len(retries()) == 2
    assert "connection failed" in retries()[0]


def test_download_broken_midway_retried_and_leaves_no_partial_file(site, tmp_path, retries):
    body = os.urandom(200 * 1024)
    url = site.serve("/ww3.nc", truncated(body, 1000), ok(body))
    target = tmp_path / "ww3.nc"
    get_web_data(url, LOGGER, filepath=target, **FAST)
    assert target.read_bytes() == body
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ww3.nc"]
    assert site.hits["/ww3.nc"] == 2
    assert "connection broken during download" in retries()[0]


def test_broken_download_retried_when_returning_content(site):
    url = site.serve("/ssh.txt", truncated(b"0123456789" * 100, 10), ok(b"0123456789" * 100))
    assert get_web_data(url, LOGGER, **FAST) == b"0123456789" * 100
    assert site.hits["/ssh.txt"] == 2


def test_server_that_stops_answering_times_out_and_is_retried(site, retries):
    url = site.serve("/slow", stall(site, 10), ok(b"at last"))
    started = time.monotonic()
    assert get_web_data(url, LOGGER, timeout=0.2, **FAST) == b"at last"
    assert time.monotonic() - started < 2
    assert site.hits["/slow"] == 2
    assert "no answer within 0.2 s" in retries()[0]


def test_too_many_requests_is_retried(site):
    url = site.serve("/busy", status(429), ok(b"ok"))
    assert get_web_data(url, LOGGER, **FAST) == b"ok"
    assert site.hits["/busy"] == 2


# --- giving up --------------------------------------------------------------------

def test_gives_up_at_the_time_limit_with_one_line_error(site, tmp_path, retries):
    url = site.serve("/down", status(503))
    target = tmp_path / "down.nc"
    started = time.monotonic()
    with pytest.raises(WorkerError) as raised:
        get_web_data(url, LOGGER, filepath=target, first_retry_delay=0.1, retry_backoff=10,
                     retry_time_limit=0.3)
    elapsed = time.monotonic() - started
    message = str(raised.value)
    assert "\n" not in message
    assert re.fullmatch(
        rf"giving up on {re.escape(url)} after 3 attempts over 0\.\d+ s; last: HTTP 503 Service Unavailable",
        message,
    )
    # the second wait would be 1 s; it is cut short so the last attempt comes at the limit
    assert 0.3 <= elapsed < 0.8
    assert site.hits["/down"] == 3
    assert len(retries()) == 2
    assert list(tmp_path.iterdir()) == []


def test_gives_up_on_a_server_that_keeps_dropping_connections(site):
    url = site.serve("/gone", drop)
    with pytest.raises(WorkerError, match=rf"^giving up on {re.escape(url)} after \d+ attempts .*connection failed"):
        get_web_data(url, LOGGER, first_retry_delay=0.01, retry_time_limit=0.1)
    assert site.hits["/gone"] >= 3


def test_failed_download_leaves_an_earlier_copy_of_the_file_intact(site, tmp_path):
    target = tmp_path / "rivers.csv"
    target.write_bytes(b"yesterday's complete file")
    url = site.serve("/rivers.csv", truncated(b"x" * 5000, 100))
    with pytest.raises(WorkerError, match="connection broken during download"):
        get_web_data(url, LOGGER, filepath=target, first_retry_delay=0.01, retry_time_limit=0.1)
    assert target.read_bytes() == b"yesterday's complete file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rivers.csv"]


def test_zero_time_limit_means_one_attempt(site, retries):
    url = site.serve("/once", status(502))
    with pytest.raises(WorkerError, match=r"after 1 attempt over .*; last: HTTP 502 Bad Gateway$"):
        get_web_data(url, LOGGER, retry_time_limit=0)
    assert site.hits["/once"] == 1
    assert retries() == []


def test_404_fails_at_once_without_retrying(site, tmp_path, retries):
    url = site.serve("/no-such-file.nc", status(404))
    with pytest.raises(WorkerError) as raised:
        get_web_data(url, LOGGER, filepath=tmp_path / "f.nc", **FAST)
    assert str(raised.value) == f"{url}: HTTP 404 Not Found; not retried"
    assert site.hits["/no-such-file.nc"] == 1
    assert retries() == []
    assert list(tmp_path.iterdir()) == []


def test_403_fails_at_once(site):
    url = site.serve("/private", status(403))
    with pytest.raises(WorkerError, match="HTTP 403"):
        get_web_data(url, LOGGER, **FAST)
    assert site.hits["/private"] == 1


def test_bad_url_fails_at_once_naming_it():
    with pytest.raises(WorkerError, match="not-a-url"):
        get_web_data("not-a-url", LOGGER, **FAST)


def test_unwritable_filepath_fails_at_once_naming_the_file(site, tmp_path):
    url = site.serve("/f", ok(b"data"))
    target = tmp_path / "no-such-dir" / "f.nc"
    with pytest.raises(WorkerError) as raised:
        get_web_data(url, LOGGER, filepath=target, **FAST)
    assert str(target) in str(raised.value) and url in str(raised.value)
    assert site.hits["/f"] == 1


# --- sessions -----------------------------------------------------------------------

class CountingSession(requests.Session):
    closed = 0

    def close(self):
        CountingSession.closed += 1
        super().close()


def test_given_session_used_and_left_open(site):
    url = site.serve("/a", ok(b"a"))
    CountingSession.closed = 0
    with CountingSession() as session:
        assert get_web_data(url, LOGGER, session=session, **FAST) == b"a"
        assert get_web_data(url, LOGGER, session=session, **FAST) == b"a"
        assert CountingSession.closed == 0


def test_own_session_closed_even_on_failure(site, monkeypatch):
    monkeypatch.setattr(web.requests, "Session", CountingSession)
    CountingSession.closed = 0
    get_web_data(site.serve("/a", ok(b"a")), LOGGER, **FAST)
    with pytest.raises(WorkerError):
        get_web_data(site.serve("/b", status(404)), LOGGER, **FAST)
    assert CountingSession.closed == 2


def test_nonsense_retry_settings_refused():
    with pytest.raises(ValueError, match="first_retry_delay"):
        get_web_data("http://127.0.0.1/", LOGGER, first_retry_delay=0)
    with pytest.raises(ValueError, match="retry_backoff"):
        get_web_data("http://127.0.0.1/", LOGGER, retry_backoff=0.5)


def test_nemo_nowcast_signature_and_import_path_still_work(site, tmp_path):
    """NEMO_Nowcast workers call nemo_nowcast.worker.get_web_data(file_url, logger_name, filepath,
    session, chunk_size, wait_exponential_multiplier, wait_retry_max, wait_exponential_max)."""
    from nowcast_db.worker import get_web_data as from_worker

    url = site.serve("/nemo", status(503), ok(b"0123456789"))
    target = tmp_path / "nemo.txt"
    with requests.Session() as session:
        from_worker(url, LOGGER, target, session, 4, wait_exponential_multiplier=1.01, wait_retry_max=0.05,
                    wait_exponential_max=2)
    assert target.read_bytes() == b"0123456789"


def test_wait_retry_max_caps_each_wait(site, retries):
    url = site.serve("/capped", status(503), status(503), status(503), ok(b"done"))
    assert get_web_data(url, LOGGER, first_retry_delay=0.01, retry_backoff=10, wait_retry_max=0.02,
                        retry_time_limit=5) == b"done"
    assert [line.rsplit(" in ", 1)[1] for line in retries()] == ["0.01 s", "0.02 s", "0.02 s"]
