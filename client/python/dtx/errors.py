"""errors — the exceptions of the dtx package, modelled on DB-API 2.0
(PEP 249), and the SQLSTATE that picks each one.

NOTES
    The hierarchy::

        Exception
         +-- Warning
         +-- Error                     every error below; sqlstate, message, detail,
              |                        hint, participant, gid, outcome
              +-- InterfaceError       misuse of the package, or libdtx not found
              +-- OutcomeUnknown       COMMIT sent, answer lost (or heuristic): ask
              |                        conn.status(e.gid) later.  NOT retryable.
              +-- DatabaseError
                   +-- DataError           class 22 (bad value), or a value that
                   |                       cannot be converted
                   +-- OperationalError    classes 08 (connection), 53, 54, 55,
                   |    |                  57, 58, 28, HV...
                   |    +-- TransactionRollbackError   class 40 (serialization
                   |                                   failure, deadlock)
                   +-- IntegrityError      class 23 (constraints)
                   +-- InternalError       classes 24, 25, 26, 2B, 2D, 2F, 38, 39,
                   |                       3B, F0, P0, XX
                   +-- ProgrammingError    classes 42, 3D, 3F, 21, 26, 44;
                   |                       bad arguments
                   +-- NotSupportedError   class 0A

    Why OutcomeUnknown is not an OperationalError: code that retries a
    transaction on OperationalError (a lost connection, a serialization
    failure) must not retry one whose COMMIT may have been carried out.  An
    unknown outcome is its own case: keep the gid and ask the coordinator
    (``Connection.status``) once it is reachable again.

    The SQLSTATE is PostgreSQL's, passed through untouched from the
    participant, or the coordinator's, or one that libdtx made (08003 no
    connection, 08006 connection lost, 08P01 protocol violation, 22023 bad
    arguments, 55000 a request in progress, 53200 out of memory;
    docs/client.md).  ``participant`` names the participant the error came
    from, when it came from one.  ``gid`` is the transaction's, when there
    was one; ``outcome`` is ``"ABORTED"`` when the error ended the
    transaction with a known abort (a failed commit, a one-shot transaction
    that stopped at a statement), else None.
"""

from __future__ import annotations


class Warning(Exception):  # noqa: A001 - the DB-API name
    """DB-API's Warning; dtx raises none, it exists for code written to PEP 249."""


class Error(Exception):
    """Base class of every error the package raises.

    Attributes:
        message: the primary message, one line.
        sqlstate: the five-character SQLSTATE, or None when there is none.
        detail: PostgreSQL's (or the coordinator's) DETAIL, or None.
        hint: the HINT, or None.
        participant: the participant the error came from, or None.
        gid: the global transaction id concerned, or None.
        outcome: "ABORTED" when this error ended a transaction that is known
            to have rolled back; "UNKNOWN" for OutcomeUnknown; else None.
    """

    def __init__(
        self,
        message: str,
        *,
        sqlstate: str | None = None,
        detail: str | None = None,
        hint: str | None = None,
        participant: str | None = None,
        gid: str | None = None,
        outcome: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint
        self.participant = participant
        self.gid = gid
        self.outcome = outcome

    def __str__(self) -> str:
        lines = [self.message]
        if self.detail:
            lines.append(f"DETAIL:  {self.detail}")
        if self.hint:
            lines.append(f"HINT:  {self.hint}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        extra = "".join(
            f", {k}={v!r}"
            for k, v in (("sqlstate", self.sqlstate), ("participant", self.participant), ("gid", self.gid))
            if v is not None
        )
        return f"{type(self).__name__}({self.message!r}{extra})"


class InterfaceError(Error):
    """The package was misused (a closed connection, a connection used from
    two threads at once, a second transaction on one connection), or libdtx
    could not be loaded."""


class DatabaseError(Error):
    """An error reported by a participant, the coordinator or the connection."""


class DataError(DatabaseError):
    """A bad value: SQLSTATE class 22, or a value that cannot be converted
    (to PostgreSQL, or back to Python)."""


class OperationalError(DatabaseError):
    """A problem of the system rather than of the statement: no connection,
    a lost connection, resources, time-outs, a participant that cannot be
    reached."""


class TransactionRollbackError(OperationalError):
    """SQLSTATE class 40 (serialization failure, deadlock): the transaction
    was rolled back and may be retried as a whole."""


class IntegrityError(DatabaseError):
    """SQLSTATE class 23: a constraint was violated."""


class InternalError(DatabaseError):
    """The database's internal state: e.g. 25P02, a statement in a
    transaction that has already failed."""


class ProgrammingError(DatabaseError):
    """The SQL or the call is wrong: syntax, unknown table or column, an
    unknown participant, bad arguments, a value of a type that cannot be
    passed."""


class NotSupportedError(DatabaseError):
    """SQLSTATE class 0A: a feature that is not supported."""


class OutcomeUnknown(Error):
    """The outcome of a transaction cannot be known now: its COMMIT was sent
    and the answer was lost (the connection broke), or the coordinator
    itself could not say, or the commit found a branch rolled back by
    someone else (a heuristic outcome, SQLSTATE 40003).  ``gid`` names the
    transaction, so that ``Connection.status(gid)`` can tell later what
    became of it.  Never retry such a transaction blindly: it may have
    committed."""

    @property
    def heuristic(self) -> bool:
        """True when the commit found a branch rolled back by someone else."""
        return self.sqlstate == "40003"


# SQLSTATE class (first two characters) -> exception class
_BY_CLASS: dict[str, type[Error]] = {
    "02": DataError,
    "08": OperationalError,
    "0A": NotSupportedError,
    "21": ProgrammingError,
    "22": DataError,
    "23": IntegrityError,
    "24": InternalError,
    "25": InternalError,
    "26": InternalError,
    "27": OperationalError,
    "28": OperationalError,
    "2B": InternalError,
    "2D": InternalError,
    "2F": InternalError,
    "34": OperationalError,
    "38": InternalError,
    "39": InternalError,
    "3B": InternalError,
    "3D": ProgrammingError,
    "3F": ProgrammingError,
    "40": TransactionRollbackError,
    "42": ProgrammingError,
    "44": ProgrammingError,
    "53": OperationalError,
    "54": OperationalError,
    "55": OperationalError,
    "57": OperationalError,
    "58": OperationalError,
    "72": OperationalError,
    "F0": InternalError,
    "HV": OperationalError,
    "P0": InternalError,
    "XX": InternalError,
}


def class_for_sqlstate(sqlstate: str | None) -> type[Error]:
    """The exception class for a SQLSTATE (DatabaseError when the class is
    not one of PostgreSQL's, or there is no SQLSTATE)."""
    if not sqlstate:
        return DatabaseError
    if sqlstate == "40003":  # statement completion unknown: not a rollback
        return OperationalError
    return _BY_CLASS.get(sqlstate[:2], DatabaseError)
