"""Group commit: a batch of messages decided in order and recorded in one
transaction.  Driven through ManagerLoop.handle_batch with a real SQLite or
PostgreSQL database (the socket side is covered by the end-to-end tests)."""
import pytest
import yaml

from conftest import both_backends, only_postgresql
from nowcast_db.config import Config
from nowcast_db.database import Store, database_url, make_engine, upgrade
from nowcast_db.manager_loop import ManagerLoop


@pytest.fixture
def loop(toy, monkeypatch):
    monkeypatch.setenv("NOWCAST_LOGS", str(toy.directory))
    monkeypatch.setenv("NOWCAST_ENV", toy.env["NOWCAST_ENV"])
    toy.write_next_workers("def after_sleep(msg, config, checklist):\n    return []\n"
                           "def after_awaken(msg, config, checklist):\n    return []\n")
    config = Config(toy.config_file)
    engine = make_engine(database_url(config), writer=True)
    upgrade(engine)
    store = Store(engine)
    yield ManagerLoop(config, store, store.load_state())
    store.close()
    engine.dispose()


def body(**document) -> bytes:
    return yaml.safe_dump(document).encode()


def replies(results):
    return [yaml.safe_load(reply)["type"] for reply, _ in results]


def rows(toy, query):
    return toy.sql(query)


@both_backends
def test_malformed_message_in_a_batch_is_answered_and_the_rest_committed(toy, loop):
    results = loop.handle_batch([
        body(source="sleep", type="success", payload={"sleep time": 1}),
        b"{not: yaml",
        body(source="awaken", type="success", payload={"awoke": True}),
        b"\xff\xfe",
    ])
    assert replies(results) == ["ack", "malformed message", "ack", "malformed message"]
    assert rows(toy, "SELECT source, type, reply_type FROM messages ORDER BY id") == [
        ("sleep", "success", "ack"), (None, None, "malformed message"),
        ("awaken", "success", "ack"), (None, None, "malformed message")]
    assert rows(toy, "SELECT key FROM checklist ORDER BY key") == [("awake",), ("sleepyhead",)]


@both_backends
def test_checklist_updates_in_a_batch_apply_in_arrival_order(toy, loop):
    loop.handle_batch([body(source="sleep", type="success", payload={"sleep time": n, f"k{n}": n})
                       for n in range(5)])
    assert loop.state.checklist["sleepyhead"] == {"sleep time": 4, "k0": 0, "k1": 1, "k2": 2, "k3": 3, "k4": 4}
    assert rows(toy, f"SELECT {toy.json_field('value', 'sleep time')} FROM checklist") == [(4,)]
    befores = rows(toy, f"SELECT {toy.json_field('after', 'sleep time')}, operation FROM checklist_mutations "
                        "ORDER BY id")
    assert befores == [(0, "set"), (1, "update"), (2, "update"), (3, "update"), (4, "update")]


@both_backends
def test_same_message_twice_in_one_batch_is_decided_and_launched_once(toy, loop):
    request = body(source="operator", type="launch worker", payload={"module": "nowcast_db.workers.awaken"},
                   **{"message id": "twice"})
    results = loop.handle_batch([request, request])
    assert results[0][0] == results[1][0]
    assert [len(launches) for _, launches in results] == [1, 0]
    assert rows(toy, "SELECT count(*) FROM messages") == [(1,)]
    assert rows(toy, "SELECT count(*) FROM worker_runs") == [(1,)]


@both_backends
def test_resend_in_a_later_batch_gets_the_stored_reply_and_launches_nothing(toy, loop):
    request = body(source="operator", type="launch worker", payload={"module": "nowcast_db.workers.awaken"},
                   **{"message id": "again"})
    first = loop.handle_batch([request])
    second = loop.handle_batch([request])
    assert first[0][0] == second[0][0] and second[0][1] == []
    assert rows(toy, "SELECT count(*) FROM worker_runs") == [(1,)]


REFUSE = {  # the database refuses every new message, as a full disk would
    "sqlite": ["CREATE TRIGGER refuse BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'database or disk is full'); "
               "END"],
    "postgresql": ["CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$",
                   "CREATE TRIGGER refuse BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse()"],
}
ACCEPT = {"sqlite": ["DROP TRIGGER refuse"], "postgresql": ["DROP TRIGGER refuse ON messages", "DROP FUNCTION refuse"]}


@both_backends
def test_database_refusal_answers_every_sender_and_keeps_state(toy, loop):
    loop.handle_batch([body(source="sleep", type="success", payload={"sleep time": 1})])
    before = loop.state
    toy.execute(*REFUSE[toy.backend])
    results = loop.handle_batch([body(source="sleep", type="success", payload={"sleep time": 2}),
                                 body(source="awaken", type="success", payload=None)])
    toy.execute(*ACCEPT[toy.backend])
    assert replies(results) == ["manager error", "manager error"]
    assert loop.state is before
    after = loop.handle_batch([body(source="sleep", type="success", payload={"sleep time": 3})])
    assert replies(after) == ["ack"]
    assert rows(toy, f"SELECT {toy.json_field('payload', 'sleep time')} FROM messages ORDER BY id") == [(1,), (3,)]


POISON = {  # the database refuses one message's content (PostgreSQL refusing what it cannot store, say)
    "sqlite": ["CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.type = 'poison' "
               "BEGIN SELECT RAISE(ABORT, 'cannot store this'); END"],
    "postgresql": ["CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN IF NEW.type = 'poison' THEN RAISE EXCEPTION 'cannot store this'; END IF; "
                   "RETURN NEW; END $$",
                   "CREATE TRIGGER poison BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION poison()"],
}


@both_backends
def test_a_message_the_database_refuses_does_not_turn_away_the_rest_of_its_batch(toy, loop):
    toy.execute(*POISON[toy.backend])
    results = loop.handle_batch([body(source="sleep", type="success", payload={"sleep time": 1}),
                                 body(source="sleep", type="poison", payload=None),
                                 body(source="awaken", type="success", payload={"awoke": True})])
    assert replies(results) == ["ack", "manager error", "ack"]
    assert rows(toy, "SELECT source, type FROM messages ORDER BY id") == [("sleep", "success"), ("awaken", "success")]
    assert sorted(loop.state.checklist) == ["awake", "sleepyhead"]


@only_postgresql
def test_a_server_that_closed_the_managers_connections_costs_no_message(toy, loop):
    """As after a PostgreSQL restart: every connection the manager had is gone
    between two messages; the next message is recorded, not refused."""
    loop.handle_batch([body(source="sleep", type="success", payload={"sleep time": 1})])
    toy.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    results = loop.handle_batch([body(source="sleep", type="success", payload={"sleep time": 2})])
    assert replies(results) == ["ack"]
    assert rows(toy, f"SELECT {toy.json_field('payload', 'sleep time')} FROM messages ORDER BY id") == [(1,), (2,)]
