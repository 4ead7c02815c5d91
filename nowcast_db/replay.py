"""Replay: recorded or scripted messages fed through the manager's own
decision core, launching nothing.

Why it exists: the maintainer of a nowcast system changes ``next_workers.py``
and wants to know, before deploying it, what it would have launched for last
month's real traffic (``nowcast replay``), or wants tests of the module that
need no mocks and no running system (scenario files, ``run_scenario``).  Both
call ``nowcast_db.decision.decide``, the very function the live manager calls,
so what replay says is what the manager would have done.

History replay starts from the first recorded message, whatever ``since``
is: the messages before it are decided silently so that the race-condition
holds at ``since`` are exactly those this next workers module would have had;
the checklist at ``since`` is the one recorded then (from
``checklist_mutations``).  A launch is compared under the message whose
``after_`` function decided it (``worker_runs.triggered_by``), so a held
launch released later still lines up with its decision.  Launches of one
message are compared as a collection: their order is not a difference.
"""
from __future__ import annotations

import os
from collections import Counter, defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable


from nowcast_db.config import Config, read_yaml_file
from nowcast_db.decision import Hold, ManagerState, decide
from nowcast_db.errors import ConfigError, NowcastError
from nowcast_db.history import fold_checklist
from nowcast_db.message import Message
from nowcast_db.next_workers import NextWorkersModule

Spec = tuple  # (module, (args...), host): a launch as replay compares it


class ReplayError(NowcastError):
    """Replay cannot start: a bad scenario file, next workers module or database."""


# --- inputs shared by history replay and scenarios ---------------------------

def load_config(config: Config | str | os.PathLike) -> Config:
    return config if isinstance(config, Config) else Config(config)


def load_next_workers(config: Config, name_or_path: str | os.PathLike | None = None) -> tuple[Any, str]:
    """The next workers module to decide with, and where it was loaded from.

    ``name_or_path`` (a dotted module name or a ``.py`` file; a relative path
    is looked for from the current directory, then beside the config file)
    replaces the config's ``next workers module``.  It is loaded afresh on
    every call, so a test that edits the file sees the edit.
    """
    name = os.fspath(name_or_path) if name_or_path is not None else config["message registry"]["next workers module"]
    config_dir = os.path.dirname(os.path.abspath(config.file)) if config.file else None
    is_path = name.endswith(".py") or os.sep in name
    if is_path and name_or_path is not None and Path(name).exists():
        name = str(Path(name).resolve())
    loader = NextWorkersModule(name, config_dir)
    module = loader.get()
    if isinstance(module, ConfigError):
        raise ReplayError(str(module))
    if isinstance(module, OSError):
        raise ReplayError(f"next workers module {module.filename or name}: cannot read it: "
                          f"{module.strerror or module}")
    if isinstance(module, BaseException):
        raise ReplayError(f"next workers module {name} failed to import: {_describe(module)}")
    return module, str(loader.path)


def _describe(err: BaseException) -> str:
    if isinstance(err, SyntaxError) and err.filename:
        return f"SyntaxError: {err.msg} ({err.filename}, line {err.lineno})"
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def spec_of(launch) -> Spec:
    """A launch (decided now, or a recorded worker_runs row) as (module, args, host)."""
    return (launch.module, tuple(str(arg) for arg in (launch.args or ())), launch.host or "localhost")


def describe_launches(specs: Iterable[Spec]) -> str:
    texts = [" ".join([module, *args]) + f" on {host}" for module, args, host in specs]
    return "; ".join(texts) if texts else "(none)"


def spec_as_dict(spec: Spec) -> dict:
    module, args, host = spec
    return {"module": module, "args": list(args), "host": host}


def _same_launches(a: list[Spec], b: list[Spec]) -> bool:
    return Counter(a) == Counter(b)


def _count(number: int, thing: str, things: str | None = None) -> str:
    return f"{number} {thing if number == 1 else things or thing + 's'}"


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "?"


# --- history replay: the pure core --------------------------------------------

@dataclass
class Comparison:
    """One recorded message: the launches it decides now beside those it decided then."""

    message: Any  # a recorded messages row: id, message_id, received_at, source, type, reply_type
    now: list[Spec] = field(default_factory=list)
    then: list[Spec] = field(default_factory=list)
    reply_now: str | None = None  # None: decided before --since, compared for held launches only
    error_now: str | None = None

    @property
    def in_window(self) -> bool:
        return self.reply_now is not None

    @property
    def matches(self) -> bool:
        same_reply = self.reply_now is None or self.reply_now == self.message.reply_type
        return same_reply and _same_launches(self.now, self.then)

    def report(self) -> str:
        m = self.message
        lines = [f"message {m.id} at {_when(m.received_at)} from {m.source} ({m.type}):",
                 f"  launches now:  {describe_launches(self.now)}",
                 f"  launches then: {describe_launches(self.then)}"]
        if not self.in_window:
            lines[0] += " decided before --since; its held launches were released after it"
        elif self.reply_now != m.reply_type:
            lines.append(f"  reply now:  {self.reply_now}" + (f": {self.error_now}" if self.error_now else ""))
            lines.append(f"  reply then: {m.reply_type}")
        return "\n".join(lines)

    def as_json(self) -> dict:
        m = self.message
        return {
            "message": m.id, "message id": m.message_id, "received at": m.received_at.isoformat(),
            "source": m.source, "type": m.type, "matches": self.matches,
            "launches now": [spec_as_dict(s) for s in self.now],
            "launches then": [spec_as_dict(s) for s in self.then],
            "reply now": self.reply_now, "reply then": m.reply_type, "error now": self.error_now,
        }


@dataclass
class ReplayResult:
    comparisons: list[Comparison]
    earlier: int  # messages decided silently before --since
    start_checklist: dict
    start_holds: tuple[Hold, ...]
    end_holds: tuple[Hold, ...]
    unattributed: list[Any] = field(default_factory=list)  # recorded launches whose message is gone
    since: Any = None
    until: Any = None
    next_workers: str = ""
    database: str = ""

    @property
    def replayed(self) -> int:
        return sum(1 for c in self.comparisons if c.in_window)

    @property
    def differing(self) -> list[Comparison]:
        return [c for c in self.comparisons if not c.matches]

    @property
    def ok(self) -> bool:
        return not self.differing

    def summary(self) -> str:
        differing = len(self.differing)
        compared = len(self.comparisons)
        text = f"replayed {_count(self.replayed, 'message')}: {compared - differing} matching, {differing} differing"
        extra = compared - self.replayed
        if extra:
            text += (f" (counting {_count(extra, 'earlier message')} whose held launches "
                     f"were released in the window)")
        return text

    def start(self) -> str:
        since = f"from {self.since.isoformat()}" if self.since else "from the start of the history"
        until = f" to {self.until.isoformat()}" if self.until else ""
        held = sum(len(hold.launches) for hold in self.start_holds)
        state = (f"starting checklist as recorded then ({_count(len(self.start_checklist), 'key')})"
                 if self.since else "starting with an empty checklist")
        if self.earlier:
            state += (f", race-condition holds from deciding {_count(self.earlier, 'earlier message')} "
                      f"with this module ({_count(held, 'launch', 'launches')} held)")
        return f"replay {since}{until} of {self.database} with next workers {self.next_workers}: {state}"

    def report(self) -> str:
        parts = [self.start()]
        parts += [c.report() for c in self.differing]
        if self.unattributed:
            parts.append(f"not compared: recorded launches whose message is not in the history "
                         f"(worker_runs {', '.join(str(r.id) for r in self.unattributed)})")
        if self.end_holds:
            held = sum(len(hold.launches) for hold in self.end_holds)
            waiting = sorted(set().union(*(hold.waiting_for for hold in self.end_holds)))
            parts.append(f"at the end {_count(held, 'launch', 'launches')} held, waiting for {', '.join(waiting)}")
        parts.append(self.summary())
        return "\n".join(parts)

    def as_json(self) -> dict:
        return {
            "ok": self.ok, "replayed": self.replayed, "matching": len(self.comparisons) - len(self.differing),
            "differing": len(self.differing), "database": self.database, "next workers": self.next_workers,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "earlier messages decided": self.earlier,
            "starting checklist keys": sorted(map(str, self.start_checklist)),
            "starting holds": [hold.as_dict() for hold in self.start_holds],
            "holds at the end": [hold.as_dict() for hold in self.end_holds],
            "unattributed launches": [r.id for r in self.unattributed],
            "differences": [c.as_json() for c in self.differing],
        }


def replay_recorded(messages: Iterable, launches: Iterable, registry: dict, next_workers: Any, config: Any = None,
                    *, since=None, start_checklist: dict | None = None, resets: Iterable = ()) -> ReplayResult:
    """Decide recorded messages again and compare with the recorded launches.

    ``messages``: recorded worker messages in id order, from the first one
    (rows with id, message_id, received_at, source, type, payload,
    reply_type).  ``launches``: the manager's recorded launches made between
    ``since`` and the last message (rows with triggered_by, module, args,
    host).  ``start_checklist``: the checklist recorded at ``since``.
    ``resets``: checklist keys cleared without a message (rows with at, key:
    a manager started with --ignore-checklist), applied where they happened.
    No I/O: everything comes in as arguments.
    """
    resets = list(resets)
    state = ManagerState()
    by_message_id: dict[str, Any] = {}
    by_pk: dict[int, Any] = {}
    comparisons: dict[int, Comparison] = {}
    now_by_decider: dict[str, list[Spec]] = defaultdict(list)
    earlier, start = 0, None
    for row in messages:
        while resets and resets[0].at < row.received_at:
            cleared = resets.pop(0).key
            state = replace(state, checklist={k: v for k, v in state.checklist.items() if k != cleared})
        in_window = since is None or row.received_at >= since
        if in_window and start is None:
            if start_checklist is not None:
                state = replace(state, checklist=dict(start_checklist))
            start = state
        by_message_id[row.message_id] = by_pk[row.id] = row
        decision = decide(state, Message(row.source, row.type, row.payload, id=row.message_id),
                          registry, next_workers, config)
        state = decision.state
        if not in_window:
            earlier += 1
            continue
        comparisons[row.id] = Comparison(row, reply_now=decision.reply.type, error_now=decision.error)
        for launch in decision.launches:
            now_by_decider[launch.decided_by or row.message_id].append(spec_of(launch))
    if start is None:  # nothing in the window
        start = replace(state, checklist=dict(start_checklist)) if start_checklist is not None else state

    def comparison_for(row) -> Comparison:
        if row.id not in comparisons:
            comparisons[row.id] = Comparison(row)
        return comparisons[row.id]

    for message_id, specs in now_by_decider.items():
        comparison_for(by_message_id[message_id]).now.extend(specs)
    unattributed = []
    for run in launches:
        if run.triggered_by in by_pk:
            comparison_for(by_pk[run.triggered_by]).then.append(spec_of(run))
        else:
            unattributed.append(run)
    return ReplayResult(
        comparisons=[comparisons[pk] for pk in sorted(comparisons)], earlier=earlier,
        start_checklist=start.checklist, start_holds=start.holds, end_holds=state.holds,
        unattributed=unattributed, since=since,
    )


def replay_history(config: Config | str | os.PathLike, url: str | None = None, since=None, until=None,
                   next_workers: str | os.PathLike | None = None, progress=None) -> ReplayResult:
    """Replay a system's recorded history (its database, or ``url``).
    ``progress``: a nowcast_db.progress.Progress, counting the messages decided."""
    from nowcast_db.database import database_url
    from nowcast_db.database import queries

    config = load_config(config)
    module, where = load_next_workers(config, next_workers)
    url = url or database_url(config)
    engine = queries.open_history(url)
    try:
        messages = queries.worker_messages(engine, until)
        launches = queries.manager_launches(engine, since, until)
        resets = queries.checklist_mutations(engine, through=until, without_message=True)
        start = fold_checklist(queries.checklist_mutations(engine, before=since)) if since is not None else None
        database = engine.url.render_as_string(hide_password=True)
    finally:
        engine.dispose()
    with progress.stage("messages", len(messages)) if progress is not None else nullcontext() as stage:
        result = replay_recorded(stage.track(messages) if stage else messages, launches,
                                 config["message registry"], module, config, since=since, start_checklist=start,
                                 resets=[r for r in resets if r.operation == "clear"])
    result.until, result.next_workers, result.database = until, where, database
    return result


# --- scenarios ------------------------------------------------------------------

STEP_KEYS = ("source", "type", "payload", "expect launches", "expect checklist", "expect reply")
LAUNCH_KEYS = ("module", "args", "host")


@dataclass
class ScenarioStep:
    """One message of a scenario file and what is expected of it (None: not checked)."""

    number: int
    source: str
    type: str
    payload: Any = None
    expect_launches: list[Spec] | None = None
    expect_checklist: dict | None = None
    expect_reply: str | None = None


@dataclass
class StepResult:
    step: ScenarioStep
    launches: list[Spec]
    checklist: dict
    reply: Message
    error: str | None
    problems: list[str]

    def report(self) -> str:
        step = self.step
        return "\n".join([f"item {step.number}, {step.source} ({step.type}):",
                          *(f"  {problem}" for problem in self.problems)])

    def as_json(self) -> dict:
        return {"item": self.step.number, "source": self.step.source, "type": self.step.type,
                "ok": not self.problems, "problems": self.problems, "reply": self.reply.type,
                "error": self.error, "launches": [spec_as_dict(s) for s in self.launches]}


@dataclass
class ScenarioResult:
    name: str
    steps: list[StepResult]
    next_workers: str

    @property
    def failures(self) -> list[StepResult]:
        return [result for result in self.steps if result.problems]

    @property
    def ok(self) -> bool:
        return not self.failures

    def report(self) -> str:
        failed = len(self.failures)
        head = f"{self.name}: {_count(len(self.steps), 'message')} through next workers {self.next_workers}: "
        if not failed:
            return head + "all as expected"
        return "\n".join([head + f"{len(self.steps) - failed} as expected, {failed} not",
                          *(result.report() for result in self.failures)])

    def as_json(self) -> dict:
        return {"ok": self.ok, "scenario": self.name, "next workers": self.next_workers,
                "messages": len(self.steps), "failed": len(self.failures),
                "items": [result.as_json() for result in self.steps]}


def load_scenario(scenario: str | os.PathLike | list, name: str | None = None) -> tuple[str, list[ScenarioStep]]:
    """Read and check a scenario: a YAML file, or its list of items already loaded.

    Each item is ``{source, type, payload, expect launches, expect
    checklist, expect reply}``; every error names the file and the item.
    """
    if isinstance(scenario, list):
        name = name or "scenario"
        items = scenario
    else:
        name = name or os.fspath(scenario)
        items = read_yaml_file(scenario, "scenario file", ReplayError)
    if not isinstance(items, list) or not items:
        raise ReplayError(f"{name}: expected a YAML list of messages (source, type, payload), got {_kind(items)}")
    return name, [_step(name, number, item) for number, item in enumerate(items, start=1)]


def _kind(value: Any) -> str:
    if value is None or value == []:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _step(name: str, number: int, item: Any) -> ScenarioStep:
    def bad(what: str) -> ReplayError:
        return ReplayError(f"{name}: item {number}: {what}")

    if not isinstance(item, dict):
        raise bad(f"expected a mapping with source, type and payload, got {_kind(item)}")
    unknown = [key for key in item if key not in STEP_KEYS]
    if unknown:
        raise bad(f"unknown key {unknown[0]!r} (expected {', '.join(STEP_KEYS)})")
    for key in ("source", "type"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise bad(f"'{key}' must be a string, got {_kind(item.get(key))}")
    launches = None
    if "expect launches" in item:  # present and empty (or null) expects no launch at all
        given = item["expect launches"] or []
        if not isinstance(given, list):
            raise bad(f"'expect launches' must be a list of {{module, args, host}}, got {_kind(given)}")
        launches = [_expected_launch(bad, index, launch) for index, launch in enumerate(given, start=1)]
    checklist = item.get("expect checklist")
    if checklist is not None and not isinstance(checklist, dict):
        raise bad(f"'expect checklist' must be a mapping of checklist keys to values, got {_kind(checklist)}")
    reply_type = item.get("expect reply")
    if reply_type is not None and not isinstance(reply_type, str):
        raise bad(f"'expect reply' must be a reply type such as ack, got {_kind(reply_type)}")
    return ScenarioStep(number, item["source"], item["type"], item.get("payload"), launches, checklist, reply_type)


def _expected_launch(bad, index: int, launch: Any) -> Spec:
    where = f"'expect launches' entry {index}"
    if not isinstance(launch, dict):
        raise bad(f"{where} must be a mapping with module, args and host, got {_kind(launch)}")
    unknown = [key for key in launch if key not in LAUNCH_KEYS]
    if unknown:
        raise bad(f"{where}: unknown key {unknown[0]!r} (expected module, args, host)")
    module, args, host = launch.get("module"), launch.get("args") or [], launch.get("host") or "localhost"
    if not isinstance(module, str) or not module:
        raise bad(f"{where}: 'module' must be a dotted module name, got {_kind(module)}")
    if not isinstance(args, list) or any(isinstance(arg, (dict, list)) for arg in args):
        raise bad(f"{where}: 'args' must be a list of strings, got {_kind(args)}")
    if not isinstance(host, str):
        raise bad(f"{where}: 'host' must be a host name, got {_kind(host)}")
    return (module, tuple(str(arg) for arg in args), host)


def run_scenario(config: Config | str | os.PathLike, scenario: str | os.PathLike | list,
                 next_workers: str | os.PathLike | None = None, checklist: dict | None = None) -> ScenarioResult:
    """Feed a scenario's messages through the decision core and check each
    one's expectations; launch nothing.  For a system's own tests::

        result = run_scenario("nowcast.yaml", "scenarios/daily.yaml", next_workers="next_workers.py")
        assert result.ok, result.report()

    ``checklist`` is the checklist to start from (default: empty).  A message
    the manager would answer with an error fails unless its item says
    ``expect reply:``.  Only the checklist keys an item lists are checked.
    """
    config = load_config(config)
    name, steps = load_scenario(scenario)
    module, where = load_next_workers(config, next_workers)
    registry = config["message registry"]
    state = ManagerState(checklist=dict(checklist or {}))
    results = []
    for step in steps:
        msg = Message(step.source, step.type, step.payload, id=f"scenario item {step.number}")
        decision = decide(state, msg, registry, module, config)
        state = decision.state
        launches = [spec_of(launch) for launch in decision.launches]
        results.append(StepResult(step, launches, state.checklist, decision.reply, decision.error,
                                  _problems(step, launches, state.checklist, decision)))
    return ScenarioResult(name, results, where)


_MISSING = object()


def _problems(step: ScenarioStep, launches: list[Spec], checklist: dict, decision) -> list[str]:
    problems = []
    if step.expect_reply is not None and decision.reply.type != step.expect_reply:
        problems.append(f"expected reply {step.expect_reply}, the manager would reply {decision.reply.type}"
                        + (f": {decision.error}" if decision.error else ""))
    elif step.expect_reply is None and decision.error:
        problems.append(f"the manager would reply {decision.reply.type}: {decision.error}")
    if step.expect_launches is not None and not _same_launches(step.expect_launches, launches):
        problems.append(f"expected launches: {describe_launches(step.expect_launches)}")
        problems.append(f"decided launches:  {describe_launches(launches)}")
    for key, expected in (step.expect_checklist or {}).items():
        actual = checklist.get(key, _MISSING)
        if actual is _MISSING:
            problems.append(f"expected checklist[{key!r}] = {expected!r}; the checklist has no such key")
        elif actual != expected:
            problems.append(f"expected checklist[{key!r}] = {expected!r}, it is {actual!r}")
    return problems
