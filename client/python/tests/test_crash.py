"""A connection dropped in the middle of a commit: the coordinator is
killed (SIGKILL) after its COMMIT decision is durable and before it
answers.  The client gets OutcomeUnknown with the gid, and once the
coordinator is back, status(gid) answers COMMITTED, indoubt() lists the
transaction until it is finished everywhere, and then both databases hold
its changes.

The failpoint coord-after-commit-durable=sleep:3000@1 holds the first
two-participant commit after a restart for 3 s at that point
(docs/failpoints.md); the test kills the coordinator while it is held."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from conftest import Accounts, Coordinator, dtx_tool, read, wait_until

import dtx

HOLD = "coord-after-commit-durable=sleep:3000@1"
FIRED = "failpoint coord-after-commit-durable fired"


def both_committed(accounts: Accounts, a: int, b: int) -> bool:
    return accounts.balances() == (a, b)


def test_commit_dropped_mid_commit(coordinator: Coordinator, accounts: Accounts) -> None:
    coordinator.restart(HOLD)
    since = coordinator.log_size()
    conn = dtx.connect()
    tx = conn.transaction()
    tx.execute(*accounts.debit("a", 25))
    tx.execute(*accounts.credit("b", 25))

    outcome: dict[str, Any] = {}

    def commit() -> None:
        try:
            outcome["gid"] = tx.commit()
        except BaseException as e:  # noqa: BLE001 - examined below
            outcome["error"] = e

    t = threading.Thread(target=commit)
    t.start()
    coordinator.wait_log(FIRED, since)
    coordinator.kill()
    t.join(30)
    assert not t.is_alive()

    err = outcome.get("error")
    assert isinstance(err, dtx.OutcomeUnknown), outcome
    assert err.gid == tx.gid and err.outcome == "UNKNOWN"
    assert err.sqlstate == "08006" and not err.heuristic
    assert conn.broken
    with pytest.raises(dtx.OperationalError):
        conn.oneshot([("a", "SELECT 1")])
    conn.close()

    # back, with phase two held off: the decision is there, the transaction
    # in doubt until the resolver runs
    coordinator.restart("coord-resolver-pass=error@1+")
    with dtx.connect() as c:
        st = c.status(err.gid)
        assert st.status is dtx.Status.COMMITTED, st
        doubt = {t.gid: t for t in c.indoubt()}
        assert err.gid in doubt, doubt
        assert doubt[err.gid].participants == ("a", "b")
        assert "committed" in doubt[err.gid].state
        tool = dtx_tool("indoubt")
        assert err.gid in tool.stdout
        assert dtx_tool("status", err.gid).stdout.splitlines()[0] == f"COMMITTED {err.gid}"

    # and finished everywhere once the resolver may run
    coordinator.restart("")
    with dtx.connect() as c:
        wait_until(lambda: err.gid not in {t.gid for t in c.indoubt()}, timeout=30)
        assert c.status(err.gid).status is dtx.Status.COMMITTED
    wait_until(lambda: both_committed(accounts, 75, 125), timeout=30)


def test_oneshot_dropped_mid_commit(coordinator: Coordinator, accounts: Accounts) -> None:
    coordinator.restart(HOLD)
    since = coordinator.log_size()
    conn = dtx.connect()
    outcome: dict[str, Any] = {}

    def oneshot() -> None:
        try:
            outcome["result"] = conn.oneshot([accounts.debit("a", 5), accounts.credit("b", 5)])
        except BaseException as e:  # noqa: BLE001
            outcome["error"] = e

    t = threading.Thread(target=oneshot)
    t.start()
    coordinator.wait_log(FIRED, since)
    coordinator.kill()
    t.join(30)
    err = outcome.get("error")
    assert isinstance(err, dtx.OutcomeUnknown), outcome
    # the gid is known although no answer came: it was reserved in advance
    assert err.gid and err.gid.startswith("dtx:c1:")
    conn.close()
    coordinator.restart("")
    with dtx.connect() as c:
        assert c.status(err.gid).status is dtx.Status.COMMITTED
    wait_until(lambda: both_committed(accounts, 95, 105), timeout=30)


def test_async_commit_dropped_mid_commit(coordinator: Coordinator, accounts: Accounts) -> None:
    coordinator.restart(HOLD)
    since = coordinator.log_size()

    async def main() -> dtx.OutcomeUnknown:
        c = await dtx.connect_async()
        tx = c.transaction()
        await tx.execute(*accounts.debit("a", 40))
        await tx.execute(*accounts.credit("b", 40))
        commit = asyncio.create_task(tx.commit())
        await asyncio.get_running_loop().run_in_executor(None, coordinator.wait_log, FIRED, since)
        coordinator.kill()
        with pytest.raises(dtx.OutcomeUnknown) as e:
            await commit
        assert e.value.gid == tx.gid and c.broken
        c.close()
        return e.value

    err = asyncio.run(main())
    assert err.sqlstate == "08006"
    coordinator.restart("")

    async def ask() -> dtx.TransactionStatus:
        async with await dtx.connect_async() as c:
            return await c.status(err.gid or "")

    assert asyncio.run(ask()).status is dtx.Status.COMMITTED
    wait_until(lambda: both_committed(accounts, 60, 140), timeout=30)


def test_a_broken_connection_says_so_and_a_new_one_works(coordinator: Coordinator) -> None:
    conn = dtx.connect()
    assert read(conn, "a", "SELECT 1") == [(1,)]
    coordinator.restart("")
    with pytest.raises(dtx.OperationalError) as e:
        conn.status("dtx:c1:1:1")
    assert e.value.sqlstate == "08006"
    # a one-shot transaction on the broken connection is never sent: aborted
    with pytest.raises(dtx.OperationalError) as e:
        conn.oneshot([("a", "SELECT 1")])
    assert e.value.outcome == "ABORTED" and e.value.gid is None
    assert conn.broken and not conn.closed
    conn.close()
    with dtx.connect() as c:
        assert read(c, "b", "SELECT 2") == [(2,)]
