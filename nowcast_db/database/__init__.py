"""The database layer: the only part of nowcast_db that knows SQLAlchemy."""
from nowcast_db.database.engine import database_url, make_engine
from nowcast_db.database.migrate import upgrade
from nowcast_db.database.store import Store

__all__ = ["Store", "database_url", "make_engine", "upgrade"]
