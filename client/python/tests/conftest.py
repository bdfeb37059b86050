"""Fixtures of the dtx package's tests.

These tests run against real processes: a dtx-coordinator, two
dtx-participants ("a" and "b", each in front of its own PostgreSQL
cluster) and TLS with certificates, all started by
tests/integration/python.sh, which runs pytest and turns each test into one
"ok N" / "not ok N" line of `make check`.  Nothing is mocked.

What the suite passes in the environment:

    DTXHOST, DTXPORT, DTXSSLROOTCERT, DTXSSLCERT, DTXSSLKEY
                        the coordinator, as libdtx reads them
    LIBDTX_PATH         the libdtx to load
    DTXTEST_CERTS       the directory of the test certificates
    DTXTEST_DEAD_PORT   a port on 127.0.0.1 where nothing listens
    DTXTEST_PG_PORT     the port of participant a's PostgreSQL (not a
                        coordinator: a host a client must skip)
    DTXTEST_DTX         the dtx command-line tool, to compare answers with
    DTXTEST_CTL         a directory through which a test asks the suite to
                        restart the coordinator (see Coordinator below)
    DTXTEST_COORD_LOG   the coordinator's log file
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import dtx

PARTICIPANTS = ("a", "b")


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run these tests through tests/integration/python.sh")
    return value


class Coordinator:
    """The running coordinator, which a test may kill and have restarted.

    A restart is asked of the suite (python.sh), which started the
    coordinator and owns it: the test writes the failpoints to arm (maybe
    none) into CTL/request and waits for CTL/done; the suite kills the
    coordinator if it still runs, starts it again with DTX_FAILPOINTS set
    to that, waits until both participant links are up and writes the new
    pid into CTL/pid."""

    def __init__(self) -> None:
        self.ctl = env("DTXTEST_CTL")
        self.log = env("DTXTEST_COORD_LOG")
        self.armed = ""

    @property
    def pid(self) -> int:
        with open(os.path.join(self.ctl, "pid")) as f:
            return int(f.read().strip())

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)

    def log_size(self) -> int:
        return os.path.getsize(self.log)

    def wait_log(self, needle: str, since: int, timeout: float = 20) -> None:
        """Wait until the log, from byte `since` on, contains `needle`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log, "rb") as f:
                f.seek(since)
                if needle.encode() in f.read():
                    return
            time.sleep(0.05)
        raise AssertionError(f"the coordinator's log has no {needle!r} after {timeout} s")

    def restart(self, failpoints: str = "", timeout: float = 90) -> None:
        done = os.path.join(self.ctl, "done")
        if os.path.exists(done):
            os.unlink(done)
        tmp = os.path.join(self.ctl, "request.tmp")
        with open(tmp, "w") as f:
            f.write(failpoints)
        os.rename(tmp, os.path.join(self.ctl, "request"))
        deadline = time.monotonic() + timeout
        while not os.path.exists(done):
            if time.monotonic() > deadline:
                raise AssertionError("the suite did not restart the coordinator")
            time.sleep(0.05)
        with open(done) as f:
            answer = f.read().strip()
        assert answer == "ok", f"restarting the coordinator failed: {answer}"
        self.armed = failpoints


@pytest.fixture(scope="session")
def coordinator() -> Iterator[Coordinator]:
    c = Coordinator()
    yield c
    if c.armed:  # leave it as found: no failpoints
        c.restart("")


@pytest.fixture
def conn() -> Iterator[dtx.Connection]:
    with dtx.connect(application_name="pytest") as c:
        yield c


def read(conn: dtx.Connection, participant: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """The rows of a query, in a one-shot transaction of its own."""
    _, results = conn.oneshot([(participant, sql, params)])
    return results[0].rows


class Accounts:
    """A table `name` (id text primary key, balance int CHECK >= 0) on both
    participants, with accounts x and y holding 100 each on both."""

    def __init__(self, conn: dtx.Connection, name: str) -> None:
        self.conn = conn
        self.name = name

    def balance(self, participant: str, ident: str = "x") -> int:
        with dtx.connect() as c:
            rows = read(c, participant, f"SELECT balance FROM {self.name} WHERE id = $1", [ident])
        return rows[0][0]

    def balances(self, ident: str = "x") -> tuple[int, int]:
        return self.balance("a", ident), self.balance("b", ident)

    def debit(self, participant: str, amount: int, ident: str = "x") -> tuple[str, str, list[Any]]:
        return (participant, f"UPDATE {self.name} SET balance = balance - $1 WHERE id = $2", [amount, ident])

    def credit(self, participant: str, amount: int, ident: str = "x") -> tuple[str, str, list[Any]]:
        return (participant, f"UPDATE {self.name} SET balance = balance + $1 WHERE id = $2", [amount, ident])


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def create_everywhere(conn: dtx.Connection, ddl: str) -> None:
    """Run DDL on every participant, one one-shot transaction each."""
    for p in PARTICIPANTS:
        conn.oneshot([(p, ddl)])


@pytest.fixture
def accounts(conn: dtx.Connection) -> Iterator[Accounts]:
    name = unique_name("acct")
    create_everywhere(
        conn,
        f"CREATE TABLE {name} (id text PRIMARY KEY, balance int NOT NULL CHECK (balance >= 0), note text)",
    )
    for p in PARTICIPANTS:
        conn.oneshot([(p, f"INSERT INTO {name} (id, balance) VALUES ('x', 100), ('y', 100)")])
    yield Accounts(conn, name)
    try:
        with dtx.connect() as c:
            create_everywhere(c, f"DROP TABLE IF EXISTS {name}")
    except dtx.Error:
        pass  # (a test that restarted the coordinator may leave it unreachable briefly)


def dtx_tool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the dtx command-line tool with the same environment."""
    return subprocess.run([env("DTXTEST_DTX"), *args], capture_output=True, text=True, timeout=60)


def wait_until(fn: Any, timeout: float = 30, every: float = 0.1) -> Any:
    """Call fn() until it returns something true; that value, or fail."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except dtx.OperationalError as e:
            last = e
        time.sleep(every)
    raise AssertionError(f"not true after {timeout} s (last: {last!r})")
