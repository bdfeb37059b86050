#!/usr/bin/env bash
# make bench — the bank-transfer benchmark.  Starts two PostgreSQL clusters
# (TLS on), a participant for each (over the local socket, as a sidecar) and
# a coordinator, then for 1, 4, 16 and 64 clients runs every mode on the same
# clusters, and one extra run with 1,000 idle TLS connections held open while
# 16 clients work.  One JSON line per run on stdout, then a ratio summary.
#   BENCH_SECONDS (default 5), BENCH_CLIENTS (default "1 4 16 64"),
#   BENCH_MODES (default all), BENCH_IDLE (default 1000; 0 = skip)
set -u
export DTX_BUILD=release
. "$(dirname "$0")/../tests/lib/harness.sh"
. "$(dirname "$0")/../tests/lib/dtx.sh"
ulimit -n 8192 2>/dev/null || true
secs=${BENCH_SECONDS:-5}
clients=${BENCH_CLIENTS:-"1 4 16 64"}
modes=${BENCH_MODES:-"direct_2pc direct_2pc_min single_phase dtx dtx_oneshot"}
idle=${BENCH_IDLE:-1000}

h_init
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
h_part_start a pa postgres "pool_size = 16" >/dev/null || exit 1
h_part_start b pb postgres "pool_size = 16" >/dev/null || exit 1
h_coord_start "max_clients = 5000" >/dev/null || exit 1
h_wait_log coord 'participant "a" .* is ready' 20 && h_wait_log coord 'participant "b" .* is ready' 20 || exit 1

pgci() {
    echo "host=localhost hostaddr=127.0.0.1 port=$(h_pg_port "$1") user=postgres dbname=postgres sslmode=verify-full sslrootcert=$H_CERTS/ca.crt"
}
B="$H_BIN/bench-bank"
common=(--seconds "$secs" --pg-a "$(pgci pa)" --pg-b "$(pgci pb)")
pids=(--coord-pid "$(h_pid coord)" --part-pids "$(h_pid part-a),$(h_pid part-b)")
out="$H_TMP/bench.jsonl"
for c in $clients; do
    for m in $modes; do
        rm -rf "$H_TMP/decision-log"
        extra=()
        case $m in dtx*) extra=("${pids[@]}") ;; *) extra=(--log-dir "$H_TMP/decision-log") ;; esac
        "$B" --mode "$m" --clients "$c" "${common[@]}" "${extra[@]}" | tee -a "$out"
        for db in pa pb; do h_psql $db "checkpoint" >/dev/null; done
    done
done
if [ "$idle" -gt 0 ]; then
    "$B" --mode dtx_oneshot --clients 16 --idle "$idle" "${common[@]}" "${pids[@]}" | tee -a "$out"
fi

# ratios from this invocation
python3 - "$out" <<'PY' || true
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
get = lambda m, c, k="tps": next((r[k] for r in rows if r["mode"] == m and r["clients"] == c and r.get("idle_clients", 0) == 0), None)
print("# ratios (same invocation, same clusters):")
for c in sorted({r["clients"] for r in rows}):
    d, dm, o, i = get("direct_2pc", c), get("direct_2pc_min", c), get("dtx_oneshot", c), get("dtx", c)
    if d and dm and o and i:
        print(f"#  clients={c}: dtx_oneshot/direct_2pc={o/d:.2f} dtx_oneshot/direct_2pc_min={o/dm:.2f} dtx/direct_2pc={i/d:.2f} "
              f"p99 oneshot={get('dtx_oneshot', c, 'p99_ms')}ms direct_2pc={get('direct_2pc', c, 'p99_ms')}ms")
idle = [r for r in rows if r.get("idle_clients", 0) > 0]
base = get("dtx_oneshot", 16)
if idle and base:
    r = idle[0]
    print(f"#  with {r['idle_clients']} idle connections: tps {r['tps']} vs {base} ({r['tps']/base:.2f}x), coordinator_rss_mb={r.get('coordinator_rss_mb')}")
PY
h_stop coord >/dev/null
exit 0
