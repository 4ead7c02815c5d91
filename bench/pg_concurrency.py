"""Readers while the manager writes, on PostgreSQL: do nowcast-tui and
`nowcast history` ever make the manager (or each other) wait on a lock?

    python bench/pg_concurrency.py                 # about a minute; prints a Markdown section
    python bench/pg_concurrency.py --messages 300  # a smoke test

A real broker and manager (bench/run.py's BenchSystem) record into a fresh
PostgreSQL database, created on the server named by NOWCAST_BENCH_POSTGRES
(default postgresql+psycopg://postgres@127.0.0.1:5432/test) and dropped at
the end.  Clients send messages as fast as the manager answers (bench/run.py's
``load``): alone, then while readers read:

* nowcast-tui's data layer (``nowcast_tui.data.History``: header, Runs page,
  Messages page, the newest run's detail, the checklist) in one process,
* the queries behind `nowcast history runs|messages|checklist|chain` in another,
* `nowcast history CONFIG runs` run as a command, one after another,

first at the TUI's pace (1 s between rounds), then flat out (each reader
pausing ``--reader-pause`` seconds between rounds).  Lock waits
are watched from the client side (we may not change the server's
``log_lock_waits``): every 10 ms a sampler reads pg_stat_activity for
backends of the bench database waiting with ``wait_event_type = 'Lock'``
and pg_locks for locks not granted, and keeps the longest wait seen.
``pg_section()`` returns the Markdown section for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import yaml
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

BENCH_DIR = Path(__file__).resolve().parent

ADMIN_URL = os.environ.get("NOWCAST_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TARGET_MS = 100.0
TUI_PAUSE = 1.0  # nowcast-tui refreshes its screens every second
SAMPLE_SECONDS = 0.01
NOWCAST = [sys.executable, "-m", "nowcast_db.cli"]


def bench_run():
    """bench/run.py (BenchSystem, the clients and their load), imported when needed so that
    bench/run.py can import this module for its report without a circular import."""
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    import run

    return run


# --- a fresh database ---------------------------------------------------------------

def create_database() -> tuple[str, str]:
    """A new empty database on the bench server: (its name, its URL)."""
    name = f"nowcast_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return name, make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(name: str) -> None:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def server_settings(url: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {name: connection.exec_driver_sql(f"SHOW {name}").scalar()
                    for name in ("server_version", "synchronous_commit", "fsync", "shared_buffers",
                                 "deadlock_timeout")}
    finally:
        engine.dispose()


# --- readers --------------------------------------------------------------------------

def _timer(timings: dict[str, list[float]], *first):
    """``timed(name, call, *args)``: ``call(*first, *args)``, its seconds added to ``timings[name]``."""

    def timed(name, call, *args, **kwargs):
        start = time.perf_counter()
        value = call(*first, *args, **kwargs)
        timings.setdefault(name, []).append(time.perf_counter() - start)
        return value

    return timed


def tui_reader(url: str, pause: float, stopping, results) -> None:
    """nowcast-tui's reads, as its screens make them every second."""
    from nowcast_tui.data import History
    from nowcast_tui.filters import MessageFilter, RunFilter

    history = History(url)
    timings: dict[str, list[float]] = {}
    timed = _timer(timings)
    errors = []
    try:
        while not stopping.is_set():
            try:
                timed("tui: header (status)", history.status)
                runs = timed("tui: Runs page", history.runs_page, RunFilter())
                timed("tui: Messages page", history.messages_page, MessageFilter())
                if runs:
                    timed("tui: run detail", history.run_detail, runs[0].id)
                timed("tui: checklist", history.checklist)
            except Exception as err:  # noqa: BLE001 - reported in the results
                errors.append(repr(err))
            time.sleep(pause)
    finally:
        history.close()
        results.put(("tui", timings, errors))


def history_reader(url: str, pause: float, stopping, results) -> None:
    """The queries behind `nowcast history`, in process (no interpreter start-up in the figures)."""
    from nowcast_db.database import queries

    engine = queries.open_history(url)
    timings: dict[str, list[float]] = {}
    timed = _timer(timings, engine)
    errors = []

    try:
        while not stopping.is_set():
            try:
                runs = timed("history: runs (newest 100)", queries.run_rows, limit=100)
                timed("history: messages (newest 100)", queries.message_rows, limit=100)
                timed("history: checklist changes (newest 100)", queries.checklist_mutations, limit=100)
                if runs:
                    timed("history: chain", queries.run_chain, runs[-1].id)
            except Exception as err:  # noqa: BLE001 - reported in the results
                errors.append(repr(err))
            time.sleep(pause)
    finally:
        engine.dispose()
        results.put(("history", timings, errors))


def command_reader(system, pause: float, stopping: threading.Event, out: dict) -> None:
    """`nowcast history CONFIG runs`, run as an operator runs it, one after another (wall time, start-up included)."""
    timings, errors = [], []
    while not stopping.is_set():
        start = time.perf_counter()
        result = subprocess.run([*NOWCAST, "history", "nowcast.yaml", "runs", "--limit", "100"], cwd=system.directory,
                                env=system.env, capture_output=True, text=True, timeout=120)
        timings.append(time.perf_counter() - start)
        if result.returncode != 0:
            errors.append(result.stderr.strip())
        time.sleep(pause)
    out["command"] = ({"`nowcast history CONFIG runs --limit 100` (a process, start-up included)": timings}, errors)


# --- lock waits -----------------------------------------------------------------------

LOCK_WAITS = """
SELECT pid, query_start, extract(epoch FROM clock_timestamp() - query_start) AS waited, left(query, 80)
FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()
"""
ACTIVE = """
SELECT coalesce(wait_event_type || ':' || wait_event, 'running (no wait event)')
FROM pg_stat_activity
WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()
"""
UNGRANTED = "SELECT count(*) FROM pg_locks WHERE NOT granted"


class LockSampler(threading.Thread):
    """Every 10 ms: who in the bench database is waiting for a lock, and for how long so far."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.engine = create_engine(url, isolation_level="AUTOCOMMIT")
        self.stopping = threading.Event()
        self.samples = 0
        self.lock_samples = 0
        self.ungranted_samples = 0
        self.waits: dict[tuple, tuple[float, str]] = {}  # (pid, query start) -> (longest wait seen, query)
        self.active: dict[str, int] = {}  # what active backends of the bench database were doing, sampled
        self.errors: list[str] = []

    def run(self) -> None:
        try:
            with self.engine.connect() as connection:
                while not self.stopping.is_set():
                    rows = connection.exec_driver_sql(LOCK_WAITS).all()
                    ungranted = connection.exec_driver_sql(UNGRANTED).scalar()
                    for (doing,) in connection.exec_driver_sql(ACTIVE):
                        self.active[doing] = self.active.get(doing, 0) + 1
                    self.samples += 1
                    self.lock_samples += bool(rows)
                    self.ungranted_samples += bool(ungranted)
                    for pid, started, waited, query in rows:
                        key = (pid, started)
                        if waited > self.waits.get(key, (0.0, ""))[0]:
                            self.waits[key] = (float(waited), query)
                    time.sleep(SAMPLE_SECONDS)
        except SQLAlchemyError as err:
            self.errors.append(str(err).splitlines()[0])
        finally:
            self.engine.dispose()

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)

    @property
    def longest(self) -> tuple[float, str]:
        return max(self.waits.values(), default=(0.0, ""))


# --- the run ----------------------------------------------------------------------------

def start_system(directory: Path, url: str):
    system = bench_run().BenchSystem(directory)
    config_file = directory / "nowcast.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["database url"] = url
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    system.start_broker()
    system.start_manager()
    return system


def measure(clients: int, messages: int, pause: float) -> dict:
    name, url = create_database()
    try:
        with tempfile.TemporaryDirectory(prefix="nowcast-pg-bench-") as tmp:
            system = start_system(Path(tmp), url)
            try:
                load_before = os.getloadavg()[0]
                return {"settings": server_settings(url), "load_before": load_before,
                        **run_phases(system, url, clients, messages, pause)}
            finally:
                system.stop()
    finally:
        drop_database(name)


def run_phases(system, url: str, clients: int, messages: int, pause: float) -> dict:
    sampler = LockSampler(url)
    sampler.start()
    try:
        alone = bench_run().load(system.workers_port, clients, messages)
        paced, _, paced_errors = with_readers(system, url, clients, messages, TUI_PAUSE)
        together, timings, errors = with_readers(system, url, clients, messages, pause)
    finally:
        sampler.stop()
    return {"alone": alone, "paced": paced, "together": together, "timings": timings,
            "errors": paced_errors + errors, "sampler": sampler, "clients": clients, "pause": pause}


def with_readers(system, url: str, clients: int, messages: int, pause: float) -> tuple[dict, dict, list]:
    """The clients' load while the three readers read, each pausing ``pause`` s between rounds."""
    context = multiprocessing.get_context("fork")
    stopping, results = context.Event(), context.Queue()
    readers = [context.Process(target=tui_reader, args=(url, pause, stopping, results)),
               context.Process(target=history_reader, args=(url, pause, stopping, results))]
    for reader in readers:
        reader.start()
    command_stopping, command_out = threading.Event(), {}
    command = threading.Thread(target=command_reader, args=(system, pause, command_stopping, command_out))
    command.start()
    time.sleep(1)  # readers connected and reading before the load starts
    try:
        load = bench_run().load(system.workers_port, clients, messages)
    finally:
        stopping.set()
        command_stopping.set()
        outcomes = [results.get(timeout=120) for _ in readers]
        for reader in readers:
            reader.join(30)
        command.join(180)
    timings, errors = {}, []
    for _, reader_timings, reader_errors in outcomes:
        timings.update(reader_timings)
        errors += reader_errors
    command_timings, command_errors = command_out.get("command", ({}, ["the command reader did not finish"]))
    timings.update(command_timings)
    return load, timings, errors + command_errors


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def section(result: dict) -> str:
    settings, sampler = result["settings"], result["sampler"]
    alone, paced, together = result["alone"], result["paced"], result["together"]
    longest, longest_query = sampler.longest
    slowest_query = max((max(values) for name, values in result["timings"].items()
                         if values and name.startswith(("tui:", "history:"))), default=0.0)
    lines = [
        "## PostgreSQL: readers while the manager writes",
        "",
        f"PostgreSQL {settings['server_version']} on this machine (synchronous_commit={settings['synchronous_commit']}, "
        f"fsync={settings['fsync']}, shared_buffers={settings['shared_buffers']}), a fresh database; load average "
        f"{result['load_before']:.1f} when the run began. "
        f"{result['clients']} clients send messages as fast as the manager answers (each recorded with its run "
        "and checklist change before the reply): alone, then while three readers read — nowcast-tui's data "
        "layer (header, Runs page, Messages page, newest run's detail, checklist) in one process, the queries "
        "behind `nowcast history` in another, and `nowcast history CONFIG runs` run as a command again and again — "
        f"first at the TUI's pace (each reader pausing {TUI_PAUSE:.0f} s between rounds), then flat out "
        f"({result['pause'] * 1000:.0f} ms pauses). Clients, manager, broker, readers and the server share "
        f"{os.cpu_count()} cores.",
        "",
        "| manager | messages | messages/s | round trip p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
        f"| alone | {alone['messages']} | {alone['rate']:.0f} | {alone['p50_ms']:.2f} | {alone['p99_ms']:.2f} |",
        f"| readers at the TUI's pace | {paced['messages']} | {paced['rate']:.0f} | {paced['p50_ms']:.2f} | "
        f"{paced['p99_ms']:.2f} |",
        f"| readers flat out | {together['messages']} | {together['rate']:.0f} | {together['p50_ms']:.2f} | "
        f"{together['p99_ms']:.2f} |",
        "",
        "Reads while the readers ran flat out:",
        "",
        "| reader | reads | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in result["timings"].items():
        if values:
            lines.append(f"| {name} | {len(values)} | {percentile(values, 0.5) * 1000:.1f} | "
                         f"{percentile(values, 0.99) * 1000:.1f} | {max(values) * 1000:.1f} |")
    met = longest * 1000 <= TARGET_MS and not sampler.errors
    lines += [
        "",
        f"Lock waits, sampled every {SAMPLE_SECONDS * 1000:.0f} ms from pg_stat_activity and pg_locks "
        f"({sampler.samples} samples over the three phases): {sampler.lock_samples} samples with a backend of the bench "
        f"database waiting on a lock, {sampler.ungranted_samples} with an ungranted lock anywhere on the server; "
        f"longest wait seen {longest * 1000:.0f} ms" + (f" (`{longest_query}`)" if longest_query else "") + ". "
        "What the bench database's active backends were doing when sampled: "
        + ", ".join(f"{doing} {count}" for doing, count in sorted(sampler.active.items(), key=lambda kv: -kv[1]))
        + ".",
        f"Target (issue 8): no lock wait longer than {TARGET_MS:.0f} ms — **{'met' if met else 'not met'}**. "
        f"Slowest single query read (in process, flat out): {slowest_query * 1000:.0f} ms; with no lock waits, "
        "what slows reads and round trips is the CPU the readers take from the manager and the server.",
    ]
    if sampler.errors or result["errors"]:
        lines.append(f"Errors: {len(result['errors'])} failed reads ({'; '.join(sorted(set(result['errors'])))[:300]}) "
                     f"{'; sampler: ' + sampler.errors[0] if sampler.errors else ''}")
    else:
        lines.append("Every read succeeded.")
    return "\n".join(lines) + "\n"


def pg_section(clients: int = 4, messages: int = 1000, pause: float = 0.05) -> str:
    """The Markdown section for BENCHMARKS.md; a short note instead when no PostgreSQL server answers."""
    try:
        result = measure(clients, messages, pause)
    except SQLAlchemyError as err:
        reason = str(getattr(err, "orig", err)).strip().splitlines()[0]
        shown = make_url(ADMIN_URL).render_as_string(hide_password=True)
        return ("## PostgreSQL: readers while the manager writes\n\n"
                f"Not measured: no PostgreSQL server at {shown} ({reason}); set NOWCAST_BENCH_POSTGRES to the URL "
                "of a database whose user may create databases.\n")
    return section(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4, help="clients sending messages (default 4)")
    parser.add_argument("--messages", type=int, default=1000, help="messages per client per phase (default 1000)")
    parser.add_argument("--reader-pause", type=float, default=0.05,
                        help="seconds each reader waits between rounds (default 0.05)")
    args = parser.parse_args()
    started = time.monotonic()
    print(pg_section(args.clients, args.messages, args.reader_pause))
    print(f"(measured in {time.monotonic() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
