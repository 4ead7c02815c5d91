"""Chaos: workers keep reporting while the manager is killed with SIGKILL at
random moments and restarted, 20 times.  Afterwards every acknowledged message
is recorded exactly once, the checklist is the fold of the acknowledged
payloads, and no launch happened twice.  Bounded: about half a minute."""
import random
import signal
import threading

from conftest import both_backends
from nowcast_db.client import ManagerClient
from nowcast_db.config import Config
from nowcast_db.launch_request import launch_message, request_launch
from nowcast_db.message import Message, new_message_id

KILLS = 20
CLIENTS = 4
MESSAGES_PER_CLIENT = 120


@both_backends
def test_manager_killed_20_times_under_load_loses_and_doubles_nothing(toy, monkeypatch):
    monkeypatch.setenv("NOWCAST_LOGS", str(toy.directory))
    monkeypatch.setenv("NOWCAST_ENV", toy.env["NOWCAST_ENV"])
    toy.edit_config(lambda config: config["zmq"].update({"reply timeout": 0.5, "give up after": 120}))
    toy.write_next_workers("def after_sleep(msg, config, checklist):\n    return []\n"
                           "def after_awaken(msg, config, checklist):\n    return []\n")
    toy.start_system()
    config = Config(toy.config_file)
    acked: list[tuple[int, int, str]] = []  # (client, n, message id)
    launches: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def report(client: int) -> None:
        manager = ManagerClient(config)
        try:
            for n in range(MESSAGES_PER_CLIENT):
                if n % 40 == 39:  # now and then a launch request, which must launch once
                    run_id = request_launch(config, launch_message("nowcast_db.workers.awaken", ["--debug"]),
                                            manager)
                    with lock:
                        launches.append(run_id)
                    continue
                message = Message("sleep", "failure", {f"client {client}": n}, id=new_message_id())
                reply = manager.send(message.serialize(), message.id)
                assert reply.type == "ack", reply
                with lock:
                    acked.append((client, n, message.id))
        except BaseException as err:  # surfaced by the main thread
            errors.append(err)
        finally:
            manager.close()

    threads = [threading.Thread(target=report, args=(client,)) for client in range(CLIENTS)]
    for thread in threads:
        thread.start()
    rng = random.Random(20261129)
    for _ in range(KILLS):
        threading.Event().wait(rng.uniform(0.05, 0.4))
        toy.stop("manager", signal.SIGKILL)
        toy.start_manager()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert len(acked) == CLIENTS * (MESSAGES_PER_CLIENT - MESSAGES_PER_CLIENT // 40)

    recorded = dict(toy.sql("SELECT message_id, count(*) FROM messages GROUP BY message_id"))
    assert all(recorded.get(message_id) == 1 for _, _, message_id in acked)
    expected = {f"client {client}": MESSAGES_PER_CLIENT - 2 if MESSAGES_PER_CLIENT % 40 == 0 else
                MESSAGES_PER_CLIENT - 1 for client in range(CLIENTS)}
    last = {}
    for client, n, _ in acked:
        last[f"client {client}"] = max(n, last.get(f"client {client}", -1))
    assert last == expected
    import json
    checklist = json.loads(toy.sql(f"SELECT {toy.json_text('value')} FROM checklist WHERE key = 'sleepyhead'")[0][0])
    assert checklist == last
    operator_runs = toy.sql("SELECT id FROM worker_runs WHERE launched_by = 'operator' ORDER BY id")
    assert sorted(launches) == [row[0] for row in operator_runs]  # each request made exactly one run
    assert len(set(launches)) == len(launches)
    assert "SIGKILL" not in toy.log("manager")  # it never had the chance to say anything: a real kill
