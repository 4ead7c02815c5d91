"""Example next_workers module.

Functions to calculate lists of workers to launch after previous workers
end their work.

Function names **must** be of the form after_worker_name.
"""
from nowcast_db import NextWorker


def after_sleep(msg, config, checklist):
    """Calculate the list of workers to launch after the sleep example worker ends."""
    next_workers = {
        "crash": [],
        "failure": [],
        "success": [NextWorker("nowcast_db.workers.awaken")],
    }
    return next_workers[msg.type]


def after_awaken(msg, config, checklist):
    """Calculate the list of workers to launch after the awaken example worker ends."""
    next_workers = {
        "crash": [],
        "failure": [],
        "success": [],
    }
    return next_workers[msg.type]
