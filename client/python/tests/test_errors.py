"""Errors: the exception class chosen by SQLSTATE, and the SQLSTATE,
participant, detail and hint of PostgreSQL's errors passed through."""

from __future__ import annotations

import pytest
from conftest import Accounts, create_everywhere, unique_name

import dtx
from dtx.errors import class_for_sqlstate


def test_constraint_violation_on_one_participant(conn: dtx.Connection, accounts: Accounts) -> None:
    with pytest.raises(dtx.IntegrityError) as e:
        with conn.transaction() as tx:
            tx.execute(*accounts.credit("a", 1000))
            tx.execute(*accounts.debit("b", 1000))  # balance >= 0 fails here
    err = e.value
    assert err.sqlstate == "23514"
    assert err.participant == "b"
    assert err.detail and err.detail.startswith("Failing row contains")
    assert "violates check constraint" in err.message
    assert err.gid == tx.gid
    assert "DETAIL:  Failing row contains" in str(err)
    assert isinstance(err, dtx.DatabaseError) and isinstance(err, dtx.Error)
    assert accounts.balances() == (100, 100)  # the block rolled back: nothing changed


def test_unique_violation(conn: dtx.Connection, accounts: Accounts) -> None:
    with pytest.raises(dtx.IntegrityError) as e:
        with conn.transaction() as tx:
            tx.execute("a", f"INSERT INTO {accounts.name} (id, balance) VALUES ('x', 1)")
    assert (e.value.sqlstate, e.value.participant) == ("23505", "a")


def test_hint_and_undefined_column(conn: dtx.Connection, accounts: Accounts) -> None:
    with pytest.raises(dtx.ProgrammingError) as e:
        with conn.transaction() as tx:
            tx.execute("b", f"SELECT balanc FROM {accounts.name}")
    assert e.value.sqlstate == "42703"
    assert e.value.participant == "b"
    assert e.value.hint and "balance" in e.value.hint
    assert "HINT:  " in str(e.value)


def test_syntax_error_and_division_by_zero(conn: dtx.Connection) -> None:
    with conn.transaction() as tx:
        with pytest.raises(dtx.ProgrammingError) as e:
            tx.execute("a", "SELEC 1")
        assert e.value.sqlstate == "42601"
        tx.rollback()
    with conn.transaction() as tx:
        with pytest.raises(dtx.DataError) as e2:
            tx.execute("b", "SELECT 1 / 0")
        assert (e2.value.sqlstate, e2.value.participant) == ("22012", "b")
        tx.rollback()


def test_unknown_participant(conn: dtx.Connection) -> None:
    with pytest.raises(dtx.ProgrammingError, match='participant "nosuch" does not exist') as e:
        with conn.transaction() as tx:
            tx.execute("nosuch", "SELECT 1")
    assert e.value.sqlstate == "42704"


def test_statements_after_a_failure_fail_and_commit_raises(conn: dtx.Connection, accounts: Accounts) -> None:
    tx = conn.transaction()
    tx.execute(*accounts.debit("a", 1))
    with pytest.raises(dtx.IntegrityError):
        tx.execute(*accounts.debit("b", 1000))
    with pytest.raises(dtx.InternalError) as e:
        tx.execute(*accounts.debit("a", 1))
    assert e.value.sqlstate == "25P02"
    with pytest.raises(dtx.DatabaseError) as c:
        tx.commit()
    assert c.value.outcome == "ABORTED"
    assert c.value.gid == tx.gid
    assert not isinstance(c.value, dtx.OutcomeUnknown)
    assert conn.status(tx.gid).status is dtx.Status.ABORTED
    assert accounts.balances() == (100, 100)


def test_deferred_constraint_fails_at_prepare(conn: dtx.Connection) -> None:
    # a deferred unique constraint is checked by PREPARE TRANSACTION: the
    # statements succeed, and the commit is aborted with PostgreSQL's error
    name = unique_name("defer")
    create_everywhere(conn, f"CREATE TABLE {name} (k int, UNIQUE (k) DEFERRABLE INITIALLY DEFERRED)")
    tx = conn.transaction()
    tx.execute("a", f"INSERT INTO {name} VALUES (1)")
    tx.execute("b", f"INSERT INTO {name} VALUES (1), (1)")
    with pytest.raises(dtx.IntegrityError) as e:
        tx.commit()
    assert e.value.sqlstate == "23505"
    assert e.value.participant == "b"
    assert e.value.outcome == "ABORTED" and e.value.gid == tx.gid
    with dtx.connect() as c:
        _, res = c.oneshot([("a", f"SELECT count(*) FROM {name}"), ("b", f"SELECT count(*) FROM {name}")])
        assert [r.scalar() for r in res] == [0, 0]
        assert c.status(tx.gid or "").status is dtx.Status.ABORTED


def test_values_are_refused_before_sending(conn: dtx.Connection) -> None:
    with conn.transaction() as tx:
        with pytest.raises(dtx.ProgrammingError, match="cannot pass a value of type object"):
            tx.execute("a", "SELECT $1", [object()])
        with pytest.raises(dtx.DataError, match="NUL"):
            tx.execute("a", "SELECT $1", ["a\x00b"])
        assert tx.execute("a", "SELECT 1").scalar() == 1  # nothing was sent: still usable


@pytest.mark.parametrize(
    "sqlstate, cls",
    [
        ("23505", dtx.IntegrityError),
        ("22P02", dtx.DataError),
        ("42P01", dtx.ProgrammingError),
        ("40001", dtx.TransactionRollbackError),
        ("40P01", dtx.TransactionRollbackError),
        ("08006", dtx.OperationalError),
        ("57014", dtx.OperationalError),
        ("53200", dtx.OperationalError),
        ("55000", dtx.OperationalError),
        ("0A000", dtx.NotSupportedError),
        ("25P02", dtx.InternalError),
        ("XX000", dtx.InternalError),
        ("40003", dtx.OperationalError),
        ("ZZ999", dtx.DatabaseError),
        (None, dtx.DatabaseError),
    ],
)
def test_sqlstate_picks_the_class(sqlstate: str | None, cls: type) -> None:
    assert class_for_sqlstate(sqlstate) is cls


def test_an_unknown_outcome_is_not_an_operational_error() -> None:
    # code that retries on OperationalError must never retry a transaction
    # that may have committed
    assert not issubclass(dtx.OutcomeUnknown, dtx.OperationalError)
    assert not issubclass(dtx.OutcomeUnknown, dtx.DatabaseError)
    assert issubclass(dtx.OutcomeUnknown, dtx.Error)
    e = dtx.OutcomeUnknown("lost", sqlstate="40003", gid="dtx:c1:1:2")
    assert e.heuristic and e.gid == "dtx:c1:1:2"
    assert "gid='dtx:c1:1:2'" in repr(e)
