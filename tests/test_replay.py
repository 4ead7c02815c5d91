"""`nowcast replay`: recorded toy-system history and scenario files fed through
the manager's decision core, with real processes recording the history."""
import datetime as dt
import json
import subprocess
import sys
import textwrap

import yaml

import pytest

from conftest import both_backends, raw_message, wait_until
from nowcast_db.replay import ReplayError, run_scenario

NOWCAST = [sys.executable, "-m", "nowcast_db.cli"]

AWAKEN = {"module": "nowcast_db.workers.awaken", "args": [], "host": "localhost"}


def nowcast(toy, *args, timeout=120):
    return subprocess.run([*NOWCAST, *args], capture_output=True, text=True, cwd=toy.directory, env=toy.env,
                          timeout=timeout)


def replay(toy, *args):
    return nowcast(toy, "replay", str(toy.config_file), *args)


def one_line_error(result, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("nowcast: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def run_sleep_and_wait_for_awaken(toy, awaken_runs: int = 1):
    result = toy.run_worker("nowcast_db.workers.sleep", "--sleep-time", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_until(lambda: toy.sql("SELECT count(*) FROM worker_runs WHERE worker = 'awaken' AND exit_code = 0")
               == [(awaken_runs,)], what="awaken run to be reaped")


@pytest.fixture
def recorded_toy(running_toy):
    """A real toy-system history: sleep → awaken, a checklist clearing, sleep → awaken again; then stopped."""
    toy = running_toy
    run_sleep_and_wait_for_awaken(toy)
    cleared = toy.run_worker("nowcast_db.workers.clear_checklist")
    assert cleared.returncode == 0, cleared.stdout + cleared.stderr
    run_sleep_and_wait_for_awaken(toy, awaken_runs=2)
    toy.stop_all()
    return toy


@pytest.fixture
def in_process(toy, monkeypatch):
    """The toy system for the in-process API: its config's environment variables set here too."""
    for name in ("NOWCAST_ENV", "NOWCAST_LOGS", "NOWCAST_YAML"):
        monkeypatch.setenv(name, toy.env[name])
    return toy


def sleep_messages(toy):
    return toy.sql("SELECT id, received_at FROM messages WHERE source = 'sleep' AND type = 'success' ORDER BY id")


# --- replaying recorded history ---------------------------------------------------

@both_backends
def test_replay_of_a_recorded_toy_run_matches(recorded_toy):
    messages = recorded_toy.sql("SELECT count(*) FROM messages")[0][0]
    assert messages == 6  # sleep, awaken, clear checklist, clear_checklist success, sleep, awaken
    # the toy module has no after_clear_checklist: that error reply is part of the history, and replays the same
    assert recorded_toy.sql("SELECT reply_type FROM messages WHERE source = 'clear_checklist' "
                            "AND type = 'success'") == [("no after_worker function",)]
    result = replay(recorded_toy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "replayed 6 messages: 6 matching, 0 differing" in result.stdout
    assert "launches now" not in result.stdout


@both_backends
def test_replay_with_changed_next_workers_names_the_message_and_both_launch_lists(recorded_toy):
    changed = recorded_toy.directory / "changed_next_workers.py"
    changed.write_text((recorded_toy.directory / "next_workers.py").read_text().replace(
        '"success": [NextWorker("nowcast_db.workers.awaken")]', '"success": []'))
    first, second = sleep_messages(recorded_toy)
    result = replay(recorded_toy, "--next-workers", str(changed))
    assert result.returncode == 1, result.stdout + result.stderr
    for message_pk, received_at in (first, second):
        when = received_at[:19]
        assert (f"message {message_pk} at {when} UTC from sleep (success):\n"
                f"  launches now:  (none)\n"
                f"  launches then: nowcast_db.workers.awaken on localhost\n") in result.stdout
    assert "replayed 6 messages: 4 matching, 2 differing" in result.stdout

    as_json = replay(recorded_toy, "--next-workers", str(changed), "--json")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert (report["ok"], report["replayed"], report["matching"], report["differing"]) == (False, 6, 4, 2)
    difference = report["differences"][0]
    assert (difference["message"], difference["source"], difference["type"]) == (first[0], "sleep", "success")
    assert difference["launches now"] == [] and difference["launches then"] == [AWAKEN]
    assert difference["reply now"] == difference["reply then"] == "ack"


@both_backends
def test_replay_since_and_until_choose_the_messages_compared(recorded_toy):
    changed = recorded_toy.directory / "changed.py"
    changed.write_text((recorded_toy.directory / "next_workers.py").read_text().replace(
        '"success": [NextWorker("nowcast_db.workers.awaken")]', '"success": []'))
    first, second = sleep_messages(recorded_toy)
    # from just after the first sleep report: only the second differs, the rest is decided silently first
    since = (dt.datetime.fromisoformat(first[1]) + dt.timedelta(microseconds=1)).isoformat()
    result = replay(recorded_toy, "--next-workers", str(changed), "--since", since, "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert [d["message"] for d in report["differences"]] == [second[0]]
    assert report["earlier messages decided"] == 1 and report["replayed"] == 5
    assert report["starting checklist keys"] == ["sleepyhead"]
    # up to just before the second sleep report: only the first differs
    until = (dt.datetime.fromisoformat(second[1]) - dt.timedelta(microseconds=1)).isoformat() + "+00:00"
    result = replay(recorded_toy, "--next-workers", str(changed), "--until", until, "--json")
    report = json.loads(result.stdout)
    assert [d["message"] for d in report["differences"]] == [first[0]] and report["replayed"] == 4
    # a window with no sleep report in it matches
    result = replay(recorded_toy, "--next-workers", str(changed), "--since", since, "--until", until)
    assert result.returncode == 0, result.stdout
    assert "replayed 3 messages: 3 matching, 0 differing" in result.stdout


CHECKLIST_DEPENDENT = '''
from nowcast_db import NextWorker


def after_sleep(msg, config, checklist):
    # awaken only when nothing is awake yet: the decision depends on the checklist
    if msg.type == "success" and "awake" not in checklist:
        return [NextWorker("nowcast_db.workers.awaken")]
    return []


def after_awaken(msg, config, checklist):
    return []
'''


@both_backends
def test_replay_follows_a_manager_restart_with_ignore_checklist(toy):
    """The checklist emptied by --ignore-checklist (no message caused it) is
    emptied at the same point in the replay, so a checklist-dependent
    decision after the restart replays the same."""
    toy.write_next_workers(CHECKLIST_DEPENDENT)
    toy.start_system()
    run_sleep_and_wait_for_awaken(toy)
    toy.stop("manager")
    toy.start_manager("--ignore-checklist")
    run_sleep_and_wait_for_awaken(toy, awaken_runs=2)
    toy.stop_all()
    assert toy.sql("SELECT count(*) FROM checklist_mutations WHERE message_id IS NULL") == [(2,)]
    result = replay(toy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "replayed 4 messages: 4 matching, 0 differing" in result.stdout


RACE = '''
from nowcast_db import NextWorker


def after_sleep(msg, config, checklist):
    # hold awaken until rotate_logs has reported
    return [NextWorker("nowcast_db.workers.awaken")], {"rotate_logs"}


def after_rotate_logs(msg, config, checklist):
    return []


def after_awaken(msg, config, checklist):
    return []
'''


@both_backends
def test_held_launch_is_compared_under_the_message_that_decided_it(toy):
    toy.write_next_workers(RACE)
    toy.start_system()
    assert raw_message(toy.workers_port, {"source": "sleep", "type": "success",
                                          "payload": {"sleep time": 0}})["type"] == "ack"
    assert toy.sql("SELECT count(*) FROM worker_runs WHERE worker = 'awaken'") == [(0,)]  # held
    assert raw_message(toy.workers_port, {"source": "rotate_logs", "type": "success",
                                          "payload": {"log files": []}})["type"] == "ack"
    wait_until(lambda: toy.sql("SELECT count(*) FROM worker_runs WHERE worker = 'awaken' AND exit_code = 0")
               == [(1,)], what="released awaken run")
    toy.stop_all()
    sleep_pk, sleep_at = sleep_messages(toy)[0]
    rotate_at = toy.sql("SELECT received_at FROM messages WHERE source = 'rotate_logs'")[0][0]
    assert toy.sql("SELECT triggered_by, launched_at FROM worker_runs WHERE worker = 'awaken'") \
        == [(sleep_pk, rotate_at)]

    assert replay(toy).returncode == 0
    # from between the hold and its release: the hold comes from deciding the earlier message silently
    between = (dt.datetime.fromisoformat(sleep_at) + dt.timedelta(microseconds=1)).isoformat()
    result = replay(toy, "--since", between)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 launch held" in result.stdout
    # a module without the hold launches awaken before the window: the release in it is missing now
    no_race = toy.directory / "no_race.py"
    no_race.write_text(RACE.replace(', {"rotate_logs"}', ""))
    result = replay(toy, "--since", between, "--next-workers", str(no_race))
    assert result.returncode == 1, result.stdout + result.stderr
    assert (f"message {sleep_pk} at {sleep_at[:19]} UTC from sleep (success): decided before --since; "
            f"its held launches were released after it\n"
            f"  launches now:  (none)\n"
            f"  launches then: nowcast_db.workers.awaken on localhost") in result.stdout


def test_after_function_that_now_fails_is_a_difference_even_without_launches(recorded_toy):
    broken = recorded_toy.directory / "broken_awaken.py"
    broken.write_text((recorded_toy.directory / "next_workers.py").read_text()
                      + "\n\ndef after_awaken(msg, config, checklist):\n    return checklist['no such key']\n")
    result = replay(recorded_toy, "--next-workers", str(broken))
    assert result.returncode == 1
    assert "  reply now:  after_worker function failed: after_awaken failed: KeyError: 'no such key'" \
        in result.stdout
    assert "  reply then: ack" in result.stdout


def test_replay_errors_are_one_line_with_status_2(recorded_toy, tmp_path):
    toy = recorded_toy
    (toy.directory / "syntax_error.py").write_text("def after_sleep(:\n")
    one_line_error(replay(toy, "--next-workers", str(toy.directory / "syntax_error.py")),
                   "next workers module", "syntax_error.py failed to import: SyntaxError")
    (toy.directory / "raises.py").write_text("import no_such_package_here\n")
    one_line_error(replay(toy, "--next-workers", "raises.py"),
                   "raises.py failed to import: ModuleNotFoundError: No module named 'no_such_package_here'")
    one_line_error(replay(toy, "--next-workers", "no.such.module"), "'no.such.module' not found")
    one_line_error(replay(toy, "--since", "last tuesday"), "--since", "ISO 8601", "'last tuesday'")
    one_line_error(replay(toy, "--until", "2026-13-45"), "--until", "'2026-13-45'")
    one_line_error(replay(toy, "--since", "2026-11-29", "--until", "2026-11-28"), "before --since")
    one_line_error(replay(toy, "--db", f"sqlite:///{tmp_path / 'none.sqlite'}"),
                   f"{tmp_path / 'none.sqlite'}: no history database there")
    (tmp_path / "junk.sqlite").write_text("not a database")
    one_line_error(replay(toy, "--db", f"sqlite:///{tmp_path / 'junk.sqlite'}"), "cannot read the history database")
    one_line_error(nowcast(toy, "replay", str(tmp_path / "missing.yaml")), "missing.yaml: cannot read config file")
    nothing_written = toy.sql("SELECT count(*) FROM messages")
    assert nothing_written == [(6,)]


# --- scenario files ----------------------------------------------------------------

SCENARIO = """\
- source: sleep
  type: success
  payload: {sleep time: 2}
  expect launches:
    - module: nowcast_db.workers.awaken
      args: []
      host: localhost
  expect checklist:
    sleepyhead: {sleep time: 2}
- source: awaken
  type: success
  payload: {awoke: true}
  expect launches: []
  expect checklist:
    awake: {awoke: true}
    sleepyhead: {sleep time: 2}
- source: sleep
  type: failure
  expect launches: []
"""


def test_scenario_with_expectations_passes_from_the_command_line(toy):
    scenario = toy.directory / "scenario.yaml"
    scenario.write_text(SCENARIO)
    result = replay(toy, "--scenario", str(scenario))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{scenario}: 3 messages through next workers {toy.directory / 'next_workers.py'}: all as expected" \
        in result.stdout
    assert json.loads(replay(toy, "--scenario", str(scenario), "--json").stdout)["ok"] is True
    assert not toy.db_path.exists()  # nothing sent, nothing recorded: not even a database was made


def test_wrong_expectation_fails_with_a_clear_report(toy):
    scenario = toy.directory / "scenario.yaml"
    scenario.write_text(SCENARIO.replace("module: nowcast_db.workers.awaken", "module: nowcast_db.workers.sleep")
                        .replace("awake: {awoke: true}", "awake: {awoke: false}"))
    result = replay(toy, "--scenario", str(scenario))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{scenario}: 3 messages through next workers" in result.stdout and "1 as expected, 2 not" in result.stdout
    assert ("item 1, sleep (success):\n"
            "  expected launches: nowcast_db.workers.sleep on localhost\n"
            "  decided launches:  nowcast_db.workers.awaken on localhost\n") in result.stdout
    assert ("item 2, awaken (success):\n"
            "  expected checklist['awake'] = {'awoke': False}, it is {'awoke': True}") in result.stdout
    report = json.loads(replay(toy, "--scenario", str(scenario), "--json").stdout)
    assert [item["ok"] for item in report["items"]] == [False, False, True]


def test_scenario_api_for_a_systems_own_tests(in_process):
    toy = in_process
    (toy.directory / "race.py").write_text(RACE)
    scenario = [
        {"source": "sleep", "type": "success", "payload": {"sleep time": 1}, "expect launches": []},
        {"source": "rotate_logs", "type": "success", "payload": {"log files": []}, "expect launches": [AWAKEN]},
    ]
    result = run_scenario(str(toy.config_file), scenario, next_workers=str(toy.directory / "race.py"))
    assert result.ok, result.report()
    # the same file edited between runs is loaded afresh
    (toy.directory / "race.py").write_text(RACE.replace(', {"rotate_logs"}', ""))
    result = run_scenario(str(toy.config_file), scenario, next_workers=str(toy.directory / "race.py"))
    assert not result.ok
    assert [step.step.number for step in result.failures] == [1, 2]
    assert "expected launches: (none)" in result.report()


def test_scenario_item_the_manager_would_refuse_fails_unless_expected(in_process):
    toy = in_process
    scenario = toy.directory / "refused.yaml"
    scenario.write_text("- {source: sleep, type: nap}\n"
                        "- {source: sleep, type: nap, expect reply: unregistered message type}\n")
    result = run_scenario(toy.config_file, scenario)
    assert [step.step.number for step in result.failures] == [1]
    assert "the manager would reply unregistered message type: unregistered message type received from " \
           "sleep worker: nap" in result.report()


@pytest.mark.parametrize("text, error", [
    ("- source: sleep\n  type: success\n- [not, a, mapping]\n",
     "item 2: expected a mapping with source, type and payload, got a list"),
    ("- {source: sleep}\n", "item 1: 'type' must be a string, got nothing"),
    ("- {source: sleep, type: success, expect launch: []}\n", "item 1: unknown key 'expect launch'"),
    ("- {source: sleep, type: success}\n- {source: sleep, type: success, expect launches: nowcast_db.workers.x}\n",
     "item 2: 'expect launches' must be a list of {module, args, host}"),
    ("- {source: sleep, type: success, expect launches: [{args: [a]}]}\n",
     "item 1: 'expect launches' entry 1: 'module' must be a dotted module name, got nothing"),
    ("- {source: sleep, type: success, expect checklist: [1]}\n", "item 1: 'expect checklist' must be a mapping"),
    ("source: sleep\n", "expected a YAML list of messages (source, type, payload), got a mapping"),
    ("- {source: sleep\n", "not valid YAML at line 2"),
])
def test_bad_scenario_file_is_a_one_line_error_naming_file_and_item(in_process, text, error):
    toy = in_process
    scenario = toy.directory / "bad.yaml"
    scenario.write_text(text)
    one_line_error(replay(toy, "--scenario", str(scenario)), f"{scenario}: {error}")
    with pytest.raises(ReplayError, match="bad.yaml"):
        run_scenario(toy.config_file, scenario)


def test_scenario_errors_outside_the_file_are_one_line(toy):
    one_line_error(replay(toy, "--scenario", str(toy.directory / "absent.yaml")),
                   "absent.yaml: cannot read scenario file")
    scenario = toy.directory / "scenario.yaml"
    scenario.write_text(SCENARIO)
    one_line_error(replay(toy, "--scenario", str(scenario), "--since", "2026-11-29"),
                   "--since: not used with --scenario")
    (toy.directory / "broken.py").write_text(textwrap.dedent("""
        raise RuntimeError("half-edited")
    """))
    one_line_error(replay(toy, "--scenario", str(scenario), "--next-workers", "broken.py"),
                   "broken.py failed to import: RuntimeError: half-edited")


# --- --live -------------------------------------------------------------------

def test_live_scenario_is_sent_to_the_running_system_and_acted_on(running_toy, tmp_path):
    toy = running_toy
    scenario = tmp_path / "staging.yaml"
    scenario.write_text(yaml.safe_dump([{"source": "sleep", "type": "success", "payload": {"sleep time": 9}}]))
    result = subprocess.run([sys.executable, "-m", "nowcast_db.cli", "replay", str(toy.config_file),
                             "--scenario", str(scenario), "--live", "--yes"],
                            capture_output=True, text=True, env=toy.env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "1: (sleep) success -> ack" in result.stdout
    wait_until(lambda: toy.sql("SELECT state FROM worker_runs WHERE worker = 'awaken'") == [("succeeded",)],
               what="awaken launched by the live message")


def test_live_without_yes_and_without_a_terminal_sends_nothing(running_toy, tmp_path):
    toy = running_toy
    scenario = tmp_path / "staging.yaml"
    scenario.write_text(yaml.safe_dump([{"source": "sleep", "type": "failure", "payload": None}]))
    result = subprocess.run([sys.executable, "-m", "nowcast_db.cli", "replay", str(toy.config_file),
                             "--scenario", str(scenario), "--live"], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, env=toy.env, timeout=60)
    assert result.returncode == 2
    assert "refusing to send without confirmation; add --yes" in result.stderr
    assert toy.sql("SELECT count(*) FROM messages") == [(0,)]
