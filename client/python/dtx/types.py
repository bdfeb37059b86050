"""types — values between Python and PostgreSQL's text format.

NOTES
    dtx passes every value as text, as PostgreSQL writes and reads it:
    parameters go out as text (PostgreSQL infers their types from the
    statement, as for untyped literals), and each column of a result comes
    back as text with its type OID.  This module turns one into the other.

    Out of PostgreSQL (``load``), by the column's type OID:

        bool                      bool          ('t' / 'f')
        int2, int4, int8, oid     int
        numeric                   decimal.Decimal (also NaN, Infinity)
        float4, float8            float         (also NaN, Infinity)
        text, varchar, bpchar,    str
        name, char, unknown
        bytea                     bytes         (hex or escape format)
        date                      datetime.date
        time, timetz              datetime.time (timetz: with tzinfo)
        timestamp                 datetime.datetime, naive
        timestamptz               datetime.datetime, aware (the session's
                                  TimeZone offset, as PostgreSQL printed it)
        uuid                      uuid.UUID
        json, jsonb               the decoded JSON (json.loads)
        anything else             str, as PostgreSQL printed it

    NULL is None.  A value Python cannot hold (``infinity`` and BC dates,
    years after 9999, ``24:00:00``) raises DataError naming the value,
    instead of coming back as something else.  Dates and times are parsed
    in the ISO format, PostgreSQL's default DateStyle.

    Into PostgreSQL (``dump``), by the Python type:

        None                      NULL
        bool                      't' / 'f'
        int                       decimal digits
        float                     repr(); 'NaN', 'Infinity', '-Infinity'
        decimal.Decimal           str() (NaN, Infinity; sNaN is refused)
        str                       itself (a NUL character is refused:
                                  PostgreSQL text cannot hold one)
        bytes, bytearray,         '\\x' and hex digits (bytea's input)
        memoryview
        datetime.datetime         ISO 8601, with its offset when aware
        datetime.date / .time     ISO 8601
        uuid.UUID                 the canonical form
        dict, list, Json(value)   JSON text (json.dumps): for json/jsonb
                                  columns (a list is JSON, not an array)

    Anything else raises ProgrammingError: values are never turned into SQL
    text, so there is nothing to escape and no injection; a type the module
    does not know is refused rather than passed through str().
"""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import math
import re
import uuid
from collections.abc import Callable
from typing import Any

from .errors import DataError, ProgrammingError

# PostgreSQL type OIDs (pg_type.dat)
BOOL = 16
BYTEA = 17
CHAR = 18
NAME = 19
INT8 = 20
INT2 = 21
INT4 = 23
TEXT = 25
OID = 26
JSON = 114
FLOAT4 = 700
FLOAT8 = 701
UNKNOWN = 705
BPCHAR = 1042
VARCHAR = 1043
DATE = 1082
TIME = 1083
TIMESTAMP = 1114
TIMESTAMPTZ = 1184
TIMETZ = 1266
NUMERIC = 1700
UUID = 2950
JSONB = 3802


class Json:
    """A value to be passed as JSON text whatever its Python type, e.g.
    ``Json("a string")`` or ``Json(42)`` for a json/jsonb parameter (dicts
    and lists are passed as JSON without it)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Json({self.value!r})"


# ---- out of PostgreSQL --------------------------------------------------------


def _bool(s: str) -> bool:
    return s == "t"


_ESCAPED = re.compile(rb"\\(\\|[0-7]{3})")


def _bytea(s: str) -> bytes:
    if s.startswith("\\x"):
        return bytes.fromhex(s[2:])
    # escape format (bytea_output = escape): \\ and \ooo, the rest as is
    raw = s.encode("latin-1")
    return _ESCAPED.sub(lambda m: b"\\" if m.group(1) == b"\\" else bytes([int(m.group(1), 8)]), raw)


def _no_python_value(s: str, what: str) -> DataError:
    return DataError(
        f"{what} value {s!r} cannot be represented in Python",
        sqlstate=None,
        hint="cast it to text in the query to read it as a string",
    )


def _date(s: str) -> _dt.date:
    try:
        return _dt.date.fromisoformat(s)
    except ValueError:
        raise _no_python_value(s, "date") from None


def _time(s: str) -> _dt.time:
    try:
        return _dt.time.fromisoformat(s)
    except ValueError:
        raise _no_python_value(s, "time") from None


def _timestamp(s: str) -> _dt.datetime:
    try:
        return _dt.datetime.fromisoformat(s)
    except ValueError:
        raise _no_python_value(s, "timestamp") from None


def _json(s: str) -> Any:
    return json.loads(s)


LOADERS: dict[int, Callable[[str], Any]] = {
    BOOL: _bool,
    INT2: int,
    INT4: int,
    INT8: int,
    OID: int,
    NUMERIC: decimal.Decimal,
    FLOAT4: float,
    FLOAT8: float,
    BYTEA: _bytea,
    DATE: _date,
    TIME: _time,
    TIMETZ: _time,
    TIMESTAMP: _timestamp,
    TIMESTAMPTZ: _timestamp,
    UUID: uuid.UUID,
    JSON: _json,
    JSONB: _json,
}


def loader(oid: int) -> Callable[[str], Any] | None:
    """The function that converts a value of type `oid` from its text form,
    or None when the text is the value (text types and unknown types)."""
    return LOADERS.get(oid)


def load(oid: int, value: str | None) -> Any:
    """One value of type `oid` in PostgreSQL's text form as a Python value
    (None for NULL).  Raises DataError for a value Python cannot hold."""
    if value is None:
        return None
    fn = LOADERS.get(oid)
    return value if fn is None else fn(value)


# ---- into PostgreSQL ----------------------------------------------------------


def _dump_float(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return repr(v)


def _dump_decimal(v: decimal.Decimal) -> str:
    if v.is_snan():
        raise DataError("a signalling NaN (Decimal('sNaN')) cannot be passed to PostgreSQL")
    if v.is_nan():
        return "NaN"
    return str(v)


def _dump_str(v: str) -> str:
    if "\x00" in v:
        raise DataError("a string passed to PostgreSQL cannot contain NUL (0x00) characters")
    return v


def _dump_bytes(v: bytes | bytearray | memoryview) -> str:
    return "\\x" + bytes(v).hex()


def _dump_datetime(v: _dt.datetime) -> str:
    return v.isoformat(sep=" ")


def _dump_json(v: Any) -> str:
    try:
        return json.dumps(v.value if isinstance(v, Json) else v)
    except (TypeError, ValueError) as e:
        raise DataError(f"value cannot be passed as JSON: {e}") from None


# exact type -> dumper; subclasses are found through isinstance below
DUMPERS: dict[type, Callable[[Any], str]] = {
    bool: lambda v: "t" if v else "f",
    int: int.__repr__,
    float: _dump_float,
    decimal.Decimal: _dump_decimal,
    str: _dump_str,
    bytes: _dump_bytes,
    bytearray: _dump_bytes,
    memoryview: _dump_bytes,
    _dt.datetime: _dump_datetime,
    _dt.date: _dt.date.isoformat,
    _dt.time: _dt.time.isoformat,
    uuid.UUID: str,
    dict: _dump_json,
    list: _dump_json,
    Json: _dump_json,
}

# for subclasses (an IntEnum, a str subclass): the most specific first
_DUMP_ORDER: list[type] = [bool, int, float, decimal.Decimal, str, bytes, bytearray, memoryview,
                           _dt.datetime, _dt.date, _dt.time, uuid.UUID, dict, list, Json]


def dump(value: Any) -> str | None:
    """A Python value as PostgreSQL text (None for NULL).  Raises
    ProgrammingError for a type that cannot be passed, DataError for a
    value that cannot."""
    if value is None:
        return None
    fn = DUMPERS.get(type(value))
    if fn is None:
        for t in _DUMP_ORDER:
            if isinstance(value, t):
                fn = DUMPERS[t]
                break
        else:
            raise ProgrammingError(
                f"cannot pass a value of type {type(value).__name__} as a parameter",
                hint="pass str, int, float, Decimal, bool, bytes, date, time, datetime, "
                "UUID, dict or list (JSON), or None",
            )
    return fn(value)


def encode_params(params: Any) -> list[bytes | None]:
    """A statement's parameters ($1, $2, ...) as the UTF-8 texts libdtx
    sends (None for NULL)."""
    if params is None:
        return []
    if isinstance(params, (str, bytes, dict)) or not hasattr(params, "__iter__"):
        raise ProgrammingError(
            "parameters must be a sequence (a list or a tuple: $1 is the first), "
            f"not {type(params).__name__}"
        )
    out: list[bytes | None] = []
    for v in params:
        t = type(v)
        if t is int:  # the common cases first, without a lookup
            out.append(b"%d" % v)
        elif t is str and "\x00" not in v:
            out.append(v.encode("utf-8"))
        else:
            d = dump(v)
            out.append(None if d is None else d.encode("utf-8"))
    return out
