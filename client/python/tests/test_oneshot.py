"""The one-round-trip transaction: conn.oneshot()."""

from __future__ import annotations

import re

import pytest
from conftest import Accounts

import dtx


def test_oneshot_commits_and_returns_gid_and_results(conn: dtx.Connection, accounts: Accounts) -> None:
    out = conn.oneshot([
        accounts.debit("a", 7),
        accounts.credit("b", 7),
        ("a", f"SELECT id, balance FROM {accounts.name} WHERE id = $1", ["x"]),
    ])
    gid, results = out
    assert re.match(r"^dtx:c1:\d+:\d+$", gid)
    assert out.gid == gid and conn.gid == gid
    assert [(r.participant, r.command) for r in results] == [("a", "UPDATE 1"), ("b", "UPDATE 1"), ("a", "SELECT 1")]
    assert results[2].rows == [("x", 93)]
    assert accounts.balances() == (93, 107)
    assert conn.status(gid).status is dtx.Status.COMMITTED


def test_oneshot_stops_at_the_first_error(conn: dtx.Connection, accounts: Accounts) -> None:
    with pytest.raises(dtx.IntegrityError) as e:
        conn.oneshot([accounts.credit("a", 7000), accounts.debit("b", 7000), accounts.credit("a", 1)])
    err = e.value
    assert err.sqlstate == "23514" and err.participant == "b"
    assert err.outcome == "ABORTED"
    assert err.gid and re.match(r"^dtx:c1:\d+:\d+$", err.gid)
    assert accounts.balances() == (100, 100)
    assert conn.status(err.gid).status is dtx.Status.ABORTED
    # and the connection goes on
    assert conn.oneshot([accounts.debit("a", 1)]).results[0].rowcount == 1


def test_oneshot_without_results(conn: dtx.Connection, accounts: Accounts) -> None:
    gid, results = conn.oneshot([accounts.debit("a", 2), accounts.credit("b", 2)], results=False)
    assert results == [] and conn.status(gid).status is dtx.Status.COMMITTED
    with pytest.raises(dtx.IntegrityError) as e:
        conn.oneshot([accounts.debit("a", 2), accounts.debit("b", 2000)], results=False)
    assert (e.value.sqlstate, e.value.participant, e.value.outcome) == ("23514", "b", "ABORTED")
    assert e.value.gid and conn.status(e.value.gid).status is dtx.Status.ABORTED
    assert accounts.balances() == (98, 102)


def test_oneshot_statements_without_parameters(conn: dtx.Connection) -> None:
    gid, results = conn.oneshot([("a", "SELECT 1 AS one"), ["b", "SELECT 'two' AS two", None]])
    assert [r.columns for r in results] == [("one",), ("two",)]
    assert [r.scalar() for r in results] == [1, "two"]


def test_oneshot_refuses_bad_input_before_sending(conn: dtx.Connection) -> None:
    with pytest.raises(dtx.ProgrammingError, match="at least one statement"):
        conn.oneshot([])
    with pytest.raises(dtx.ProgrammingError, match="statement 2"):
        conn.oneshot([("a", "SELECT 1"), ("b",)])
    with pytest.raises(dtx.ProgrammingError, match="participant name"):
        conn.oneshot([(None, "SELECT 1")])
    assert conn.oneshot([("a", "SELECT 1")]).results[0].scalar() == 1


def test_many_oneshots_on_one_connection(conn: dtx.Connection, accounts: Accounts) -> None:
    gids = set()
    for _ in range(50):
        gids.add(conn.oneshot([accounts.debit("a", 1, "y"), accounts.credit("b", 1, "y")]).gid)
    assert len(gids) == 50
    assert accounts.balances("y") == (50, 150)
