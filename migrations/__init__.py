"""Alembic migrations for the nowcast_db schema (installed as nowcast_db.migrations)."""
