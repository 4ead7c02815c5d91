"""Example worker: sleep for a while, then report how long.

python -m nowcast_db.workers.sleep CONFIG [--sleep-time N] [--debug]
"""
import logging
import time

from nowcast_db import NowcastWorker

NAME = "sleep"
logger = logging.getLogger(NAME)


def main():
    worker = NowcastWorker(NAME, description=__doc__, package="nowcast_db.workers")
    worker.init_cli()
    worker.cli.add_argument("--sleep-time", type=int, default=5, help="Number of seconds to sleep for; defaults to 5.")
    worker.run(sleep, success, failure)


def success(parsed_args):
    logger.info(f"slept for {parsed_args.sleep_time} seconds")
    return "success"


def failure(parsed_args):
    logger.critical(f"failed to sleep for {parsed_args.sleep_time} seconds")
    return "failure"


def sleep(parsed_args, config, *args):
    time.sleep(parsed_args.sleep_time)
    return {"sleep time": parsed_args.sleep_time}


if __name__ == "__main__":
    main()
