"""The toy system run as real processes: broker, manager and workers on free ports."""
from conftest import wait_until


def test_sleep_then_awaken_both_succeed_and_are_recorded(running_toy):
    toy = running_toy
    result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "received message from manager: (ack) message acknowledged" in result.stdout

    wait_until(lambda: toy.sql("SELECT exit_code FROM worker_runs WHERE worker = 'awaken'") == [(0,)],
               what="awaken run to be reaped")
    runs = toy.sql("SELECT worker, launched_by, state, final_message_type, exit_code, module, triggered_by "
                   "FROM worker_runs ORDER BY id")
    assert runs[0][:5] == ("sleep", "external", "succeeded", "success", None)
    assert runs[1][:6] == ("awaken", "manager", "succeeded", "success", 0, "nowcast_db.workers.awaken")
    sleep_message = toy.sql("SELECT id FROM messages WHERE source = 'sleep' AND type = 'success'")[0][0]
    assert runs[1][6] == sleep_message

    assert toy.sql("SELECT key, json_extract(value, '$.\"sleep time\"') FROM checklist WHERE key = 'sleepyhead'") \
        == [("sleepyhead", 0)]
    assert toy.sql("SELECT key, json(value) FROM checklist WHERE key = 'awake'") == [("awake", '{"awoke":true}')]
    mutations = toy.sql("SELECT key, operation, before, json(after) FROM checklist_mutations ORDER BY id")
    assert mutations == [("sleepyhead", "set", None, '{"sleep time":0}'), ("awake", "set", None, '{"awoke":true}')]
    messages = toy.sql("SELECT source, type, reply_type, run_id, error FROM messages ORDER BY id")
    assert messages == [("sleep", "success", "ack", 1, None), ("awaken", "success", "ack", 2, None)]
    manager_log = toy.log("manager")
    assert "received message from sleep: (success) sleep worker slept well" in manager_log
    assert "checklist updated with [sleepyhead] items from sleep worker" in manager_log
    assert "launching nowcast_db.workers.awaken worker on localhost" in manager_log


def test_checklist_file_is_kept_as_a_view_for_people(running_toy):
    toy = running_toy
    toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
    checklist_file = toy.directory / "nowcast_checklist.yaml"
    wait_until(lambda: "awoke: true" in checklist_file.read_text(), what="checklist file")
    assert "sleep time: 0" in checklist_file.read_text()


def test_debug_worker_sends_nothing(running_toy):
    toy = running_toy
    result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0", "--debug")
    assert result.returncode == 0
    assert "**debug mode** message that would have been sent to manager: (success)" in result.stdout
    assert toy.sql("SELECT count(*) FROM messages") == [(0,)]
