"""Values: parameters passed as parameters (quotes, NULLs, no injection),
and every type conversion, out of PostgreSQL and into it."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
import uuid
from typing import Any

import pytest
from conftest import create_everywhere, read, unique_name

import dtx

NASTY = [
    "it's a \"quote\" \\ and ;--",
    "'; DROP TABLE victims; --",
    "$1 $2 %s {0} \\x00",
    "grüße, 日本語, ✓",
    "",
    " leading and trailing ",
]


def test_parameters_are_never_sql(conn: dtx.Connection) -> None:
    victims = unique_name("victims")
    create_everywhere(conn, f"CREATE TABLE {victims} (a text, b text)")
    for s in NASTY:
        injected = s.replace("victims", victims)
        conn.oneshot([
            ("a", f"INSERT INTO {victims} VALUES ($1, $2)", [injected, None]),
            ("b", f"INSERT INTO {victims} VALUES ($1, $2)", [None, injected]),
        ])
        # found again by equality, so stored exactly as given
        assert read(conn, "a", f"SELECT a, b FROM {victims} WHERE a = $1", [injected]) == [(injected, None)]
        assert read(conn, "b", f"SELECT a, b FROM {victims} WHERE b = $1", [injected]) == [(None, injected)]
    # the table is still there, with every row
    assert read(conn, "a", f"SELECT count(*) FROM {victims}") == [(len(NASTY),)]
    assert read(conn, "a", f"SELECT count(*) FROM {victims} WHERE b IS NULL") == [(len(NASTY),)]
    # a parameter is one value, whatever it holds
    assert read(conn, "b", "SELECT $1::text", ["1); SELECT (2"]) == [("1); SELECT (2",)]


OUT = [
    ("true", True),
    ("false", False),
    ("32767::int2", 32767),
    ("(-2147483648)::int4", -2147483648),
    ("9223372036854775807::int8", 9223372036854775807),
    ("'12345678901234567890.000000001'::numeric", decimal.Decimal("12345678901234567890.000000001")),
    ("'NaN'::numeric", "nan-decimal"),
    ("1.5::float4", 1.5),
    ("'-1e300'::float8", -1e300),
    ("'Infinity'::float8", math.inf),
    ("'-Infinity'::float8", -math.inf),
    ("'NaN'::float8", "nan-float"),
    ("'text ✓'::text", "text ✓"),
    ("'abc'::varchar(10)", "abc"),
    ("'ab'::char(4)", "ab  "),
    ("'pg_class'::name", "pg_class"),
    (r"'\x00ff10'::bytea", b"\x00\xff\x10"),
    ("''::bytea", b""),
    ("'2024-02-29'::date", dt.date(2024, 2, 29)),
    ("'13:14:15.123456'::time", dt.time(13, 14, 15, 123456)),
    ("'13:14:15+05:30'::timetz", dt.time(13, 14, 15, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))),
    ("'2024-01-02 03:04:05.678'::timestamp", dt.datetime(2024, 1, 2, 3, 4, 5, 678000)),
    (
        "'2024-01-02 03:04:05+02'::timestamptz",
        dt.datetime(2024, 1, 2, 1, 4, 5, tzinfo=dt.timezone.utc),
    ),
    ("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid", uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
    ("""'{"a": [1, 2.5, null, "x"], "b": {"c": true}}'::json""", {"a": [1, 2.5, None, "x"], "b": {"c": True}}),
    ("""'[1, "two"]'::jsonb""", [1, "two"]),
    ("'1 day 02:00:00'::interval", "1 day 02:00:00"),  # no conversion: text
    ("ARRAY[1, 2]", "{1,2}"),
    ("NULL::int4", None),
    ("NULL::jsonb", None),
]


@pytest.mark.parametrize("sql, expected", OUT, ids=[s for s, _ in OUT])
def test_values_out_of_postgresql(conn: dtx.Connection, sql: str, expected: Any) -> None:
    value = read(conn, "a", f"SELECT {sql}")[0][0]
    if expected == "nan-decimal":
        assert isinstance(value, decimal.Decimal) and value.is_nan()
    elif expected == "nan-float":
        assert isinstance(value, float) and math.isnan(value)
    else:
        assert value == expected
        assert type(value) is type(expected)


class Colour(enum.IntEnum):
    RED = 1


ROUND_TRIP = [
    ("bool", True),
    ("bool", False),
    ("int2", -7),
    ("int4", 2**31 - 1),
    ("int8", -(2**63)),
    ("int4", Colour.RED),
    ("numeric", decimal.Decimal("-0.000000000000000000001")),
    ("numeric", decimal.Decimal("1E+30")),
    ("numeric", decimal.Decimal("Infinity")),
    ("float8", 0.1),
    ("float8", 1e-310),
    ("float8", -math.inf),
    ("float4", 0.5),
    ("text", "line 1\nline 2\ttab 'q' \"dq\" \\"),
    ("varchar", "ünïcödé ✓"),
    ("bytea", bytes(range(256))),
    ("bytea", bytearray(b"\x00\x01")),
    ("bytea", memoryview(b"mv")),
    ("date", dt.date(1, 1, 1)),
    ("date", dt.date(9999, 12, 31)),
    ("time", dt.time(0, 0, 0, 1)),
    ("timetz", dt.time(23, 59, 59, tzinfo=dt.timezone(dt.timedelta(hours=-3)))),
    ("timestamp", dt.datetime(2000, 2, 29, 12, 0, 0, 999999)),
    ("timestamptz", dt.datetime(2024, 6, 30, 22, 30, tzinfo=dt.timezone(dt.timedelta(hours=9)))),
    ("uuid", uuid.uuid4()),
    ("json", {"k": ["v", 1, None, {"nested": True}]}),
    ("jsonb", [1, 2, {"three": 3.5}]),
    ("jsonb", dtx.Json("just a string")),
    ("jsonb", dtx.Json(None)),
]


@pytest.mark.parametrize("pgtype, value", ROUND_TRIP, ids=[f"{t}-{i}" for i, (t, _) in enumerate(ROUND_TRIP)])
def test_values_into_postgresql_and_back(conn: dtx.Connection, pgtype: str, value: Any) -> None:
    # stored in a typed column through a parameter, read back converted
    name = unique_name("rt")
    conn.oneshot([("b", f"CREATE TABLE {name} (v {pgtype})")])
    conn.oneshot([("b", f"INSERT INTO {name} VALUES ($1), ($2)", [value, None])])
    rows = read(conn, "b", f"SELECT v FROM {name} ORDER BY v IS NULL")
    back = rows[0][0]
    if isinstance(value, dtx.Json):
        assert back == value.value
    elif isinstance(value, (bytearray, memoryview)):
        assert back == bytes(value)
    elif isinstance(value, dt.datetime) and pgtype == "timestamptz":
        assert back == value  # the same instant, in the session's offset
    elif pgtype == "float4":
        assert back == pytest.approx(value)
    else:
        assert back == value
    assert rows[1][0] is None
    conn.oneshot([("b", f"DROP TABLE {name}")])


def test_special_floats_and_numerics_as_parameters(conn: dtx.Connection) -> None:
    r = read(conn, "a", "SELECT $1::float8, $2::float8, $3::numeric",
             [math.nan, math.inf, decimal.Decimal("NaN")])[0]
    assert math.isnan(r[0]) and r[1] == math.inf and r[2].is_nan()
    with pytest.raises(dtx.DataError, match="signalling NaN"):
        read(conn, "a", "SELECT $1::numeric", [decimal.Decimal("sNaN")])


def test_values_python_cannot_hold_raise_data_error(conn: dtx.Connection) -> None:
    for sql in ("'infinity'::date", "'0044-03-15 BC'::date", "'-infinity'::timestamptz",
                "'10000-01-01'::timestamp", "'24:00:00'::time"):
        with pytest.raises(dtx.DataError, match="cannot be represented in Python"):
            read(conn, "a", f"SELECT {sql}")
    assert read(conn, "a", "SELECT 'infinity'::date::text") == [("infinity",)]


def test_bytea_in_escape_format(conn: dtx.Connection) -> None:
    with conn.transaction() as tx:
        tx.execute("a", "SET LOCAL bytea_output = 'escape'")
        raw = tx.execute("a", "SELECT $1::bytea::text", [b"a\\b\x00\xff'"]).scalar()
        assert raw == "a\\\\b\\000\\377'"
        assert tx.execute("a", "SELECT $1::bytea", [b"a\\b\x00\xff'"]).scalar() == b"a\\b\x00\xff'"


def test_naive_and_aware_datetimes(conn: dtx.Connection) -> None:
    with conn.transaction() as tx:
        tx.execute("a", "SET LOCAL TimeZone = 'America/Sao_Paulo'")
        aware = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
        back = tx.execute("a", "SELECT $1::timestamptz", [aware]).scalar()
        assert back == aware and back.utcoffset() == dt.timedelta(hours=-3)
        naive = dt.datetime(2024, 1, 1, 12, 0)
        assert tx.execute("a", "SELECT $1::timestamp", [naive]).scalar() == naive
        # a naive value for a timestamptz is in the session's time zone, as in PostgreSQL
        assert tx.execute("a", "SELECT $1::timestamptz", [naive]).scalar() == naive.replace(
            tzinfo=dt.timezone(dt.timedelta(hours=-3)))
