"""Nowcast scheduler: launches workers at times of day, through the manager.

python -m nowcast_db.scheduler CONFIG

Each due launch is sent to the manager as a launch request (so it is
recorded with ``launched_by = scheduler``) from its own thread: a manager that
does not answer makes that request retry with the same message id (never
launched twice) and never holds up other jobs.  SIGHUP reloads the config and
replaces the schedule.
"""
from __future__ import annotations

import logging
import threading

import schedule

from nowcast_db import process
from nowcast_db.client import ManagerClient, ManagerUnreachable
from nowcast_db.errors import NowcastError
from nowcast_db.launch_request import LaunchRefused, launch_message, request_launch
from nowcast_db.schedule_config import ScheduledLaunch, scheduled_launches

# a scheduled launch that the manager has not accepted in this time is given up
GIVE_UP_AFTER = 3600.0
TICK_SECONDS = 1.0


class Scheduler:
    def __init__(self, config, logger: logging.Logger):
        self.config, self.logger = config, logger
        self.scheduler = schedule.Scheduler()

    def load(self, launches: list[ScheduledLaunch]) -> None:
        """Replace every job with ``launches`` (so a reload never duplicates one)."""
        self.scheduler.clear()
        for launch in launches:  # checked by scheduled_launches, 'at' included
            job = getattr(self.scheduler.every(), launch.every)
            job = job.at(launch.at) if launch.at else job
            job.do(self.send, launch)
            self.logger.info(f"scheduled {launch.description}")

    def send(self, launch: ScheduledLaunch) -> None:
        threading.Thread(target=self._request, args=(launch,), name=f"launch {launch.module}", daemon=True).start()

    def _request(self, launch: ScheduledLaunch) -> None:
        message = launch_message(launch.module, launch.args, source="scheduler", requested_by="scheduler")
        give_up_after = float(self.config["zmq"].get("give up after", GIVE_UP_AFTER))
        client = ManagerClient(self.config, self.logger, give_up_after=give_up_after)
        try:
            run_id = request_launch(self.config, message, client)
        except ManagerUnreachable as err:
            self.logger.error(f"scheduled launch of {launch.module} given up: {err}")
        except LaunchRefused as err:
            self.logger.error(f"scheduled launch of {launch.module} refused: {err}")
        else:
            self.logger.info(f"launched {launch.module} {' '.join(launch.args)}: run {run_id}".replace("  ", " "))
        finally:
            client.close()

    def run(self, stop: threading.Event, reload: threading.Event) -> None:
        while not stop.wait(TICK_SECONDS):
            if reload.is_set():
                reload.clear()
                self.reload()
            self.scheduler.run_pending()

    def reload(self) -> None:
        config = process.reload_logging("scheduler", self.config.file, self.logger)
        if config is None:
            return
        try:
            launches = scheduled_launches(config)
        except NowcastError as err:
            self.logger.error(f"config not reloaded, keeping the current schedule: {err}")
            return
        self.config = config
        self.load(launches)
        self.logger.info(f"schedule reloaded from {config.file}: {len(launches)} launches")


def main(args=None) -> None:
    parser = process.arg_parser("scheduler", __doc__.splitlines()[0])
    parsed = parser.parse_args(args)
    config, logger = process.start("scheduler", parsed)
    scheduler = Scheduler(config, logger)
    try:
        scheduler.load(scheduled_launches(config))
    except NowcastError as err:
        logger.critical(str(err))
        process.fail("scheduler", str(err))
    stop, reload = threading.Event(), threading.Event()
    process.on_stop_signals(logger, stop.set)

    process.on_hangup(logger, reload.set)
    scheduler.run(stop, reload)


if __name__ == "__main__":
    main()
