"""``nowcast``: the one command for everything besides the long-running processes."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nowcast_db.errors import NowcastError


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

    args = parser.parse_args(argv)
    try:
        if args.command == "db":
            return db_upgrade_command(args)
        if args.command == "init":
            return init_command(args)
        if args.command == "demo":
            from nowcast_db.demo import run_demo

            return run_demo(args.directory)
    except NowcastError as err:
        print(f"nowcast: error: {err}", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    sys.exit(main())
