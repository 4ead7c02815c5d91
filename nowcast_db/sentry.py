"""Optional Sentry reporting: on when sentry-sdk is installed and SENTRY_DSN is set."""
import os


def init_sentry() -> bool:
    if not os.environ.get("SENTRY_DSN"):
        return False
    try:
        import sentry_sdk
    except ImportError:
        return False
    sentry_sdk.init()
    return True
