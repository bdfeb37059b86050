"""dtx — atomic transactions across PostgreSQL databases, from Python.

A client of the dtx transaction coordinator, built on libdtx (as psycopg
is built on libpq): one TLS connection to a coordinator runs statements on
several PostgreSQL databases (the coordinator's participants) and commits
them everywhere or nowhere.

    import dtx

    with dtx.connect("host=coord1,coord2 sslrootcert=ca.crt") as conn:
        with conn.transaction() as tx:
            tx.execute("bank_a", "UPDATE accounts SET balance = balance - $1 WHERE id = $2", [30, "alice"])
            tx.execute("bank_b", "UPDATE accounts SET balance = balance + $1 WHERE id = $2", [30, "bob"])
        print("committed", tx.gid)

        gid, results = conn.oneshot([
            ("bank_a", "UPDATE accounts SET balance = balance - 30 WHERE id = $1", ["alice"]),
            ("bank_b", "UPDATE accounts SET balance = balance + 30 WHERE id = $1", ["bob"]),
        ])

What dtx promises: atomicity, not a global snapshot.  A commit whose
answer is lost raises OutcomeUnknown with the gid; ``conn.status(gid)``
tells later what became of it.  The asyncio API is ``await
dtx.connect_async(...)``, with the same methods as coroutines.

The guide is docs/python.md; the library underneath, docs/client.md.
Environment: LIBDTX_PATH names the libdtx file to load (default: libdtx.so.1
through the loader's path); DTXHOST, DTXPORT, DTXSSLROOTCERT, DTXSSLCERT,
DTXSSLKEY, DTXSSLMODE, DTXCONNECT_TIMEOUT and DTXAPPNAME are connection
defaults, as for libdtx and the dtx tool.
"""

from __future__ import annotations

from .aio import AsyncConnection, AsyncTransaction, connect_async
from .connection import Connection, Transaction, connect
from .conninfo import make_conninfo
from .errors import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    OutcomeUnknown,
    ProgrammingError,
    TransactionRollbackError,
    Warning,
)
from .result import InDoubt, OneshotResult, Result, Status, TransactionStatus
from .types import Json

__version__ = "1.0.0"


def libdtx_version() -> int:
    """The version of the libdtx loaded (DTX_VERSION_NUM: major * 10000 +
    minor * 100 + patch).  Loads the library if it is not yet loaded."""
    from .connection import _library

    return int(_library().dtx_lib_version())


__all__ = [
    "AsyncConnection",
    "AsyncTransaction",
    "Connection",
    "DataError",
    "DatabaseError",
    "Error",
    "InDoubt",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "Json",
    "NotSupportedError",
    "OneshotResult",
    "OperationalError",
    "OutcomeUnknown",
    "ProgrammingError",
    "Result",
    "Status",
    "Transaction",
    "TransactionRollbackError",
    "TransactionStatus",
    "Warning",
    "connect",
    "connect_async",
    "libdtx_version",
    "make_conninfo",
]
