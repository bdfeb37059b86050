"""The asyncio API: the same operations as coroutines, many concurrent
transactions on one loop, and a loop that never blocks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from conftest import Accounts, wait_until

import dtx


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(coro_fn())


class Ticker:
    """A task that wakes every 10 ms and records the longest gap between
    two wake-ups: how long the loop was kept from running it."""

    def __init__(self) -> None:
        self.gap = 0.0
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            self.gap = max(self.gap, now - last)
            last = now

    def __enter__(self) -> Ticker:
        self.task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()


def test_async_transaction_commits(accounts: Accounts) -> None:
    async def main() -> None:
        async with await dtx.connect_async(application_name="pytest-async") as c:
            assert c.server_name == "c1"
            async with c.transaction() as tx:
                r = await tx.execute(*accounts.debit("a", 10))
                assert (r.rowcount, r.participant) == (1, "a")
                await tx.execute(*accounts.credit("b", 10))
                sel = await tx.execute("b", f"SELECT balance FROM {accounts.name} WHERE id = $1", ["x"])
                assert sel.rows == [(110,)]
            st = await c.status(tx.gid or "")
            assert st.status is dtx.Status.COMMITTED

    run(main)
    assert accounts.balances() == (90, 110)


def test_async_rollback_on_exception_and_errors(accounts: Accounts) -> None:
    async def main() -> None:
        c = await dtx.connect_async()
        with pytest.raises(ValueError):
            async with c.transaction() as tx:
                await tx.execute(*accounts.debit("a", 10))
                raise ValueError("no")
        assert (await c.status(tx.gid or "")).status is dtx.Status.ABORTED
        with pytest.raises(dtx.IntegrityError) as e:
            async with c.transaction() as tx:
                await tx.execute(*accounts.credit("a", 10))
                await tx.execute(*accounts.debit("b", 1000))
        assert (e.value.sqlstate, e.value.participant, e.value.gid) == ("23514", "b", tx.gid)
        # explicit: begin, commit
        tx = c.transaction()
        gid = await tx.begin()
        await tx.execute(*accounts.debit("a", 1))
        assert await tx.commit() == gid
        c.close()
        assert c.closed

    run(main)
    assert accounts.balances() == (99, 100)


def test_async_oneshot_status_and_indoubt(accounts: Accounts) -> None:
    async def main() -> None:
        async with await dtx.connect_async() as c:
            gid, results = await c.oneshot([accounts.debit("a", 3), accounts.credit("b", 3),
                                             ("a", "SELECT $1::int + 1", [41])])
            assert results[2].scalar() == 42 and [r.participant for r in results] == ["a", "b", "a"]
            assert (await c.status(gid)).status is dtx.Status.COMMITTED
            with pytest.raises(dtx.IntegrityError) as e:
                await c.oneshot([accounts.debit("a", 3), accounts.debit("b", 3000)])
            assert e.value.outcome == "ABORTED" and e.value.participant == "b"
            assert (await c.status(e.value.gid or "")).status is dtx.Status.ABORTED
            assert isinstance(await c.indoubt(), list)

    run(main)
    assert accounts.balances() == (97, 103)


def test_many_concurrent_transactions_on_one_loop(accounts: Accounts) -> None:
    n = 40
    setup = [(p, f"INSERT INTO {accounts.name} (id, balance) SELECT 'c' || g, 1000 "
                 f"FROM generate_series(0, {n - 1}) g") for p in ("a", "b")]
    with dtx.connect() as c:
        for st in setup:
            c.oneshot([st])

    async def client(i: int) -> list[str]:
        async with await dtx.connect_async() as c:
            gids = []
            for _ in range(3):
                async with c.transaction() as tx:
                    await tx.execute(*accounts.debit("a", 1, f"c{i}"))
                    await tx.execute(*accounts.credit("b", 1, f"c{i}"))
                gids.append(tx.gid or "")
                gids.append((await c.oneshot([accounts.debit("a", 1, f"c{i}"),
                                              accounts.credit("b", 1, f"c{i}")])).gid)
            return gids

    async def main() -> tuple[list[list[str]], float, float]:
        with Ticker() as t:
            t0 = time.monotonic()
            out = await asyncio.gather(*(client(i) for i in range(n)))
            return out, time.monotonic() - t0, t.gap

    out, elapsed, gap = run(main)
    gids = [g for per in out for g in per]
    assert len(set(gids)) == n * 6
    with dtx.connect() as c:
        _, (ra, rb) = c.oneshot([
            ("a", f"SELECT sum(balance) FROM {accounts.name} WHERE id LIKE 'c%'"),
            ("b", f"SELECT sum(balance) FROM {accounts.name} WHERE id LIKE 'c%'"),
        ])
    assert (ra.scalar(), rb.scalar()) == (n * 1000 - n * 6, n * 1000 + n * 6)
    # the loop kept running: no wait for the network held it
    assert gap < 0.5, f"the loop was blocked for {gap:.3f} s (all took {elapsed:.1f} s)"


def test_the_loop_runs_while_a_statement_waits() -> None:
    async def main() -> float:
        async with await dtx.connect_async() as c:
            with Ticker() as t:
                await c.oneshot([("a", "SELECT pg_sleep(1)")])
                return t.gap

    assert run(main) < 0.3


def test_tasks_sharing_a_connection_take_turns() -> None:
    async def main() -> list[Any]:
        async with await dtx.connect_async() as c:
            return await asyncio.gather(*(c.oneshot([("a", "SELECT $1::int", [i])]) for i in range(10)))

    out = run(main)
    assert [r.results[0].scalar() for r in out] == list(range(10))


def test_a_cancelled_request_closes_the_connection(accounts: Accounts) -> None:
    async def main() -> str:
        c = await dtx.connect_async()
        tx = c.transaction()
        await tx.execute(*accounts.debit("a", 60))
        task = asyncio.create_task(tx.execute("a", "SELECT pg_sleep(5)"))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert c.closed
        with pytest.raises(dtx.OperationalError, match="closed"):
            await c.status("dtx:c1:1:1")
        return tx.gid or ""

    gid = run(main)
    with dtx.connect() as c:
        wait_until(lambda: c.status(gid).status is dtx.Status.ABORTED, timeout=20)
    assert accounts.balances() == (100, 100)


def test_async_connect_errors() -> None:
    async def main() -> None:
        with pytest.raises(dtx.ProgrammingError, match="invalid connection option"):
            await dtx.connect_async("nosuchkey=1")
        with pytest.raises(asyncio.TimeoutError):
            # a time limit is the caller's: asyncio.wait_for around the connect
            await asyncio.wait_for(dtx.connect_async(), timeout=0.000001)
        # nothing was left behind: connecting again works
        async with await dtx.connect_async() as c:
            assert c.server_name == "c1"

    run(main)
