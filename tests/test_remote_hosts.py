"""Launching workers on another host over ssh.

The other host is this machine: the test starts its own OpenSSH server on a
free loopback port with throw-away keys, so the real ssh client, the real
remote shell and the real worker all run.
"""
import getpass
import signal
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import raw_message, wait_until
from nowcast_db.demo import free_ports

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(
    not Path(SSHD).exists() or shutil.which("ssh") is None,
    reason="OpenSSH server not installed (apt-get install openssh-server; .ci/run does it)",
)


@pytest.fixture
def sshd(tmp_path):
    keys = tmp_path / "ssh"
    keys.mkdir()
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
    (keys / "authorized_keys").write_text((keys / "client_key.pub").read_text())
    os.chmod(keys / "authorized_keys", 0o600)
    port = free_ports(1)[0]
    (keys / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host_key'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPidFile {keys / 'sshd.pid'}\n"
        "UsePAM no\nStrictModes no\nPasswordAuthentication no\nPermitRootLogin prohibit-password\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(keys / "sshd_config")],
                              stdout=subprocess.DEVNULL, stderr=open(keys / "sshd.log", "wb"))
    options = ["-o", "HostName=127.0.0.1", "-p", str(port), "-i", str(keys / "client_key"),
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
               "-o", "LogLevel=ERROR", "-l", getpass.getuser()]
    wait_until(lambda: subprocess.run(["ssh", *options, "hpc", "true"], capture_output=True).returncode == 0,
               timeout=20, what="test sshd to accept logins")
    yield options
    server.terminate()
    server.wait(10)


def enable_host(toy, options):
    envvars = toy.directory / "remote_env.sh"
    envvars.write_text(f"export NOWCAST_ENV={sys.prefix}\nexport NOWCAST_LOGS={toy.directory}\n")

    def change(config):
        config["run"] = {"enabled hosts": {"hpc": {
            "envvars": str(envvars), "python": sys.executable, "config file": str(toy.config_file),
            "ssh options": options,
        }}}

    toy.edit_config(change)
    toy.write_next_workers(
        "from nowcast_db import NextWorker\n"
        "def after_sleep(msg, config, checklist):\n"
        "    return [NextWorker('nowcast_db.workers.awaken', host='hpc')] if msg.type == 'success' else []\n"
        "def after_awaken(msg, config, checklist):\n    return []\n"
    )


def test_worker_launched_on_remote_host_over_ssh_runs_and_reports(toy, sshd):
    enable_host(toy, sshd)
    toy.start_system()
    raw_message(toy.workers_port, {"source": "sleep", "type": "success", "payload": None})
    wait_until(lambda: toy.sql("SELECT state, exit_code FROM worker_runs WHERE worker = 'awaken'")
               == [("succeeded", 0)], timeout=30, what="awaken on hpc")
    host, command = toy.sql("SELECT host, json(command) FROM worker_runs WHERE worker = 'awaken'")[0]
    assert host == "hpc"
    assert command.startswith('["ssh"') and "NOWCAST_RUN_ID=" in command
    run_id, output_path = toy.sql("SELECT id, output_path FROM worker_runs WHERE worker = 'awaken'")[0]
    assert toy.sql("SELECT run_id FROM messages WHERE source = 'awaken'") == [(run_id,)]
    # the remote worker's output comes back over ssh into the run's output file on the manager's host
    wait_until(lambda: "INFO [awaken]" in Path(output_path).read_text(), what="remote output captured")


def test_failed_ssh_launch_is_recorded_as_failed_with_the_reason(toy, sshd):
    bad_key = [option if not option.endswith("client_key") else "/nonexistent/key" for option in sshd]
    enable_host(toy, bad_key + ["-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"])
    toy.start_system()
    raw_message(toy.workers_port, {"source": "sleep", "type": "success", "payload": None})
    wait_until(lambda: toy.sql("SELECT state FROM worker_runs WHERE worker = 'awaken'") == [("failed",)],
               timeout=30, what="failed ssh launch")
    exit_code, reason = toy.sql("SELECT exit_code, reason FROM worker_runs WHERE worker = 'awaken'")[0]
    assert exit_code == 255
    assert "ssh to hpc failed (exit status 255)" in reason
    output_path = toy.sql("SELECT output_path FROM worker_runs WHERE worker = 'awaken'")[0][0]
    assert "Permission denied" in wait_until(lambda: Path(output_path).read_text(), what="ssh's own complaint")


def test_remote_worker_started_before_a_manager_restart_is_still_seen_to_die(toy, sshd):
    """The new manager watches the ssh process that runs the remote worker (it ends when the worker does)."""
    enable_host(toy, sshd)
    toy.start_system()
    reply = raw_message(toy.workers_port, {"source": "operator", "type": "launch worker", "payload": {
        "module": "nowcast_db.workers.sleep", "args": ["--sleep-time", "60"], "host": "hpc"}})
    run_id = reply["payload"]["run id"]
    ssh_pid = wait_until(lambda: toy.sql("SELECT pid FROM worker_runs WHERE id = ? AND state = 'running'",
                                         (run_id,)), timeout=30, what="sleep running on hpc")[0][0]
    remote = wait_until(lambda: remote_worker_pids(toy, run_id), what="the worker's process on hpc")
    toy.stop("manager", signal.SIGKILL)
    toy.start_manager()
    assert f"watching run {run_id} of sleep (pid {ssh_pid} on hpc, through its ssh process)" in toy.log("manager")
    for pid in remote:  # the worker dies on the other host without a final message
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: toy.sql("SELECT state FROM worker_runs WHERE id = ?", (run_id,)) == [("died",)],
               timeout=20, what="died recorded by the new manager")


def remote_worker_pids(toy, run_id: int) -> list[int]:
    """The Python processes sshd started for this system's run (not the ssh client
    here, whose command line names the module too)."""
    marks = {f"NOWCAST_RUN_ID={run_id}".encode(), f"NOWCAST_LOGS={toy.directory}".encode()}
    pids = []
    for candidate in Path("/proc").iterdir():
        try:
            argv = (candidate / "cmdline").read_bytes().split(b"\0")
            environ = (candidate / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"nowcast_db.workers.sleep" in argv and Path(argv[0].decode()).name.startswith("python") \
                and marks <= set(environ):
            pids.append(int(candidate.name))
    return pids
