"""Replay speed: `nowcast replay` over 100,000 recorded worker messages with a
trivial next workers module (every after_ function returns []).

    python bench/replay_speed.py                  # 100,000 messages
    python bench/replay_speed.py --messages 5000  # a smoke test
    python bench/replay_speed.py --profile        # also cProfile the replay, in process

The history is recorded by the real manager path without sockets: a
ManagerLoop on a Store, fed batches of message bodies through handle_batch,
so every message, run and checklist change is written exactly as the live
manager writes it.  Then `nowcast replay CONFIG` runs as a subprocess and is
timed from start to exit (interpreter start and imports included).
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from nowcast_db.config import Config
from nowcast_db.database import Store, database_url, make_engine, upgrade
from nowcast_db.demo import free_ports
from nowcast_db.manager_loop import ManagerLoop
from nowcast_db.toy import write_toy_system

NEXT_WORKERS = """\
def after_sleep(msg, config, checklist):
    return []

def after_awaken(msg, config, checklist):
    return []
"""
BATCH = 500


def make_system(directory: Path) -> dict:
    write_toy_system(directory, *free_ports(2))
    config = yaml.safe_load((directory / "nowcast.yaml").read_text())
    config["logging"]["handlers"] = {"file": {
        "class": "logging.FileHandler", "level": "WARNING", "formatter": "simple",
        "filename": str(directory / "nowcast.log")}}
    config["logging"]["root"] = {"level": "WARNING", "handlers": ["file"]}
    (directory / "nowcast.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (directory / "next_workers.py").write_text(NEXT_WORKERS)
    return dict(os.environ, NOWCAST_ENV=sys.prefix, NOWCAST_LOGS=str(directory),
                NOWCAST_YAML=str(directory / "nowcast.yaml"))


def record(directory: Path, env: dict, count: int) -> float:
    """Record ``count`` worker messages through ManagerLoop.handle_batch; returns seconds taken."""
    os.environ.update({name: env[name] for name in ("NOWCAST_ENV", "NOWCAST_LOGS", "NOWCAST_YAML")})
    logging.disable(logging.INFO)  # the manager's per-message info lines are not what is measured
    config = Config(directory / "nowcast.yaml")
    engine = make_engine(database_url(config), writer=True)
    upgrade(engine)
    store = Store(engine)
    loop = ManagerLoop(config, store, store.load_state())
    started = time.perf_counter()
    for first in range(0, count, BATCH):
        bodies = []
        for n in range(first, min(first + BATCH, count)):
            if n % 2 == 0:
                document = {"source": "sleep", "type": "success", "payload": {"sleep time": n % 7}}
            else:
                document = {"source": "awaken", "type": "success", "payload": {"awoke": True, "n": n}}
            bodies.append(yaml.safe_dump(document).encode())
        results = loop.handle_batch(bodies)
        assert all(b"ack" in reply for reply, _ in results), results[0]
    engine.dispose()
    logging.disable(logging.NOTSET)
    return time.perf_counter() - started


def measure(count: int) -> dict:
    """Record ``count`` messages, time `nowcast replay` on them; the figures as a dict."""
    import shutil

    directory = Path(tempfile.mkdtemp(prefix="nowcast-replay-bench-"))
    try:
        env = make_system(directory)
        recorded = record(directory, env, count)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "nowcast_db.cli", "replay", "nowcast.yaml"],
                                cwd=directory, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"bench: nowcast replay exited {result.returncode}: {result.stderr[-500:]}")
        return {"messages": count, "record_seconds": recorded, "replay_seconds": elapsed,
                "summary": result.stdout.strip().splitlines()[-1]}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true", help="cProfile replay_history in process as well")
    parser.add_argument("--keep", action="store_true", help="keep the temporary system folder")
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="nowcast-replay-bench-"))
    env = make_system(directory)
    seconds = record(directory, env, args.messages)
    print(f"recorded {args.messages} messages in {seconds:.1f} s ({directory / 'nowcast.sqlite'})")

    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "nowcast_db.cli", "replay", "nowcast.yaml"],
                            cwd=directory, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    if result.returncode != 0:
        print(result.stdout[-2000:], result.stderr[-2000:], sep="\n", file=sys.stderr)
        print(f"replay exited {result.returncode}", file=sys.stderr)
        return 1
    print(f"nowcast replay: {summary}")
    print(f"messages: {args.messages}  seconds: {elapsed:.2f}  messages/s: {args.messages / elapsed:,.0f}")

    if args.profile:
        import cProfile
        import pstats

        from nowcast_db.replay import replay_history

        profile = cProfile.Profile()
        profile.runcall(replay_history, directory / "nowcast.yaml")
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    if not args.keep:
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
