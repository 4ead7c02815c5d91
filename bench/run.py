"""nowcast_db benchmarks, in one run on one machine: the transport floor, the
manager with durable commits, launch latency and manager memory.

    python bench/run.py                 # writes BENCHMARKS.md
    python bench/run.py --quick         # fewer messages, for a smoke test

The floor is the same broker with a responder that does no work; the manager
runs the toy system's registry with an after_ function returning [], every
message committed (SQLite WAL, synchronous=FULL) before its reply.  Then the
manager's cost by batch size (profile_batches.py), replay speed, nowcast-tui
on a generated history of 1,000,000 messages (make_big_db.py, tui_speed.py)
and readers beside the manager on PostgreSQL (pg_concurrency.py).
"""
from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import yaml
import zmq

import replay_speed  # bench/, beside this file
from nowcast_db.demo import free_ports
from nowcast_db.toy import write_toy_system

BENCH_DIR = Path(__file__).resolve().parent
NEXT_WORKERS = """
from nowcast_db import NextWorker

def after_sleep(msg, config, checklist):
    return []

def after_awaken(msg, config, checklist):
    if msg.type == "failure":  # the launch benchmark's trigger
        return [NextWorker("launch_probe")]
    return []

def after_launch_probe(msg, config, checklist):
    return []
"""


class BenchSystem:
    def __init__(self, directory: Path):
        self.directory = directory
        self.manager_port, self.workers_port = free_ports(2)
        write_toy_system(directory, self.manager_port, self.workers_port)
        config = yaml.safe_load((directory / "nowcast.yaml").read_text())
        config["logging"]["handlers"] = {"file": {
            "class": "logging.FileHandler", "level": "INFO", "formatter": "simple",
            "filename": str(directory / "nowcast.log")}}
        config["logging"]["root"] = {"level": "INFO", "handlers": ["file"]}
        config["message registry"]["workers"]["launch_probe"] = {
            "success": "probe ran", "failure": "probe failed", "crash": "probe crashed"}
        (directory / "nowcast.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        (directory / "next_workers.py").write_text(NEXT_WORKERS)
        (directory / "launch_probe.py").write_text((BENCH_DIR / "launch_probe.py").read_text())
        self.env = dict(os.environ, NOWCAST_ENV=sys.prefix, NOWCAST_LOGS=str(directory),
                        BENCH_LAUNCH_LOG=str(directory / "launches.txt"),
                        PYTHONPATH=os.pathsep.join(filter(None, [str(directory), os.environ.get("PYTHONPATH")])))
        self.processes: list[subprocess.Popen] = []

    def start(self, *command: str) -> subprocess.Popen:
        process = subprocess.Popen(list(command), cwd=self.directory, env=self.env,
                                   stdout=subprocess.DEVNULL, stderr=open(self.directory / "stderr.log", "ab"))
        self.processes.append(process)
        return process

    def start_broker(self):
        return self.start(sys.executable, "-m", "nowcast_db.message_broker", "nowcast.yaml")

    def start_manager(self):
        process = self.start(sys.executable, "-m", "nowcast_db.manager", "nowcast.yaml")
        wait_for_reply(self.workers_port)
        return process

    def stop(self):
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes = []


def wait_for_reply(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        context = zmq.Context.instance()
        socket = context.socket(zmq.REQ)
        socket.setsockopt(zmq.LINGER, 0)
        socket.connect(f"tcp://127.0.0.1:{port}")
        socket.send(b"source: awaken\ntype: crash\npayload: null\n")
        ready = socket.poll(1000)
        socket.close()
        if ready:
            return
    raise SystemExit("bench: the system did not answer")


def client(port: int, count: int, warmup: int, index: int, results) -> None:
    context = zmq.Context()
    socket = context.socket(zmq.REQ)
    socket.connect(f"tcp://127.0.0.1:{port}")
    rtts = []
    start = None
    for i in range(warmup + count):
        body = (f"source: sleep\ntype: success\npayload:\n  sleep time: {i}\n"
                f"message id: c{index}-{i}-{os.getpid()}\n").encode()
        if i == warmup:
            start = time.perf_counter()
        t0 = time.perf_counter()
        socket.send(body)
        socket.recv()
        if i >= warmup:
            rtts.append(time.perf_counter() - t0)
    results.put((start, time.perf_counter(), rtts))
    socket.close()
    context.term()


def load(port: int, clients: int, count: int, warmup: int = 200) -> dict:
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=client, args=(port, count, warmup, i, results)) for i in range(clients)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    rtts = sorted(r for _, _, rs in outcomes for r in rs)
    elapsed = max(end for _, end, _ in outcomes) - min(start for start, _, _ in outcomes)
    return {
        "clients": clients,
        "messages": len(rtts),
        "rate": len(rtts) / elapsed,
        "p50_ms": rtts[len(rtts) // 2] * 1000,
        "p99_ms": rtts[int(len(rtts) * 0.99)] * 1000,
    }


def measure_messages(directory: Path, count: int, rounds: int) -> tuple[list[dict], list[dict]]:
    """Floor and manager side by side: both systems up at once, their loads
    interleaved round by round (floor 1 client, manager 1 client, floor 8,
    manager 8, ...), so a change in the machine's load hits both alike.
    Each figure is the median over the rounds; share of floor is the median
    of the rounds' ratios."""
    floor_system, manager_system = BenchSystem(directory / "floor"), BenchSystem(directory / "manager")
    try:
        floor_system.start_broker()
        floor_system.start(sys.executable, str(BENCH_DIR / "noop_responder.py"), str(floor_system.manager_port))
        wait_for_reply(floor_system.workers_port)
        manager_system.start_broker()
        manager_system.start_manager()
        results = {(kind, clients): [] for kind in ("floor", "manager") for clients in (1, 8)}
        for _ in range(rounds):
            for clients in (1, 8):
                results[("floor", clients)].append(load(floor_system.workers_port, clients, count))
                results[("manager", clients)].append(load(manager_system.workers_port, clients, count))
    finally:
        floor_system.stop()
        manager_system.stop()
    floor, manager = [], []
    for clients in (1, 8):
        floors, managers = results[("floor", clients)], results[("manager", clients)]
        floor.append(_median_of(floors))
        manager.append({**_median_of(managers),
                        "share": median([m["rate"] / f["rate"] for f, m in zip(floors, managers)])})
    return floor, manager


def _median_of(runs: list[dict]) -> dict:
    return {"clients": runs[0]["clients"], "messages": sum(run["messages"] for run in runs), "rounds": len(runs),
            **{key: median([run[key] for run in runs]) for key in ("rate", "p50_ms", "p99_ms")}}


def measure_launch(directory: Path, launches: int) -> dict:
    system = BenchSystem(directory / "launch")
    log = Path(system.env["BENCH_LAUNCH_LOG"])
    try:
        system.start_broker()
        system.start_manager()
        context = zmq.Context.instance()
        latencies = []
        for i in range(launches):
            socket = context.socket(zmq.REQ)
            socket.connect(f"tcp://127.0.0.1:{system.workers_port}")
            lines_before = len(log.read_text().splitlines()) if log.exists() else 0
            sent = time.time()
            socket.send(f"source: awaken\ntype: failure\npayload: null\nmessage id: launch-{i}\n".encode())
            socket.recv()
            socket.close()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                lines = log.read_text().splitlines() if log.exists() else []
                if len(lines) > lines_before:
                    latencies.append(float(lines[-1].split()[1]) - sent)
                    break
                time.sleep(0.002)
            time.sleep(0.2)  # let the probe report and exit before the next one
        latencies.sort()
        return {"launches": len(latencies), "p50_ms": latencies[len(latencies) // 2] * 1000,
                "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000}
    finally:
        system.stop()


def memory_kib(pid: int) -> tuple[int, int]:
    """(resident set, of which anonymous memory: the Python heap, not mapped files)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["RssAnon"].split()[0])


def measure_memory(directory: Path, total: int) -> list[tuple[int, int]]:
    system = BenchSystem(directory / "memory")
    try:
        system.start_broker()
        manager = system.start_manager()
        wal = system.directory / "nowcast.sqlite-wal"
        points = [(0, *memory_kib(manager.pid), wal.stat().st_size if wal.exists() else 0)]
        step = total // 5
        for done in range(step, total + 1, step):
            load(system.workers_port, 4, step // 4, warmup=0)
            points.append((done, *memory_kib(manager.pid), wal.stat().st_size if wal.exists() else 0))
        return points
    finally:
        system.stop()


def _editable() -> bool:
    """Whether nowcast_db runs from the source tree (an editable install): every Python start then
    runs the install's finder, which shows in the launch latency."""
    import nowcast_db

    return "site-packages" not in nowcast_db.__file__


def measure_tui(runs: int, messages: int) -> str:
    """nowcast-tui against a generated history (bench/make_big_db.py, bench/tui_speed.py)."""
    import make_big_db  # bench/, beside this file
    import tui_speed

    with tempfile.TemporaryDirectory(prefix="nowcast-bench-tui-") as tmp:
        path = Path(tmp) / "big.sqlite"
        make_big_db.write(path, runs, messages)
        return tui_speed.tui_section(path)


def measure_batches(messages: int) -> str:
    """bench/profile_batches.py's table: the manager's cost per message by batch size, in-process."""
    return subprocess.run([sys.executable, str(BENCH_DIR / "profile_batches.py"), "--messages", str(messages)],
                          capture_output=True, text=True, check=True, cwd=BENCH_DIR).stdout.strip()


def write_report(path: Path, floor, manager, launch, memory, replay, command: str, batches: str = "",
                 extra_sections: list[str] = ()) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Measured {dt.datetime.now().strftime('%Y-%m-%d %H:%M')} on {platform.node()}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}.",
        f"Command: `{command}` (all figures below come from that one run), with nowcast_db installed "
        f"in {Path(sys.prefix).name!r} ({'an editable' if _editable() else 'a plain'} `pip install`).",
        "",
        "## Messages: floor vs manager",
        "",
        "Floor: the broker with a responder that answers at once and does no work. Manager: the real",
        "manager, registered worker, small dict payload, `after_` returning `[]`, every message",
        "committed (SQLite WAL, `synchronous=FULL`) before its reply.",
        "",
        "Both systems run at once and their loads alternate, round by round; each figure is the median",
        "of the rounds (messages: all rounds together), share of floor the median of the rounds' ratios.",
        "",
        "| | clients | messages | messages/s | p50 ms | p99 ms | share of floor |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for f, m in zip(floor, manager):
        lines.append(f"| floor | {f['clients']} | {f['messages']} | {f['rate']:.0f} | {f['p50_ms']:.2f} | "
                     f"{f['p99_ms']:.2f} | |")
        lines.append(f"| manager | {m['clients']} | {m['messages']} | {m['rate']:.0f} | {m['p50_ms']:.2f} | "
                     f"{m['p99_ms']:.2f} | {m['share']:.0%} |")
    if batches:
        lines += [
            "",
            "### Cost per message by batch size",
            "",
            "`ManagerLoop.handle_batch` driven in-process (no sockets; `bench/profile_batches.py`): wall time",
            "includes waiting for the disk at each commit, CPU time the manager's own work (and the kernel's).",
            "",
            batches,
        ]
    lines += [
        "",
        "## Launch latency",
        "",
        "From a worker's message being sent to the next worker's process running (its first line,",
        "before imports; includes Python start-up).",
        "",
        f"{launch['launches']} launches: p50 {launch['p50_ms']:.0f} ms, p99 {launch['p99_ms']:.0f} ms.",
        "",
        "## Manager memory",
        "",
        "| messages handled | manager RSS (MiB) | of which heap (MiB) | WAL file (MiB) |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {done} | {rss / 1024:.1f} | {anon / 1024:.1f} | {wal / 2**20:.1f} |" for done, rss, anon, wal in memory]
    lines += [
        "",
        "## Replay",
        "",
        f"`nowcast replay` (dry run, every `after_` returning `[]`) of {replay['messages']:,} recorded messages: "
        f"{replay['replay_seconds']:.2f} s ({replay['messages'] / replay['replay_seconds']:,.0f} messages/s), "
        f"one process. Recording them through the manager's batch path took {replay['record_seconds']:.1f} s.",
        f"Replay said: {replay['summary']}",
    ]
    for section in extra_sections:
        lines += ["", section.strip()]
    notes = BENCH_DIR / "notes.md"
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000, help="messages per client per load (default 3000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved floor/manager rounds (default 3)")
    parser.add_argument("--memory-messages", type=int, default=100_000)
    parser.add_argument("--launches", type=int, default=30)
    parser.add_argument("--replay-messages", type=int, default=100_000)
    parser.add_argument("--tui-runs", type=int, default=200_000)
    parser.add_argument("--tui-messages", type=int, default=1_000_000)
    parser.add_argument("--no-postgresql", action="store_true",
                        help="leave out the PostgreSQL concurrency section (bench/pg_concurrency.py)")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke test")
    parser.add_argument("--output", type=Path, default=BENCH_DIR.parent / "BENCHMARKS.md")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.memory_messages, args.launches, args.replay_messages = 300, 2000, 5, 2000
        args.rounds, args.tui_runs, args.tui_messages = 1, 2000, 10_000
    with tempfile.TemporaryDirectory(prefix="nowcast-bench-") as tmp:
        directory = Path(tmp)
        floor, manager = measure_messages(directory, args.messages, args.rounds)
        launch = measure_launch(directory, args.launches)
        memory = measure_memory(directory, args.memory_messages)
    replay = replay_speed.measure(args.replay_messages)
    batches = measure_batches(400 if args.quick else 4000)
    sections = [measure_tui(args.tui_runs, args.tui_messages)]
    if not args.no_postgresql:
        import pg_concurrency  # bench/, beside this file

        sections.append(pg_concurrency.pg_section(messages=100 if args.quick else 1000))
    print(write_report(args.output, floor, manager, launch, memory, replay,
                       "python bench/run.py " + " ".join(sys.argv[1:]), batches, sections))


if __name__ == "__main__":
    main()
