"""``nowcast status``: one screen of truth for scripts, cron mail and monitoring probes.

Exit status: 0 healthy (manager and broker up, nothing ended badly in the last
24 hours), 1 degraded (up, but runs failed, crashed, died, timed out or were
lost in the last 24 hours), 2 down (no manager heartbeat within
HEARTBEAT_STALE seconds, or the broker's workers port refuses connections).
"""
from __future__ import annotations

import datetime as dt
import json
import socket

HEALTHY, DEGRADED, DOWN = 0, 1, 2
HEARTBEAT_STALE = 15.0  # the manager writes its heartbeat every 5 s
WINDOW = dt.timedelta(hours=24)


def broker_reachable(config, timeout: float = 2.0) -> bool:
    """Whether something accepts TCP connections on the broker's workers port."""
    try:
        with socket.create_connection((config["zmq"]["host"], config["zmq"]["ports"]["workers"]), timeout=timeout):
            return True
    except OSError:
        return False


def assess(health: dict, broker_up: bool, now: dt.datetime) -> dict:
    """The report and its exit status, from what the database and the port say (pure)."""
    beat_at = health["heartbeat_at"]
    # never below 0: "now" may be taken just before a heartbeat written since
    age = max(0.0, (now - beat_at).total_seconds()) if beat_at else None
    manager_up = age is not None and age <= HEARTBEAT_STALE
    bad = health["ended badly"]
    status = DOWN if not (manager_up and broker_up) else DEGRADED if bad else HEALTHY
    return {
        "status": ["healthy", "degraded", "down"][status],
        "exit": status,
        "manager": {"up": manager_up, "heartbeat age s": None if age is None else round(age, 1),
                    "pid": (health["heartbeat"] or {}).get("pid"), "host": (health["heartbeat"] or {}).get("host")},
        "broker": {"reachable": broker_up},
        "runs open": health["running"],
        "ended badly in 24 h": bad,
        "last success": {worker: at.isoformat() for worker, at in sorted(health["last success"].items())},
        "held launches": sum(len(hold.get("launches", [])) for hold in health["holds"]),
    }


def render(report: dict) -> str:
    manager = report["manager"]
    lines = [
        f"status: {report['status']}",
        f"manager: {'up' if manager['up'] else 'DOWN'}"
        + (f" (heartbeat {manager['heartbeat age s']} s ago, pid {manager['pid']} on {manager['host']})"
           if manager["heartbeat age s"] is not None else " (no heartbeat recorded)"),
        f"broker: {'reachable' if report['broker']['reachable'] else 'NOT reachable'}",
        f"runs open: {report['runs open']}",
        "ended badly in the last 24 h: " + (", ".join(f"{count} {state}" for state, count in
                                                       sorted(report["ended badly in 24 h"].items())) or "none"),
        f"held race-condition launches: {report['held launches']}",
        "last success:",
    ]
    lines += [f"  {worker}: {at}" for worker, at in report["last success"].items()] or ["  none yet"]
    return "\n".join(lines)


def status_command(args) -> int:
    from nowcast_db.config import Config
    from nowcast_db.database import database_url
    from nowcast_db.database import queries

    config = Config(args.config_file)
    now = dt.datetime.now(dt.timezone.utc)
    engine = queries.open_history(args.db or database_url(config))
    try:
        health = queries.health(engine, now - WINDOW)
    finally:
        engine.dispose()
    report = assess(health, broker_reachable(config), now)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return report["exit"]
