"""nowcast-tui: the operator's terminal UI for a nowcast_db system.

Installed as the package ``nowcast_tui`` (the folder is ``tui/``).  It only
reads the history database and sends launch requests through the broker, like
any other client: it never starts a worker itself.
"""
