"""One manager per history database: a second one is refused with a message
naming the holder; a manager killed with SIGKILL leaves no lock behind."""
import signal
import subprocess
import sys

import pg

from conftest import wait_until


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


def test_second_manager_on_the_same_postgresql_database_is_refused(toy):
    pg.skip_unless_available()
    with pg.fresh_database("nowcast_lock") as url:
        toy.edit_config(lambda config: config.update({"database url": url}))
        first = toy.start("manager")
        wait_until(lambda: "connected to" in toy.log("manager") or first.poll() is not None, timeout=30,
                   what="first manager running")
        assert first.poll() is None, toy.log("manager")
        second = subprocess.run([sys.executable, "-m", "nowcast_db.manager", str(toy.config_file)],
                                cwd=toy.directory, env=toy.env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert "another manager is recording into this history database (server process" in second.stderr
        assert second.stderr.count("\n") == 1
        toy.stop("manager", signal.SIGKILL)
        restarted = toy.start("manager")
        wait_until(lambda: toy.log("manager").count("connected to") >= 2 or restarted.poll() is not None,
                   timeout=30, what="manager restarted after SIGKILL")
        assert restarted.poll() is None, toy.log("manager")
        toy.stop("manager")
