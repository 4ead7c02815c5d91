"""Optional Sentry reporting: on when sentry-sdk is installed and SENTRY_DSN is set.

sentry-sdk's defaults do what NEMO_Nowcast systems expect: unhandled
exceptions, and log records at ERROR and above (a worker's "unhandled
exception" CRITICAL record with its traceback), become Sentry events.
"""
import os
import sys


def init_sentry() -> bool:
    if not os.environ.get("SENTRY_DSN"):
        return False
    try:
        import sentry_sdk
    except ImportError:
        sys.stderr.write("nowcast: SENTRY_DSN is set but sentry-sdk is not installed, so nothing is reported "
                         "to Sentry (pip install 'nowcast_db[sentry]')\n")
        return False
    sentry_sdk.init()
    return True
