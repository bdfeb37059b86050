"""_libdtx — the ctypes binding of libdtx: loading the library and declaring
the functions of ``dtx.h`` that the package calls.

NOTES
    Finding the library.  In this order: the file named by the environment
    variable ``LIBDTX_PATH`` (and nothing else when it is set, so that a
    test or a source-tree run cannot pick up another copy by accident);
    ``libdtx.so.1`` through the dynamic loader's usual path
    (``LD_LIBRARY_PATH``, the ``ldconfig`` cache, the default directories);
    last, the library that ``make install`` installed next to this package,
    whose directory the installer records in ``_install.py`` (so that an
    installed package works also before ``ldconfig`` has run).  The library
    is loaded on first use, not at import: ``import dtx`` works without it,
    and the first call that needs it raises ``InterfaceError`` saying where
    it looked.

    Declarations.  Every function used is given its argument and result
    types once, here; the other modules call ``lib()``'s attributes only.
    Handles (``dtx_conn *``, ``dtx_result *``) are ``c_void_p``, which
    ctypes hands over as plain ints (``None`` for NULL).  Strings owned by
    libdtx (accessors) are declared ``c_char_p``: ctypes copies them into
    ``bytes`` on return, before the owner can free them.  Strings the
    caller must free (``dtx_outcome_of``'s detail) are read through a
    ``c_void_p`` out-parameter and freed with ``dtx_freemem``.

    The GIL.  The library is loaded with ``ctypes.CDLL``, which releases
    the global interpreter lock around every foreign call: while a blocking
    call (``dtx_connect``, ``dtx_commit``, ``dtx_oneshot``, ...) waits on
    the network, other Python threads run.

    Enum values come from ``dtx.h``, where they are part of the ABI and
    never renumbered.
"""

from __future__ import annotations

import ctypes
import os
import threading
from ctypes import POINTER, c_char_p, c_int, c_uint, c_uint64, c_void_p

# dtx_conn_status
CONNECTION_OK = 0
CONNECTION_BAD = 1
CONNECTION_STARTED = 2

# dtx_poll
POLL_FAILED = 0
POLL_READING = 1
POLL_WRITING = 2
POLL_OK = 3

# dtx_outcome
COMMITTED = 0
ABORTED = 1
UNKNOWN = 2

# dtx_gid_status
GID_ERROR = -1

# dtx_res_status
RES_OK = 0
RES_ERROR = 1

# dtx_res_kind
KIND_BEGIN = 0
KIND_STATEMENT = 1
KIND_ERROR = 2
KIND_OUTCOME = 3
KIND_STATUS = 4
KIND_INDOUBT = 5

# error fields (DTX_DIAG_*)
DIAG_SQLSTATE = ord("C")
DIAG_MESSAGE = ord("M")
DIAG_DETAIL = ord("D")
DIAG_HINT = ord("H")
DIAG_PARTICIPANT = ord("P")

# the oldest library this package speaks to (DTX_VERSION_NUM)
MIN_LIB_VERSION = 10000

SONAME = "libdtx.so.1"


class Stmt(ctypes.Structure):
    """``dtx_stmt``: one statement of a one-shot transaction."""

    _fields_ = [
        ("participant", c_char_p),
        ("sql", c_char_p),
        ("nparams", c_int),
        ("params", POINTER(c_char_p)),
    ]


# (name, restype, argtypes) of every function the package calls
_PROTOTYPES: list[tuple[str, object, list[object]]] = [
    ("dtx_lib_version", c_int, []),
    ("dtx_freemem", None, [c_void_p]),
    ("dtx_connect", c_void_p, [c_char_p]),
    ("dtx_connect_start", c_void_p, [c_char_p]),
    ("dtx_connect_poll", c_int, [c_void_p]),
    ("dtx_conninfo_check", c_int, [c_char_p, POINTER(c_void_p)]),
    ("dtx_finish", None, [c_void_p]),
    ("dtx_status", c_int, [c_void_p]),
    ("dtx_error_message", c_char_p, [c_void_p]),
    ("dtx_error_field", c_char_p, [c_void_p, c_int]),
    ("dtx_socket", c_int, [c_void_p]),
    ("dtx_host", c_char_p, [c_void_p]),
    ("dtx_port", c_int, [c_void_p]),
    ("dtx_server_name", c_char_p, [c_void_p]),
    ("dtx_gid", c_char_p, [c_void_p]),
    ("dtx_begin", c_char_p, [c_void_p]),
    ("dtx_exec_params", c_void_p, [c_void_p, c_char_p, c_char_p, c_int, POINTER(c_char_p)]),
    ("dtx_commit", c_int, [c_void_p]),
    ("dtx_rollback", c_int, [c_void_p]),
    ("dtx_oneshot", c_int, [c_void_p, POINTER(Stmt), c_int, POINTER(POINTER(c_void_p)), POINTER(c_int)]),
    ("dtx_results_free", None, [POINTER(c_void_p)]),
    ("dtx_outcome_of", c_int, [c_void_p, c_char_p, POINTER(c_void_p)]),
    ("dtx_indoubt", c_void_p, [c_void_p]),
    ("dtx_send_begin", c_int, [c_void_p]),
    ("dtx_send_exec_params", c_int, [c_void_p, c_char_p, c_char_p, c_int, POINTER(c_char_p)]),
    ("dtx_send_commit", c_int, [c_void_p]),
    ("dtx_send_rollback", c_int, [c_void_p]),
    ("dtx_send_oneshot", c_int, [c_void_p, POINTER(Stmt), c_int]),
    ("dtx_send_status", c_int, [c_void_p, c_char_p]),
    ("dtx_send_indoubt", c_int, [c_void_p]),
    ("dtx_flush", c_int, [c_void_p]),
    ("dtx_consume_input", c_int, [c_void_p]),
    ("dtx_is_busy", c_int, [c_void_p]),
    ("dtx_get_result", c_void_p, [c_void_p]),
    ("dtx_result_status", c_int, [c_void_p]),
    ("dtx_result_kind", c_int, [c_void_p]),
    ("dtx_result_error_field", c_char_p, [c_void_p, c_int]),
    ("dtx_result_participant", c_char_p, [c_void_p]),
    ("dtx_result_outcome", c_int, [c_void_p]),
    ("dtx_result_gid_status", c_int, [c_void_p]),
    ("dtx_result_gid", c_char_p, [c_void_p]),
    ("dtx_result_detail", c_char_p, [c_void_p]),
    ("dtx_gid_status_name", c_char_p, [c_int]),
    ("dtx_outcome_name", c_char_p, [c_int]),
    ("dtx_ntuples", c_int, [c_void_p]),
    ("dtx_nfields", c_int, [c_void_p]),
    ("dtx_fname", c_char_p, [c_void_p, c_int]),
    ("dtx_ftype", c_uint, [c_void_p, c_int]),
    ("dtx_getvalue", c_char_p, [c_void_p, c_int, c_int]),
    ("dtx_getisnull", c_int, [c_void_p, c_int, c_int]),
    ("dtx_cmd_status", c_char_p, [c_void_p]),
    ("dtx_cmd_tuples", c_uint64, [c_void_p]),
    ("dtx_clear", None, [c_void_p]),
]

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None


class LibraryNotFound(Exception):
    """libdtx could not be loaded; the message says where it was looked for."""


def _candidates() -> list[str]:
    """The files or names to try, in order (see NOTES)."""
    explicit = os.environ.get("LIBDTX_PATH")
    if explicit:
        return [explicit]
    names = [SONAME]
    try:
        from . import _install  # written by `make install`

        names.append(os.path.join(_install.LIBDIR, SONAME))
    except ImportError:
        pass
    return names


def _load() -> ctypes.CDLL:
    errors = []
    for name in _candidates():
        try:
            handle = ctypes.CDLL(name)
        except OSError as e:
            errors.append(f"{name}: {e}")
            continue
        for fname, restype, argtypes in _PROTOTYPES:
            try:
                fn = getattr(handle, fname)
            except AttributeError:
                raise LibraryNotFound(f"{name} is not libdtx, or too old a libdtx: it has no {fname}()") from None
            fn.restype = restype
            fn.argtypes = argtypes
        version = handle.dtx_lib_version()
        if version < MIN_LIB_VERSION:
            raise LibraryNotFound(f"{name} is libdtx {version}, older than this package needs ({MIN_LIB_VERSION})")
        return handle
    how = "LIBDTX_PATH" if os.environ.get("LIBDTX_PATH") else "the loader's path (or set LIBDTX_PATH to the file)"
    raise LibraryNotFound("could not load libdtx from " + how + ": " + "; ".join(errors))


def lib() -> ctypes.CDLL:
    """The loaded libdtx, loading it on first use.  Raises LibraryNotFound."""
    global _lib
    if _lib is None:
        with _lock:
            if _lib is None:
                _lib = _load()
    return _lib


def text(b: bytes | None) -> str | None:
    """A string from libdtx (UTF-8) as str; None stays None."""
    return None if b is None else b.decode("utf-8", "replace")
