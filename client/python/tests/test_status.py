"""Outcomes asked later: conn.status(gid) and conn.indoubt(), which answer
what the dtx tool answers."""

from __future__ import annotations

import ctypes

import pytest
from conftest import Accounts, dtx_tool

import dtx
from dtx import _libdtx


def test_status_of_committed_and_aborted(conn: dtx.Connection, accounts: Accounts) -> None:
    committed = conn.oneshot([accounts.debit("a", 1), accounts.credit("b", 1)]).gid
    with pytest.raises(dtx.IntegrityError) as e:
        conn.oneshot([accounts.debit("a", 1000)])
    aborted = e.value.gid or ""
    for gid, status in ((committed, dtx.Status.COMMITTED), (aborted, dtx.Status.ABORTED)):
        st = conn.status(gid)
        assert (st.gid, st.status, st.decided) == (gid, status, True)
        tool = dtx_tool("status", gid)
        assert tool.returncode == 0, tool.stderr
        assert tool.stdout.splitlines()[0] == str(st) == f"{status} {gid}"


def test_status_of_a_transaction_in_progress(conn: dtx.Connection, accounts: Accounts) -> None:
    with conn.transaction() as tx:
        tx.execute(*accounts.debit("a", 1))
        with dtx.connect() as other:
            st = other.status(tx.gid or "")
        assert st.status is dtx.Status.IN_PROGRESS and not st.decided
        assert str(st).startswith("IN PROGRESS ")
        tool = dtx_tool("status", tx.gid or "")
        assert tool.stdout.splitlines()[0] == f"IN PROGRESS {tx.gid}"
    assert conn.status(tx.gid or "").status is dtx.Status.COMMITTED


def test_status_words_are_the_tools(conn: dtx.Connection) -> None:
    lib = _libdtx.lib()
    for s in dtx.Status:
        assert str(s) == lib.dtx_gid_status_name(ctypes.c_int(s.value)).decode()


def test_status_refuses_what_cannot_be_asked(conn: dtx.Connection) -> None:
    with pytest.raises(dtx.ProgrammingError, match="gid"):
        conn.status("")
    # a gid of another coordinator: the coordinator's answer, whatever it is,
    # is the tool's too
    try:
        st = str(conn.status("dtx:elsewhere:1:1"))
    except dtx.DatabaseError as e:
        st = f"error {e.sqlstate}"
    tool = dtx_tool("status", "dtx:elsewhere:1:1")
    if st.startswith("error"):
        assert tool.returncode == 1 and e.sqlstate and e.sqlstate in tool.stderr
    else:
        assert tool.stdout.splitlines()[0] == st.splitlines()[0]


def test_indoubt_lists_what_the_tool_lists(conn: dtx.Connection) -> None:
    listed = conn.indoubt()
    assert isinstance(listed, list)
    tool = dtx_tool("indoubt")
    assert tool.returncode == 0, tool.stderr
    # the tool prints a table: a header, a rule, one line per transaction
    # (and a row count); the gids it lists are the package's
    tool_gids = {line.split("|")[0].strip() for line in tool.stdout.splitlines() if line.strip().startswith("dtx:")}
    assert tool_gids == {t.gid for t in listed}
    for t in listed:
        assert isinstance(t, dtx.InDoubt) and t.age_ms >= 0 and t.participants and t.state
