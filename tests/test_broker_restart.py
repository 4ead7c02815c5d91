"""The broker is killed and restarted under load: the manager and the clients
reconnect by themselves; messages in flight are resent with the same id, so
none is lost and none is acted on twice."""
import signal
import threading

from conftest import both_backends
from nowcast_db.client import ManagerClient
from nowcast_db.config import Config
from nowcast_db.message import Message, new_message_id

RESTARTS = 5
CLIENTS = 3


@both_backends
def test_broker_restarted_under_load_loses_and_doubles_nothing(toy, monkeypatch, caplog):
    monkeypatch.setenv("NOWCAST_LOGS", str(toy.directory))
    monkeypatch.setenv("NOWCAST_ENV", toy.env["NOWCAST_ENV"])
    toy.edit_config(lambda config: config["zmq"].update({"reply timeout": 0.5, "give up after": 120}))
    toy.write_next_workers("def after_sleep(msg, config, checklist):\n    return []\n")
    toy.start_system()
    config = Config(toy.config_file)
    acked, errors = [], []
    lock = threading.Lock()
    restarts_done = threading.Event()

    def report(client: int) -> None:
        manager = ManagerClient(config)
        try:
            n = 0
            while not restarts_done.is_set():  # keep the load on through every restart
                n += 1
                message = Message("sleep", "failure", {f"client {client}": n}, id=new_message_id())
                assert manager.send(message.serialize(), message.id).type == "ack"
                with lock:
                    acked.append(message.id)
        except BaseException as err:
            errors.append(err)
        finally:
            manager.close()

    threads = [threading.Thread(target=report, args=(client,)) for client in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for _ in range(RESTARTS):
        threading.Event().wait(0.4)
        toy.stop("message_broker", signal.SIGKILL)
        toy.start("message_broker")
    threading.Event().wait(0.5)
    restarts_done.set()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert len(acked) > RESTARTS * CLIENTS  # the load went on through the restarts (fewer on PostgreSQL)
    # the restarts really caught messages in flight: the clients had to resend
    assert any("resending message" in record.getMessage() for record in caplog.records)
    counts = dict(toy.sql("SELECT message_id, count(*) FROM messages GROUP BY message_id"))
    assert all(counts.get(message_id) == 1 for message_id in acked)
    assert toy.sql("SELECT count(*) FROM messages") == [(len(acked),)]
    assert toy.processes["manager"].poll() is None
