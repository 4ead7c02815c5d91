"""Every worker the manager launches has its stdout and stderr captured to a
file of its own, recorded on the run and printed by ``nowcast logs``."""
import os
import subprocess
import sys
from pathlib import Path

from conftest import raw_message, wait_until
from nowcast_db.output_capture import CappedOutput

NOISY_WORKER = '''
import logging
import sys

from nowcast_db import NowcastWorker

logger = logging.getLogger("noisy")


def main():
    worker = NowcastWorker("noisy", description="prints, logs, then crashes or floods")
    worker.init_cli()
    worker.cli.add_argument("--lines", type=int, default=0)
    worker.run(work, lambda args: "success", lambda args: "failure")


def work(parsed_args, config, *args):
    if parsed_args.lines:
        for number in range(parsed_args.lines):
            print(f"line {number} " + "x" * 60)
        return {}
    print("hello from print")
    sys.stderr.write("hello from stderr\\n")
    logger.info("hello from logging")
    raise RuntimeError("boom in the noisy worker")


if __name__ == "__main__":
    main()
'''

NEXT_WORKERS = '''
def after_sleep(msg, config, checklist):
    return []

def after_noisy(msg, config, checklist):
    return []
'''


def add_noisy_worker(toy, **run_output):
    (toy.directory / "noisy.py").write_text(NOISY_WORKER)
    toy.write_next_workers(NEXT_WORKERS)

    def change(config):
        config["message registry"]["workers"]["noisy"] = {
            "checklist key": "noise", "success": "noisy worked", "failure": "noisy failed", "crash": "noisy crashed"}
        if run_output:
            config["run output"] = run_output

    toy.edit_config(change)


def launch(toy, module: str, *args: str) -> int:
    reply = raw_message(toy.workers_port, {"source": "operator", "type": "launch worker",
                                           "payload": {"module": module, "args": list(args)}})
    assert reply["type"] == "ack", reply
    return reply["payload"]["run id"]


def ended(toy, run_id: int) -> tuple:
    rows = wait_until(lambda: toy.sql("SELECT state, output_path FROM worker_runs WHERE id = ? "
                                      "AND state NOT IN ('pending', 'running') AND exit_code IS NOT NULL",
                                      (run_id,)), what=f"run {run_id} to end")
    return rows[0]


def nowcast(toy, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nowcast_db.cli", *args], cwd=toy.directory, env=toy.env,
                          capture_output=True, text=True, timeout=timeout)


def test_print_stderr_logging_and_traceback_are_in_the_runs_file_and_nowcast_logs(toy):
    add_noisy_worker(toy)
    toy.start_system()
    run_id = launch(toy, "noisy")
    state, output_path = ended(toy, run_id)
    assert state == "crashed"
    path = Path(output_path)
    assert path.parent.parent == toy.directory / "runs"  # beside the checklist file by default
    assert path.name == f"noisy-{run_id}.log"
    text = wait_until(lambda: (lambda t: t if "Traceback" in t else None)(path.read_text()),
                      what="the traceback in the output file")
    for expected in ("hello from print", "hello from stderr", "hello from logging",
                     "Traceback (most recent call last)", "RuntimeError: boom in the noisy worker"):
        assert expected in text
    # the manager's own log holds none of it any more
    assert "hello from print" not in toy.log("manager")

    result = nowcast(toy, "logs", str(toy.config_file), str(run_id))
    assert result.returncode == 0, result.stderr
    assert result.stdout == text


def test_output_past_the_cap_is_truncated_with_a_marker_and_keeps_the_end(toy):
    add_noisy_worker(toy, **{"max bytes": 4096})
    toy.start_system()
    run_id = launch(toy, "noisy", "--lines", "20000")
    state, output_path = ended(toy, run_id)
    assert state == "succeeded"
    text = wait_until(lambda: (lambda t: t if "bytes omitted" in t else None)(Path(output_path).read_text()),
                      what="the truncated output's tail")
    head, tail = text.split("\n[nowcast: output truncated after 2048 bytes;", 1)
    assert "INFO [noisy] running in process" in head and "line 0 " in head
    assert "line 19999 " in tail.split("bytes omitted; the last part of the output follows]\n", 1)[1]
    assert "line 10000 " not in text
    assert len(text.encode()) < 4096 + 400  # head + tail + the two markers


def test_follow_prints_while_the_run_is_open_and_stops_when_it_ends(toy):
    toy.start_system()
    run_id = launch(toy, "nowcast_db.workers.sleep", "--sleep-time", "2")
    follow = subprocess.Popen([sys.executable, "-m", "nowcast_db.cli", "logs", str(toy.config_file),
                               str(run_id), "--follow"], cwd=toy.directory, env=toy.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = follow.communicate(timeout=60)
    assert follow.returncode == 0, stderr
    assert "slept for 2 seconds" in stdout
    assert toy.sql("SELECT state FROM worker_runs WHERE id = ?", (run_id,)) == [("succeeded",)]


def test_logs_of_an_external_run_or_unknown_run_say_why_there_is_nothing(running_toy):
    toy = running_toy
    assert toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0").returncode == 0
    run_id = toy.sql("SELECT id FROM worker_runs WHERE launched_by = 'external'")[0][0]
    result = nowcast(toy, "logs", str(toy.config_file), str(run_id))
    assert result.returncode == 1
    assert result.stderr.strip() == (f"nowcast: error: run {run_id} (sleep) was not launched by the manager "
                                     f"(started by hand, cron or NextWorker.launch): its output was not captured")
    result = nowcast(toy, "logs", str(toy.config_file), "999")
    assert result.stderr.strip() == "nowcast: error: run 999: no such run in the history"
    result = nowcast(toy, "logs", str(toy.config_file), "last")
    assert result.stderr.strip() == "nowcast: error: RUN_ID: expected a run id, got 'last'"


def test_bad_run_output_settings_are_config_errors(toy):
    toy.edit_config(lambda config: config.update({"run output": {"max bytes": "lots"}}))
    process = toy.start("manager")
    assert process.wait(30) == 2
    assert "key 'run output: max bytes': expected a whole number of bytes, at least 1024, got" in toy.log("manager")


def test_capped_output_keeps_head_and_tail(tmp_path):
    path = tmp_path / "out.log"
    output = CappedOutput(os.open(path, os.O_WRONLY | os.O_CREAT), 100)
    for number in range(1000):
        output.write(f"{number:04d}\n".encode())
    output.close()
    text = path.read_text()
    head, rest = text.split("\n[nowcast: output truncated after 50 bytes;", 1)
    assert head == "".join(f"{number:04d}\n" for number in range(10))
    omitted_line, tail = rest.split("bytes omitted; the last part of the output follows]\n", 1)
    assert tail == "".join(f"{number:04d}\n" for number in range(990, 1000))
    assert omitted_line.endswith(f"\n[nowcast: {5000 - 50 - 50} ")


def test_capped_output_under_the_cap_is_unchanged(tmp_path):
    path = tmp_path / "out.log"
    output = CappedOutput(os.open(path, os.O_WRONLY | os.O_CREAT), 1000)
    output.write(b"short\n")
    output.close()
    assert path.read_bytes() == b"short\n"


def test_an_output_file_that_cannot_be_written_fails_the_launch_with_the_reason(toy):
    (toy.directory / "not-a-folder").write_text("a file where the runs' folder should be\n")
    toy.edit_config(lambda config: config.update({"run output": {"directory": str(toy.directory / "not-a-folder")}}))
    toy.start_system()
    run_id = launch(toy, "nowcast_db.workers.sleep", "--sleep-time", "0")
    rows = wait_until(lambda: toy.sql("SELECT state, reason, output_path FROM worker_runs WHERE id = ? "
                                      "AND state = 'failed'", (run_id,)), what="the launch to fail")
    state, reason, output_path = rows[0]
    assert reason.startswith(f"cannot write the run output file {toy.directory / 'not-a-folder'}/")
    assert reason.endswith(f"sleep-{run_id}.log: Not a directory")
    assert output_path is None
