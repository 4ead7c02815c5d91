"""Unit tests for nowcast_db.message: comparison, the YAML wire format and
hostile or malformed input."""
from __future__ import annotations

import datetime as dt
import decimal
import pathlib

import pytest
import yaml

from nowcast_db.errors import MessageError
from nowcast_db.message import Message, new_message_id


# --------------------------------------------------------------------------
# comparison


def test_messages_compare_by_source_type_payload_ignoring_ids():
    one = Message("sleep", "success", {"sleep time": 5}, id="aaa", run_id=1)
    two = Message("sleep", "success", {"sleep time": 5}, id="bbb", run_id=2)
    assert one == two
    assert one == Message("sleep", "success", {"sleep time": 5})


@pytest.mark.parametrize(
    "other",
    [
        Message("awaken", "success", {"sleep time": 5}),
        Message("sleep", "failure", {"sleep time": 5}),
        Message("sleep", "success", {"sleep time": 6}),
        Message("sleep", "success"),
    ],
    ids=["source", "type", "payload", "no-payload"],
)
def test_messages_differing_in_source_type_or_payload_are_unequal(other):
    assert Message("sleep", "success", {"sleep time": 5}) != other


def test_message_payload_defaults_to_none():
    message = Message("sleep", "success")
    assert message.payload is None
    assert message.id is None and message.run_id is None


def test_new_message_ids_are_unique_strings():
    ids = {new_message_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(isinstance(i, str) and i for i in ids)


# --------------------------------------------------------------------------
# round trip


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {"sleep time": 5},
        {"awoke": True},
        ["a", 1, 2.5, None, False],
        "plain text",
        {"run date": dt.date(2024, 3, 5)},
        {"finished": dt.datetime(2024, 3, 5, 12, 30, 15, 123456)},
        {"finished": dt.datetime(2024, 3, 5, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=-8)))},
        {"finished": dt.datetime(2024, 3, 5, 12, 30, tzinfo=dt.timezone.utc)},
        {6: "06 run", 18: "18 run"},
        {dt.date(2024, 3, 5): "ok", None: "null key", True: "bool key", 2.5: "float key"},
        {"nested": {"deeper": [{"x": dt.date(2020, 1, 1)}]}},
        {"unicode": "température °C – ✓"},
        {"multi\nline": "text\nwith\nnewlines\n"},
        {"empty": {}, "empty list": [], "empty string": ""},
    ],
    ids=lambda p: repr(p)[:40],
)
def test_serialize_deserialize_round_trip(payload):
    message = Message("sleep", "success", payload, id="abc", run_id=17)

    again = Message.deserialize(message.serialize())

    assert again == message
    assert again.payload == payload
    assert again.id == "abc"
    assert again.run_id == 17


def test_round_trip_keeps_datetime_timezone_and_types():
    tz = dt.timezone(dt.timedelta(hours=5, minutes=30))
    payload = {"when": dt.datetime(2024, 3, 5, 1, 2, 3, tzinfo=tz), "day": dt.date(2024, 3, 5)}

    again = Message.deserialize(Message("sleep", "success", payload).serialize()).payload

    assert type(again["when"]) is dt.datetime
    assert again["when"].utcoffset() == dt.timedelta(hours=5, minutes=30)
    assert type(again["day"]) is dt.date


def test_round_trip_from_bytes():
    message = Message("sleep", "success", {"sleep time": 5}, id="x")
    again = Message.deserialize(message.serialize().encode("utf-8"))
    assert again == message
    assert again.id == "x"


def test_serialized_message_is_plain_yaml_mapping_a_nemo_peer_can_read():
    text = Message("sleep", "success", {"sleep time": 5}, id="abc", run_id=3).serialize()
    document = yaml.safe_load(text)
    assert document["source"] == "sleep"
    assert document["type"] == "success"
    assert document["payload"] == {"sleep time": 5}


def test_serialized_message_without_ids_has_only_nemo_keys():
    document = yaml.safe_load(Message("sleep", "success", 1).serialize())
    assert document == {"source": "sleep", "type": "success", "payload": 1}


def test_message_with_tuple_keys_serializes_only_to_something_deserialize_reads():
    """serialize must never produce a message that the receiving end rejects:
    either the tuple-keyed payload round-trips, or serialize refuses it."""
    message = Message("sleep", "success", {(1, 2): "pair"})
    try:
        text = message.serialize()
    except MessageError:
        return
    again = Message.deserialize(text)
    assert again.payload == {(1, 2): "pair"}


def test_nemo_style_document_without_ids_or_payload_deserializes():
    message = Message.deserialize(b"source: sleep\ntype: success\n")
    assert message == Message("sleep", "success", None)
    assert message.payload is None
    assert message.id is None
    assert message.run_id is None


def test_nemo_style_document_with_payload_deserializes():
    text = yaml.safe_dump({"source": "sleep", "type": "success", "payload": {"sleep time": 5}})
    message = Message.deserialize(text)
    assert message == Message("sleep", "success", {"sleep time": 5})
    assert message.id is None


def test_unknown_extra_keys_are_ignored():
    message = Message.deserialize("source: sleep\ntype: success\npayload: 1\nfuture key: whatever\n")
    assert message == Message("sleep", "success", 1)


def test_numeric_message_id_becomes_string():
    message = Message.deserialize("source: sleep\ntype: success\nmessage id: 12345\n")
    assert message.id == "12345"


@pytest.mark.parametrize("run_id", ["'7'", "true", "1.5", "[1]"])
def test_non_integer_run_id_is_ignored(run_id):
    message = Message.deserialize(f"source: sleep\ntype: success\nrun id: {run_id}\n")
    assert message.run_id is None
    assert message == Message("sleep", "success")


# --------------------------------------------------------------------------
# values that are not plain YAML


@pytest.mark.parametrize(
    "payload, type_name",
    [
        (pathlib.Path("/results/nowcast/05mar24"), type(pathlib.Path()).__name__),
        ({"file": pathlib.Path("/x.nc")}, type(pathlib.Path()).__name__),
        ({"d": decimal.Decimal("1.5")}, "Decimal"),
        (object(), "object"),
    ],
    ids=["path", "nested-path", "decimal", "object"],
)
def test_non_plain_payload_raises_message_error_naming_the_type(payload, type_name):
    message = Message("make_plots", "success 2.5km", payload)
    with pytest.raises(MessageError) as excinfo:
        message.serialize()
    text = str(excinfo.value)
    assert type_name in text
    assert "success 2.5km" in text and "make_plots" in text
    assert "\n" not in text


# --------------------------------------------------------------------------
# malformed input


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe\xfd",
        b"source: sleep\ntype: success\npayload: caf\xe9\n",
    ],
    ids=["garbage", "latin-1"],
)
def test_non_utf8_bytes_raise_message_error(raw):
    with pytest.raises(MessageError, match="UTF-8"):
        Message.deserialize(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "source: [unclosed\ntype: success\n",
        "source: sleep\n  type: : :\n",
        "{source: sleep, type: success",
        "source: sleep\ntype: success\npayload: *undefined_alias\n",
    ],
    ids=["unclosed-list", "bad-indent", "unclosed-map", "undefined-alias"],
)
def test_bad_yaml_raises_message_error(raw):
    with pytest.raises(MessageError, match="YAML"):
        Message.deserialize(raw)


@pytest.mark.parametrize("raw", ["- source\n- type\n", "just text", "42", "", "null", "~"],
                         ids=["list", "string", "int", "empty", "null", "tilde"])
def test_non_mapping_raises_message_error(raw):
    with pytest.raises(MessageError, match="mapping"):
        Message.deserialize(raw)


@pytest.mark.parametrize(
    "raw, missing",
    [
        ("type: success\npayload: 1\n", "source"),
        ("source: sleep\npayload: 1\n", "type"),
        ("payload: 1\n", "source"),
    ],
)
def test_missing_source_or_type_raises_message_error(raw, missing):
    with pytest.raises(MessageError) as excinfo:
        Message.deserialize(raw)
    assert missing in str(excinfo.value)


@pytest.mark.parametrize(
    "raw",
    [
        "source: 1\ntype: success\n",
        "source: [sleep]\ntype: success\n",
        "source: null\ntype: success\n",
        "source: sleep\ntype: {a: 1}\n",
        "source: sleep\ntype: 2024-03-05\n",
    ],
    ids=["int-source", "list-source", "null-source", "dict-type", "date-type"],
)
def test_non_string_source_or_type_raises_message_error(raw):
    with pytest.raises(MessageError, match="string"):
        Message.deserialize(raw)


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.mkdir",
        "!!python/object/new:os.mkdir",
    ],
)
def test_deserialize_does_not_construct_python_objects(tmp_path, tag):
    marker = tmp_path / "created-by-yaml-tag"
    raw = f"source: sleep\ntype: success\npayload: {tag} ['{marker}']\n"

    with pytest.raises(MessageError):
        Message.deserialize(raw)

    assert not marker.exists()


@pytest.mark.parametrize(
    "raw",
    [
        "source: sleep\ntype: success\npayload: !!python/object:collections.OrderedDict {}\n",
        "source: !!python/name:os.system\ntype: success\n",
        "source: sleep\ntype: success\npayload: !!python/tuple [1, 2]\n",
    ],
    ids=["object", "name", "tuple"],
)
def test_python_tags_are_refused(raw):
    with pytest.raises(MessageError):
        Message.deserialize(raw)


def test_deeply_nested_message_raises_message_error_not_recursion_error():
    depth = 100_000
    raw = "source: sleep\ntype: success\npayload: " + "[" * depth + "]" * depth + "\n"
    with pytest.raises(MessageError):
        Message.deserialize(raw)


# The manager's loader builds plain documents itself (faster) and leaves the rest
# to PyYAML: whatever it builds must equal, type for type, what yaml's safe loader returns.
LOADER_CASES = [
    "a: 1",
    "source: sleep\ntype: success\npayload:\n  sleep time: 5\n  when: 2026-11-29 12:00:00+01:00\n",
    "payload: {1: one, 2.5: two, true: three, null: four, 2026-01-01: five}",
    "x: [1, '1', 0x1f, 0o17, 1_000, .inf, -.nan, ~, yes, No, on, 1e5, 1.0e+5, '', !!str 12, !!float 3]",
    "b: !!binary aGVsbG8=\nd: 2026-11-29\nt: 2001-12-14t21:59:43.10-05:00",
    "base: &base {a: 1, b: 2}\nmerged:\n  <<: *base\n  b: 3",
    "s: !!set {a, b, c}\no: !!omap [{a: 1}, {b: 2}]\np: !!pairs [{a: 1}, {a: 2}]",
    "anchor: &x [1, 2]\nagain: *x\nscalar: &s text\nalso: *s",
    "[1, 2]: tuple key?",
    "dup: 1\ndup: 2",
    "? |\n  block key\n: folded\nliteral: |\n  line 1\n  line 2\nfolded: >\n  a\n  b\n",
    "'quoted key': \"esc\\taped \\u00e9\"\nunicode: ünïcödé ✓",
    "nested: {a: [{b: [{c: [1, {d: null}]}]}]}",
    "",
    "just a scalar",
    "- a\n- b",
]


def _typed(value):
    """Values with their types, so 1 == 1.0 == True do not hide a difference."""
    if isinstance(value, dict):
        return ("dict", sorted(((repr(_typed(k)), _typed(v)) for k, v in value.items()), key=repr))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_typed(item) for item in value])
    if isinstance(value, (set, frozenset)):
        return ("set", sorted(repr(_typed(item)) for item in value))
    if isinstance(value, float) and value != value:
        return ("float", "nan")
    return (type(value).__name__, value)


@pytest.mark.parametrize("text", LOADER_CASES)
def test_manager_loader_returns_exactly_what_the_safe_loader_returns(text):
    from nowcast_db.message import _load

    try:
        expected = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as err:
        with pytest.raises(type(err)):
            _load(text)
        return
    assert _typed(_load(text)) == _typed(expected)


def test_manager_loader_matches_the_safe_loader_on_random_documents():
    import random

    from nowcast_db.message import _load

    generator = random.Random(20261129)
    scalars = [0, -7, 3.25, True, False, None, "text", "yes", "1.5", "", "ünï", dt.date(2026, 1, 2),
               dt.datetime(2026, 1, 2, 3, 4, 5), b"\x00\xff", "a: b", "- x", "#", "null", "0x10"]

    def value(depth):
        kind = generator.random()
        if depth > 4 or kind < 0.5:
            return generator.choice(scalars)
        if kind < 0.75:
            return [value(depth + 1) for _ in range(generator.randint(0, 4))]
        return {generator.choice(["a", "b", "sleep time", 1, 2.5, None, True, dt.date(2026, 1, 1)]):
                value(depth + 1) for _ in range(generator.randint(0, 4))}

    for _ in range(400):
        document = {"source": "w", "type": "success", "payload": value(0)}
        for flow in (False, None):
            text = yaml.dump(document, Dumper=yaml.CSafeDumper, default_flow_style=flow, allow_unicode=True)
            assert _typed(_load(text)) == _typed(yaml.load(text, Loader=yaml.CSafeLoader)), text


def test_messages_as_workers_write_them_are_read_line_by_line_exactly_as_yaml_reads_them():
    """The line-by-line reader (message._load_simple) against the safe loader on
    generated blocks of ``key: value`` lines built to hit YAML's edges: every
    document it reads must be what yaml reads, type for type; the rest it
    leaves to the full loader."""
    import random

    from nowcast_db.message import _NOT_SIMPLE, _load_simple

    generator = random.Random(20261130)
    keys = ["source", "type", "payload", "message id", "sleep time", "a", "x y", "a.b", "k/v", "1a", "true",
            "1", "null", "on", "y", "a:b", "-k", "_", "a-", "2026-11-30", "0x1F", "k+"]
    values = ["sleep", "success", "yes", "No", "OFF", "on", "y", "n", "true", "TRUE", "False", "null", "Null",
              "NULL", "12:30", "1:2:3", "190:20:30", "2026-11-30", "2026-11-30 12:00:00", "2026-11-30T12:00:00Z",
              "2026-11-30 12:00:00+01:00", "2026-1-3", "0x1F", "0o17", "017", "09", "00", "0b101", "1_000", "+1",
              "-0", "-5", ".5", "-.inf", ".NaN", ".nan", "1e3", "1.0e+3", "1.", "0.", "6.8523015e+5",
              "685.230_15e+03", "a:b", "a:", "http://x.org/y", "-a", "--x", "+", ".", "a  b", "x y z", "a -b",
              "/abs/path/file.nc", "run-2026_11_30", "1.5", "3", "a. b", "ab/", "_", "a.b.c"]

    def document() -> str:
        lines, indent, value = [], 0, ""
        for _ in range(generator.randint(1, 8)):
            # mostly what yaml.dump writes (a key without a value opens a mapping two spaces in),
            # now and then an indentation yaml reads differently or not at all
            moves = [2, 2, 2, 0, -2] if value is None else [0, 0, 0, 0, -2, -4, 2, 1]
            indent = max(0, indent + generator.choice(moves))
            key = generator.choice(keys) if generator.random() < 0.3 else generator.choice(keys[:8])
            value = generator.choice(values + [None, None])
            lines.append(" " * indent + key + ":" + ("" if value is None else " " + value))
        return "\n".join(lines) + generator.choice(["", "\n"])

    read_simply = 0
    for _ in range(5000):
        text = document()
        result = _load_simple(text)
        if result is _NOT_SIMPLE:
            continue
        read_simply += 1
        assert _typed(result) == _typed(yaml.load(text, Loader=yaml.CSafeLoader)), text
    assert read_simply > 800, read_simply  # the comparison is not vacuous


def test_the_usual_message_is_read_line_by_line():
    from nowcast_db.message import _NOT_SIMPLE, _load_simple

    text = Message("sleep", "success", {"sleep time": 5, "run date": dt.date(2026, 11, 30)}, id="ab12").serialize()
    assert _load_simple(text) is not _NOT_SIMPLE
    assert Message.deserialize(text) == Message("sleep", "success", {"sleep time": 5, "run date": dt.date(2026, 11, 30)})


def test_worker_started_by_hand_names_its_process():
    text = Message("sleep", "need", "sleepyhead", id="abc", pid=4242, host="hpc-login1").serialize()
    again = Message.deserialize(text)
    assert (again.pid, again.host) == (4242, "hpc-login1")
    assert "pid: 4242\n" in text and "host: hpc-login1\n" in text


@pytest.mark.parametrize("process", ["pid: 0\nhost: vm", "pid: -3\nhost: vm", "pid: '12'\nhost: vm",
                                     "pid: true\nhost: vm", "pid: 12", "host: vm", "pid: 12\nhost: 12",
                                     "pid: 12\nhost: ''", f"pid: 12\nhost: {'h' * 201}"])
def test_process_that_is_not_a_pid_and_a_host_is_ignored(process):
    message = Message.deserialize(f"source: sleep\ntype: need\n{process}\n")
    assert (message.pid, message.host) == (None, None)
