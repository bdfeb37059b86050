"""Several hosts: the connection goes to the first that completes the
handshake (TCP, TLS with a verified certificate, HELLO), as in libdtx."""

from __future__ import annotations

import asyncio
import os

import pytest
from conftest import env, read

import dtx

HOST = os.environ.get("DTXHOST", "127.0.0.1")


def real_port() -> int:
    return int(env("DTXPORT"))


def test_a_dead_host_is_skipped() -> None:
    dead = int(env("DTXTEST_DEAD_PORT"))
    with dtx.connect(host=[HOST, HOST], port=[dead, real_port()]) as c:
        assert c.port == real_port()
        assert read(c, "a", "SELECT 1") == [(1,)]


def test_a_host_that_is_not_a_coordinator_is_skipped() -> None:
    # PostgreSQL's own port: TCP works, the TLS handshake does not
    pg = int(env("DTXTEST_PG_PORT"))
    with dtx.connect(f"host={HOST},{HOST} port={pg},{real_port()}") as c:
        assert c.port == real_port()
        assert c.server_name == "c1"


def test_every_host_failing_is_reported_host_by_host() -> None:
    dead = int(env("DTXTEST_DEAD_PORT"))
    pg = int(env("DTXTEST_PG_PORT"))
    with pytest.raises(dtx.OperationalError) as e:
        dtx.connect(host=[HOST, HOST], port=[dead, pg], connect_timeout=5)
    lines = e.value.message.splitlines()
    assert len(lines) == 2, lines
    assert f"port {dead} failed: Connection refused" in lines[0]
    assert f"port {pg} failed: TLS handshake failed" in lines[1]


def test_a_certificate_from_another_ca_is_refused(tmp_path: object) -> None:
    other_ca = os.path.join(env("DTXTEST_CERTS"), "..", "other-ca")
    if not os.path.exists(os.path.join(other_ca, "ca.crt")):
        os.makedirs(other_ca, exist_ok=True)
        root = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "lib", "gencerts.sh")
        assert os.system(f"{root} {other_ca} x >/dev/null") == 0
    with pytest.raises(dtx.OperationalError, match="certificate verify failed"):
        dtx.connect(sslrootcert=os.path.join(other_ca, "ca.crt"))
    # and the next host, verified, is used
    with dtx.connect(host=["localhost", HOST], port=real_port()) as c:
        assert c.host in ("localhost", HOST)


def test_failover_with_connect_async() -> None:
    dead = int(env("DTXTEST_DEAD_PORT"))

    async def main() -> None:
        c = await dtx.connect_async(host=[HOST, HOST], port=[dead, real_port()])
        async with c:
            assert c.port == real_port()
            gid, res = await c.oneshot([("b", "SELECT 2")])
            assert res[0].scalar() == 2
        with pytest.raises(dtx.OperationalError, match="Connection refused"):
            await dtx.connect_async(host=HOST, port=dead)

    asyncio.run(main())
