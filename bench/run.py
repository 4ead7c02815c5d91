"""nowcast_db benchmarks, in one run on one machine: the transport floor, the
manager with durable commits, launch latency and manager memory.

    python bench/run.py                 # writes BENCHMARKS.md
    python bench/run.py --quick         # fewer messages, for a smoke test

The floor is the same broker with a responder that does no work; the durable
floor a responder that only stores each message's bytes and commits (SQLite
WAL, synchronous=FULL) before answering (durable_responder.py); the manager
runs the toy system's registry with an after_ function returning [], every
message recorded and committed the same way before its reply.  Then the
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
    cpu = time.process_time()  # this client's CPU, its ZeroMQ I/O thread included
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
    results.put((start, time.perf_counter(), rtts, time.process_time() - cpu))
    socket.close()
    context.term()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(port: int, clients: int, count: int, warmup: int = 200, watch: dict[str, int] | None = None) -> dict:
    """``clients`` processes each sending ``warmup + count`` messages, waiting
    for each reply.  ``watch`` (name → pid): processes whose CPU time per
    message is reported beside the clients' (all messages, warm-up included)."""
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=client, args=(port, count, warmup, i, results)) for i in range(clients)]
    watched = {name: cpu_seconds(pid) for name, pid in (watch or {}).items()}
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    sent = clients * (warmup + count)
    cpu = {name: (cpu_seconds(watch[name]) - before) / sent * 1e6 for name, before in watched.items()}
    cpu["clients"] = sum(used for *_, used in outcomes) / sent * 1e6
    rtts = sorted(r for _, _, rs, _ in outcomes for r in rs)
    elapsed = max(end for _, end, _, _ in outcomes) - min(start for start, _, _, _ in outcomes)
    return {
        "clients": clients,
        "messages": len(rtts),
        "rate": len(rtts) / elapsed,
        "p50_ms": rtts[len(rtts) // 2] * 1000,
        "p99_ms": rtts[int(len(rtts) * 0.99)] * 1000,
        "cpu_us": cpu,  # µs of CPU per message, by process
    }


KINDS = ("floor", "durable floor", "manager")


def measure_messages(directory: Path, count: int, rounds: int) -> dict[str, list[dict]]:
    """The floor, the durable floor and the manager side by side: all three
    systems up at once, their loads interleaved round by round (floor 1
    client, durable floor 1 client, manager 1 client, floor 8, ...), so a
    change in the machine's load hits them alike.  Each figure is the median
    over the rounds; share of floor is the median of the rounds' ratios.
    Returns, for each kind, its figures with 1 client and with 8."""
    systems = {kind: BenchSystem(directory / kind.replace(" ", "-")) for kind in KINDS}
    try:
        watch = {}
        for kind, system in systems.items():
            if kind == "manager":
                watch[kind] = {"broker": system.start_broker().pid, "responder": system.start_manager().pid}
                continue
            responder = [str(BENCH_DIR / "noop_responder.py"), str(system.manager_port)]
            if kind == "durable floor":
                responder = [str(BENCH_DIR / "durable_responder.py"), str(system.manager_port),
                             str(system.directory / "durable.sqlite")]
            watch[kind] = {"broker": system.start_broker().pid, "responder": system.start(sys.executable, *responder).pid}
            wait_for_reply(system.workers_port)
        results = {(kind, clients): [] for kind in KINDS for clients in (1, 8)}
        for _ in range(rounds):
            for clients in (1, 8):
                for kind, system in systems.items():
                    results[(kind, clients)].append(load(system.workers_port, clients, count, watch=watch[kind]))
    finally:
        for system in systems.values():
            system.stop()
    figures = {kind: [] for kind in KINDS}
    for clients in (1, 8):
        floors = results[("floor", clients)]
        figures["floor"].append(_median_of(floors))
        for kind in KINDS[1:]:
            runs = results[(kind, clients)]
            figures[kind].append({**_median_of(runs),
                                  "share": median([run["rate"] / f["rate"] for f, run in zip(floors, runs)])})
    return figures


def _median_of(runs: list[dict]) -> dict:
    return {"clients": runs[0]["clients"], "messages": sum(run["messages"] for run in runs), "rounds": len(runs),
            **{key: median([run[key] for run in runs]) for key in ("rate", "p50_ms", "p99_ms")},
            "cpu_us": {name: median([run["cpu_us"][name] for run in runs]) for name in runs[0]["cpu_us"]}}


def in_table_order(figures: dict[str, list[dict]]):
    """(kind, its figures) as the tables list them: every kind with 1 client, then with 8."""
    for index in (0, 1):
        for kind in KINDS:
            yield kind, figures[kind][index]


def cpu_section(figures: dict[str, list[dict]]) -> list[str]:
    """Where the machine's CPU goes per message, and what that leaves the manager (see the text)."""
    lines = [
        "",
        "### CPU per message",
        "",
        "CPU time (user + system, all threads) each process used during the loads above, per message",
        "(medians of the rounds). \"Cores busy\" is messages/s × total CPU per message: near the machine's",
        f"{os.cpu_count()} cores, the load is limited by CPU, not by waiting.",
        "",
        "| | clients | broker µs | responder / manager µs | clients µs | total µs | cores busy |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, run in in_table_order(figures):
        cpu = run["cpu_us"]
        total = cpu["broker"] + cpu["responder"] + cpu["clients"]
        lines.append(f"| {kind} | {run['clients']} | {cpu['broker']:.0f} | {cpu['responder']:.0f} | "
                     f"{cpu['clients']:.0f} | {total:.0f} | {run['rate'] * total / 1e6:.2f} |")
    (f1, f8), (m1, m8) = figures["floor"], figures["manager"]
    target8, target1 = 0.6 * f8["rate"], 0.4 * f1["rate"]
    lines += [
        "",
        f"What the targets leave the manager. With 8 clients, 60 % of the floor is {target8:,.0f} messages/s: "
        f"the manager's loop (one thread) then has {1e6 / target8:.0f} µs per message for everything — socket "
        f"I/O, parsing, deciding, logging, its share of a commit and the wait for the disk. Its CPU alone "
        f"was {m8['cpu_us']['responder']:.0f} µs a message. With 1 client, 40 % of the floor is "
        f"{target1:,.0f} messages/s, a round trip of {1e6 / target1:.0f} µs, of which the transport takes "
        f"{1e6 / f1['rate']:.0f} µs: the manager may add {1e6 / target1 - 1e6 / f1['rate']:.0f} µs, the wait "
        f"for one `fdatasync` included. Its CPU alone was {m1['cpu_us']['responder']:.0f} µs a message.",
    ]
    return lines


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


def write_report(path: Path, figures: dict[str, list[dict]], launch, memory, replay, command: str, batches: str = "",
                 extra_sections: list[str] = ()) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Measured {dt.datetime.now().strftime('%Y-%m-%d %H:%M')} on {platform.node()}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}.",
        f"Command: `{command}` (all figures below come from that one run), with nowcast_db installed "
        f"in {Path(sys.prefix).name!r} ({'an editable' if _editable() else 'a plain'} `pip install`).",
        "",
        "## Messages: floor, durable floor and manager",
        "",
        "Floor: the broker with a responder that answers at once and does no work. Durable floor: the",
        "same broker with the least a Python responder can do and keep every message before answering",
        "(`bench/durable_responder.py`: each message's bytes stored as they came, one row, no parsing,",
        "no index, every waiting message in one commit, SQLite WAL, `synchronous=FULL`). Manager: the",
        "real manager, registered worker, small dict payload, `after_` returning `[]`, every message",
        "recorded (message, run, checklist change, with the history's indexes) and committed (SQLite",
        "WAL, `synchronous=FULL`) before its reply.",
        "",
        "The three systems run at once and their loads alternate, round by round; each figure is the",
        "median of the rounds (messages: all rounds together), share of floor the median of the rounds'",
        "ratios.",
        "",
        "| | clients | messages | messages/s | p50 ms | p99 ms | share of floor |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, run in in_table_order(figures):
        share = f"{run['share']:.0%}" if "share" in run else ""
        lines.append(f"| {kind} | {run['clients']} | {run['messages']} | {run['rate']:.0f} | "
                     f"{run['p50_ms']:.2f} | {run['p99_ms']:.2f} | {share} |")
    lines += cpu_section(figures)
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
    if not args.no_postgresql:
        try:
            import psycopg  # noqa: F401 - the PostgreSQL section's driver
        except ImportError:
            parser.error("the PostgreSQL section needs psycopg: pip install '.[postgresql]' "
                         "(or leave the section out with --no-postgresql)")
    if args.quick:
        args.messages, args.memory_messages, args.launches, args.replay_messages = 300, 2000, 5, 2000
        args.rounds, args.tui_runs, args.tui_messages = 1, 2000, 10_000
    with tempfile.TemporaryDirectory(prefix="nowcast-bench-") as tmp:
        directory = Path(tmp)
        figures = measure_messages(directory, args.messages, args.rounds)
        launch = measure_launch(directory, args.launches)
        memory = measure_memory(directory, args.memory_messages)
    replay = replay_speed.measure(args.replay_messages)
    batches = measure_batches(400 if args.quick else 4000)
    sections = [measure_tui(args.tui_runs, args.tui_messages)]
    if not args.no_postgresql:
        import pg_concurrency  # bench/, beside this file

        sections.append(pg_concurrency.pg_section(messages=100 if args.quick else 1000))
    print(write_report(args.output, figures, launch, memory, replay,
                       "python bench/run.py " + " ".join(sys.argv[1:]), batches, sections))


if __name__ == "__main__":
    main()
