"""connection — the blocking API: connect(), Connection and Transaction.

NOTES
    Each method is one libdtx blocking call (``dtx_begin``,
    ``dtx_exec_params``, ``dtx_commit``, ``dtx_rollback``, ``dtx_oneshot``,
    ``dtx_outcome_of``, ``dtx_indoubt``) and keeps libdtx's exact outcomes:
    nothing is retried, and nothing is guessed.  ctypes releases the GIL
    around each call, so other threads run while one waits on the network.

    Transactions.  A Connection runs one transaction at a time:

        conn.transaction() --begin (enter / first execute)--> OPEN
        OPEN --commit: COMMITTED--> returns the gid
        OPEN --commit: ABORTED--> raises the reason (gid, outcome "ABORTED")
        OPEN --commit: UNKNOWN--> raises OutcomeUnknown (gid)
        OPEN --rollback--> ABORTED (returns the gid)

    Leaving a ``with`` block commits when it ends normally and rolls back
    when it ends with an exception (which then propagates unchanged; a
    failure of the rollback itself is added to it as a note).  A statement
    that fails raises its error and leaves the transaction aborted, as in
    PostgreSQL: later statements fail with 25P02, and commit raises.

    Threads.  A Connection and its Transaction belong to one thread at a
    time, as a dtx_conn does; share one only under a lock of your own.  To
    turn a mistake into an error instead of memory corruption, every method
    takes a non-blocking guard and raises InterfaceError when another
    thread is inside a call on the same connection.  Results are plain
    Python objects and may go anywhere.

    Closing.  ``close()`` (or leaving ``with dtx.connect(...) as conn``)
    frees the connection; a transaction still open is rolled back by the
    coordinator, which rolls back what its client abandons.  A connection
    that broke stays broken: open a new one (``broken`` tells).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from . import _libdtx as C
from . import result as R
from .conninfo import check, make_conninfo
from .errors import Error, InterfaceError, OperationalError, OutcomeUnknown, ProgrammingError
from .types import encode_params

Statement = tuple[str, str] | tuple[str, str, Sequence[Any] | None]


def _library() -> Any:
    try:
        return C.lib()
    except C.LibraryNotFound as e:
        raise InterfaceError(str(e)) from None


# ctypes array types by length, made once (char *[n], dtx_stmt[n])
_CHARP_ARRAYS: dict[int, Any] = {}
_STMT_ARRAYS: dict[int, Any] = {}


def _param_array(params: Sequence[Any] | None) -> tuple[int, Any]:
    """Parameters as (count, char *[] array or None)."""
    if not params:
        if params is None or isinstance(params, (list, tuple)):
            return 0, None
    values = encode_params(params)
    k = len(values)
    if not k:
        return 0, None
    if k > 65535:
        raise ProgrammingError(f"too many parameters: {k} (at most 65535)")
    t = _CHARP_ARRAYS.get(k)
    if t is None:
        t = _CHARP_ARRAYS[k] = ctypes.c_char_p * k
    return k, t(*values)


def _check_name(participant: Any, sql: Any) -> None:
    if not isinstance(participant, str) or not participant:
        raise ProgrammingError(f"a participant name is required (a non-empty str), not {participant!r}")
    if not isinstance(sql, str):
        raise ProgrammingError(f"the SQL must be a str, not {type(sql).__name__}")


def stmt_array(statements: Iterable[Statement]) -> tuple[Any, int, list[Any], list[str]]:
    """A one-shot transaction's statements as a dtx_stmt array: (array,
    count, objects the array points into, to be kept alive during the
    call, the participants in order)."""
    rows: list[tuple[bytes, bytes, int, Any]] = []
    names: list[str] = []
    for st in statements:
        n = len(st) if isinstance(st, (tuple, list)) else 0
        if n == 3:
            participant, sql, params = st
        elif n == 2:
            participant, sql = st
            params = None
        else:
            raise ProgrammingError(
                f"statement {len(rows) + 1}: expected (participant, sql) or (participant, sql, params)"
            )
        if type(participant) is not str or not participant or type(sql) is not str:
            _check_name(participant, sql)
        names.append(participant)
        k, values = _param_array(params)
        rows.append((participant.encode("utf-8"), sql.encode("utf-8"), k, values))
    k = len(rows)
    if not k:
        raise ProgrammingError("a one-shot transaction needs at least one statement")
    t = _STMT_ARRAYS.get(k)
    if t is None:
        t = _STMT_ARRAYS[k] = C.Stmt * k
    return t(*rows), k, rows, names


class _Handle:
    """What the blocking and the asyncio connections share: the dtx_conn
    and its accessors."""

    _c: int | None

    def __init__(self, lib: Any, handle: int) -> None:
        self._L = lib
        self._c = handle

    def __del__(self) -> None:
        c, self._c = getattr(self, "_c", None), None
        if c:
            try:
                self._L.dtx_finish(c)
            except Exception:  # interpreter shutdown
                pass

    def _close_handle(self) -> None:
        c, self._c = self._c, None
        if c:
            self._L.dtx_finish(c)

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._c is None

    def _read(self, fn: Any) -> Any:
        """fn(handle) for an accessor, None when closed.  (Connection
        guards it: libdtx's strings change while a call runs.)"""
        c = self._c
        return fn(c) if c else None

    @property
    def broken(self) -> bool:
        """True when the connection is closed or was lost (a new one is
        needed)."""
        status = self._read(self._L.dtx_status)
        return status is None or status != C.CONNECTION_OK

    @property
    def host(self) -> str | None:
        """The host connected to (as written in `host`)."""
        return C.text(self._read(self._L.dtx_host))

    @property
    def port(self) -> int | None:
        """The port connected to."""
        return self._read(self._L.dtx_port)

    @property
    def server_name(self) -> str | None:
        """The coordinator's name (its configuration's `name`)."""
        return C.text(self._read(self._L.dtx_server_name))

    @property
    def gid(self) -> str | None:
        """The gid of the current or last transaction on this connection."""
        return C.text(self._read(self._L.dtx_gid))

    def _open_handle(self) -> int:
        c = self._c
        if c is None:
            raise OperationalError("the connection is closed", sqlstate="08003")
        return c

    def __repr__(self) -> str:
        try:
            where = "closed" if self._c is None else f"{self.host}:{self.port}"
        except Error:
            where = "in use"
        return f"<dtx.{type(self).__name__} {where}>"


class Connection(_Handle):
    """A blocking connection to a dtx coordinator.  Made by dtx.connect()."""

    def __init__(self, lib: Any, handle: int) -> None:
        super().__init__(lib, handle)
        self._guard = threading.Lock()
        self._tx: Transaction | None = None
        # dtx_oneshot's out-parameters, reused (under the guard)
        self._results = ctypes.POINTER(ctypes.c_void_p)()
        self._nresults = ctypes.c_int()
        self._results_ref = ctypes.byref(self._results)
        self._nresults_ref = ctypes.byref(self._nresults)

    # ---- the guard: one thread at a time --------------------------------------

    def _enter(self) -> int:
        if not self._guard.acquire(blocking=False):
            raise InterfaceError(
                "the connection is in use by another thread: a dtx connection belongs to one "
                "thread at a time (share it only under a lock)"
            )
        try:
            return self._open_handle()
        except BaseException:
            self._guard.release()
            raise

    def _leave(self) -> None:
        self._guard.release()

    def _read(self, fn: Any) -> Any:
        c = self._enter() if self._c else None
        if c is None:
            return None
        try:
            return fn(c)
        finally:
            self._leave()

    # ---- life ---------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; a transaction still open is rolled back
        by the coordinator.  Closing twice is harmless."""
        if not self._guard.acquire(blocking=False):
            raise InterfaceError("the connection is in use by another thread")
        try:
            self._tx = None
            self._close_handle()
        finally:
            self._guard.release()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transactions -------------------------------------------------------

    def transaction(self) -> Transaction:
        """A new transaction on this connection.  It begins when its
        ``with`` block is entered (or at begin(), or at its first
        execute()); one transaction at a time per connection."""
        return Transaction(self)

    def oneshot(self, statements: Iterable[Statement], *, results: bool = True) -> R.OneshotResult:
        """Run a whole transaction in one request: the statements, in order,
        then commit, or abort at the first error.

        `statements` are (participant, sql) or (participant, sql, params)
        tuples; params is a sequence for $1, $2, ...  Returns (gid, results)
        when committed: one Result per statement, or none with
        results=False (for writes whose rows nobody reads: nothing is
        copied out of libdtx then).  A statement error raises that error
        (with the participant, the gid, outcome "ABORTED"); an unknown
        outcome raises OutcomeUnknown with the gid (None only if the
        connection broke before the coordinator named the transaction).
        """
        arr, n, keep, names = stmt_array(statements)
        c = self._enter()
        try:
            if self._tx is not None and self._tx._open:
                raise ProgrammingError(
                    f"a transaction is in progress on this connection ({self._tx.gid}): "
                    "commit or roll it back first"
                )
            L = self._L
            before = L.dtx_gid(c)
            if results:
                outcome = L.dtx_oneshot(c, arr, n, self._results_ref, self._nresults_ref)
            else:
                outcome = L.dtx_oneshot(c, arr, n, None, None)
            after = L.dtx_gid(c)
            gid = after.decode("utf-8") if after is not None and after != before else None
            del keep
            if not results:
                if outcome == C.COMMITTED:
                    return R.OneshotResult(gid or "", [])
                return _oneshot_outcome(L, c, outcome, gid, None, 0, names)
            return _oneshot_outcome(L, c, outcome, gid, self._results, self._nresults.value, names)
        finally:
            self._leave()

    # ---- questions ----------------------------------------------------------

    def status(self, gid: str) -> R.TransactionStatus:
        """Ask the coordinator what became of transaction `gid` (as
        ``dtx status GID``).  Raises when the question cannot be answered."""
        if not isinstance(gid, str) or not gid:
            raise ProgrammingError("a transaction id (gid) is required")
        c = self._enter()
        try:
            L = self._L
            detail = ctypes.c_void_p()
            st = L.dtx_outcome_of(c, gid.encode("utf-8"), ctypes.byref(detail))
            text = ""
            if detail.value:
                text = ctypes.string_at(detail.value).decode("utf-8", "replace")
                L.dtx_freemem(detail)
            if st == C.GID_ERROR:
                raise R.error_from_conn(L, c, gid=gid)
            return R.TransactionStatus(gid, R.status_of(st), text)
        finally:
            self._leave()

    def indoubt(self) -> list[R.InDoubt]:
        """The transactions the coordinator has decided but not finished
        everywhere, or not decided yet after a restart, and those finished
        with a heuristic outcome (as ``dtx indoubt``)."""
        c = self._enter()
        try:
            L = self._L
            r = L.dtx_indoubt(c)
            if not r:
                raise MemoryError("out of memory in libdtx")
            try:
                if L.dtx_result_status(r) != C.RES_OK:
                    raise R.error_from_result(L, r)
                return R.indoubt_list(L, r)
            finally:
                L.dtx_clear(r)
        finally:
            self._leave()


def _oneshot_outcome(L: Any, c: int, outcome: int, gid: str | None, results: Any, count: int,
                     names: list[str]) -> R.OneshotResult:
    """Interpret dtx_oneshot's answer (one result per statement run, in
    order: `names` are their participants); frees the results array."""
    try:
        out: list[R.Result] = []
        first_error: Error | None = None
        status = L.dtx_result_status
        for i in range(count):
            r = results[i]
            if status(r) == C.RES_OK:
                out.append(R.statement_result(L, r, names[i] if i < len(names) else None))
            elif first_error is None:
                first_error = R.error_from_result(L, r, gid=gid)
    finally:
        if results is not None:
            L.dtx_results_free(results)
    if outcome == C.COMMITTED:
        return R.OneshotResult(gid or "", out)
    if outcome == C.ABORTED:
        if first_error is not None:
            first_error.outcome = "ABORTED"
            raise first_error
        raise R.error_from_conn(L, c, gid=gid, outcome="ABORTED", default="the transaction was rolled back")
    raise R.error_from_conn(L, c, gid=gid, outcome="UNKNOWN", cls=OutcomeUnknown,
                            default="the outcome of the transaction is unknown")


class Transaction:
    """One transaction on a Connection.  Use it as a context manager::

        with conn.transaction() as tx:
            tx.execute("orders", "INSERT INTO orders (item) VALUES ($1)", ["pen"])
            tx.execute("stock", "UPDATE stock SET n = n - 1 WHERE item = $1", ["pen"])
        print(tx.gid)          # committed

    or call begin(), execute(), commit() / rollback() yourself.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.gid: str | None = None
        """The transaction's global id, known from begin() on."""
        self._open = False
        self._ended = False

    def begin(self) -> str:
        """Start the transaction; returns its gid.  (With a coordinator of
        protocol 1.2 this costs no round trip.)"""
        if self._open or self._ended:
            raise ProgrammingError("this transaction has already begun")
        conn = self._conn
        c = conn._enter()
        try:
            if conn._tx is not None and conn._tx._open:
                raise ProgrammingError(
                    f"a transaction is already in progress on this connection ({conn._tx.gid})"
                )
            L = conn._L
            gid = L.dtx_begin(c)
            if gid is None:
                raise R.error_from_conn(L, c, default="could not begin the transaction")
            self.gid = gid.decode("utf-8")
            self._open = True
            conn._tx = self
            return self.gid
        finally:
            conn._leave()

    def execute(self, participant: str, sql: str, params: Sequence[Any] | None = None) -> R.Result:
        """Run one statement on a participant; $1, $2, ... in `sql` refer to
        `params`, which PostgreSQL receives as parameters (never as SQL
        text).  Returns its Result; an error raises its exception, and the
        transaction is then aborted (roll it back)."""
        _check_name(participant, sql)
        n, values = _param_array(params)
        if not self._open:
            if self._ended:
                raise ProgrammingError(f"the transaction {self.gid} has ended")
            self.begin()
        conn = self._conn
        c = conn._enter()
        try:
            L = conn._L
            r = L.dtx_exec_params(c, participant.encode("utf-8"), sql.encode("utf-8"), n, values)
            if not r:
                raise MemoryError("out of memory in libdtx")
            try:
                if L.dtx_result_status(r) != C.RES_OK:
                    raise R.error_from_result(L, r, gid=self.gid)
                return R.statement_result(L, r, participant)
            finally:
                L.dtx_clear(r)
        finally:
            conn._leave()

    def _end(self) -> None:
        self._open = False
        self._ended = True
        if self._conn._tx is self:
            self._conn._tx = None

    def commit(self) -> str:
        """Commit: returns the gid when committed everywhere.  Raises the
        reason when the transaction was rolled back instead (outcome
        "ABORTED"), and OutcomeUnknown (with the gid) when the outcome
        cannot be known now."""
        if not self._open:
            raise ProgrammingError("the transaction is not open" if not self._ended else
                                   f"the transaction {self.gid} has ended")
        conn = self._conn
        c = conn._enter()
        try:
            L = conn._L
            outcome = L.dtx_commit(c)
            self._end()
            gid = C.text(L.dtx_gid(c)) or self.gid
            if outcome == C.COMMITTED:
                return gid or ""
            if outcome == C.ABORTED:
                raise R.error_from_conn(L, c, gid=gid, outcome="ABORTED",
                                        default="the transaction was rolled back")
            raise R.error_from_conn(L, c, gid=gid, outcome="UNKNOWN", cls=OutcomeUnknown,
                                    default="the outcome of the transaction is unknown")
        finally:
            conn._leave()

    def rollback(self) -> str | None:
        """Roll the transaction back; returns its gid."""
        if not self._open:
            if self._ended:
                raise ProgrammingError(f"the transaction {self.gid} has ended")
            self._ended = True  # never begun: nothing to roll back
            return None
        conn = self._conn
        c = conn._enter()
        try:
            L = conn._L
            outcome = L.dtx_rollback(c)
            self._end()
            if outcome == C.UNKNOWN:
                raise R.error_from_conn(L, c, gid=self.gid, outcome="UNKNOWN", cls=OutcomeUnknown,
                                        default="the outcome of the transaction is unknown")
            return self.gid
        finally:
            conn._leave()

    def __enter__(self) -> Transaction:
        if not self._open:
            self.begin()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if not self._open:
            return
        if exc_type is None:
            self.commit()
            return
        try:
            self.rollback()
        except Error as e:
            if exc is not None:
                exc.add_note(f"dtx: the rollback failed too: {e}")

    def __repr__(self) -> str:
        state = "open" if self._open else "ended" if self._ended else "not begun"
        return f"<dtx.Transaction {self.gid or ''} {state}>"


def connect(conninfo: str = "", **kwargs: Any) -> Connection:
    """Connect to a dtx coordinator and wait for the handshake (TLS, HELLO).

    `conninfo` is a libdtx connection string ("host=coord1,coord2
    sslrootcert=ca.crt ..."); keyword arguments (host, port, sslmode,
    sslrootcert, sslcert, sslkey, connect_timeout, application_name) are
    added to it and win over it; the DTX* environment variables supply the
    rest.  Several hosts are tried in order.  Raises ProgrammingError for a
    bad connection string, OperationalError (one line per host tried) when
    no host could be connected to.  Use as a context manager to close it.
    """
    info = make_conninfo(conninfo, **kwargs)
    check(info)
    L = _library()
    c = L.dtx_connect(info.encode("utf-8"))
    if not c:
        raise MemoryError("out of memory in libdtx")
    if L.dtx_status(c) != C.CONNECTION_OK:
        message = (C.text(L.dtx_error_message(c)) or "could not connect").rstrip("\n")
        L.dtx_finish(c)
        raise OperationalError(message)
    return Connection(L, c)
