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
    db_prune = db.add_parser(
        "prune", help="delete messages, runs and checklist changes older than a date (safe while the manager runs)")
    db_prune.add_argument("config_file")
    db_prune.add_argument("--before", metavar="DATE", required=True,
                          help="delete history older than DATE (ISO 8601; a date alone is midnight UTC)")
    db_prune.add_argument("--batch-size", metavar="N", default="1000",
                          help="rows deleted per transaction (default 1000)")
    db_prune.add_argument("--db", metavar="URL", type=_db_url,
                   help="history database URL, or a SQLite file's path (default: the config's database)")
    db_prune.add_argument("--no-progress", action="store_true", help="no progress lines on standard error")
    db_copy = db.add_parser(
        "copy", help="copy a whole history into an empty database, e.g. SQLite into PostgreSQL (stop the manager first)")
    db_copy.add_argument("source", metavar="SRC_URL", help="history to copy: a database URL or a SQLite file's path")
    db_copy.add_argument("destination", metavar="DST_URL",
                         help="empty database to copy it into: postgresql+psycopg://user@host/name, sqlite:///path "
                              "or a path; its schema is created")
    db_copy.add_argument("--batch-size", metavar="N", default="5000", help="rows per insert (default 5000)")
    db_copy.add_argument("--while-running", action="store_true",
                         help="copy even though SRC's manager is running (what it records later is not copied)")
    db_copy.add_argument("--no-progress", action="store_true", help="no progress lines on standard error")

    init = commands.add_parser("init", help="write the toy nowcast system into a folder")
    init.add_argument("directory", type=Path)
    init.add_argument("--manager-port", type=int, default=4343)
    init.add_argument("--workers-port", type=int, default=4344)
    init.add_argument("--force", action="store_true", help="overwrite files that are already there")

    demo = commands.add_parser(
        "demo", help="write the toy system, start broker and manager, run sleep -> awaken, show the runs"
    )
    demo.add_argument("directory", type=Path, nargs="?", default=Path("toy-nowcast"))

    status = commands.add_parser(
        "status", help="is the system healthy? exit 0 healthy, 1 degraded (runs ended badly in 24 h), 2 down")
    status.add_argument("config_file")
    status.add_argument("--db", metavar="URL", type=_db_url,
                   help="history database URL, or a SQLite file's path (default: the config's database)")
    status.add_argument("--json", action="store_true", help="print the report as JSON")

    logs = commands.add_parser("logs", help="print what a run printed (its captured stdout and stderr)")
    logs.add_argument("config_file")
    logs.add_argument("run_id", metavar="RUN_ID")
    logs.add_argument("--follow", "-f", action="store_true",
                      help="keep printing while the run is open; stop when it has ended")
    logs.add_argument("--db", metavar="URL", type=_db_url,
                   help="history database URL, or a SQLite file's path (default: the config's database)")

    launch = commands.add_parser(
        "launch", help="ask the running manager to launch a registered worker (recorded as launched by operator)"
    )
    launch.add_argument("config_file")
    launch.add_argument("--host", default="localhost", help="host to run it on (localhost or a run: enabled host)")
    launch.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the manager (default 10)")
    launch.add_argument("worker", help="worker module (pkg.workers.name), or a registered worker's name")
    launch.add_argument("worker_args", nargs=argparse.REMAINDER, help="the worker's own arguments")

    keys = commands.add_parser("keys", help="CurveZMQ keys for the broker's ports") \
        .add_subparsers(dest="keys_command", required=True)
    keys_generate = keys.add_parser(
        "generate", help="write a CurveZMQ key pair: NAME.key (public) and NAME.key_secret (secret, mode 0600)")
    keys_generate.add_argument("directory", type=Path)
    keys_generate.add_argument("--name", default="nowcast",
                               help="file name stem, e.g. broker or the client host's name (default nowcast)")
    keys_generate.add_argument("--force", action="store_true", help="overwrite a key pair that is already there")

    add_audit_commands(commands)

    args = parser.parse_args(argv)
    try:
        if args.command in AUDIT_COMMANDS:
            return AUDIT_COMMANDS[args.command](args)
        if args.command == "db" and args.db_command == "copy":
            from nowcast_db.database.copy import copy_command

            return copy_command(args)
        if args.command == "db" and args.db_command == "prune":
            return db_prune_command(args)
        if args.command == "db":
            return db_upgrade_command(args)
        if args.command == "init":
            return init_command(args)
        if args.command == "status":
            from nowcast_db.status import status_command

            return status_command(args)
        if args.command == "launch":
            return launch_command(args)
        if args.command == "logs":
            return logs_command(args)
        if args.command == "keys":
            return keys_generate_command(args)
        if args.command == "demo":
            from nowcast_db.demo import run_demo

            return run_demo(args.directory)
    except NowcastError as err:
        print(f"nowcast: error: {err}", file=sys.stderr)
        # replay's 1 means "decided differently" and status's 1 "degraded", so their errors are 2
        return 2 if isinstance(err, ConfigError) or args.command in AUDIT_COMMANDS or args.command == "status" \
            else 1
    return 2


def db_upgrade_command(args) -> int:
    from nowcast_db.config import Config
    from nowcast_db.database import database_url, make_engine, upgrade

    config = Config(args.config_file)
    url = database_url(config)
    engine = make_engine(url, writer=True)
    before, after = upgrade(engine)
    where = engine.url.render_as_string(hide_password=True)
    print(f"{where}: schema at revision {after}" + (f" (was {before or 'empty'})" if before != after else ""))
    return 0


def db_prune_command(args) -> int:
    from nowcast_db.config import Config
    from nowcast_db.database import database_url
    from nowcast_db.progress import Progress
    from nowcast_db.prune import parse_batch_size, parse_before, prune_history

    try:  # every error here is a one-line message and exit status 2
        before = parse_before(args.before)
        batch_size = parse_batch_size(args.batch_size)
        config = Config(args.config_file)
        report = prune_history(args.db or database_url(config), before, batch_size,
                               progress=Progress("prune", enabled=not args.no_progress))
    except NowcastError as err:
        print(f"nowcast: error: {err}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
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


def logs_command(args) -> int:
    from nowcast_db.config import Config
    from nowcast_db.database import database_url
    from nowcast_db.run_logs import show_output

    run_id = _whole_number(args.run_id, "RUN_ID", "a run id")
    try:
        return show_output(args.db or database_url(Config(args.config_file)), run_id, follow=args.follow)
    except KeyboardInterrupt:
        return 130


def keys_generate_command(args) -> int:
    """Key pairs are made here rather than with a separate tool so that every
    operator gets the file names and the 0600 secret file the config expects."""
    import os

    import zmq.auth

    name = args.name
    if not name or os.sep in name or name.startswith("."):
        raise NowcastError(f"--name: expected a plain file name stem, got {name!r}")
    directory = args.directory
    public, secret = directory / f"{name}.key", directory / f"{name}.key_secret"
    existing = [str(path) for path in (public, secret) if path.exists()]
    if existing and not args.force:
        raise NowcastError(f"{', '.join(existing)}: already there (use --force to overwrite; "
                           f"clients holding the old key are then refused)")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # the secret file is created 0600 from the start, never readable by others even briefly
        old_umask = os.umask(0o077)
        try:
            public_file, secret_file = zmq.auth.create_certificates(directory, name)
        finally:
            os.umask(old_umask)
        os.chmod(secret_file, 0o600)
        os.chmod(public_file, 0o644)
    except OSError as err:
        raise NowcastError(f"{directory}: cannot write keys: {err.strerror or err}") from None
    public_path, secret_path = Path(public_file).resolve(), Path(secret_file).resolve()
    print(f"wrote {public_path} (public key)")
    print(f"wrote {secret_path} (secret key, mode 0600)")
    print(f"""
Config lines (nowcast.yaml, under zmq: curve:), as the broker's key pair:
    server secret key: {secret_path}
    server public key: {public_path}
or as a client key pair (workers, manager, scheduler, nowcast commands):
    client secret key: {secret_path}
  and copy {public_path} into the broker's authorized keys folder, then send the broker SIGHUP.""")
    return 0


def _db_url(text: str) -> str:
    """``--db``: a URL, or a SQLite file's path (imported late: `nowcast --help` loads no SQLAlchemy)."""
    from nowcast_db.database.engine import url_from_text

    return url_from_text(text)


def resolve_worker_module(config, worker: str) -> str:
    """A dotted name is a module already; a bare name is looked up in the
    history (the module its last run used), then among the built-in workers."""
    if "." in worker:
        return worker
    if config.worker_registry(worker) is None:
        known = ", ".join(str(name) for name in (config.registry.get("workers") or {}))
        raise NowcastError(f"worker {worker!r} is not in {config.file}'s message registry "
                           f"(registered: {known or 'none'})")
    from importlib.util import find_spec

    from nowcast_db.database import database_url
    from nowcast_db.database import queries

    try:  # open_history never creates a database file that is not there
        engine = queries.open_history(database_url(config))
    except NowcastError:  # no history yet
        module = None
    else:
        try:
            module = queries.last_module_of(engine, worker)
        finally:
            engine.dispose()
    if module:
        return module
    if find_spec(f"nowcast_db.workers.{worker}") is not None:
        return f"nowcast_db.workers.{worker}"
    raise NowcastError(f"don't know the module of worker {worker!r}: give it in full, e.g. mysystem.workers.{worker}")


# --- audit history and replay ----------------------------------------------------

REPLAY_EPILOG = """\
Reads the recorded worker messages in order, decides each one again with the
manager's own decision core (nothing is launched, nothing is written) and
compares the launches decided now with those recorded then. Messages before
--since are decided silently so that race-condition holds are as this next
workers module would have them; the checklist at --since is the recorded one.
With --scenario FILE, the file's messages are decided instead, from an empty
checklist, and each item's expectations checked.

exit status: 0 all match (or every expectation met), 1 some differ, 2 error"""


def add_audit_commands(commands) -> None:
    from nowcast_db.history import FORMATS, TIME_HELP

    replay = commands.add_parser(
        "replay", help="decide recorded (or scripted) messages again and compare the launches; launches nothing",
        epilog=REPLAY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    replay.add_argument("config_file")
    replay.add_argument("--db", metavar="URL", type=_db_url,
                   help="history database URL, or a SQLite file's path (default: the config's database)")
    replay.add_argument("--since", metavar="TIME", help=f"compare the messages received from TIME on ({TIME_HELP})")
    replay.add_argument("--until", metavar="TIME", help="replay the messages received up to TIME (same format)")
    replay.add_argument("--next-workers", metavar="MODULE_OR_FILE",
                        help="next workers module (dotted name or .py file) to decide with "
                             "(default: the config's next workers module)")
    replay.add_argument("--scenario", metavar="FILE",
                        help="decide the messages of this YAML scenario file instead of the history")
    replay.add_argument("--json", action="store_true", help="print the result as one JSON document")
    replay.add_argument("--live", action="store_true",
                        help="send the messages to the running system through its broker instead (for a staging "
                             "system: the real manager records them and launches real workers); asks first")
    replay.add_argument("--yes", action="store_true", help="with --live: send without asking")
    replay.add_argument("--no-progress", action="store_true", help="no progress lines on standard error")

    checklist = commands.add_parser("checklist", help="print the checklist as YAML, now or as it was at a time")
    checklist.add_argument("config_file")
    checklist.add_argument("--at", metavar="TIME",
                           help=f"rebuild the checklist as it was at TIME from its recorded changes ({TIME_HELP})")
    checklist.add_argument("--db", metavar="URL", type=_db_url,
                   help="history database URL, or a SQLite file's path (default: the config's database)")

    history = commands.add_parser("history", help="recorded runs, messages, checklist changes, or a run's chain")
    history.add_argument("config_file")
    kinds = history.add_subparsers(dest="kind", required=True, metavar="runs|messages|checklist|chain")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--db", metavar="URL", type=_db_url,
                   help="history database URL, or a SQLite file's path (default: the config's database)")
    output.add_argument("--format", default="table", metavar="|".join(FORMATS),
                        help="a table for people (default), JSON lines or CSV for scripts")
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--worker", metavar="W", help="only this worker's runs, messages or checklist changes")
    filters.add_argument("--state", metavar="S", help="only runs in this state (runs only)")
    filters.add_argument("--since", metavar="T", help=f"from this time on ({TIME_HELP})")
    filters.add_argument("--until", metavar="T", help="up to this time (same format)")
    filters.add_argument("--limit", metavar="N", default="100", help="the newest N rows, oldest first "
                                                                     "(default 100; 0 for all)")
    kinds.add_parser("runs", parents=[output, filters], help="worker runs with their durations")
    kinds.add_parser("messages", parents=[output, filters], help="messages received and the replies sent")
    changes = kinds.add_parser("checklist", parents=[output, filters], help="changes to the checklist")
    changes.add_argument("key", nargs="?", help="only this checklist key")
    chain = kinds.add_parser("chain", parents=[output], help="the runs that led to a run, first run first")
    chain.add_argument("run_id", metavar="RUN_ID")


def replay_command(args) -> int:
    from nowcast_db.history import parse_time
    from nowcast_db.progress import Progress
    from nowcast_db.replay import replay_history, run_scenario

    if args.live:
        return live_command(args)

    if args.scenario:
        for option in ("db", "since", "until"):
            if getattr(args, option):
                raise NowcastError(f"--{option}: not used with --scenario (a scenario replays its own messages)")
        result = run_scenario(args.config_file, args.scenario, next_workers=args.next_workers)
    else:
        since = parse_time(args.since, "--since") if args.since else None
        until = parse_time(args.until, "--until") if args.until else None
        if since and until and until < since:
            raise NowcastError(f"--until {args.until} is before --since {args.since}")
        result = replay_history(args.config_file, args.db, since, until, args.next_workers,
                                progress=Progress("replay", enabled=not args.no_progress))
    _print_result(result, args.json)
    return 0 if result.ok else 1


def live_command(args) -> int:
    from nowcast_db import live
    from nowcast_db.config import Config
    from nowcast_db.database import database_url
    from nowcast_db.history import parse_time

    config = Config(args.config_file)
    if args.scenario:
        messages = live.scenario_messages(args.scenario)
    else:
        since = parse_time(args.since, "--since") if args.since else None
        until = parse_time(args.until, "--until") if args.until else None
        messages = live.recorded_messages(args.db or database_url(config), since, until)
    if not messages:
        raise NowcastError("--live: no messages to send")
    address = f"tcp://{config['zmq']['host']}:{config['zmq']['ports']['workers']}"
    live.confirm(messages, address, args.yes)
    return live.send_live(config, messages)


def _print_result(result, as_json: bool) -> None:
    import json

    print(json.dumps(result.as_json(), indent=2, ensure_ascii=False) if as_json else result.report())


def checklist_command(args) -> int:
    import yaml

    from nowcast_db.config import Config
    from nowcast_db.database import database_url
    from nowcast_db.database import queries
    from nowcast_db.history import fold_checklist, parse_time

    at = parse_time(args.at, "--at") if args.at else None
    config = Config(args.config_file)
    engine = queries.open_history(args.db or database_url(config))
    try:
        if at is None:
            checklist = queries.current_checklist(engine)
        else:
            checklist = fold_checklist(queries.checklist_mutations(engine, through=at))
    finally:
        engine.dispose()
    print(yaml.safe_dump(checklist, default_flow_style=False, allow_unicode=True, sort_keys=False), end="")
    return 0


def history_command(args) -> int:
    from nowcast_db import history
    from nowcast_db.config import Config
    from nowcast_db.database import database_url
    from nowcast_db.database import queries
    from nowcast_db.runs import STATES

    if args.format not in history.FORMATS:
        raise NowcastError(f"--format: expected one of {', '.join(history.FORMATS)}, got {args.format!r}")
    if args.kind == "chain":
        run_id = _whole_number(args.run_id, "RUN_ID", "a run id")
    else:
        limit = _whole_number(args.limit, "--limit", "a number of rows (0 for all)")
        since = history.parse_time(args.since, "--since") if args.since else None
        until = history.parse_time(args.until, "--until") if args.until else None
        if args.state is not None and args.kind != "runs":
            raise NowcastError(f"--state: applies to runs, not to {args.kind}")
        if args.state is not None and args.state not in STATES:
            raise NowcastError(f"--state: expected one of {', '.join(STATES)}, got {args.state!r}")
    config = Config(args.config_file)
    engine = queries.open_history(args.db or database_url(config))
    try:
        if args.kind == "runs":
            records = [history.run_record(row) for row in queries.run_rows(
                engine, worker=args.worker, state=args.state, since=since, until=until, limit=limit)]
        elif args.kind == "messages":
            records = [history.message_record(row) for row in queries.message_rows(
                engine, source=args.worker, since=since, until=until, limit=limit)]
        elif args.kind == "checklist":
            records = [history.mutation_record(row) for row in queries.checklist_mutations(
                engine, key=args.key, source=args.worker, since=since, through=until, limit=limit)]
        else:
            records = history.chain_records(queries.run_chain(engine, run_id))
    finally:
        engine.dispose()
    sys.stdout.write(history.render(records, args.kind, args.format))
    return 0


def _whole_number(text: str, name: str, expected: str) -> int:
    if not text.strip().isdigit():
        raise NowcastError(f"{name}: expected {expected}, got {text!r}")
    return int(text)


AUDIT_COMMANDS = {"replay": replay_command, "checklist": checklist_command, "history": history_command}


if __name__ == "__main__":
    sys.exit(main())
