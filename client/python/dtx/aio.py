"""aio — the asyncio API: connect_async(), AsyncConnection and
AsyncTransaction, the blocking API's twins in ``async`` form.

NOTES
    Built on libdtx's non-blocking calls, the way docs/client.md
    ("Asynchronous use") describes for any event loop:

        connect   dtx_connect_start, then dtx_connect_poll whenever
                  dtx_socket() is as readable or writable as it asked
        request   dtx_send_*; dtx_flush until 0 (waiting for writable, and
                  readable -> dtx_consume_input, while it says 1); then,
                  while dtx_is_busy, wait for readable and
                  dtx_consume_input; dtx_get_result until NULL, called
                  only when not busy, so that it never blocks

    Waiting is the event loop's: ``loop.add_reader`` / ``loop.add_writer``
    on the connection's socket resolve a future, and the coroutine awaits
    it.  The loop never blocks in libdtx, with one exception that is not
    libdtx's to avoid: name resolution (getaddrinfo) inside
    ``dtx_connect_start`` and ``dtx_connect_poll`` (the next host).  Those
    two calls therefore run in the loop's default executor; each is short
    and never waits on a socket.  The socket may change between polls (each
    host is a new one), so it is asked for before every wait.

    Requests on one connection are serialised by an asyncio.Lock: tasks
    sharing a connection take turns, one request in flight at a time (a
    transaction still belongs to one connection: a one-shot request while
    a transaction is open there is refused).  Use one connection per
    concurrent transaction: many of them can run on one loop.

    Outcomes follow libdtx's rules (docs/client.md, "Outcomes are never
    guessed"); what the blocking calls do when a request cannot even be
    sent is done here the same way: a COMMIT that could not be sent on a
    broken connection (and this package never sends two for one
    transaction) means ABORTED, and so does a one-shot request that could
    not be sent.

    Cancellation.  A request cancelled while in flight (task.cancel(),
    asyncio.timeout) cannot be taken back: the connection is closed and
    CancelledError propagates.  The coordinator rolls back an open
    transaction whose client is gone; a cancelled commit's outcome is
    unknown, so ask ``status(tx.gid)`` on another connection.
    connect_timeout applies to each address in the blocking connect(); in
    connect_async() time limits are the caller's (asyncio.timeout), as for
    libdtx's asynchronous connect.

    Threads.  An AsyncConnection belongs to its event loop; use it from
    that loop's thread only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from . import _libdtx as C
from . import result as R
from .connection import Statement, _check_name, _Handle, _library, _param_array, stmt_array
from .conninfo import check, make_conninfo
from .errors import Error, OperationalError, OutcomeUnknown, ProgrammingError, TransactionRollbackError


async def _wait(fd: int, read: bool, write: bool) -> None:
    """Wait until `fd` is readable (read) or writable (write), on the loop."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    if read:
        loop.add_reader(fd, ready)
    if write:
        loop.add_writer(fd, ready)
    try:
        await fut
    finally:
        if read:
            loop.remove_reader(fd)
        if write:
            loop.remove_writer(fd)


class AsyncConnection(_Handle):
    """An asyncio connection to a dtx coordinator.  Made by
    ``await dtx.connect_async()``."""

    def __init__(self, lib: Any, handle: int) -> None:
        super().__init__(lib, handle)
        self._lock = asyncio.Lock()
        self._tx: AsyncTransaction | None = None

    # ---- the request cycle --------------------------------------------------

    async def _request(self, send: Callable[[int], int]) -> list[int] | None:
        """Send one request (`send(c)` queues it) and collect all its
        results, as libdtx handles the caller must dtx_clear.  None when the
        request could not be queued (dtx_error_message says why)."""
        c = self._open_handle()
        L = self._L
        if not send(c):
            return None
        results: list[int] = []
        try:
            while L.dtx_flush(c) == 1:
                await _wait(L.dtx_socket(c), True, True)
                if not L.dtx_consume_input(c):
                    break
            while True:
                while L.dtx_is_busy(c):
                    fd = L.dtx_socket(c)
                    if fd >= 0:
                        await _wait(fd, True, False)
                    if not L.dtx_consume_input(c):
                        break
                r = L.dtx_get_result(c)
                if not r:
                    return results
                results.append(r)
        except BaseException:
            # cancelled (or worse) in the middle of a request: it cannot be
            # taken back, so the connection goes (see NOTES)
            for r in results:
                L.dtx_clear(r)
            self._tx = None
            self._close_handle()
            raise

    def _clear(self, results: list[int]) -> None:
        for r in results:
            self._L.dtx_clear(r)

    # ---- life ---------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; a transaction still open is rolled back by
        the coordinator.  Closing twice is harmless."""
        self._tx = None
        self._close_handle()

    async def __aenter__(self) -> AsyncConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # ---- transactions -------------------------------------------------------

    def transaction(self) -> AsyncTransaction:
        """A new transaction; it begins when its ``async with`` block is
        entered (or at begin(), or at its first execute())."""
        return AsyncTransaction(self)

    async def oneshot(self, statements: Iterable[Statement], *, results: bool = True) -> R.OneshotResult:
        """The one-round-trip transaction; see Connection.oneshot."""
        arr, n, keep, names = stmt_array(statements)
        async with self._lock:
            if self._tx is not None and self._tx._open:
                raise ProgrammingError(
                    f"a transaction is in progress on this connection ({self._tx.gid}): "
                    "commit or roll it back first"
                )
            L = self._L
            replies = await self._request(lambda c: L.dtx_send_oneshot(c, arr, n))
            del keep
            c = self._open_handle()
            if replies is None:  # not sent: no transaction began
                raise R.error_from_conn(L, c, outcome="ABORTED", default="the request could not be sent")
            out = _outcome_of_results(L, c, replies, names)
            return out if results else R.OneshotResult(out.gid, [])

    # ---- questions ----------------------------------------------------------

    async def status(self, gid: str) -> R.TransactionStatus:
        """Ask the coordinator what became of transaction `gid`."""
        if not isinstance(gid, str) or not gid:
            raise ProgrammingError("a transaction id (gid) is required")
        async with self._lock:
            L = self._L
            results = await self._request(lambda c: L.dtx_send_status(c, gid.encode("utf-8")))
            c = self._open_handle()
            if results is None:
                raise R.error_from_conn(L, c, gid=gid)
            try:
                for r in results:
                    if L.dtx_result_kind(r) == C.KIND_STATUS:
                        return R.TransactionStatus(gid, R.status_of(L.dtx_result_gid_status(r)),
                                                   C.text(L.dtx_result_detail(r)) or "")
                raise _first_error(L, results, gid=gid) or OperationalError("no answer to STATUS")
            finally:
                self._clear(results)

    async def indoubt(self) -> list[R.InDoubt]:
        """The coordinator's in-doubt transactions; see Connection.indoubt."""
        async with self._lock:
            L = self._L
            results = await self._request(L.dtx_send_indoubt)
            c = self._open_handle()
            if results is None:
                raise R.error_from_conn(L, c)
            try:
                for r in results:
                    if L.dtx_result_kind(r) == C.KIND_INDOUBT:
                        return R.indoubt_list(L, r)
                raise _first_error(L, results) or OperationalError("no answer to INDOUBT")
            finally:
                self._clear(results)


def _first_error(L: Any, results: list[int], **kw: Any) -> Error | None:
    for r in results:
        if L.dtx_result_status(r) != C.RES_OK:
            return R.error_from_result(L, r, **kw)
    return None


def _outcome_of_results(L: Any, c: int, results: list[int], names: list[str] | None) -> Any:
    """Interpret a commit's or a one-shot's results ([STATEMENT|ERROR]...
    OUTCOME); frees them.  `names`: the one-shot's participants, in order
    (None for a commit).  Returns the gid (commit) or a OneshotResult."""
    oneshot = names is not None
    try:
        outcome = C.UNKNOWN
        gid: str | None = None
        out: list[R.Result] = []
        errors: list[int] = []
        for r in results:
            kind = L.dtx_result_kind(r)
            if kind == C.KIND_OUTCOME:
                outcome = L.dtx_result_outcome(r)
                gid = C.text(L.dtx_result_gid(r)) or None
            elif kind == C.KIND_STATEMENT:
                i = len(out) + len(errors)
                out.append(R.statement_result(L, r, names[i] if names and i < len(names) else None))
            elif kind == C.KIND_ERROR:
                errors.append(r)
        gid = gid or C.text(L.dtx_gid(c))
        if outcome == C.COMMITTED:
            return R.OneshotResult(gid or "", out) if oneshot else (gid or "")
        if outcome == C.ABORTED:
            if errors:
                # a one-shot's statement error is its first; a commit's, the reason
                raise R.error_from_result(L, errors[0], gid=gid, outcome="ABORTED")
            cls = OperationalError if L.dtx_status(c) != C.CONNECTION_OK else TransactionRollbackError
            raise cls("the transaction was rolled back", gid=gid, outcome="ABORTED")
        # UNKNOWN: the last error says why (08006, 40003, ...)
        if errors:
            raise R.error_from_result(L, errors[-1], gid=gid, outcome="UNKNOWN", cls=OutcomeUnknown)
        raise OutcomeUnknown("the outcome of the transaction is unknown", gid=gid, outcome="UNKNOWN")
    finally:
        for r in results:
            L.dtx_clear(r)


class AsyncTransaction:
    """One transaction on an AsyncConnection::

        async with conn.transaction() as tx:
            await tx.execute("orders", "INSERT INTO orders (item) VALUES ($1)", ["pen"])
            await tx.execute("stock", "UPDATE stock SET n = n - 1 WHERE item = $1", ["pen"])
    """

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self.gid: str | None = None
        """The transaction's global id, known from begin() on."""
        self._open = False
        self._ended = False

    async def begin(self) -> str:
        """Start the transaction; returns its gid (one round trip)."""
        if self._open or self._ended:
            raise ProgrammingError("this transaction has already begun")
        conn = self._conn
        async with conn._lock:
            if conn._tx is not None and conn._tx._open:
                raise ProgrammingError(
                    f"a transaction is already in progress on this connection ({conn._tx.gid})"
                )
            L = conn._L
            results = await conn._request(L.dtx_send_begin)
            c = conn._open_handle()
            if results is None:
                raise R.error_from_conn(L, c, default="could not begin the transaction")
            try:
                for r in results:
                    if L.dtx_result_kind(r) == C.KIND_BEGIN:
                        self.gid = C.text(L.dtx_result_gid(r))
                        self._open = True
                        conn._tx = self
                        return self.gid or ""
                raise _first_error(L, results) or OperationalError("no answer to BEGIN")
            finally:
                conn._clear(results)

    async def execute(self, participant: str, sql: str, params: Sequence[Any] | None = None) -> R.Result:
        """Run one statement; see Transaction.execute."""
        _check_name(participant, sql)
        n, values = _param_array(params)
        if not self._open:
            if self._ended:
                raise ProgrammingError(f"the transaction {self.gid} has ended")
            await self.begin()
        conn = self._conn
        p, s = participant.encode("utf-8"), sql.encode("utf-8")
        async with conn._lock:
            L = conn._L
            results = await conn._request(lambda c: L.dtx_send_exec_params(c, p, s, n, values))
            c = conn._open_handle()
            if results is None:
                raise R.error_from_conn(L, c, gid=self.gid)
            try:
                for r in results:
                    if L.dtx_result_status(r) != C.RES_OK:
                        raise R.error_from_result(L, r, gid=self.gid)
                for r in results:
                    if L.dtx_result_kind(r) == C.KIND_STATEMENT:
                        return R.statement_result(L, r, participant)
                raise OperationalError("no answer to the statement", gid=self.gid)
            finally:
                conn._clear(results)

    def _end(self) -> None:
        self._open = False
        self._ended = True
        if self._conn._tx is self:
            self._conn._tx = None

    async def commit(self) -> str:
        """Commit; see Transaction.commit."""
        if not self._open:
            raise ProgrammingError("the transaction is not open" if not self._ended else
                                   f"the transaction {self.gid} has ended")
        conn = self._conn
        async with conn._lock:
            L = conn._L
            try:
                results = await conn._request(L.dtx_send_commit)
            finally:
                self._end()
            c = conn._open_handle()
            if results is None:
                # COMMIT never left: on a broken connection that is an abort
                if L.dtx_status(c) != C.CONNECTION_OK:
                    raise OperationalError(
                        R.conn_message(L, c) + "; COMMIT was not sent, so the transaction did not commit",
                        gid=self.gid, outcome="ABORTED")
                raise OutcomeUnknown(R.conn_message(L, c) or "COMMIT could not be sent", gid=self.gid,
                                     outcome="UNKNOWN")
            return _outcome_of_results(L, c, results, None)

    async def rollback(self) -> str | None:
        """Roll back; returns the gid."""
        if not self._open:
            if self._ended:
                raise ProgrammingError(f"the transaction {self.gid} has ended")
            self._ended = True
            return None
        conn = self._conn
        async with conn._lock:
            L = conn._L
            try:
                results = await conn._request(L.dtx_send_rollback)
            finally:
                self._end()
            if results is None:  # broken connection, no COMMIT sent: aborted
                return self.gid
            try:
                for r in results:
                    if L.dtx_result_kind(r) == C.KIND_OUTCOME and L.dtx_result_outcome(r) == C.UNKNOWN:
                        raise OutcomeUnknown("the outcome of the transaction is unknown", gid=self.gid,
                                             outcome="UNKNOWN")
                return self.gid
            finally:
                conn._clear(results)

    async def __aenter__(self) -> AsyncTransaction:
        if not self._open:
            await self.begin()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> None:
        if not self._open:
            return
        if exc_type is None:
            await self.commit()
            return
        if self._conn.closed:  # cancelled mid-request: the connection went
            self._end()
            return
        try:
            await self.rollback()
        except Error as e:
            if exc is not None:
                exc.add_note(f"dtx: the rollback failed too: {e}")

    def __repr__(self) -> str:
        state = "open" if self._open else "ended" if self._ended else "not begun"
        return f"<dtx.AsyncTransaction {self.gid or ''} {state}>"


async def _step(fn: Callable[[Any], Any], arg: Any, c: int | None) -> Any:
    """fn(arg) in the loop's default executor (see NOTES).  If the caller
    is cancelled meanwhile, the call still runs to its end, and only then
    is the connection freed (c, or what fn returned when c is None)."""
    loop = asyncio.get_running_loop()
    fut = loop.run_in_executor(None, fn, arg)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        L = _library()

        def free(f: asyncio.Future[Any]) -> None:
            handle = c if c is not None else (None if f.cancelled() or f.exception() else f.result())
            if handle:
                L.dtx_finish(handle)

        fut.add_done_callback(free)
        raise


async def connect_async(conninfo: str = "", **kwargs: Any) -> AsyncConnection:
    """Connect without blocking the event loop; the arguments are those of
    dtx.connect().  Raises ProgrammingError for a bad connection string,
    OperationalError when no host could be connected to."""
    info = make_conninfo(conninfo, **kwargs)
    check(info)
    L = _library()
    c = await _step(L.dtx_connect_start, info.encode("utf-8"), None)
    if not c:
        raise MemoryError("out of memory in libdtx")
    try:
        st = C.POLL_WRITING if L.dtx_status(c) != C.CONNECTION_BAD else C.POLL_FAILED
        while st not in (C.POLL_OK, C.POLL_FAILED):
            await _wait(L.dtx_socket(c), st == C.POLL_READING, st == C.POLL_WRITING)
            try:
                st = await _step(L.dtx_connect_poll, c, c)
            except asyncio.CancelledError:
                c = 0  # freed by _step once the poll is over
                raise
        if st == C.POLL_FAILED:
            raise OperationalError((C.text(L.dtx_error_message(c)) or "could not connect").rstrip("\n"))
    except BaseException:
        if c:
            L.dtx_finish(c)
        raise
    return AsyncConnection(L, c)


__all__ = ["AsyncConnection", "AsyncTransaction", "connect_async"]
