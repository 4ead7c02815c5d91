"""Workers built into nowcast_db."""
