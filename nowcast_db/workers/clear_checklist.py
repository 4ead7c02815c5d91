"""Built-in worker: ask the manager to clear the system checklist.

python -m nowcast_db.workers.clear_checklist CONFIG [--debug]

The manager writes the checklist to the `checklist` logger first, then clears
it; every key's clearing is recorded in `checklist_mutations`, so the
checklist as it was can always be rebuilt from the history.
"""
import logging

from nowcast_db import NowcastWorker

NAME = "clear_checklist"
logger = logging.getLogger(NAME)


def main():
    worker = NowcastWorker(NAME, description=__doc__, package="nowcast_db.workers")
    worker.init_cli()
    worker.run(clear_checklist, success, failure)


def success(parsed_args):
    logger.info("nowcast system checklist cleared")
    return "success"


def failure(parsed_args):
    logger.critical("failed to clear nowcast system checklist")
    return "failure"


def clear_checklist(parsed_args, config, tell_manager):
    tell_manager("clear checklist")
    # no payload: the success message must not put a key back into the emptied checklist
    return None


if __name__ == "__main__":
    main()
