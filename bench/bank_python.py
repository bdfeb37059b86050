"""bank_python.py — the bank-transfer benchmark's one-shot mode, from Python
(make bench-python; bench/run-bench-python.sh runs it).

Each transaction moves 1 from an account in database A to the same account
in database B with one dtx one-shot request, exactly as bench-bank's
dtx_oneshot mode does (bench/bank_main.c): the same two parameterised
UPDATEs, client i on account i, so that clients never contend for a row,
and the statements' results discarded (bench-bank passes NULL for them;
here results=False).
Here each client is a Python process of its own (the way Python services
scale past the GIL), using the dtx package.  One run = N clients for a
fixed time; it prints one JSON line, with bench-bank's fields where they
mean the same:

    {"mode":"python_oneshot","clients":16,"txns":...,"tps":...,"p50_ms":...,
     "p99_ms":...,"client_cpu_ms":...,"coordinator_cpu_ms":...}

client_cpu_ms is the CPU time (user + system) the client processes spent
per transaction inside the measured window; coordinator_cpu_ms the
coordinator's (with --coord-pid).  Every client connects before the
window opens and disconnects after it closes, as in bench-bank.

With --c-client PATH it runs that bench-bank binary in dtx_oneshot mode
instead (same clients, same seconds), and adds client_cpu_ms to its line:
the whole bench-bank process's CPU per transaction, connecting included.

With --floor (mode python_floor) each Python process does the least any
package on ctypes could: it builds the statement array once and then calls
libdtx's dtx_oneshot through ctypes in a bare loop, with no argument
conversion, no result, no gid.  What it reaches is the ceiling of a
ctypes-based client on this machine: the interpreter's loop, one foreign
call and a process per client.

The dtx package and libdtx come from the environment (PYTHONPATH,
LIBDTX_PATH), the coordinator from the DTX* variables.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import threading
import time
from typing import Any

UP_A = "update accounts set balance = balance - 1 where id = $1"
UP_B = "update accounts set balance = balance + 1 where id = $1"


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client(ident: int, seconds: float, barrier: Any, out: Any, floor: bool = False) -> None:
    import dtx  # imported here: each process loads libdtx itself
    from dtx.connection import stmt_array

    try:
        conn = dtx.connect(application_name="bench-python")
    except dtx.Error as e:
        out.put((0, 1, 0.0, [], f"client {ident} could not connect: {e}", 0.0))
        barrier.abort()
        return
    params = [ident]
    stmts = [("a", UP_A, params), ("b", UP_B, params)]
    run = lambda: conn.oneshot(stmts, results=False)  # noqa: E731
    if floor:
        arr, n, keep, _ = stmt_array(stmts)
        fn, handle = conn._L.dtx_oneshot, conn._c

        def run() -> None:
            if fn(handle, arr, n, None, None) != 0:
                raise dtx.OperationalError("not committed")

    lat: list[float] = []
    txns = failures = 0
    err = ""
    barrier.wait()
    cpu0 = time.process_time()
    now = start = time.monotonic()
    end = now + seconds
    while now < end:
        try:
            run()
            t = time.monotonic()
            lat.append(t - now)
            txns += 1
            now = t
        except dtx.Error as e:
            failures += 1
            err = err or str(e)
            now = time.monotonic()
    cpu = time.process_time() - cpu0
    out.put((txns, failures, cpu, lat, err, now - start))
    barrier.wait()  # disconnect only once everyone is done
    conn.close()


def run_python(n: int, seconds: float, coord_pid: int, floor: bool = False) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(n + 1)
    out = ctx.Queue()
    procs = [ctx.Process(target=client, args=(i + 1, seconds, barrier, out, floor)) for i in range(n)]
    for p in procs:
        p.start()
    try:
        barrier.wait(timeout=120)  # every client is connected
    except threading.BrokenBarrierError:
        errs = [e for e in (out.get(timeout=5)[4] for _ in range(out.qsize() or 1)) if e]
        raise SystemExit(f"bank_python: the clients did not all connect: {errs[0] if errs else 'timeout'}")
    c0 = proc_cpu_s(coord_pid) if coord_pid else 0.0
    parts = [out.get(timeout=seconds + 120) for _ in range(n)]
    c1 = proc_cpu_s(coord_pid) if coord_pid else 0.0
    elapsed = max(p[5] for p in parts)  # the window, up to the last transaction's end
    barrier.wait(timeout=60)
    for p in procs:
        p.join(30)
    txns = sum(p[0] for p in parts)
    fails = sum(p[1] for p in parts)
    lat = sorted(x for p in parts for x in p[3])
    row: dict[str, Any] = {
        "mode": "python_floor" if floor else "python_oneshot",
        "clients": n,
        "txns": txns,
        "failures": fails,
        "tps": round(txns / elapsed if elapsed > 0 else 0, 1),
        "p50_ms": round(lat[len(lat) // 2] * 1000, 2) if lat else 0,
        "p99_ms": round(lat[len(lat) * 99 // 100] * 1000, 2) if lat else 0,
        "client_cpu_ms": round(sum(p[2] for p in parts) * 1000 / txns, 3) if txns else None,
    }
    if coord_pid and txns:
        row["coordinator_cpu_ms"] = round((c1 - c0) * 1000 / txns, 3)
    errs = [p[4] for p in parts if p[4]]
    if errs:
        print(f"bank_python: {fails} failures, first: {errs[0]}", file=sys.stderr)
    return row


def run_c(path: str, n: int, seconds: float, coord_pid: int) -> dict[str, Any]:
    args = [path, "--mode", "dtx_oneshot", "--clients", str(n), "--seconds", str(seconds)]
    if coord_pid:
        args += ["--coord-pid", str(coord_pid)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 300)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0 or not p.stdout.strip():
        raise SystemExit(f"bank_python: {path} failed (exit {p.returncode}): {p.stderr.strip()}")
    sys.stderr.write(p.stderr)
    row = json.loads(p.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if row.get("txns"):
        row["client_cpu_ms"] = round(cpu * 1000 / row["txns"], 3)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--coord-pid", type=int, default=0)
    ap.add_argument("--c-client", default=None, help="run this bench-bank instead")
    ap.add_argument("--floor", action="store_true", help="bare ctypes calls (see above)")
    a = ap.parse_args()
    if a.clients < 1 or a.seconds <= 0:
        ap.error("bad --clients or --seconds")
    row = run_c(a.c_client, a.clients, a.seconds, a.coord_pid) if a.c_client else \
        run_python(a.clients, a.seconds, a.coord_pid, a.floor)
    print(json.dumps(row, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
