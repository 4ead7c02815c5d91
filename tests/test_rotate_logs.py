"""The rotate_logs worker rolls over the system's log files (real processes)."""
import json
import stat

from conftest import wait_until

FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"
NO_NEXT_WORKERS = "def after_rotate_logs(msg, config, checklist):\n    return []\n"


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def file_handler(path, cls="logging.handlers.RotatingFileHandler", **options) -> dict:
    return {"class": cls, "level": "DEBUG", "formatter": "simple", "filename": str(path), **options}


def test_rotate_logs_rolls_over_the_log_file_and_tells_the_manager(toy, tmp_path):
    log = tmp_path / "nowcast.log"

    def change(config):
        config["logging"]["formatters"]["simple"]["format"] = FORMAT
        config["logging"]["handlers"]["file"] = file_handler(log, backupCount=7)
        config["logging"]["root"]["handlers"].append("file")

    toy.edit_config(change)
    toy.write_next_workers(NO_NEXT_WORKERS)
    toy.start_system()
    log.chmod(0o600)  # rotation must leave the operators' group able to read and write

    result = toy.run_worker("nowcast_db.workers.rotate_logs")
    assert result.returncode == 0, result.stdout + result.stderr

    rolled = tmp_path / "nowcast.log.1"
    assert rolled.exists()
    assert mode(log) == 0o664 and mode(rolled) == 0o664
    assert "[manager] running in process" in rolled.read_text()  # yesterday's lines went with it
    assert f"[rotate_logs] log file rotated: {log} -> {rolled}" in result.stdout

    rows = toy.sql("SELECT json(payload), reply_type FROM messages WHERE source = 'rotate_logs' AND type = 'success'")
    assert [(json.loads(payload), reply) for payload, reply in rows] == [({"log files": [str(log)]}, "ack")]
    assert toy.sql("SELECT json_extract(value, '$.\"log files\"[0]') FROM checklist WHERE key = 'log rotation'") \
        == [(str(log),)]
    # the worker's own later lines, and the manager's (a WatchedFileHandler), go to the new file
    wait_until(lambda: "[manager] received message from rotate_logs: (success)" in log.read_text(),
               what="the manager's line in the new log file")
    assert "[rotate_logs] log files rotated" in log.read_text()
    assert "received message from rotate_logs" not in rolled.read_text()


def test_rotate_logs_rolls_over_the_aggregator_layout_files(toy, tmp_path):
    """In a distributed system the worker publishes its own lines, but rolls over
    the aggregator's files; a timed handler's backup gets a dated name."""
    plain, timed = tmp_path / "nowcast.log", tmp_path / "nowcast.debug.log"
    for path in (plain, timed):
        path.write_text("yesterday\n")

    def change(config):
        config["logging"] = {
            "aggregator": {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"simple": {"format": FORMAT}},
                "handlers": {
                    "info_text": file_handler(plain, backupCount=7),
                    "debug_text": file_handler(timed, cls="logging.handlers.TimedRotatingFileHandler",
                                               when="midnight", backupCount=7),
                },
                "root": {"level": "DEBUG", "handlers": ["info_text", "debug_text"]},
            },
            "publisher": {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"simple": {"format": FORMAT}},
                "handlers": {
                    "console": {"class": "logging.StreamHandler", "level": 100, "formatter": "simple",
                                "stream": "ext://sys.stdout"},
                    "zmq_pub": {"class": "zmq.log.handlers.PUBHandler", "level": "DEBUG"},
                },
                "root": {"level": "DEBUG", "handlers": ["console", "zmq_pub"]},
            },
        }

    toy.edit_config(change)
    result = toy.run_worker("nowcast_db.workers.rotate_logs", "--debug")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "**debug mode** message that would have been sent to manager: (success)" in result.stdout

    assert (tmp_path / "nowcast.log.1").read_text() == "yesterday\n"
    timed_backups = list(tmp_path.glob("nowcast.debug.log.*"))
    assert len(timed_backups) == 1 and timed_backups[0].read_text() == "yesterday\n"
    assert plain.read_text() == timed.read_text() == ""
    for path in (plain, timed, tmp_path / "nowcast.log.1", timed_backups[0]):
        assert mode(path) == 0o664, path


def test_rotate_logs_that_cannot_rotate_reports_failure_in_one_line(toy, tmp_path):
    missing = tmp_path / "no such dir" / "nowcast.log"

    def change(config):
        # the worker itself logs to the console only; the aggregator's file is out of reach
        config["logging"] = {
            "aggregator": {
                "version": 1,
                "handlers": {"info_text": file_handler(missing, backupCount=7)},
                "root": {"handlers": ["info_text"]},
            },
            "publisher": {
                "version": 1,
                "disable_existing_loggers": False,
                "handlers": {"console": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}},
                "root": {"level": "DEBUG", "handlers": ["console"]},
            },
        }

    toy.edit_config(change)
    result = toy.run_worker("nowcast_db.workers.rotate_logs", "--debug")
    assert result.returncode == 1
    assert (f"cannot rotate {missing} (handler 'logging: aggregator: handlers: info_text'): "
            f"No such file or directory") in result.stdout
    assert "failed to rotate log files" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_handler_keeping_no_backups_is_not_reported_as_rotated(toy, tmp_path, monkeypatch):
    log_file = tmp_path / "nobackup.log"
    log_file.write_text("old\n")

    def change(config):
        config["logging"]["handlers"]["no_backups"] = {
            "class": "logging.handlers.RotatingFileHandler", "filename": str(log_file), "backupCount": 0,
            "maxBytes": 1000, "formatter": "simple"}
        config["logging"]["root"]["handlers"].append("no_backups")

    toy.edit_config(change)
    result = toy.run_worker("nowcast_db.workers.rotate_logs", "--debug")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not rotated: its handler 'logging: handlers: no_backups' keeps no backups" in result.stdout
    from nowcast_db.config import Config
    from nowcast_db.workers.rotate_logs import rotate_logs

    for name in ("NOWCAST_ENV", "NOWCAST_LOGS"):
        monkeypatch.setenv(name, toy.env[name])
    assert rotate_logs(None, Config(toy.config_file)) == {"log files": []}
