"""Built-in workers run against the real system, and the manager's SIGHUP reload."""
import signal

from conftest import raw_message, wait_until

NEXT_WORKERS = '''
def after_sleep(msg, config, checklist):
    return []

def after_clear_checklist(msg, config, checklist):
    return []
'''


def test_clear_checklist_logs_then_clears_and_records_each_key(running_toy):
    toy = running_toy
    toy.write_next_workers(NEXT_WORKERS)
    raw_message(toy.workers_port, {"source": "sleep", "type": "success", "payload": {"sleep time": 4}})
    raw_message(toy.workers_port, {"source": "awaken", "type": "success", "payload": {"awoke": True}})
    result = toy.run_worker("nowcast_db.workers.clear_checklist")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "received message from manager: (checklist cleared) system checklist cleared" in result.stdout
    assert toy.sql("SELECT count(*) FROM checklist") == [(0,)]
    cleared = toy.sql("SELECT key, json(before), after FROM checklist_mutations WHERE operation = 'clear' ORDER BY key")
    assert cleared == [("awake", '{"awoke":true}', None), ("sleepyhead", '{"sleep time":4}', None)]
    log = toy.log("manager")
    assert "[checklist] checklist:\n{'awake': {'awoke': True}, 'sleepyhead': {'sleep time': 4}}" in log
    assert toy.sql("SELECT state FROM worker_runs WHERE worker = 'clear_checklist'") == [("succeeded",)]


def test_sighup_reloads_the_registry(running_toy):
    toy = running_toy
    toy.write_next_workers(NEXT_WORKERS + "\ndef after_download(msg, config, checklist):\n    return []\n")
    before = raw_message(toy.workers_port, {"source": "download", "type": "success", "payload": None})
    assert before["type"] == "unregistered worker"

    def register(config):
        config["message registry"]["workers"]["download"] = {"success": "downloaded", "failure": "not downloaded"}

    toy.edit_config(register)
    toy.processes["manager"].send_signal(signal.SIGHUP)
    wait_until(lambda: "config reloaded from" in toy.log("manager"), what="manager reload")
    after = raw_message(toy.workers_port, {"source": "download", "type": "success", "payload": None})
    assert after["type"] == "ack"


def test_sighup_with_a_broken_config_keeps_the_manager_running(running_toy):
    toy = running_toy
    toy.config_file.write_text("zmq: [not, a, mapping\n")
    toy.processes["manager"].send_signal(signal.SIGHUP)
    wait_until(lambda: "config not reloaded, keeping the current one" in toy.log("manager"), what="refused reload")
    reply = raw_message(toy.workers_port, {"source": "sleep", "type": "failure", "payload": None})
    assert reply["type"] == "ack"
