"""Handing what a reading thread read to the UI thread, if there is still a UI to show it on.

Screens read the history in thread workers.  A read can finish after the
operator closed its screen, or quit: the screen's widgets are gone (showing
the result would fail with NoMatches), or the app has stopped (handing it
over would fail with RuntimeError).  Such a late result has nowhere to go
and is dropped.  Anything else that goes wrong while showing a result, on a
screen that is still open, is a bug and still fails the app.
"""
from __future__ import annotations

from concurrent.futures import CancelledError

from textual.dom import DOMNode


def gone(node: DOMNode) -> bool:
    """Is ``node`` (a screen, a widget or the app) closed or closing, or its app no longer running?

    A closing screen loses its widgets one by one before Textual cancels its
    workers: ``_pruning`` and ``_closing`` say it is on its way out."""
    if not node.is_attached:  # removed, or the app is exiting
        return True
    # private to Textual (no public equivalent in 8.x): read with defaults, so another version cannot break this
    return getattr(node, "_pruning", False) or getattr(node, "_closing", False) or not node.app.is_running


def deliver(node: DOMNode, show, *args, **kwargs) -> None:
    """From a reading thread: run ``show(*args, **kwargs)`` on the UI thread,
    unless ``node`` (the screen, widget or app whose result it is) is gone."""

    def on_ui_thread() -> None:
        if not gone(node):
            show(*args, **kwargs)

    try:
        node.app.call_from_thread(on_ui_thread)
    except (RuntimeError, CancelledError):
        # the app stopped (its loop too, perhaps) while this was on its way
        if not gone(node):
            raise
