"""Nowcast system manager: decides which workers to launch next and records
every message, run and checklist change in the database.

python -m nowcast_db.manager CONFIG [--ignore-checklist]
"""
from __future__ import annotations


import socket as host_socket

import zmq

from nowcast_db import curve, process
from nowcast_db.database import Store, database_url, make_engine, upgrade
from nowcast_db.database.manager_lock import lock_history
from nowcast_db.decision import one_line
from nowcast_db.errors import NowcastError
from nowcast_db.manager_loop import ManagerLoop
from nowcast_db.notifications import Notifier

LOST_REASON = (
    "recorded as pending but the manager stopped before starting it; "
    "not started again so that nothing runs twice: relaunch it if it is still wanted"
)


def main(args=None) -> None:
    parser = process.arg_parser("manager", __doc__.splitlines()[0])
    parser.add_argument(
        "--ignore-checklist",
        action="store_true",
        help="Start with an empty checklist (the history in the database is kept).",
    )
    parsed = parser.parse_args(args)
    config, logger = process.start("manager", parsed)
    try:
        url = database_url(config)
        engine = make_engine(url, writer=True)
        lock = lock_history(engine)
        schema = upgrade(engine)
    except NowcastError as err:
        process.fail("manager", str(err))
    except Exception as err:
        process.fail("manager", f"database {url} could not be opened or migrated: {type(err).__name__}: {err}")
    logger.info(f"recording history in {engine.url.render_as_string(hide_password=True)}")
    if schema[0] != schema[1]:
        logger.info(f"history database schema at revision {schema[1]} (was {schema[0] or 'empty'})")
    store = Store(engine)
    for run in store.lose_pending_launches(LOST_REASON):
        logger.warning(f"run {run.id} of {run.worker} was never started; marked lost")
    if parsed.ignore_checklist:
        store.clear_checklist()
        logger.warning("--ignore-checklist: running with empty checklist")
    state = store.load_state()
    if state.checklist:
        logger.info(f"checklist loaded from database: {len(state.checklist)} keys")
    elif not parsed.ignore_checklist:
        logger.warning("running with empty checklist")
    if state.holds:
        logger.info(f"race condition holds restored: {[sorted(h.waiting_for) for h in state.holds]}")

    try:
        notifier = Notifier(config, logger)
    except NowcastError as err:
        process.fail("manager", str(err))
    loop = ManagerLoop(config, store, state, logger, notifier)
    watch_runs(store, loop, logger)
    module = loop.next_workers.get()
    if isinstance(module, BaseException):
        logger.error(f"next workers module failed to load: {one_line(module)}")
    else:
        logger.info(f"next workers module loaded from {loop.next_workers.path}")

    context = zmq.Context.instance()
    socket = context.socket(zmq.ROUTER)
    socket.setsockopt(zmq.LINGER, 0)
    if curve.client_socket(config, socket):
        logger.info("CurveZMQ on: connecting with the client key pair")
    address = f"tcp://{config['zmq']['host']}:{config['zmq']['ports']['manager']}"
    socket.connect(address)
    logger.info(f"connected to {config['zmq']['host']} port {config['zmq']['ports']['manager']}")

    def stop():
        loop.stopping = True

    process.on_stop_signals(logger, stop)
    process.on_hangup(logger, lambda: setattr(loop, "reload_requested", True))
    loop.heartbeat(force=True)
    try:
        loop.serve(socket)
    finally:
        notifier.close(timeout=5)
        store.close()
        socket.close()
        context.term()
        lock.release()
        engine.dispose()


def watch_runs(store: Store, loop: ManagerLoop, logger) -> None:
    """Watch the runs an earlier manager left running, by pid: a local worker's
    own process, a remote worker's ssh process (it ends when the worker does),
    a worker started by hand on this host.  A launched run's pid only means
    something on the host the earlier manager ran on; a run started by hand
    names its own host."""
    runs = store.running_runs_with_pid()
    earlier_host, this_host = store.earlier_manager_host(), host_socket.gethostname()
    for run in runs:
        if run.launched_by == "external":
            if run.host != this_host:
                logger.warning(f"run {run.id} of {run.worker} (pid {run.pid}) was started by hand on {run.host}, "
                               f"so it cannot be watched from {this_host}: only its final message can end it")
                continue
            loop.children.adopt(run.id, run.pid, run.worker, None)
            logger.info(f"watching run {run.id} of {run.worker} (pid {run.pid}), started by hand")
            continue
        if earlier_host not in (None, this_host):
            logger.warning(f"run {run.id} of {run.worker} (pid {run.pid}) was started by the manager on "
                           f"{earlier_host}, so it cannot be watched from {this_host}: if it has ended, "
                           f"its state stays running")
            continue
        loop.children.adopt(run.id, run.pid, run.worker, run.module, run.host)
        through = "" if run.host in ("localhost", "127.0.0.1") else f" on {run.host}, through its ssh process"
        logger.info(f"watching run {run.id} of {run.worker} (pid {run.pid}{through}), started before this manager")


if __name__ == "__main__":
    main()
