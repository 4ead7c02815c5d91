"""Where the manager's time goes: ``ManagerLoop.handle_batch`` driven in-process
(no sockets) with the bench system's config, on a SQLite history in a
temporary folder, with batches of a given size.

    python bench/profile_batches.py                 # wall and CPU time per message, batches of 1, 8, 64
    python bench/profile_batches.py --profile 8     # cProfile of batches of 8, top 25 by own time

CPU time (``time.process_time``) includes the kernel's work for the commits;
wall time adds the waits for the disk (``fdatasync``).
"""
from __future__ import annotations

import argparse
import cProfile
import logging.config
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

from run import BenchSystem  # bench/, beside this file
from nowcast_db.config import Config
from nowcast_db.database import Store, database_url, make_engine, upgrade
from nowcast_db.manager_loop import ManagerLoop


def body(number: int) -> bytes:
    return (f"source: sleep\ntype: success\npayload:\n  sleep time: {number}\n"
            f"message id: profile-{number}\n").encode()


def make_loop(directory: Path) -> ManagerLoop:
    os.environ.update(NOWCAST_ENV=sys.prefix, NOWCAST_LOGS=str(directory))
    BenchSystem(directory)  # writes the bench system's nowcast.yaml and next_workers.py
    sys.path.insert(0, str(directory))
    config = Config(str(directory / "nowcast.yaml"))
    logging.config.dictConfig(config["logging"])
    engine = make_engine(database_url(config), writer=True)
    upgrade(engine)
    store = Store(engine)
    return ManagerLoop(config, store, store.load_state(), logging.getLogger("manager"))


def run_batches(loop: ManagerLoop, first: int, batch: int, messages: int) -> None:
    for start in range(first, first + messages, batch):
        loop.handle_batch([body(number) for number in range(start, start + batch)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--profile", type=int, metavar="BATCH", help="cProfile batches of this size instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nowcast-profile-") as tmp:
        loop = make_loop(Path(tmp))
        run_batches(loop, 0, 8, 400)  # warm up: statements compiled, modules loaded
        first = 400
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(run_batches, loop, first, args.profile, args.messages)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
            return
        print("| batch | wall µs/message | CPU µs/message |\n|---:|---:|---:|")
        for batch in (1, 8, 64):
            wall, cpu = time.perf_counter(), time.process_time()
            run_batches(loop, first, batch, args.messages)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            first += args.messages
            print(f"| {batch} | {wall / args.messages * 1e6:.0f} | {cpu / args.messages * 1e6:.0f} |")


if __name__ == "__main__":
    main()
