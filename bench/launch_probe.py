"""A worker for the launch-latency benchmark: notes when its process began, then reports success.

The time is taken before anything heavy is imported, so it measures how long
the manager took to start the process (plus Python's own start-up).
"""
import time

STARTED = time.time()

import os  # noqa: E402
import sys  # noqa: E402

from nowcast_db import NowcastWorker  # noqa: E402


def main():
    with open(os.environ["BENCH_LAUNCH_LOG"], "a") as f:
        f.write(f"{os.environ.get('NOWCAST_RUN_ID')} {STARTED}\n")
    worker = NowcastWorker("launch_probe", description=__doc__, package="")
    worker.init_cli()
    worker.run(lambda *args: None, lambda args: "success", lambda args: "failure")


if __name__ == "__main__":
    sys.exit(main())
