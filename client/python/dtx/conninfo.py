"""conninfo — connection strings for libdtx, from a string and keyword
arguments.

NOTES
    ``dtx.connect()`` takes a libdtx connection string, keyword arguments,
    or both; the keywords are those of the string (docs/client.md,
    "Connection strings"):

        host, port, sslmode, sslrootcert, sslcert, sslkey,
        connect_timeout, application_name

    Keyword arguments are appended to the string, so they win over a key
    the string sets too (libdtx takes the last value of a key given
    twice); anything set by neither comes from the ``DTX*`` environment
    variables, then libdtx's defaults, exactly as for the C library and the
    ``dtx`` tool.  ``host`` and ``port`` may be lists (several hosts tried
    in order, one port each or one for all); ``port`` and
    ``connect_timeout`` may be ints; a None value is left out.

    Every value is written quoted (``'...'``, with ``\\`` and ``'``
    escaped), so spaces and quotes in file names are safe.  The result is
    checked by libdtx itself (``dtx_conninfo_check``) before any socket is
    opened: an unknown keyword or a bad value raises ProgrammingError with
    libdtx's message.
"""

from __future__ import annotations

import ctypes
from typing import Any

from . import _libdtx
from .errors import InterfaceError, ProgrammingError


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _value(key: str, value: Any) -> str:
    if isinstance(value, (list, tuple)):
        if not value:
            raise ProgrammingError(f"connection option {key!r}: empty list")
        return ",".join(_value(key, v) for v in value)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ProgrammingError(f"connection option {key!r}: {type(value).__name__} is not a valid value")
    if isinstance(value, float):
        value = int(value) if value.is_integer() else value
    return str(value)


def make_conninfo(conninfo: str = "", **kwargs: Any) -> str:
    """A connection string: `conninfo` followed by `kwargs` as key='value'
    pairs (None values left out).  Not checked here; see check()."""
    parts = [conninfo.strip()] if conninfo and conninfo.strip() else []
    for key, value in kwargs.items():
        if value is None:
            continue
        parts.append(f"{key}={_quote(_value(key, value))}")
    return " ".join(parts)


def check(conninfo: str) -> None:
    """Raise ProgrammingError unless libdtx accepts `conninfo` (with the
    DTX* environment defaults).  Certificate files are not opened here."""
    try:
        lib = _libdtx.lib()
    except _libdtx.LibraryNotFound as e:
        raise InterfaceError(str(e)) from None
    err = ctypes.c_void_p()
    if lib.dtx_conninfo_check(conninfo.encode("utf-8"), ctypes.byref(err)):
        return
    reason = "invalid connection string"
    if err.value:
        reason = ctypes.string_at(err.value).decode("utf-8", "replace")
        lib.dtx_freemem(err)
    raise ProgrammingError(reason)

