"""Example worker: wake up after the sleep worker.

python -m nowcast_db.workers.awaken CONFIG [--debug]
"""
import logging

from nowcast_db import NowcastWorker

NAME = "awaken"
logger = logging.getLogger(NAME)


def main():
    worker = NowcastWorker(NAME, description=__doc__, package="nowcast_db.workers")
    worker.init_cli()
    worker.run(awaken, success, failure)


def success(parsed_args):
    logger.info("awoke")
    return "success"


def failure(parsed_args):
    logger.critical("failed to awaken")
    return "failure"


def awaken(parsed_args, config, *args):
    return {"awoke": True}


if __name__ == "__main__":
    main()
