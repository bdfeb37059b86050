"""result — what requests return: statement results, one-shot results,
transaction statuses and in-doubt lists; and their construction from
libdtx's results.

NOTES
    Every libdtx result is copied into Python objects as soon as it
    arrives and then freed (``dtx_clear``): the objects here own no C
    memory, outlive their connection, and may be handed to other threads.

    Values are converted by type OID (types.py) when the result is built,
    so a value Python cannot hold raises DataError at once, from the call
    that ran the statement.

    Errors.  A libdtx error result becomes the exception of its SQLSTATE
    (errors.py) with the message, detail, hint and participant it carries;
    ``error_from_conn`` does the same for the error a blocking call left on
    the connection (``dtx_error_field``, ``dtx_error_message``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Iterator, NamedTuple

from . import _libdtx as C
from . import types as _types
from .errors import Error, InterfaceError, OperationalError, TransactionRollbackError, class_for_sqlstate


class Result:
    """The result of one statement on one participant.

    Attributes:
        participant: the participant that ran it.
        columns: the column names, in order (empty for a command without rows).
        type_oids: the PostgreSQL type OID of each column.
        rows: the rows, a list of tuples of converted values (None for NULL).
        rowcount: rows affected (INSERT, UPDATE, DELETE, ...) or returned
            (SELECT).
        command: the command tag, e.g. "INSERT 0 1", "UPDATE 2", "SELECT 3".
    """

    __slots__ = ("participant", "columns", "type_oids", "rows", "rowcount", "command")

    def __init__(
        self,
        participant: str | None,
        columns: tuple[str, ...],
        type_oids: tuple[int, ...],
        rows: list[tuple[Any, ...]],
        rowcount: int,
        command: str,
    ) -> None:
        self.participant = participant
        self.columns = columns
        self.type_oids = type_oids
        self.rows = rows
        self.rowcount = rowcount
        self.command = command

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def one(self) -> tuple[Any, ...] | None:
        """The first row, or None when there is none."""
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        """The first value of the first row, or None when there is no row."""
        return self.rows[0][0] if self.rows and self.rows[0] else None

    def __repr__(self) -> str:
        return f"<dtx.Result {self.participant!r} {self.command!r} rows={len(self.rows)}>"


class OneshotResult(NamedTuple):
    """What a committed one-shot transaction returns: its gid, and one
    Result per statement, in order."""

    gid: str
    results: list[Result]


class Status(enum.Enum):
    """What the coordinator says became of a transaction (``dtx status``).
    ``str()`` gives the words the dtx tool prints."""

    COMMITTED = 0
    ABORTED = 1
    UNKNOWN = 2  # the coordinator itself cannot know
    IN_PROGRESS = 3  # not decided yet
    NO_LONGER_KNOWN = 4  # older than the coordinator's outcome_retention
    HEURISTIC = 5  # decided COMMIT, but a branch was rolled back by someone else

    def __str__(self) -> str:
        return _STATUS_WORDS[self]


_STATUS_WORDS = {
    Status.COMMITTED: "COMMITTED",
    Status.ABORTED: "ABORTED",
    Status.UNKNOWN: "UNKNOWN",
    Status.IN_PROGRESS: "IN PROGRESS",
    Status.NO_LONGER_KNOWN: "NO LONGER KNOWN",
    Status.HEURISTIC: "HEURISTIC OUTCOME",
}


def status_of(value: int) -> Status:
    """A dtx_gid_status as a Status; InterfaceError for one this package
    does not know (a newer libdtx)."""
    try:
        return Status(value)
    except ValueError:
        raise InterfaceError(f"libdtx answered transaction status {value}, unknown to this dtx package") from None


@dataclass(frozen=True)
class TransactionStatus:
    """The coordinator's answer about one gid.

    Attributes:
        gid: the transaction asked about.
        status: a Status.
        detail: the coordinator's explanation ("" when none), e.g. for a
            heuristic outcome "committed on a; rolled back by hand on b".
    """

    gid: str
    status: Status
    detail: str

    @property
    def decided(self) -> bool:
        """True for COMMITTED and ABORTED: the outcome is final and known."""
        return self.status in (Status.COMMITTED, Status.ABORTED)

    def __str__(self) -> str:
        line = f"{self.status} {self.gid}"
        return f"{line}\n{self.detail}" if self.detail else line


class InDoubt(NamedTuple):
    """One transaction the coordinator has not finished everywhere (or one
    that finished with a heuristic outcome), as ``dtx indoubt`` lists it."""

    gid: str
    age_ms: int
    participants: tuple[str, ...]
    state: str


# ---- from libdtx results ------------------------------------------------------


def _field(L: Any, r: int, code: int) -> str | None:
    return C.text(L.dtx_result_error_field(r, code))


def error_from_result(L: Any, r: int, *, gid: str | None = None, outcome: str | None = None,
                      cls: type[Error] | None = None) -> Error:
    """The exception for an error result `r` (not freed here)."""
    sqlstate = _field(L, r, C.DIAG_SQLSTATE)
    participant = _field(L, r, C.DIAG_PARTICIPANT) or C.text(L.dtx_result_participant(r))
    return (cls or class_for_sqlstate(sqlstate))(
        _field(L, r, C.DIAG_MESSAGE) or "error",
        sqlstate=sqlstate,
        detail=_field(L, r, C.DIAG_DETAIL),
        hint=_field(L, r, C.DIAG_HINT),
        participant=participant,
        gid=gid,
        outcome=outcome,
    )


def conn_message(L: Any, c: int) -> str:
    """The connection's error message as one text (lines joined by '; ')."""
    msg = C.text(L.dtx_error_message(c)) or ""
    return "; ".join(line for line in msg.splitlines() if line)


def error_from_conn(L: Any, c: int, *, gid: str | None = None, outcome: str | None = None,
                    cls: type[Error] | None = None, default: str = "error") -> Error:
    """The exception for the error a blocking call left on connection `c`:
    its last error result's fields when there was one, else its message
    (then OperationalError when the connection is broken)."""
    sqlstate = C.text(L.dtx_error_field(c, C.DIAG_SQLSTATE))
    message = C.text(L.dtx_error_field(c, C.DIAG_MESSAGE)) or conn_message(L, c) or default
    if cls is None:
        if sqlstate:
            cls = class_for_sqlstate(sqlstate)
        elif L.dtx_status(c) != C.CONNECTION_OK:
            cls = OperationalError
        elif outcome == "ABORTED":
            cls = TransactionRollbackError
        else:
            cls = class_for_sqlstate(None)
    return cls(
        message,
        sqlstate=sqlstate,
        detail=C.text(L.dtx_error_field(c, C.DIAG_DETAIL)),
        hint=C.text(L.dtx_error_field(c, C.DIAG_HINT)),
        participant=C.text(L.dtx_error_field(c, C.DIAG_PARTICIPANT)),
        gid=gid,
        outcome=outcome,
    )


def statement_result(L: Any, r: int, participant: str | None = None) -> Result:
    """A STATEMENT result `r` (not freed here) as a Result; values converted.
    `participant` is the one the statement was sent to (else the result's
    own, dtx_result_participant)."""
    nf = L.dtx_nfields(r)
    if participant is None:
        participant = C.text(L.dtx_result_participant(r))
    if not nf:  # a command without rows: the common case, made short
        return Result(participant, (), (), [], L.dtx_cmd_tuples(r), L.dtx_cmd_status(r).decode("utf-8"))
    nt = L.dtx_ntuples(r)
    columns: tuple[str, ...] = ()
    oids: tuple[int, ...] = ()
    rows: list[tuple[Any, ...]] = []
    if nf:
        columns = tuple(L.dtx_fname(r, i).decode("utf-8") for i in range(nf))
        oids = tuple(L.dtx_ftype(r, i) for i in range(nf))
        loaders = [_types.loader(o) for o in oids]
        getvalue = L.dtx_getvalue
        isnull = L.dtx_getisnull
        for row in range(nt):
            values = []
            for col in range(nf):
                raw = getvalue(r, row, col)
                if not raw and isnull(r, row, col):
                    values.append(None)
                    continue
                s = raw.decode("utf-8")
                fn = loaders[col]
                values.append(s if fn is None else fn(s))
            rows.append(tuple(values))
    return Result(participant, columns, oids, rows, L.dtx_cmd_tuples(r), L.dtx_cmd_status(r).decode("utf-8"))


def indoubt_list(L: Any, r: int) -> list[InDoubt]:
    """An INDOUBT result `r` (not freed here) as a list of InDoubt."""
    out = []
    for row in range(L.dtx_ntuples(r)):
        cell = [(L.dtx_getvalue(r, row, col) or b"").decode("utf-8") for col in range(4)]
        parts = tuple(p for p in cell[2].split(",") if p)
        out.append(InDoubt(cell[0], int(cell[1] or 0), parts, cell[3]))
    return out
