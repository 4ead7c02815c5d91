"""One manager per history database: a second one is refused with a message
naming the holder; a manager killed with SIGKILL leaves no lock behind."""
import signal
import subprocess
import sys

from conftest import only_postgresql


def test_second_manager_on_the_same_database_is_refused_until_the_first_is_gone(running_toy):
    toy = running_toy
    first = toy.processes["manager"]
    second = subprocess.run([sys.executable, "-m", "nowcast_db.manager", str(toy.config_file)], cwd=toy.directory,
                            env=toy.env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 2
    assert second.stderr.strip() == (
        f"manager: error: {toy.db_path}: another manager is recording into this history database "
        f"(manager pid {first.pid} on {__import__('socket').gethostname()}, lock file {toy.db_path}.manager-lock); "
        f"stop it first")
    assert toy.heartbeat_pid() == first.pid  # the first one is undisturbed

    toy.stop("manager", signal.SIGKILL)
    toy.start_manager()  # the lock died with the killed process
    assert toy.heartbeat_pid() == toy.processes["manager"].pid


@only_postgresql
def test_second_manager_on_the_same_postgresql_database_is_refused(toy):
    toy.start_manager()
    second = subprocess.run([sys.executable, "-m", "nowcast_db.manager", str(toy.config_file)],
                            cwd=toy.directory, env=toy.env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 2
    assert "another manager is recording into this history database (server process" in second.stderr
    assert second.stderr.count("\n") == 1
    toy.stop("manager", signal.SIGKILL)
    toy.start_manager()  # the server dropped the killed manager's session, and its lock with it
