"""Unit tests for the pure decision core (nowcast_db.decision): no I/O at all.

The registry is built like the toy system's ``message registry`` section; the
next workers module is faked with ``types.SimpleNamespace`` holding
``after_<worker>`` functions.
"""
from __future__ import annotations

import collections
import copy
import json
import logging
import random
import types

import pytest

from nowcast_db import NextWorker
from nowcast_db.decision import (
    EXTRA_REPLY_TYPES,
    Decision,
    Hold,
    Launch,
    ManagerState,
    Mutation,
    decide,
)
from nowcast_db.message import Message

MANAGER_REPLIES = {
    "ack": "message acknowledged",
    "checklist cleared": "system checklist cleared",
    "unregistered worker": "ERROR - message received from unregistered worker",
    "unregistered message type": "ERROR - unregistered message type received from worker",
    "no after_worker function": "ERROR - after_worker function not found in next_workers module",
}


def _worker_entry(key):
    entry = {"success": f"{key} ok", "failure": f"{key} failed", "crash": f"{key} crashed"}
    if key is not None:
        entry["checklist key"] = key
    return entry


REGISTRY = {
    "manager": MANAGER_REPLIES,
    "next workers module": "next_workers",
    "workers": {
        "sleep": {**_worker_entry("sleepyhead"), "need": "sleep worker needs a checklist item"},
        "awaken": _worker_entry("awake"),
        "clear_checklist": {
            **_worker_entry("checklist clearing"),
            "clear checklist": "request that manager clear system checklist",
        },
        # racers and bystanders for the race-condition tests
        "a": _worker_entry("a key"),
        "b": _worker_entry("b key"),
        "c": _worker_entry("c key"),
        "d": _worker_entry("d key"),
        # a worker that sends payloads but has no checklist key
        "nokey": {"success": "ok", "failure": "failed", "crash": "crashed"},
        # a registered worker with no message types at all
        "empty": None,
    },
}

_ids = iter(range(1, 10**9))


def msg(source, msg_type, payload=None):
    return Message(source, msg_type, payload, id=f"m{next(_ids)}")


def nw(module, args=None, host="localhost"):
    return NextWorker(module, args=list(args or []), host=host)


def modules(launches):
    return [launch.module for launch in launches]


def fake_next_workers(**after_functions):
    return types.SimpleNamespace(**after_functions)


def nothing_next(msg, config, checklist):
    return []


def assert_untouched(before: ManagerState, decision: Decision):
    assert decision.state == before
    assert decision.mutations == []
    assert decision.launches == []


# --------------------------------------------------------------------------
# registry checks


def test_unregistered_worker_gets_reply_and_no_state_change():
    state = ManagerState(checklist={"sleepyhead": {"x": 1}}, holds=(Hold(frozenset({"a"}), (Launch("p.w.x"),)),))
    called = []
    next_workers = fake_next_workers(after_stranger=lambda *args: called.append(args) or [nw("p.w.y")])

    decision = decide(state, msg("stranger", "success", {"x": 2}), REGISTRY, next_workers)

    assert decision.reply.source == "manager"
    assert decision.reply.type == "unregistered worker"
    assert "stranger" in decision.reply.payload
    assert_untouched(state, decision)
    assert decision.error
    assert called == []


def test_unregistered_message_type_gets_reply_and_no_state_change():
    state = ManagerState(checklist={"sleepyhead": {"x": 1}})
    called = []
    next_workers = fake_next_workers(after_sleep=lambda *args: called.append(args) or [nw("p.w.y")])

    # "clear checklist" is registered for clear_checklist, not for sleep
    decision = decide(state, msg("sleep", "clear checklist"), REGISTRY, next_workers)

    assert decision.reply.source == "manager"
    assert decision.reply.type == "unregistered message type"
    assert "sleep" in decision.reply.payload and "clear checklist" in decision.reply.payload
    assert_untouched(state, decision)
    assert decision.state.checklist == {"sleepyhead": {"x": 1}}
    assert called == []


def test_registered_worker_without_message_types_rejects_every_type():
    state = ManagerState()
    decision = decide(state, msg("empty", "success"), REGISTRY, fake_next_workers())
    assert decision.reply.type == "unregistered message type"
    assert_untouched(state, decision)


def test_error_reply_types_are_in_manager_registry_or_documented_extras():
    """Every reply the core produces is either a registry `manager` type or a documented extra."""
    state = ManagerState(checklist={"sleepyhead": 1})

    def boom(msg, config, checklist):
        raise RuntimeError("bug")

    cases = [
        (msg("stranger", "success"), fake_next_workers()),
        (msg("sleep", "bogus"), fake_next_workers()),
        (msg("sleep", "need", "nope"), fake_next_workers()),
        (msg("sleep", "success"), fake_next_workers()),
        (msg("sleep", "success"), fake_next_workers(after_sleep=boom)),
        (msg("sleep", "success"), ImportError("broken")),
        (msg("sleep", "success"), fake_next_workers(after_sleep=nothing_next)),
        (msg("clear_checklist", "clear checklist"), fake_next_workers()),
    ]
    for message, next_workers in cases:
        reply_type = decide(state, message, REGISTRY, next_workers).reply.type
        assert reply_type in MANAGER_REPLIES or reply_type in EXTRA_REPLY_TYPES, reply_type


# --------------------------------------------------------------------------
# need


def test_need_replies_ack_with_checklist_value_as_payload():
    value = {"run date": "2024-03-05", "files": ["a.nc", "b.nc"]}
    state = ManagerState(checklist={"sleepyhead": value, "awake": True})

    decision = decide(state, msg("sleep", "need", "sleepyhead"), REGISTRY, fake_next_workers())

    assert decision.reply == Message("manager", "ack", value)
    assert_untouched(state, decision)


def test_need_reply_payload_is_independent_of_the_state():
    state = ManagerState(checklist={"sleepyhead": {"files": ["a.nc"]}})
    decision = decide(state, msg("sleep", "need", "sleepyhead"), REGISTRY, fake_next_workers())
    decision.reply.payload["files"].append("evil.nc")
    assert state.checklist == {"sleepyhead": {"files": ["a.nc"]}}


def test_need_does_not_call_after_function():
    called = []
    state = ManagerState(checklist={"sleepyhead": 1})
    next_workers = fake_next_workers(after_sleep=lambda *args: called.append(args) or [nw("p.w.y")])
    decision = decide(state, msg("sleep", "need", "sleepyhead"), REGISTRY, next_workers)
    assert decision.launches == []
    assert called == []


def test_need_for_missing_key_replies_checklist_key_not_found():
    state = ManagerState(checklist={"sleepyhead": 1})
    decision = decide(state, msg("sleep", "need", "no such key"), REGISTRY, fake_next_workers())
    assert decision.reply.source == "manager"
    assert decision.reply.type == "checklist key not found"
    assert "no such key" in decision.reply.payload
    assert_untouched(state, decision)


def test_need_with_unhashable_payload_replies_checklist_key_not_found():
    state = ManagerState(checklist={"sleepyhead": 1})
    decision = decide(state, msg("sleep", "need", ["a", "list"]), REGISTRY, fake_next_workers())
    assert decision.reply.type == "checklist key not found"
    assert_untouched(state, decision)


# --------------------------------------------------------------------------
# clear checklist


def test_clear_checklist_empties_checklist_and_replies_checklist_cleared():
    checklist = {"sleepyhead": {"slept": 5}, "awake": True, "log rotation": ["a.log"]}
    state = ManagerState(checklist=copy.deepcopy(checklist))

    decision = decide(state, msg("clear_checklist", "clear checklist"), REGISTRY, fake_next_workers())

    assert decision.reply == Message("manager", "checklist cleared")
    assert decision.state.checklist == {}
    assert decision.launches == []
    # the old state object is not changed
    assert state.checklist == checklist


def test_clear_checklist_records_one_clear_mutation_per_key():
    checklist = {"sleepyhead": {"slept": 5}, "awake": True, "log rotation": ["a.log"]}
    state = ManagerState(checklist=checklist)

    decision = decide(state, msg("clear_checklist", "clear checklist"), REGISTRY, fake_next_workers())

    assert sorted(decision.mutations, key=lambda m: m.key) == sorted(
        [Mutation(key, "clear", value, None) for key, value in checklist.items()], key=lambda m: m.key
    )


def test_clear_checklist_writes_checklist_to_checklist_logger():
    state = ManagerState(checklist={"sleepyhead": {"slept": 5}, "awake": "yes indeed"})

    decision = decide(state, msg("clear_checklist", "clear checklist"), REGISTRY, fake_next_workers())

    checklist_lines = [(level, text) for level, logger, text in decision.log if logger == "checklist"]
    assert len(checklist_lines) == 1
    level, text = checklist_lines[0]
    assert level == logging.INFO
    assert "sleepyhead" in text and "slept" in text and "yes indeed" in text


def test_clear_checklist_of_empty_checklist_has_no_mutations():
    decision = decide(ManagerState(), msg("clear_checklist", "clear checklist"), REGISTRY, fake_next_workers())
    assert decision.reply.type == "checklist cleared"
    assert decision.mutations == []
    assert decision.state.checklist == {}


def test_clear_checklist_keeps_pending_holds():
    hold = Hold(frozenset({"a"}), (Launch("p.w.x"),))
    state = ManagerState(checklist={"awake": 1}, holds=(hold,))
    decision = decide(state, msg("clear_checklist", "clear checklist"), REGISTRY, fake_next_workers())
    assert decision.state.holds == (hold,)


# --------------------------------------------------------------------------
# checklist updates


def report(state, source, msg_type, payload, next_workers=None):
    next_workers = next_workers or fake_next_workers(**{f"after_{source}": nothing_next})
    return decide(state, msg(source, msg_type, payload), REGISTRY, next_workers)


def test_dict_payload_updates_existing_dict_value():
    state = ManagerState(checklist={"sleepyhead": {"a": 1, "b": 2}})

    decision = report(state, "sleep", "success", {"b": 20, "c": 30})

    assert decision.state.checklist == {"sleepyhead": {"a": 1, "b": 20, "c": 30}}
    assert decision.mutations == [Mutation("sleepyhead", "update", {"a": 1, "b": 2}, {"a": 1, "b": 20, "c": 30})]
    assert decision.reply == Message("manager", "ack")
    # the old state is untouched: decide is pure
    assert state.checklist == {"sleepyhead": {"a": 1, "b": 2}}


@pytest.mark.parametrize(
    "old, new",
    [
        ({"a": 1}, ["x"]),       # dict replaced by list
        (["x"], {"a": 1}),       # list replaced by dict
        ("text", "other text"),  # scalar replaced by scalar
        ({"a": 1}, 5),           # dict replaced by scalar
    ],
)
def test_non_dict_payload_or_value_replaces_existing_value(old, new):
    state = ManagerState(checklist={"sleepyhead": old, "awake": True})

    decision = report(state, "sleep", "success", new)

    assert decision.state.checklist == {"sleepyhead": new, "awake": True}
    assert decision.mutations == [Mutation("sleepyhead", "replace", old, new)]


def test_existing_none_value_is_replaced_not_set():
    state = ManagerState(checklist={"sleepyhead": None})
    decision = report(state, "sleep", "success", {"a": 1})
    assert decision.state.checklist == {"sleepyhead": {"a": 1}}
    assert decision.mutations == [Mutation("sleepyhead", "replace", None, {"a": 1})]


def test_payload_for_new_key_sets_it():
    state = ManagerState(checklist={"awake": True})

    decision = report(state, "sleep", "success", {"slept": 5})

    assert decision.state.checklist == {"awake": True, "sleepyhead": {"slept": 5}}
    assert decision.mutations == [Mutation("sleepyhead", "set", None, {"slept": 5})]


@pytest.mark.parametrize("msg_type", ["success", "failure", "crash"])
def test_none_payload_makes_no_mutation(msg_type):
    state = ManagerState(checklist={"sleepyhead": {"a": 1}})

    decision = report(state, "sleep", msg_type, None)

    assert decision.state.checklist == {"sleepyhead": {"a": 1}}
    assert decision.mutations == []
    assert decision.reply.type == "ack"


def test_falsy_non_none_payload_is_still_stored():
    state = ManagerState(checklist={"sleepyhead": {"a": 1}})
    decision = report(state, "sleep", "success", {})
    assert decision.mutations == [Mutation("sleepyhead", "update", {"a": 1}, {"a": 1})]
    decision = report(ManagerState(), "sleep", "success", 0)
    assert decision.state.checklist == {"sleepyhead": 0}
    assert decision.mutations == [Mutation("sleepyhead", "set", None, 0)]


def test_payload_from_worker_without_checklist_key_makes_no_mutation():
    state = ManagerState(checklist={"awake": True})

    decision = report(state, "nokey", "success", {"something": 1})

    assert decision.state.checklist == {"awake": True}
    assert decision.mutations == []
    assert decision.reply.type == "ack"
    assert any(level == logging.WARNING for level, _, _ in decision.log)


# --------------------------------------------------------------------------
# after_ functions


def test_report_calls_after_function_with_message_config_and_checklist():
    seen = []
    config = object()

    def after_sleep(message, cfg, checklist):
        seen.append((message, cfg, checklist))
        return [NextWorker("nowcast_db.workers.awaken")]

    state = ManagerState(checklist={"awake": True})
    message = msg("sleep", "success", {"slept": 5})
    decision = decide(state, message, REGISTRY, fake_next_workers(after_sleep=after_sleep), config)

    assert seen == [(message, config, {"awake": True, "sleepyhead": {"slept": 5}})]
    assert seen[0][1] is config
    assert decision.reply == Message("manager", "ack")
    assert decision.launches == [Launch("nowcast_db.workers.awaken")]
    assert decision.launches[0].decided_by == message.id


def test_missing_after_function_replies_no_after_worker_function():
    state = ManagerState()

    decision = decide(state, msg("sleep", "success", {"slept": 1}), REGISTRY, fake_next_workers(after_awaken=nothing_next))

    assert decision.reply.source == "manager"
    assert decision.reply.type == "no after_worker function"
    assert "after_sleep" in decision.reply.payload
    assert decision.launches == []
    assert decision.error
    # the checklist update is still applied, as in NEMO_Nowcast
    assert decision.state.checklist == {"sleepyhead": {"slept": 1}}


def test_after_function_raising_replies_failed_and_keeps_checklist_update():
    def after_sleep(message, config, checklist):
        raise KeyError("oops")

    state = ManagerState(checklist={"sleepyhead": {"a": 1}})

    decision = decide(state, msg("sleep", "success", {"b": 2}), REGISTRY, fake_next_workers(after_sleep=after_sleep))

    assert decision.reply.type == "after_worker function failed"
    assert "after_sleep" in decision.reply.payload and "KeyError" in decision.reply.payload
    assert "\n" not in decision.reply.payload
    assert decision.launches == []
    assert decision.state.checklist == {"sleepyhead": {"a": 1, "b": 2}}
    assert decision.mutations == [Mutation("sleepyhead", "update", {"a": 1}, {"a": 1, "b": 2})]
    # the traceback goes to the log
    assert any("Traceback" in text for _, _, text in decision.log)


@pytest.mark.parametrize(
    "error",
    [
        SyntaxError("invalid syntax", ("next_workers.py", 3, 5, "def after_sleep(\n")),
        ImportError("No module named 'next_workers'"),
        NameError("name 'NextWorker' is not defined"),
    ],
)
def test_next_workers_module_given_as_exception_replies_module_failed(error):
    state = ManagerState(checklist={"sleepyhead": {"a": 1}})

    decision = decide(state, msg("sleep", "success", {"b": 2}), REGISTRY, error)

    assert decision.reply.source == "manager"
    assert decision.reply.type == "next workers module failed"
    assert type(error).__name__ in decision.reply.payload
    assert decision.launches == []
    assert decision.error
    assert decision.state.checklist == {"sleepyhead": {"a": 1, "b": 2}}


def test_next_workers_syntax_error_reply_names_file_and_line():
    error = SyntaxError("invalid syntax", ("/sys/next_workers.py", 12, 5, "def after_sleep(\n"))
    decision = decide(ManagerState(), msg("sleep", "success"), REGISTRY, error)
    assert "/sys/next_workers.py" in decision.reply.payload
    assert "12" in decision.reply.payload


@pytest.mark.parametrize(
    "result",
    [
        NextWorker("p.w.x"),            # a bare NextWorker, not in a list
        {"module": "p.w.x"},            # a dict
        "p.w.x",                        # a string
        42,
        ([nw("p.w.x")], {"a"}, "extra"),  # a tuple of three
    ],
    ids=["bare-nextworker", "dict", "string", "int", "3-tuple"],
)
def test_after_function_returning_non_list_replies_after_worker_function_failed(result):
    state = ManagerState()
    decision = decide(state, msg("sleep", "success"), REGISTRY, fake_next_workers(after_sleep=lambda *a: result))
    assert decision.reply.type == "after_worker function failed"
    assert decision.launches == []
    assert decision.state.holds == ()


@pytest.mark.parametrize(
    "item",
    [
        "nowcast_db.workers.awaken",
        {"module": "p.w.x", "args": [], "host": "localhost"},
        types.SimpleNamespace(module="p.w.x", args=[]),          # no host
        types.SimpleNamespace(module="p.w.x", host="localhost"),  # no args
        types.SimpleNamespace(args=[], host="localhost"),         # no module
        types.SimpleNamespace(module="", args=[], host="localhost"),
        types.SimpleNamespace(module="p.w.x", args="06", host="localhost"),  # args a string
    ],
    ids=["string", "dict", "no-host", "no-args", "no-module", "empty-module", "string-args"],
)
def test_after_function_returning_objects_without_module_args_host_fails(item):
    good = nw("p.w.good")
    decision = decide(ManagerState(), msg("sleep", "success"), REGISTRY,
                      fake_next_workers(after_sleep=lambda *a: [good, item]))
    assert decision.reply.type == "after_worker function failed"
    # nothing at all is launched, not even the valid item
    assert decision.launches == []


def test_after_function_may_return_any_object_with_module_args_host():
    Worker = collections.namedtuple("Worker", "module args host")

    class Plain:
        def __init__(self):
            self.module, self.args, self.host = "sys.workers.plain", ("x", 1.5), "remote"

    def after_sleep(message, config, checklist):
        return [Worker("sys.workers.make_plots", [6, "2.5km", 2024], "localhost"), Plain()]

    decision = decide(ManagerState(), msg("sleep", "success"), REGISTRY, fake_next_workers(after_sleep=after_sleep))

    assert decision.reply.type == "ack"
    assert decision.launches == [
        Launch("sys.workers.make_plots", ("6", "2.5km", "2024"), "localhost"),
        Launch("sys.workers.plain", ("x", "1.5"), "remote"),
    ]
    assert all(isinstance(arg, str) for launch in decision.launches for arg in launch.args)


def test_next_worker_defaults_become_localhost_launch_without_args():
    decision = decide(ManagerState(), msg("sleep", "success"), REGISTRY,
                      fake_next_workers(after_sleep=lambda *a: [NextWorker("p.w.x")]))
    assert decision.launches == [Launch("p.w.x", (), "localhost")]
    assert decision.launches[0].worker == "x"


def test_after_function_returning_empty_list_launches_nothing():
    decision = decide(ManagerState(), msg("sleep", "failure"), REGISTRY, fake_next_workers(after_sleep=nothing_next))
    assert decision.reply == Message("manager", "ack")
    assert decision.launches == []


def test_after_function_receives_copy_of_checklist():
    original = {"sleepyhead": {"files": ["a.nc"]}, "awake": True}

    def after_sleep(message, config, checklist):
        checklist["awake"] = False
        checklist["sleepyhead"]["files"].append("evil.nc")
        checklist["new"] = 1
        return []

    state = ManagerState(checklist=copy.deepcopy(original))
    decision = decide(state, msg("sleep", "success"), REGISTRY, fake_next_workers(after_sleep=after_sleep))

    assert decision.state.checklist == original
    assert state.checklist == original
    assert decision.mutations == []


def test_launches_keep_order_returned_by_after_function():
    order = [nw(f"p.w.w{i}", [str(i)]) for i in range(5)]
    decision = decide(ManagerState(), msg("sleep", "success"), REGISTRY,
                      fake_next_workers(after_sleep=lambda *a: list(order)))
    assert modules(decision.launches) == [f"p.w.w{i}" for i in range(5)]


# --------------------------------------------------------------------------
# race-condition holds


class Script:
    """A fake next workers module whose after_ functions return queued results."""

    def __init__(self):
        self.queued: dict[str, list] = collections.defaultdict(list)

    def then(self, worker, result):
        self.queued[worker].append(result)
        return self

    def __getattr__(self, name):
        if not name.startswith("after_"):
            raise AttributeError(name)
        worker = name[len("after_"):]

        def after(message, config, checklist):
            queue = self.queued[worker]
            return queue.pop(0) if queue else []

        return after


def feed(state, script, *reports):
    decisions = []
    for source, msg_type in reports:
        decision = decide(state, msg(source, msg_type), REGISTRY, script)
        assert decision.reply.type == "ack", decision.reply
        decisions.append(decision)
        state = decision.state
    return state, decisions


def test_hold_started_by_tuple_holds_the_launches():
    script = Script().then("sleep", ([nw("p.w.x"), nw("p.w.y")], {"a", "b"}))

    state, [decision] = feed(ManagerState(), script, ("sleep", "success"))

    assert decision.launches == []
    assert decision.reply == Message("manager", "ack")
    assert len(state.holds) == 1
    assert state.holds[0].waiting_for == {"a", "b"}
    assert modules(state.holds[0].launches) == ["p.w.x", "p.w.y"]


def test_hold_released_only_after_all_racers_report_with_their_launches_in_order():
    script = (
        Script()
        .then("sleep", ([nw("p.w.held1"), nw("p.w.held2")], {"a", "b"}))
        .then("b", [nw("p.w.from_b")])
        .then("a", [nw("p.w.from_a1"), nw("p.w.from_a2")])
    )

    state, decisions = feed(ManagerState(), script, ("sleep", "success"), ("b", "success"), ("a", "success"))

    assert [d.launches for d in decisions[:2]] == [[], []]
    assert state.holds == ()
    assert modules(decisions[2].launches) == ["p.w.held1", "p.w.held2", "p.w.from_b", "p.w.from_a1", "p.w.from_a2"]


def test_hold_pending_after_first_racer_reports():
    script = Script().then("sleep", ([nw("p.w.held")], {"a", "b"})).then("a", [nw("p.w.from_a")])
    state, decisions = feed(ManagerState(), script, ("sleep", "success"), ("a", "success"))
    assert decisions[1].launches == []
    assert len(state.holds) == 1
    assert state.holds[0].waiting_for == {"b"}
    assert modules(state.holds[0].launches) == ["p.w.held", "p.w.from_a"]


@pytest.mark.parametrize("racer_outcome", ["failure", "crash"])
def test_racer_finishing_with_failure_or_crash_still_counts(racer_outcome):
    script = Script().then("sleep", ([nw("p.w.held")], {"a", "b"})).then("b", [nw("p.w.from_b")])

    state, decisions = feed(ManagerState(), script, ("sleep", "success"), ("a", racer_outcome), ("b", "success"))

    assert decisions[1].launches == []
    assert modules(decisions[2].launches) == ["p.w.held", "p.w.from_b"]
    assert state.holds == ()


def test_racer_reporting_twice_does_not_release_hold_for_other_racer():
    script = Script().then("sleep", ([nw("p.w.held")], {"a", "b"}))
    state, decisions = feed(ManagerState(), script, ("sleep", "success"), ("a", "success"), ("a", "success"))
    assert [d.launches for d in decisions] == [[], [], []]
    assert state.holds[0].waiting_for == {"b"}


def test_need_from_racer_does_not_count_as_report():
    script = Script().then("awaken", ([nw("p.w.held")], {"sleep"}))
    state, _ = feed(ManagerState(checklist={"awake": 1}), script, ("awaken", "success"))
    assert state.holds[0].waiting_for == {"sleep"}

    decision = decide(state, msg("sleep", "need", "awake"), REGISTRY, script)

    assert decision.reply.type == "ack"
    assert decision.state.holds == state.holds
    assert decision.launches == []


def test_rejected_message_from_racer_does_not_count_as_report():
    script = Script().then("awaken", ([nw("p.w.held")], {"sleep"}))
    state, _ = feed(ManagerState(), script, ("awaken", "success"))
    decision = decide(state, msg("sleep", "bogus type"), REGISTRY, script)
    assert decision.reply.type == "unregistered message type"
    assert decision.state.holds == state.holds
    assert decision.launches == []


def test_activating_worker_in_its_own_set_counts_immediately():
    script = Script().then("sleep", ([nw("p.w.held")], {"sleep", "a"}))

    state, decisions = feed(ManagerState(), script, ("sleep", "success"))
    assert decisions[0].launches == []
    assert state.holds[0].waiting_for == {"a"}

    state, decisions = feed(state, script, ("a", "success"))
    assert modules(decisions[0].launches) == ["p.w.held"]
    assert state.holds == ()


def test_activating_worker_alone_in_its_own_set_launches_immediately():
    script = Script().then("sleep", ([nw("p.w.held")], {"sleep"}))
    state, [decision] = feed(ManagerState(), script, ("sleep", "success"))
    assert modules(decision.launches) == ["p.w.held"]
    assert state.holds == ()


def test_race_set_given_as_string_is_rejected_not_split_into_characters():
    """`return next_workers, "make_plots"` is a mistake in a next_workers module: it
    must be reported, not turned into a hold waiting for workers "m", "a", "k", ...
    that never report (which would hold the launches for ever)."""
    script = Script().then("sleep", ([nw("p.w.x")], "awaken"))

    decision = decide(ManagerState(), msg("sleep", "success"), REGISTRY, script)

    assert decision.reply.type == "after_worker function failed"
    assert decision.state.holds == ()


@pytest.mark.parametrize("empty", [set(), frozenset(), [], None], ids=["set", "frozenset", "list", "None"])
def test_empty_race_set_starts_no_hold_and_launches_immediately(empty):
    script = Script().then("sleep", ([nw("p.w.x"), nw("p.w.y")], empty))
    state, [decision] = feed(ManagerState(), script, ("sleep", "success"))
    assert modules(decision.launches) == ["p.w.x", "p.w.y"]
    assert state.holds == ()


def test_hold_with_empty_launch_list_still_waits_and_collects_racer_launches():
    script = Script().then("sleep", ([], {"a", "b"})).then("a", [nw("p.w.from_a")])
    state, decisions = feed(ManagerState(), script, ("sleep", "success"), ("a", "success"), ("b", "success"))
    assert [modules(d.launches) for d in decisions] == [[], [], ["p.w.from_a"]]
    assert state.holds == ()


def test_launches_of_worker_not_in_any_hold_go_out_while_hold_pending():
    script = Script().then("sleep", ([nw("p.w.held")], {"a", "b"})).then("d", [nw("p.w.free")])

    state, decisions = feed(ManagerState(), script, ("sleep", "success"), ("d", "success"))

    assert modules(decisions[1].launches) == ["p.w.free"]
    assert len(state.holds) == 1
    assert state.holds[0].waiting_for == {"a", "b"}
    assert modules(state.holds[0].launches) == ["p.w.held"]


def test_two_pending_holds_report_counts_for_every_hold_naming_worker():
    script = (
        Script()
        .then("sleep", ([nw("p.w.h1")], {"a", "b"}))
        .then("awaken", ([nw("p.w.h2")], {"b", "c"}))
    )
    state, decisions = feed(ManagerState(), script, ("sleep", "success"), ("awaken", "success"), ("b", "success"))

    assert [d.launches for d in decisions] == [[], [], []]
    assert [hold.waiting_for for hold in state.holds] == [{"a"}, {"c"}]


def test_two_pending_holds_no_launch_dropped_or_duplicated():
    script = (
        Script()
        .then("sleep", ([nw("p.w.h1a"), nw("p.w.h1b")], {"a", "b"}))
        .then("awaken", ([nw("p.w.h2")], {"b", "c"}))
        .then("b", [nw("p.w.from_b")])
        .then("d", [nw("p.w.free")])
        .then("c", [nw("p.w.from_c")])
        .then("a", [nw("p.w.from_a")])
    )
    reports = [("sleep", "success"), ("awaken", "success"), ("b", "success"), ("d", "success"),
               ("c", "failure"), ("a", "crash")]

    state, decisions = feed(ManagerState(), script, *reports)

    per_report = [modules(d.launches) for d in decisions]
    assert per_report == [
        [],
        [],
        [],                              # b counts for both holds; its launch joins the oldest
        ["p.w.free"],                    # d is in no hold
        ["p.w.h2", "p.w.from_c"],        # second hold complete
        ["p.w.h1a", "p.w.h1b", "p.w.from_b", "p.w.from_a"],  # first hold complete
    ]
    launched = collections.Counter(m for ms in per_report for m in ms)
    assert launched == collections.Counter(
        ["p.w.h1a", "p.w.h1b", "p.w.h2", "p.w.from_b", "p.w.free", "p.w.from_c", "p.w.from_a"]
    )
    assert set(launched.values()) == {1}
    assert state.holds == ()


def test_new_hold_started_by_racer_counts_racer_for_existing_hold():
    script = (
        Script()
        .then("sleep", ([nw("p.w.h1")], {"a", "b"}))
        .then("a", ([nw("p.w.h2")], {"c"}))
    )
    state, decisions = feed(ManagerState(), script, ("sleep", "success"), ("a", "success"))
    assert decisions[1].launches == []
    assert [hold.waiting_for for hold in state.holds] == [{"b"}, {"c"}]

    state, decisions = feed(state, script, ("b", "success"), ("c", "success"))
    assert [modules(d.launches) for d in decisions] == [["p.w.h1"], ["p.w.h2"]]
    assert state.holds == ()


@pytest.mark.parametrize("seed", range(25))
def test_random_hold_sequences_never_drop_or_duplicate_launches(seed):
    """Conservation: every launch an after_ function returns goes out exactly once
    by the time every hold is complete, however holds overlap."""
    rng = random.Random(seed)
    workers = ["sleep", "awaken", "a", "b", "c", "d"]
    counter = iter(range(10**6))
    returned: list[str] = []
    draining = False

    def make_after(worker):
        def after(message, config, checklist):
            launches = [nw(f"p.w.{worker}_{next(counter)}") for _ in range(rng.randint(0, 3))]
            returned.extend(launch.module for launch in launches)
            if not draining and rng.random() < 0.4:
                return launches, set(rng.sample(workers, rng.randint(0, 3)))
            return launches
        return after

    next_workers = fake_next_workers(**{f"after_{w}": make_after(w) for w in workers})
    state = ManagerState()
    launched: list[str] = []
    for _ in range(40):
        decision = decide(state, msg(rng.choice(workers), rng.choice(["success", "failure", "crash"])),
                          REGISTRY, next_workers)
        state = decision.state
        launched.extend(modules(decision.launches))
        held = [launch.module for hold in state.holds for launch in hold.launches]
        assert collections.Counter(launched) + collections.Counter(held) == collections.Counter(returned)

    draining = True
    for worker in workers:
        decision = decide(state, msg(worker, "success"), REGISTRY, next_workers)
        state = decision.state
        launched.extend(modules(decision.launches))

    assert state.holds == ()
    assert collections.Counter(launched) == collections.Counter(returned)
    assert len(set(launched)) == len(launched)


def test_after_function_failure_leaves_pending_holds_unchanged():
    hold = Hold(frozenset({"a", "b"}), (Launch("p.w.held"),))
    state = ManagerState(holds=(hold,))

    def after_d(message, config, checklist):
        raise RuntimeError("bug")

    decision = decide(state, msg("d", "success"), REGISTRY, fake_next_workers(after_d=after_d))
    assert decision.reply.type == "after_worker function failed"
    assert decision.state.holds == (hold,)
    assert decision.launches == []


def test_decide_does_not_mutate_input_state_holds():
    hold = Hold(frozenset({"a", "b"}), (Launch("p.w.held"),))
    state = ManagerState(holds=(hold,))
    script = Script().then("a", [nw("p.w.from_a")])
    before = copy.deepcopy(state)
    decide(state, msg("a", "success"), REGISTRY, script)
    assert state == before
    assert state.holds[0].waiting_for == {"a", "b"}


# --------------------------------------------------------------------------
# Hold / Launch serialization


def test_launch_as_dict_from_dict_round_trip():
    launch = Launch("sys.workers.run_model", ("nowcast", "06"), "arbutus", decided_by="abc123")
    data = launch.as_dict()
    assert data == {"module": "sys.workers.run_model", "args": ["nowcast", "06"], "host": "arbutus",
                    "decided by": "abc123"}
    again = Launch.from_dict(json.loads(json.dumps(data)))
    assert again == launch
    assert again.decided_by == "abc123"
    assert again.args == ("nowcast", "06")


def test_launch_from_minimal_dict_uses_defaults():
    launch = Launch.from_dict({"module": "p.w.x"})
    assert launch == Launch("p.w.x", (), "localhost")
    assert launch.decided_by is None


def test_hold_as_dict_from_dict_round_trip():
    hold = Hold(
        frozenset({"b", "a", "c"}),
        (Launch("p.w.x", ("1",), "localhost", "m1"), Launch("p.w.y", (), "remote", None)),
        started_by="m0",
    )
    data = hold.as_dict()
    assert data["waiting for"] == ["a", "b", "c"]
    assert data["started by"] == "m0"
    again = Hold.from_dict(json.loads(json.dumps(data)))
    assert again == hold
    assert [launch.decided_by for launch in again.launches] == ["m1", None]
    assert [launch.host for launch in again.launches] == ["localhost", "remote"]


def test_hold_started_by_records_message_id():
    script = Script().then("sleep", ([nw("p.w.x")], {"a"}))
    message = msg("sleep", "success")
    decision = decide(ManagerState(), message, REGISTRY, script)
    assert decision.state.holds[0].started_by == message.id
    assert Hold.from_dict(decision.state.holds[0].as_dict()) == decision.state.holds[0]
