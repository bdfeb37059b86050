#!/usr/bin/env bash
# make bench-python — one-shot transfers from N Python processes (the dtx
# package, bench/bank_python.py) against the same transfers from the C
# bench client (bench-bank --mode dtx_oneshot), in the same run, on the same
# clusters: two PostgreSQL clusters (TLS on), a participant for each (over
# the local socket, as a sidecar) and a coordinator, as make bench sets
# them up.  A third client, the floor (bank_python.py --floor), calls libdtx
# through ctypes in a bare loop: the most a ctypes-based package could
# reach here.  For each client count the clients take turns, BENCH_RUNS
# times; one JSON line per run on stdout, then medians, and last:
#   bench-python: 16 clients, python X tps = Rx the C client (Y tps)
#   BENCH_SECONDS (default 5), BENCH_CLIENTS (default "1 4 16"),
#   BENCH_RUNS (default 3), BENCH_POOL (participant pool_size, default 16),
#   PYTHON (default the system's python3)
set -u
export DTX_BUILD=release
. "$(dirname "$0")/../tests/lib/harness.sh"
. "$(dirname "$0")/../tests/lib/dtx.sh"
. "$(dirname "$0")/disk.sh"
ulimit -n 8192 2>/dev/null || true
secs=${BENCH_SECONDS:-5}
clients=${BENCH_CLIENTS:-"1 4 16"}
runs=${BENCH_RUNS:-3}
pool=${BENCH_POOL:-16}
PY=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}

h_init
if bench_is_tmpfs "$H_TMP"; then
    echo "# note: $H_TMP is a tmpfs: fdatasync costs nothing in this invocation" >&2
fi
h_dtx_certs pg >/dev/null
maxc=0
for c in $clients; do [ "$c" -gt $maxc ] && maxc=$c; done
for db in pa pb; do
    h_pg_start $db 128 >/dev/null || exit 1
    h_pg_enable_ssl $db || exit 1
    h_psql $db "create table accounts (id int primary key, balance bigint not null);
                insert into accounts select g, 1000000000 from generate_series(1, $((maxc + 16))) g" || exit 1
done
H_PG_VIA_SOCKET=1
h_part_start a pa postgres "pool_size = $pool" >/dev/null || exit 1
h_part_start b pb postgres "pool_size = $pool" >/dev/null || exit 1
h_coord_start "max_clients = 5000" >/dev/null || exit 1
h_wait_log coord 'participant "a" .* is ready' 20 && h_wait_log coord 'participant "b" .* is ready' 20 || exit 1

export PYTHONPATH="$H_ROOT/client/python" LIBDTX_PATH="$H_BIN/../lib/libdtx.so.1" PYTHONDONTWRITEBYTECODE=1
B=("$PY" "$H_ROOT/bench/bank_python.py" --seconds "$secs" --coord-pid "$(h_pid coord)")
out="$H_TMP/bench-python.jsonl"
for run in $(seq 1 "$runs"); do
    for c in $clients; do
        # the clients take turns; the order alternates with the run
        order="c python floor"
        [ $((run % 2)) = 0 ] && order="floor python c"
        for who in $order; do
            extra=()
            [ "$who" = c ] && extra=(--c-client "$H_BIN/bench-bank")
            [ "$who" = floor ] && extra=(--floor)
            "${B[@]}" --clients "$c" "${extra[@]}" | sed "s/^{/{\"run\":$run,/" | tee -a "$out"
            for db in pa pb; do h_psql $db "checkpoint" >/dev/null; done
        done
    done
done

"$PY" - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")
def pick(mode, c, k):
    return [r.get(k) for r in rows if r["mode"] == mode and r["clients"] == c]
runs = sorted({r["run"] for r in rows})
print(f"# medians over {len(runs)} run(s) (same invocation, same clusters, the clients taking turns):")
ratios = {}
for c in sorted({r["clients"] for r in rows}):
    per_run = []
    for run in runs:
        py = [r["tps"] for r in rows if r["run"] == run and r["mode"] == "python_oneshot" and r["clients"] == c]
        cc = [r["tps"] for r in rows if r["run"] == run and r["mode"] == "dtx_oneshot" and r["clients"] == c]
        if py and cc and cc[0]:
            per_run.append(py[0] / cc[0])
    ratios[c] = med(per_run)
    print(f"#  clients={c}: tps python={med(pick('python_oneshot', c, 'tps')):.0f} "
          f"C={med(pick('dtx_oneshot', c, 'tps')):.0f} (python/C per run, median {ratios[c]:.2f}); "
          f"p99 python={med(pick('python_oneshot', c, 'p99_ms')):.1f}ms C={med(pick('dtx_oneshot', c, 'p99_ms')):.1f}ms; "
          f"client CPU per transaction python={med(pick('python_oneshot', c, 'client_cpu_ms')):.3f}ms "
          f"C={med(pick('dtx_oneshot', c, 'client_cpu_ms')):.3f}ms; "
          f"coordinator CPU per transaction python={med(pick('python_oneshot', c, 'coordinator_cpu_ms')):.3f}ms "
          f"C={med(pick('dtx_oneshot', c, 'coordinator_cpu_ms')):.3f}ms")
    fl = []
    for run in runs:
        f = [r["tps"] for r in rows if r["run"] == run and r["mode"] == "python_floor" and r["clients"] == c]
        cc = [r["tps"] for r in rows if r["run"] == run and r["mode"] == "dtx_oneshot" and r["clients"] == c]
        if f and cc and cc[0]:
            fl.append(f[0] / cc[0])
    print(f"#  clients={c}: floor (bare ctypes calls) tps={med(pick('python_floor', c, 'tps')):.0f} "
          f"(floor/C per run, median {med(fl):.2f}); client CPU per transaction "
          f"floor={med(pick('python_floor', c, 'client_cpu_ms')):.3f}ms")
# the last line: the run whose python/C ratio is the median one (the lower
# of the two middle ones for an even count), so that X / Y = R
pairs = []
for run in runs:
    py = [r["tps"] for r in rows if r["run"] == run and r["mode"] == "python_oneshot" and r["clients"] == 16]
    cc = [r["tps"] for r in rows if r["run"] == run and r["mode"] == "dtx_oneshot" and r["clients"] == 16]
    if py and cc and cc[0]:
        pairs.append((py[0] / cc[0], py[0], cc[0]))
if pairs:
    pairs.sort()
    r, py, cc = pairs[(len(pairs) - 1) // 2]
    spread = f"; runs: {', '.join(f'{p[0]:.2f}' for p in pairs)}" if len(pairs) > 1 else ""
    print(f"# 16 clients, python/C per run{spread}")
    print(f"bench-python: 16 clients, python {py:.0f} tps = {r:.2f}x the C client ({cc:.0f} tps)")
else:
    print("bench-python: 16 clients not measured (BENCH_CLIENTS has no 16)")
PY
h_stop coord >/dev/null
exit 0
