"""Downloads for workers, patient with the servers forcing data comes from.

Operational data servers (weather, river, tide forecasts) are often briefly
down or overloaded at exactly the hour a nowcast needs them, so a worker
should keep trying for hours rather than fail the day's run; but a missing
file (HTTP 4xx) does not appear by waiting, so that fails at once.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import requests
import tenacity

from nowcast_db.errors import WorkerError

__all__ = ["get_web_data"]

CHUNK_SIZE = 100 * 1024
# Client errors that mean "come back later" rather than "no such thing"
RETRIED_CLIENT_STATUSES = {408, 429}


class _Transient(Exception):
    """A failed attempt worth repeating; carries a short reason for the log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def get_web_data(
    file_url: str,
    logger_name: str,
    filepath: str | os.PathLike | None = None,
    session: requests.Session | None = None,
    chunk_size: int = CHUNK_SIZE,
    wait_exponential_multiplier: float = 2,
    wait_retry_max: float = 256,
    wait_exponential_max: float = 60 * 60,
    *,
    first_retry_delay: float | None = None,
    retry_backoff: float | None = None,
    retry_time_limit: float | None = None,
    timeout: float = 60,
):
    """Download ``url``; return its content, or store it in ``filepath`` and
    return the response headers (callers use them for names and dates of the
    file they got).

    The positional parameters are NEMO_Nowcast's, so its workers call this
    unchanged.  Network failures and HTTP 5xx are retried: the first retry
    after ``first_retry_delay`` seconds (default: ``wait_exponential_multiplier``),
    each later wait ``retry_backoff`` times the one before (default: the same
    multiplier) but never more than ``wait_retry_max``, for up to
    ``retry_time_limit`` seconds in all (default: ``wait_exponential_max``, an
    hour). The last wait is shortened so the final attempt happens at the
    limit, not beyond it.
    ``timeout`` bounds each connect and each read, so a server that stops
    answering counts as a failed attempt instead of hanging the worker.

    Pass a ``session`` to reuse connections over many downloads from one host;
    it is left open. Without one, a session is made and closed here.

    The file is written beside ``filepath`` and renamed into place when
    complete, so a download that fails never leaves a truncated file that
    looks finished.

    Raises WorkerError (so the worker sends its failure message) with a
    one-line explanation naming the URL.
    """
    url = file_url
    first_retry_delay = wait_exponential_multiplier if first_retry_delay is None else first_retry_delay
    retry_backoff = wait_exponential_multiplier if retry_backoff is None else retry_backoff
    retry_time_limit = wait_exponential_max if retry_time_limit is None else retry_time_limit
    if first_retry_delay <= 0:
        raise ValueError(f"first_retry_delay must be > 0, got {first_retry_delay}")
    if retry_backoff < 1:
        raise ValueError(f"retry_backoff must be >= 1, got {retry_backoff}")
    logger = logging.getLogger(logger_name)
    filepath = None if filepath is None else Path(filepath)
    backoff = tenacity.wait_exponential(multiplier=first_retry_delay, exp_base=retry_backoff)

    def wait(retry_state: tenacity.RetryCallState) -> float:
        remaining = retry_time_limit - retry_state.seconds_since_start
        return max(0.0, min(backoff(retry_state), wait_retry_max, remaining))

    def log_retry(retry_state: tenacity.RetryCallState) -> None:
        reason = retry_state.outcome.exception().reason
        logger.warning(
            f"{url}: {reason}; retry {retry_state.attempt_number} "
            f"in {_duration(retry_state.next_action.sleep)}"
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(_Transient),
        wait=wait,
        stop=tenacity.stop_after_delay(retry_time_limit),
        before_sleep=log_retry,
    )
    own_session = session is None
    if own_session:
        session = requests.Session()
    started = time.monotonic()
    try:
        return retrying(_attempt, session, url, filepath, timeout, chunk_size, logger)
    except tenacity.RetryError as err:
        attempt = err.last_attempt
        reason = attempt.exception().reason
        elapsed = time.monotonic() - started
        attempts = f"{attempt.attempt_number} attempt{'' if attempt.attempt_number == 1 else 's'}"
        raise WorkerError(f"giving up on {url} after {attempts} over {_duration(elapsed)}; last: {reason}") from None
    finally:
        if own_session:
            session.close()


def _attempt(session, url, filepath, timeout, chunk_size, logger):
    """One try: the result, WorkerError for what waiting cannot fix, or
    _Transient for what it might."""
    try:
        with session.get(url, stream=True, timeout=timeout) as response:
            _check_status(response, url)
            if filepath is None:
                return response.content
            _stream_to_file(response, filepath, url, chunk_size)
            return response.headers
    except requests.Timeout:
        logger.debug(f"{url}: timed out", exc_info=True)
        raise _Transient(f"no answer within {_duration(timeout)}") from None
    except requests.exceptions.ChunkedEncodingError:
        logger.debug(f"{url}: connection broken during download", exc_info=True)
        raise _Transient("connection broken during download") from None
    except requests.ConnectionError as err:
        logger.debug(f"{url}: connection failed", exc_info=True)
        raise _Transient(f"connection failed ({_root_cause(err)})") from None
    except requests.RequestException as err:
        raise WorkerError(f"{url}: {_first_line(err)}") from None


def _check_status(response: requests.Response, url: str) -> None:
    status = response.status_code
    if status < 400:
        return
    words = f"HTTP {status} {response.reason or ''}".rstrip()
    if status >= 500 or status in RETRIED_CLIENT_STATUSES:
        raise _Transient(words)
    raise WorkerError(f"{url}: {words}; not retried")


def _stream_to_file(response: requests.Response, filepath: Path, url: str, chunk_size: int) -> None:
    partial = filepath.with_name(f"{filepath.name}.part")
    try:
        with partial.open("wb") as f:
            for block in response.iter_content(chunk_size=chunk_size):
                f.write(block)
        os.replace(partial, filepath)
    except requests.RequestException:  # an OSError too, but the network's fault
        partial.unlink(missing_ok=True)
        raise
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise WorkerError(f"{url}: cannot write {filepath}: {err.strerror or err}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _root_cause(err: BaseException) -> str:
    """The innermost reason (e.g. "Connection refused"), not requests' and
    urllib3's nested wrappers, which make a log line unreadable."""
    for _ in range(10):
        inner = getattr(err, "reason", None) or err.__cause__ or err.__context__
        if not isinstance(inner, BaseException) or inner is err:
            break
        err = inner
    text = _first_line(err)
    # urllib3 prefixes its reason with the connection object's repr
    return text.split(": ", 1)[1] if text.startswith("<") and ": " in text else text or type(err).__name__


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
