"""nowcast_db: run an operational nowcast system and keep its whole history in a database.

The public API is the NEMO_Nowcast one, so existing workers and next_workers
modules only change their import.
"""
from nowcast_db.command_line import CommandLineInterface
from nowcast_db.config import Config
from nowcast_db.errors import WorkerError
from nowcast_db.message import Message
from nowcast_db.worker import NextWorker, NowcastWorker

__all__ = ["CommandLineInterface", "Config", "Message", "NextWorker", "NowcastWorker", "WorkerError"]
__version__ = "0.1.0"
