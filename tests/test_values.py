"""Unit tests for nowcast_db.database.values: lossless JSON for YAML values.

Every round trip goes through real JSON text (json.dumps/json.loads), as the
database stores it; the last tests go through a real database, SQLite and
PostgreSQL (JSONB), and back.
"""
from __future__ import annotations

import datetime as dt
import json
import math

import pytest
import yaml
from sqlalchemy import insert, select

from conftest import both_backends
from nowcast_db.database import make_engine, upgrade
from nowcast_db.database.models import ChecklistEntry
from nowcast_db.database.values import decode, encode


def through_json(value):
    text = json.dumps(encode(value), allow_nan=False)
    return decode(json.loads(text))


def assert_same(a, b):
    """Equal, and of the same types all the way down (True is not 1, date is not datetime)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert len(a) == len(b)
        for key in a:
            assert key in b
            matching = [k for k in b if k == key]
            assert type(matching[0]) is type(key), (key, matching[0])
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b
        if isinstance(a, dt.datetime):
            assert a.utcoffset() == b.utcoffset()


# --------------------------------------------------------------------------
# lossless round trips


LOSSLESS = [
    dt.date(2024, 3, 5),
    dt.datetime(2024, 3, 5, 12, 30, 15, 123456),
    dt.datetime(2024, 3, 5, 12, 30, tzinfo=dt.timezone.utc),
    dt.datetime(2024, 3, 5, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=-8))),
    dt.datetime(2024, 3, 5, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=45))),
    b"\x00\x01\xff binary",
    b"",
    {1, 2, 3},
    {"a", "b"},
    set(),
    {(1, 2), (3, 4)},
    {1: "one", 2: "two"},
    {dt.date(2024, 3, 5): "day key"},
    {None: "null key", True: "bool key", 2.5: "float key"},
    {(1, 2): "tuple key"},
    {(1, (2, 3)): "nested tuple key"},
    {("a", dt.date(2024, 1, 1)): "tuple with date"},
    {"$date": "2024-03-05"},
    {"$datetime": "not really"},
    {"$set": [1, 2]},
    {"$map": [[1, 2]]},
    {"$bytes": "AAEC"},
    {"$float": "nan"},
    {"$anything": 1, "plain": 2},
    {"outer": {"$date": "2024-03-05"}},
    [{"$set": []}],
    float("nan"),
    float("inf"),
    float("-inf"),
    [1.0, float("inf"), {"x": float("-inf")}],
    {"nested": [{"day": dt.date(2020, 1, 1), "raw": b"\x01", "tags": {"x"}}]},
    {"mixed": {1: {dt.date(2020, 1, 1): {"$k": {(1,): None}}}}},
]


@pytest.mark.parametrize("value", LOSSLESS, ids=lambda v: repr(v)[:40])
def test_round_trip_is_lossless(value):
    assert_same(through_json(value), value)


def test_tz_aware_datetime_keeps_offset_and_instant():
    tz = dt.timezone(dt.timedelta(hours=-7))
    value = dt.datetime(2024, 3, 10, 1, 30, tzinfo=tz)
    again = through_json(value)
    assert again.tzinfo is not None
    assert again.utcoffset() == dt.timedelta(hours=-7)
    assert again == value
    assert again.hour == 1


def test_naive_datetime_stays_naive():
    again = through_json(dt.datetime(2024, 3, 5, 6, 0))
    assert again.tzinfo is None


def test_datetime_is_not_confused_with_date():
    value = {"day": dt.date(2024, 3, 5), "at": dt.datetime(2024, 3, 5)}
    again = through_json(value)
    assert type(again["day"]) is dt.date
    assert type(again["at"]) is dt.datetime


def test_dollar_keyed_dicts_are_not_decoded_as_tags():
    value = {"$date": "2024-03-05"}
    again = through_json(value)
    assert again == value
    assert isinstance(again["$date"], str)


def test_string_values_that_look_like_tags_stay_strings():
    for text in ["$date", "$map", "2024-03-05", "AAEC"]:
        assert_same(through_json(text), text)
        assert_same(through_json({"k": text}), {"k": text})


def test_bool_and_int_keys_and_values_keep_their_types():
    value = {"flag": True, "count": 1, "zero": 0, "off": False}
    again = through_json(value)
    assert_same(again, value)


def test_encoded_values_are_json_serializable_without_nan():
    value = {"x": float("nan"), "y": {1, 2}, "z": b"\x00", "w": {1: 2}, "d": dt.date(2024, 1, 1)}
    text = json.dumps(encode(value), allow_nan=False)
    assert isinstance(text, str)


YAML_DOCUMENT = """
    run date: 2024-03-05
    finished: 2024-03-05 12:30:00-08:00
    runs: {6: ok, 18: failed}
    hosts: !!set {arbutus: null, salish: null}
    blob: !!binary AAEC
    temperatures: [.nan, .inf, -.inf, 1.5]
"""


def test_yaml_payloads_round_trip_through_json():
    """What the safe YAML loader gives (dates, datetimes, int keys, sets, binary) survives storage."""
    document = yaml.safe_load(YAML_DOCUMENT)
    assert_same(through_json(document), document)


# --------------------------------------------------------------------------
# ordinary JSON values stored unchanged


ORDINARY = [
    None,
    True,
    False,
    0,
    42,
    -7,
    2**70,
    1.5,
    -0.25,
    "",
    "text",
    "$not a tag",
    [],
    {},
    [1, "a", None, True, 2.5],
    {"sleep time": 5},
    {"awoke": True},
    {"log files": ["/logs/nowcast.log", "/logs/nowcast.debug.log"]},
    {"a": {"b": {"c": [1, {"d": None}]}}},
    {"x$": 1, "mid$dle": 2},
]


@pytest.mark.parametrize("value", ORDINARY, ids=lambda v: repr(v)[:40])
def test_ordinary_json_values_are_stored_unchanged(value):
    encoded = encode(value)
    assert encoded == value
    assert json.loads(json.dumps(encoded)) == value
    assert_same(decode(json.loads(json.dumps(encoded))), value)


def test_frozenset_is_stored_as_set():
    again = through_json(frozenset({1, 2}))
    assert again == {1, 2}
    assert isinstance(again, (set, frozenset))


def test_tuple_value_is_stored_as_json_array():
    assert encode((1, 2, "a")) == [1, 2, "a"]


def test_unknown_type_is_refused_with_type_error():
    with pytest.raises(TypeError, match="object"):
        encode({"x": object()})


# --------------------------------------------------------------------------
# through a real database: the Value column is JSON on SQLite, JSONB on PostgreSQL


def stored_and_read_back(database_url: str, values: list) -> list:
    """Write values into the Value column of a fresh history database's checklist table; read them back."""
    engine = make_engine(database_url, writer=True)
    try:
        upgrade(engine)
        table = ChecklistEntry.__table__
        now = dt.datetime.now(dt.timezone.utc)
        with engine.begin() as connection:
            connection.execute(insert(table), [{"key": f"value {n}", "value": value, "updated_at": now}
                                               for n, value in enumerate(values)])
        with engine.connect() as connection:
            rows = dict(connection.execute(select(table.c.key, table.c.value)).all())
        return [rows[f"value {n}"] for n in range(len(values))]
    finally:
        engine.dispose()


#: values one of the databases would change, stored tagged (see values.py): each, alone, on both
NUMBERS_THE_DATABASES_WOULD_CHANGE = [
    [2.5e300],  # JSONB gives a float written with an exponent back as an int
    1e16,  # ... and SQLite's NUMERIC affinity stores the bare number as an INTEGER
    1.0,  # SQLite's NUMERIC affinity stores a bare 1.0 as the INTEGER 1
    2**70,  # ... and a bare integer too big for 64 bits as a REAL
    -0.0,  # JSONB has no negative zero
    [-2**70, 2**64],
]


@both_backends
def test_values_come_back_from_the_database_as_they_went_in(database_url):
    values = [*LOSSLESS, *ORDINARY, *NUMBERS_THE_DATABASES_WOULD_CHANGE]
    values += [yaml.safe_load(YAML_DOCUMENT), "a\x00b", {"key\x00with NUL": ["\x00"]}]  # JSONB cannot hold NUL as such
    for value, again in zip(values, stored_and_read_back(database_url, values), strict=True):
        assert_same(again, value)
        if isinstance(value, float) and value == 0:
            assert math.copysign(1, again) == math.copysign(1, value)


JSON_FIELD = {"sqlite": "json_extract(value, '$.\"sleep time\"')", "postgresql": "value -> 'sleep time'"}


@both_backends
def test_ordinary_payloads_are_queryable_with_the_databases_json_functions(backend, database_url):
    stored_and_read_back(database_url, [{"sleep time": 5}])
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql(f"SELECT {JSON_FIELD[backend]} FROM checklist").all() == [(5,)]
    finally:
        engine.dispose()
