"""``nowcast``: the one command for everything besides the long-running processes."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nowcast_db.errors import ConfigError, NowcastError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="nowcast", description=__doc__.strip("`` ").split(":", 1)[-1].strip())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db_upgrade = db.add_parser("upgrade", help="create or migrate the history database to the current schema")
    db_upgrade.add_argument("config_file")

    init = commands.add_parser("init", help="write the toy nowcast system into a folder")
    init.add_argument("directory", type=Path)
    init.add_argument("--manager-port", type=int, default=4343)
    init.add_argument("--workers-port", type=int, default=4344)
    init.add_argument("--force", action="store_true", help="overwrite files that are already there")

    demo = commands.add_parser(
        "demo", help="write the toy system, start broker and manager, run sleep -> awaken, show the runs"
    )
    demo.add_argument("directory", type=Path, nargs="?", default=Path("toy-nowcast"))

    launch = commands.add_parser(
        "launch", help="ask the running manager to launch a registered worker (recorded as launched by operator)"
    )
    launch.add_argument("config_file")
    launch.add_argument("--host", default="localhost", help="host to run it on (localhost or a run: enabled host)")
    launch.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the manager (default 10)")
    launch.add_argument("worker", help="worker module (pkg.workers.name), or a registered worker's name")
    launch.add_argument("worker_args", nargs=argparse.REMAINDER, help="the worker's own arguments")

    args = parser.parse_args(argv)
    try:
        if args.command == "db":
            return db_upgrade_command(args)
        if args.command == "init":
            return init_command(args)
        if args.command == "launch":
            return launch_command(args)
        if args.command == "demo":
            from nowcast_db.demo import run_demo

            return run_demo(args.directory)
    except NowcastError as err:
        print(f"nowcast: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    return 2


def db_upgrade_command(args) -> int:
    from nowcast_db.config import Config
    from nowcast_db.database import database_url, make_engine, upgrade
    from nowcast_db.database.migrate import current_revision

    config = Config(args.config_file)
    url = database_url(config)
    engine = make_engine(url, writer=True)
    before = current_revision(engine)
    upgrade(engine)
    after = current_revision(engine)
    where = engine.url.render_as_string(hide_password=True)
    print(f"{where}: schema at revision {after}" + (f" (was {before or 'empty'})" if before != after else ""))
    return 0


def init_command(args) -> int:
    from nowcast_db.toy import write_toy_system

    written = write_toy_system(args.directory, args.manager_port, args.workers_port, overwrite=args.force)
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(f"{args.directory}: all files already there (use --force to overwrite)")
    return 0


def launch_command(args) -> int:
    from nowcast_db.client import ManagerClient
    from nowcast_db.config import Config
    from nowcast_db.launch_request import launch_message, request_launch

    config = Config(args.config_file)
    module = resolve_worker_module(config, args.worker)
    message = launch_message(module, args.worker_args, args.host, source="operator")
    client = ManagerClient(config, reply_timeout=args.timeout, give_up_after=args.timeout)
    try:
        run_id = request_launch(config, message, client)
    finally:
        client.close()
    print(f"launched {module} {' '.join(args.worker_args)} on {args.host}: run {run_id}".replace("  ", " "))
    return 0


def resolve_worker_module(config, worker: str) -> str:
    """A dotted name is a module already; a bare name is looked up in the
    history (the module its last run used), then among the built-in workers."""
    if "." in worker:
        return worker
    from importlib.util import find_spec

    from nowcast_db.database import database_url, make_engine
    from nowcast_db.database.queries import last_module_of

    try:
        module = last_module_of(make_engine(database_url(config)), worker)
    except Exception:  # no database yet
        module = None
    if module:
        return module
    if find_spec(f"nowcast_db.workers.{worker}") is not None:
        return f"nowcast_db.workers.{worker}"
    raise NowcastError(f"don't know the module of worker {worker!r}: give it in full, e.g. mysystem.workers.{worker}")


if __name__ == "__main__":
    sys.exit(main())
