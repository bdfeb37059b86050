"""The blocking API: connecting, transactions that commit and roll back,
results, one transaction at a time, closing, and threads."""

from __future__ import annotations

import os
import re
import threading
import time

import pytest
from conftest import Accounts, read

import dtx

GID = re.compile(r"^dtx:c1:\d+:\d+$")


def test_connect_reports_the_coordinator(conn: dtx.Connection) -> None:
    assert conn.server_name == "c1"
    assert conn.host == os.environ["DTXHOST"]
    assert conn.port == int(os.environ["DTXPORT"])
    assert not conn.closed and not conn.broken
    assert "127.0.0.1" in repr(conn)
    assert dtx.libdtx_version() >= 10000


def test_commit_on_two_participants(conn: dtx.Connection, accounts: Accounts) -> None:
    with conn.transaction() as tx:
        assert GID.match(tx.gid or ""), tx.gid
        r = tx.execute(*accounts.debit("a", 30))
        assert r.rowcount == 1 and r.command == "UPDATE 1" and r.participant == "a"
        tx.execute(*accounts.credit("b", 30))
    assert accounts.balances() == (70, 130)
    assert conn.status(tx.gid).status is dtx.Status.COMMITTED
    assert conn.gid == tx.gid


def test_rollback_when_the_block_raises(conn: dtx.Connection, accounts: Accounts) -> None:
    with pytest.raises(RuntimeError, match="changed my mind"):
        with conn.transaction() as tx:
            tx.execute(*accounts.debit("a", 30))
            tx.execute(*accounts.credit("b", 30))
            raise RuntimeError("changed my mind")
    assert accounts.balances() == (100, 100)
    assert conn.status(tx.gid).status is dtx.Status.ABORTED
    # the connection goes on
    with conn.transaction() as tx2:
        tx2.execute(*accounts.debit("a", 1))
    assert accounts.balances() == (99, 100)


def test_explicit_begin_commit_and_rollback(conn: dtx.Connection, accounts: Accounts) -> None:
    tx = conn.transaction()
    assert tx.gid is None
    tx.execute(*accounts.debit("a", 5))  # begins
    assert GID.match(tx.gid or "")
    assert tx.rollback() == tx.gid
    assert accounts.balances() == (100, 100)

    tx = conn.transaction()
    gid = tx.begin()
    tx.execute(*accounts.debit("a", 5))
    tx.execute(*accounts.credit("b", 5))
    assert tx.commit() == gid
    assert accounts.balances() == (95, 105)


def test_results_carry_rows_columns_and_tags(conn: dtx.Connection, accounts: Accounts) -> None:
    with conn.transaction() as tx:
        ins = tx.execute("a", f"INSERT INTO {accounts.name} (id, balance) VALUES ($1, $2)", ["z", 7])
        assert (ins.command, ins.rowcount, ins.rows, ins.columns) == ("INSERT 0 1", 1, [], ())
        sel = tx.execute("a", f"SELECT id, balance, note FROM {accounts.name} ORDER BY id")
        assert sel.columns == ("id", "balance", "note")
        assert sel.type_oids == (25, 23, 25)
        assert sel.rows == [("x", 100, None), ("y", 100, None), ("z", 7, None)]
        assert sel.rowcount == 3 and sel.command == "SELECT 3" and len(sel) == 3
        assert list(sel)[2] == ("z", 7, None)
        assert sel.one() == ("x", 100, None)
        assert tx.execute("a", "SELECT 42").scalar() == 42
        assert tx.execute("a", f"SELECT 1 FROM {accounts.name} WHERE false").scalar() is None
        up = tx.execute("b", f"UPDATE {accounts.name} SET balance = balance + 1")
        assert (up.command, up.rowcount) == ("UPDATE 2", 2)


def test_one_transaction_at_a_time(conn: dtx.Connection, accounts: Accounts) -> None:
    with conn.transaction() as tx:
        tx.execute(*accounts.debit("a", 1))
        with pytest.raises(dtx.ProgrammingError, match="already in progress"):
            conn.transaction().begin()
        with pytest.raises(dtx.ProgrammingError, match="in progress"):
            conn.oneshot([accounts.credit("b", 1)])
    with pytest.raises(dtx.ProgrammingError, match="has ended"):
        tx.execute(*accounts.debit("a", 1))
    with pytest.raises(dtx.ProgrammingError, match="has ended"):
        tx.commit()
    assert accounts.balances() == (99, 100)


def test_closed_connection_refuses_requests(accounts: Accounts) -> None:
    with dtx.connect() as c:
        tx = c.transaction()
        tx.begin()
    assert c.closed and c.broken and c.host is None
    with pytest.raises(dtx.OperationalError, match="closed") as e:
        tx.execute(*accounts.debit("a", 1))
    assert e.value.sqlstate == "08003"
    c.close()  # twice is harmless


def test_closing_with_an_open_transaction_rolls_it_back(accounts: Accounts) -> None:
    c = dtx.connect()
    tx = c.transaction()
    tx.execute(*accounts.debit("a", 50))
    c.close()
    with dtx.connect() as c2:
        # the row lock is released once the coordinator has rolled back
        def unlocked() -> bool:
            c2.oneshot([("a", "SET LOCAL lock_timeout = '200ms'"), accounts.debit("a", 0)])
            return True

        from conftest import wait_until

        wait_until(unlocked, timeout=20)
        assert c2.status(tx.gid).status is dtx.Status.ABORTED
    assert accounts.balances() == (100, 100)


def test_keyword_arguments_and_connection_strings() -> None:
    assert dtx.make_conninfo("host=h1", port=7, sslkey="/a b/k'ey") == r"host=h1 port='7' sslkey='/a b/k\'ey'"
    assert dtx.make_conninfo(host=["h1", "h2"], port=[1, 2], sslcert=None) == "host='h1,h2' port='1,2'"
    with dtx.connect(
        host=os.environ["DTXHOST"],
        port=int(os.environ["DTXPORT"]),
        sslrootcert=os.environ["DTXSSLROOTCERT"],
        sslcert=os.environ["DTXSSLCERT"],
        sslkey=os.environ["DTXSSLKEY"],
        sslmode="verify-full",
        connect_timeout=5,
        application_name="py test's app",
    ) as c:
        assert read(c, "a", "SELECT 1") == [(1,)]
    # the string loses to the keywords: the last value of a key wins
    with dtx.connect(f"port=1 host={os.environ['DTXHOST']}", port=os.environ["DTXPORT"]) as c:
        assert c.port == int(os.environ["DTXPORT"])


def test_bad_connection_strings_are_refused_before_connecting() -> None:
    with pytest.raises(dtx.ProgrammingError, match='invalid connection option "dbname"'):
        dtx.connect("dbname=x")
    with pytest.raises(dtx.ProgrammingError, match='sslmode "require" is not supported'):
        dtx.connect(sslmode="require")
    with pytest.raises(dtx.ProgrammingError, match="could not match 3 port numbers to 2 hosts"):
        dtx.connect(host="a,b", port="1,2,3")
    with pytest.raises(dtx.ProgrammingError):
        dtx.connect(port=object())


def test_statements_are_checked_before_sending(conn: dtx.Connection) -> None:
    with conn.transaction() as tx:
        with pytest.raises(dtx.ProgrammingError, match="participant name is required"):
            tx.execute("", "SELECT 1")
        with pytest.raises(dtx.ProgrammingError, match="must be a sequence"):
            tx.execute("a", "SELECT $1", "not a list")
        with pytest.raises(dtx.ProgrammingError, match="SQL must be a str"):
            tx.execute("a", b"SELECT 1")  # type: ignore[arg-type]
        assert tx.execute("a", "SELECT 1").scalar() == 1


def test_the_gil_is_released_while_waiting(conn: dtx.Connection) -> None:
    # a statement that waits 1 s in PostgreSQL, in another thread: this
    # thread keeps running Python meanwhile
    def slow() -> None:
        read(conn, "a", "SELECT pg_sleep(1)")

    t = threading.Thread(target=slow)
    t0 = time.monotonic()
    t.start()
    spins = 0
    while t.is_alive():
        spins += 1
    t.join()
    assert time.monotonic() - t0 >= 0.9
    assert spins > 10000, f"only {spins} iterations while the other thread waited"


def test_a_connection_used_by_two_threads_at_once_is_refused(conn: dtx.Connection) -> None:
    started = threading.Event()

    def slow() -> None:
        started.set()
        read(conn, "a", "SELECT pg_sleep(1)")

    t = threading.Thread(target=slow)
    t.start()
    started.wait()
    time.sleep(0.2)
    with pytest.raises(dtx.InterfaceError, match="in use by another thread"):
        conn.status("dtx:c1:1:1")
    t.join()
    conn.status("dtx:c1:1:1")  # free again


def test_one_connection_per_thread(accounts: Accounts) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with dtx.connect() as c:
                for _ in range(5):
                    with c.transaction() as tx:
                        tx.execute(*accounts.debit("a", 1, "y"))
                        tx.execute(*accounts.credit("b", 1, "y"))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert accounts.balances("y") == (60, 140)
