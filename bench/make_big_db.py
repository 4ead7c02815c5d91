"""Write a big history database for measuring nowcast-tui: by default
1,000,000 messages, 200,000 worker runs and their checklist changes, through
the real schema (Alembic migrations), ending now.

    python bench/make_big_db.py /tmp/big.sqlite [--runs 200000] [--messages 1000000]

The shape is a busy operational system: 40 workers, each run several times a
day at its usual time with some jitter and a duration of its own; most runs
succeed, a few fail, crash or die; each run sends a few messages (a `need`, a
progress report, its final message) and its final message changes its
checklist key; now and then a message from an unregistered worker is
recorded with its error.  Today's runs include open ones (running, pending),
so the header and the timeline have something live to show.

Rows go in with the DB-API's executemany in big transactions, values encoded
exactly as the store encodes them (JSON text, naive UTC times), so the TUI
reads what a real manager would have written.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from pathlib import Path

from nowcast_db.database.engine import make_engine
from nowcast_db.database.migrate import upgrade

WORKERS = [
    "download_weather", "collect_weather", "make_runoff_file", "collect_river_data", "get_onc_ctd",
    "get_onc_ferry", "download_live_ocean", "make_live_ocean_files", "make_turbidity_file", "upload_forcing",
    "make_forcing_links", "run_NEMO", "watch_NEMO", "run_NEMO_hindcast", "watch_NEMO_hindcast",
    "download_results", "split_results", "make_plots", "make_surface_current_tiles", "make_feeds",
    "ping_erddap", "update_forecast_datasets", "run_ww3", "watch_ww3", "make_ww3_wind_file",
    "make_ww3_current_file", "run_fvcom", "watch_fvcom", "make_fvcom_boundary", "make_fvcom_rivers_forcing",
    "make_fvcom_atmos_forcing", "get_vfpa_hadcp", "make_ssh_files", "get_NeahBay_ssh", "rotate_logs",
    "clear_checklist", "archive_tarball", "make_averaged_dataset", "crop_gribs", "launch_remote_worker",
]
HOSTS = ["localhost", "localhost", "localhost", "arbutus.cloud", "salish", "orcinus"]
RUN_TYPES = ["nowcast", "forecast", "forecast2", "nowcast-green", "nowcast-agrif"]
#: (state, weight): what becomes of a finished run
ENDINGS = [("succeeded", 955), ("failed", 25), ("crashed", 8), ("died", 7), ("lost", 3), ("timed out", 2)]
FINAL_TYPE = {"succeeded": "success", "failed": "failure", "crashed": "crash", "died": "crash",
              "lost": None, "timed out": "crash", "running": None, "pending": None}
BATCH = 50_000


def when(moment: dt.datetime) -> str:
    """A time as the store writes it on SQLite (naive UTC, microseconds)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def worker_profiles(rng: random.Random) -> list[dict]:
    """Each worker's usual start times and duration."""
    profiles = []
    for index, name in enumerate(WORKERS):
        profiles.append({
            "worker": name,
            "module": f"nowcast.workers.{name}",
            "key": name.replace("_", " "),
            "first": rng.uniform(0, 6 * 3600),
            "seconds": rng.choice([5, 20, 60, 300, 900, 1800, 3600, 5400]) * rng.uniform(0.5, 1.5),
            "host": HOSTS[index % len(HOSTS)],
        })
    return profiles


def plan_runs(runs: int, now: dt.datetime, rng: random.Random) -> list[dict]:
    """The runs, oldest first, ending about now: 40 workers × 25 runs a day."""
    profiles = worker_profiles(rng)
    per_day = 25
    days = 1 + max(1, -(-runs // (len(profiles) * per_day)))
    start_day = (now - dt.timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    planned = []
    for day in range(days):
        midnight = start_day + dt.timedelta(days=day)
        for profile in profiles:
            for slot in range(per_day):
                offset = profile["first"] + slot * (86_400 - profile["first"]) / per_day + rng.uniform(-300, 300)
                launched = midnight + dt.timedelta(seconds=max(0.0, offset))
                if launched <= now:
                    planned.append((launched, profile))
    planned.sort(key=lambda item: item[0])
    result = []
    for launched, profile in planned[-runs:]:
        started = launched + dt.timedelta(seconds=rng.uniform(0.05, 1.5))
        finished = started + dt.timedelta(seconds=profile["seconds"] * rng.uniform(0.7, 1.6))
        if finished > now:
            state, finished = ("running", None) if started <= now else ("pending", None)
        else:
            state = rng.choices([s for s, _ in ENDINGS], [w for _, w in ENDINGS])[0]
        result.append({"launched": launched, "started": started if state != "pending" else None,
                       "finished": finished, "state": state, "run_type": rng.choice(RUN_TYPES), **profile})
    return result


def plan_messages(planned: list[dict], messages: int, now: dt.datetime) -> list[tuple]:
    """(received at, run index, message index, messages of that run), in the
    order a manager would have received them, which is the order of their ids."""
    per_run, extra = divmod(messages, max(1, len(planned)))
    events = []
    for run_index, run in enumerate(planned):
        how_many = per_run + (1 if run_index < extra else 0)
        start = run["started"] or run["launched"]
        end = run["finished"] or min(now, start + dt.timedelta(seconds=run["seconds"]))
        for index in range(how_many):
            events.append((start + (end - start) * ((index + 1) / how_many), run_index, index, how_many))
    events.sort(key=lambda event: event[0])
    return events


def write(path: Path, runs: int, messages: int, seed: int = 1) -> dict:
    if path.exists():
        raise SystemExit(f"{path}: already there; remove it first (this writes a new database)")
    rng = random.Random(seed)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    engine = make_engine(f"sqlite:///{path}", writer=True)
    upgrade(engine)
    planned = plan_runs(runs, now, rng)
    events = plan_messages(planned, messages, now)

    # the message that triggered each manager launch: the newest final message before it
    triggers: list[int | None] = []
    finals = 0
    last_final = None
    for run in planned:
        while finals < len(events) and events[finals][0] <= run["launched"]:
            _, _, index, how_many = events[finals]
            if index == how_many - 1:
                last_final = finals + 1
            finals += 1
        triggers.append(last_final if last_final and rng.random() < 0.7 else None)

    run_sql = ("INSERT INTO worker_runs (id, worker, module, args, host, launched_by, requested_by, triggered_by, "
               "state, command, pid, exit_code, final_message_type, reason, output_path, launched_at, started_at, "
               "finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    message_sql = ("INSERT INTO messages (id, message_id, received_at, source, type, payload, raw, reply_type, "
                   "reply_payload, run_id, error, synthesized) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    mutation_sql = ("INSERT INTO checklist_mutations (id, key, operation, before, after, message_id, at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)")
    counts = {"runs": 0, "messages": 0, "mutations": 0}
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        # a generator, not a manager: no waiting for the disk; references are
        # checked once at the end instead of row by row
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA foreign_keys=OFF")

        def insert(sql: str, rows: list, what: str) -> None:
            cursor.execute("BEGIN")
            cursor.executemany(sql, rows)
            cursor.execute("COMMIT")
            counts[what] += len(rows)
            rows.clear()

        rows = []
        for run_id, run in enumerate(planned, start=1):
            worker, run_type, state = run["worker"], run["run_type"], run["state"]
            args = [run_type, run["launched"].strftime("%Y-%m-%d")] if rng.random() < 0.8 else []
            trigger = triggers[run_id - 1]
            launched_by = "manager" if trigger else rng.choice(["scheduler", "scheduler", "operator", "external"])
            external = launched_by == "external"
            final_type = FINAL_TYPE[state]
            exit_code = None
            if state not in ("running", "pending", "lost"):
                exit_code = 0 if state == "succeeded" else -9 if state == "died" else 1
            command = [sys.executable, "-m", run["module"], "nowcast.yaml", *args]
            rows.append((
                run_id, worker, None if external else run["module"], json.dumps(args),
                "unknown" if external else run["host"], launched_by,
                "operator doug@workstation" if launched_by in ("operator", "scheduler") else None, trigger, state,
                json.dumps(command) if run["started"] and not external else None,
                rng.randint(1000, 4_000_000) if run["started"] and not external else None,
                None if external else exit_code,
                f"{final_type} {run_type}" if final_type and state != "died" else None,
                "killed by signal 9" if state == "died" else
                "the manager stopped before starting it" if state == "lost" else None,
                None if external else f"/var/log/nowcast/runs/{run['launched']:%Y-%m-%d}/{worker}-{run_id}.log",
                when(run["launched"]), when(run["started"]) if run["started"] else None,
                when(run["finished"]) if run["finished"] else None,
            ))
            if len(rows) >= BATCH:
                insert(run_sql, rows, "runs")
        insert(run_sql, rows, "runs")

        checklist: dict[str, tuple] = {}
        mutations = []
        for message_id, (at, run_index, index, how_many) in enumerate(events, start=1):
            run = planned[run_index]
            worker, run_type = run["worker"], run["run_type"]
            final_type = FINAL_TYPE[run["state"]]
            source, error, reply, run_id = worker, None, "ack", run_index + 1
            if index == how_many - 1 and final_type and run["state"] != "died":
                mtype = f"{final_type} {run_type}"
                payload = {run_type: {"run date": run["launched"].strftime("%Y-%m-%d"),
                                      "files": [f"{worker}_{run_id}_{n}.nc" for n in range(3)],
                                      "seconds": round(run["seconds"], 1)}}
            elif index == 0:
                mtype, payload = "need", run["key"]
            elif rng.random() < 0.005:
                source, mtype, payload, run_id = f"{worker}_old", "success", None, None
                reply, error = "unregistered worker", f"message from unregistered worker {worker}_old"
            else:
                mtype, payload = "progress", {"percent": round(100 * index / how_many)}
            rows.append((message_id, f"big-{message_id:09d}", when(at), source, mtype, json.dumps(payload), None,
                         reply, None, run_id, error, 0))
            if mtype.startswith(("success", "failure", "crash")) and run_id is not None:
                key = run["key"]
                before = checklist.get(key, (None,))[0]
                after = dict(before, **payload) if isinstance(before, dict) else payload
                operation = "set" if key not in checklist else "update" if isinstance(before, dict) else "replace"
                mutations.append((len(mutations) + 1 + counts["mutations"], key, operation,
                                  None if before is None else json.dumps(before), json.dumps(after), message_id,
                                  when(at)))
                checklist[key] = (after, message_id, at)
            if len(rows) >= BATCH:
                insert(message_sql, rows, "messages")
                insert(mutation_sql, mutations, "mutations")
        insert(message_sql, rows, "messages")
        insert(mutation_sql, mutations, "mutations")

        cursor.execute("BEGIN")
        cursor.executemany(
            "INSERT INTO checklist (key, value, updated_at, message_id) VALUES (?, ?, ?, ?)",
            [(key, json.dumps(value), when(at), mid) for key, (value, mid, at) in checklist.items()])
        cursor.execute("INSERT INTO manager_state (name, value, updated_at) VALUES (?, ?, ?)",
                       ("heartbeat", json.dumps({"pid": 1, "host": "bench", "at": now.isoformat()}), when(now)))
        cursor.execute("COMMIT")
        broken = cursor.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise SystemExit(f"{path}: generated rows break foreign keys: {broken[:5]}")
        cursor.close()
    finally:
        raw.close()
        engine.dispose()
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="the SQLite file to write (must not exist)")
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    counts = write(args.path, args.runs, args.messages, args.seed)
    print(f"{args.path}: {counts['runs']:,} runs, {counts['messages']:,} messages, "
          f"{counts['mutations']:,} checklist changes in {time.perf_counter() - started:.0f} s "
          f"({args.path.stat().st_size / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
