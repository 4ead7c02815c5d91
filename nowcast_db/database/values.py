"""Lossless JSON for YAML values.

Messages are YAML, so payloads and checklist values can hold dates, datetimes,
bytes, sets and mappings with non-string keys, which plain JSON cannot.  Plain
JSON values are stored as they are (so SQL JSON functions work on ordinary
payloads); anything else becomes a one-key object whose key starts with ``$``.
A mapping that itself has a key starting with ``$`` is stored as ``$map`` so
the two can never be confused.  A string holding a NUL character (which
PostgreSQL's JSONB cannot store) becomes ``{"$str": [the parts between the NULs]}``.

Numbers the databases would change are tagged too: a float written with an
exponent (``1e+16``, which JSONB keeps as the integer 10000000000000000) or
negative zero is ``{"$float": "1e+16"}``; and, as a whole value (SQLite's JSON
column has NUMERIC affinity, so a bare ``1.0`` would be stored as the integer
1 and a bare integer beyond 64 bits as a float), an integral float is
``{"$float": "1.0"}`` and such an integer ``{"$int": "1180591620717411303424"}``.
Use ``encode_value`` for a whole value, ``encode`` for the parts.
"""
from __future__ import annotations

import base64
import datetime as dt
import math
from typing import Any

_TAGS = ("$date", "$datetime", "$bytes", "$set", "$map", "$float", "$str", "$int")
INT64 = range(-2**63, 2**63)
NUL = "\x00"


def encode(value: Any) -> Any:
    if isinstance(value, str):
        return value if NUL not in value else {"$str": value.split(NUL)}
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        text = repr(value)
        plain = math.isfinite(value) and "e" not in text and text != "-0.0"
        return value if plain else {"$float": text}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (set, frozenset)):
        return {"$set": [encode(item) for item in value]}
    if isinstance(value, (list, tuple)):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        if all(isinstance(key, str) and not key.startswith("$") and NUL not in key for key in value):
            return {key: encode(item) for key, item in value.items()}
        return {"$map": [[encode(key), encode(item)] for key, item in value.items()]}
    raise TypeError(f"cannot store a {type(value).__name__} value")


def encode_value(value: Any) -> Any:
    """``encode`` for a whole value (a column's), bare numbers included."""
    encoded = encode(value)
    if isinstance(encoded, float) and encoded.is_integer():
        return {"$float": repr(encoded)}
    if isinstance(encoded, int) and not isinstance(encoded, bool) and encoded not in INT64:
        return {"$int": str(encoded)}
    return encoded


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, inner), = value.items()
        if tag in _TAGS:
            return _decode_tagged(tag, inner)
    return {key: decode(item) for key, item in value.items()}


def _decode_tagged(tag: str, inner: Any) -> Any:
    if tag == "$datetime":
        return dt.datetime.fromisoformat(inner)
    if tag == "$date":
        return dt.date.fromisoformat(inner)
    if tag == "$bytes":
        return base64.b64decode(inner)
    if tag == "$set":
        return {_hashable(decode(item)) for item in inner}
    if tag == "$float":
        return float(inner)
    if tag == "$str":
        return NUL.join(inner)
    if tag == "$int":
        return int(inner)
    return {_hashable(decode(key)): decode(item) for key, item in inner}


def _hashable(value: Any) -> Any:
    """Keys and set members must be hashable; JSON brings tuples back as lists."""
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    return value
