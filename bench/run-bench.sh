#!/usr/bin/env bash
# make bench — the bank-transfer benchmark.  Starts two PostgreSQL clusters
# (TLS on), a participant for each (over the local socket, as a sidecar) and
# a coordinator, then for 1, 4, 16 and 64 clients runs every mode on the same
# clusters, and one extra run with 1,000 idle TLS connections held open while
# 16 clients work.  Mode dtx_oneshot_standby is dtx_oneshot against a second
# coordinator (c2, sharing the participants) that has a synchronous standby
# on this machine: every commit decision is acknowledged by the standby.
# One JSON line per run on stdout, then a ratio summary.
# The whole set is run BENCH_RUNS times (default 3) in this invocation; the
# summary gives, per client count, the median of each run's ratios.
#   BENCH_SECONDS (default 5), BENCH_CLIENTS (default "1 4 16 64"),
#   BENCH_MODES (default all), BENCH_IDLE (default 1000; 0 = skip),
#   BENCH_RUNS (default 3), BENCH_POOL (participant pool_size, default 16)
set -u
export DTX_BUILD=release
. "$(dirname "$0")/../tests/lib/harness.sh"
. "$(dirname "$0")/../tests/lib/dtx.sh"
. "$(dirname "$0")/disk.sh"
ulimit -n 8192 2>/dev/null || true
secs=${BENCH_SECONDS:-5}
clients=${BENCH_CLIENTS:-"1 4 16 64"}
modes=${BENCH_MODES:-"direct_2pc direct_2pc_min single_phase dtx dtx_oneshot dtx_oneshot_standby"}
idle=${BENCH_IDLE:-1000}
runs=${BENCH_RUNS:-3}
pool=${BENCH_POOL:-16}

h_init
# PostgreSQL's WAL, the coordinator's log and the baselines' decision log
# all live under $H_TMP: on a tmpfs their fdatasync costs nothing, and the
# CPU and rate figures would not be a disk's (the ratios stay like for like)
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
# c2: a primary (c2p) and its synchronous standby (c2s), for dtx_oneshot_standby
if [[ " $modes " == *" dtx_oneshot_standby "* ]]; then
    P2=$(h_free_port)
    S2=$(h_free_port)
    sed -e "s/^name = .*/name = c2/" -e "s/^listen_port = .*/listen_port = $P2/" \
        -e "s|^data_dir = .*|data_dir = $H_TMP/c2p-data|" \
        -e "s/^allowed_clients = .*/allowed_clients = app, coord/" \
        -e "s/^\\[participants\\]/allowed_standbys = coord\\nstandby = 127.0.0.1:$S2\\n[participants]/" \
        "$H_TMP/coord.ini" >"$H_TMP/c2p.ini"
    sed -e "/^allowed_standbys = /d" -e "/^standby = /d" -e "s/^listen_port = .*/listen_port = $S2/" \
        -e "s|c2p-data|c2s-data|" "$H_TMP/c2p.ini" >"$H_TMP/c2s.ini"
    printf '[standby]\nprimary = 127.0.0.1:%s\n' "$P2" >>"$H_TMP/c2s.ini"
    h_start c2s "$H_BIN/dtx-coordinator" -c "$H_TMP/c2s.ini"
    h_wait_log c2s "ready as a standby" 20 || exit 1
    h_start c2p "$H_BIN/dtx-coordinator" -c "$H_TMP/c2p.ini"
    h_wait_log c2p 'standby "coord" has caught up' 30 || exit 1
fi

pgci() {
    echo "host=localhost hostaddr=127.0.0.1 port=$(h_pg_port "$1") user=postgres dbname=postgres sslmode=verify-full sslrootcert=$H_CERTS/ca.crt"
}
B="$H_BIN/bench-bank"
common=(--seconds "$secs" --pg-a "$(pgci pa)" --pg-b "$(pgci pb)")
pids=(--coord-pid "$(h_pid coord)" --part-pids "$(h_pid part-a),$(h_pid part-b)")
pgpids=(--pg-pids "$(head -n 1 "$H_TMP/pg-pa/data/postmaster.pid"),$(head -n 1 "$H_TMP/pg-pb/data/postmaster.pid")")
out="$H_TMP/bench.jsonl"
for run in $(seq 1 "$runs"); do
    for c in $clients; do
        for m in $modes; do
            rm -rf "$H_TMP/decision-log"
            extra=()
            bm=$m
            port=$H_COORD_PORT
            case $m in
            dtx_oneshot_standby)
                bm=dtx_oneshot port=$P2
                extra=(--coord-pid "$(h_pid c2p)" --part-pids "$(h_pid part-a),$(h_pid part-b)")
                ;;
            dtx*) extra=("${pids[@]}") ;;
            *) extra=(--log-dir "$H_TMP/decision-log") ;;
            esac
            DTXPORT=$port "$B" --mode "$bm" --clients "$c" "${common[@]}" "${pgpids[@]}" "${extra[@]}" |
                sed -e "s/^{/{\"run\":$run,/" -e "s/\"mode\":\"$bm\"/\"mode\":\"$m\"/" |
                tee -a "$out"
            for db in pa pb; do h_psql $db "checkpoint" >/dev/null; done
        done
    done
    if [ "$idle" -gt 0 ]; then
        "$B" --mode dtx_oneshot --clients 16 --idle "$idle" "${common[@]}" "${pgpids[@]}" "${pids[@]}" |
            sed "s/^{/{\"run\":$run,/" | tee -a "$out"
    fi
done

# ratios from this invocation: per run, then the median over the runs
python3 - "$out" <<'PY' || true
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
runs = sorted({r["run"] for r in rows})
def get(run, m, c, k="tps", idle=False):
    for r in rows:
        if r["run"] == run and r["mode"] == m and r["clients"] == c and (r.get("idle_clients", 0) > 0) == idle:
            return r.get(k)
    return None
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")
print(f"# medians over {len(runs)} run(s) (same invocation, same clusters):")
for c in sorted({r["clients"] for r in rows}):
    def ratio(a, b, k="tps"):
        return med([(get(r, a, c, k) or 0) / get(r, b, c, k) for r in runs if get(r, b, c, k)])
    print(f"#  clients={c}: tps dtx_oneshot={med([get(r, 'dtx_oneshot', c) for r in runs]):.0f} "
          f"direct_2pc={med([get(r, 'direct_2pc', c) for r in runs]):.0f} "
          f"direct_2pc_min={med([get(r, 'direct_2pc_min', c) for r in runs]):.0f} "
          f"dtx={med([get(r, 'dtx', c) for r in runs]):.0f}; "
          f"dtx_oneshot/direct_2pc={ratio('dtx_oneshot', 'direct_2pc'):.2f} "
          f"dtx_oneshot/direct_2pc_min={ratio('dtx_oneshot', 'direct_2pc_min'):.2f} "
          f"dtx/direct_2pc={ratio('dtx', 'direct_2pc'):.2f}; "
          f"p99 dtx_oneshot={med([get(r, 'dtx_oneshot', c, 'p99_ms') for r in runs]):.1f}ms "
          f"direct_2pc={med([get(r, 'direct_2pc', c, 'p99_ms') for r in runs]):.1f}ms; "
          f"coordinator_cpu_ms oneshot={med([get(r, 'dtx_oneshot', c, 'coordinator_cpu_ms') for r in runs]):.3f} "
          f"dtx={med([get(r, 'dtx', c, 'coordinator_cpu_ms') for r in runs]):.3f}; "
          f"dtx_oneshot_standby/dtx_oneshot={ratio('dtx_oneshot_standby', 'dtx_oneshot'):.2f}")
# the whole table: per mode and client count, the median of each column
cols = ["tps", "p50_ms", "p99_ms", "postgres_cpu_ms", "coordinator_cpu_ms", "participant_cpu_ms",
        "coordinator_rss_mb", "participant_rss_mb", "coordinator_syscalls", "coordinator_switches"]
print("# | mode | clients | idle | " + " | ".join(cols) + " |")
print("# |---|---|---|" + "---|" * len(cols))
keys = []
for r in rows:
    k = (r["mode"], r["clients"], r.get("idle_clients", 0))
    if k not in keys:
        keys.append(k)
for m, c, i in sorted(keys, key=lambda k: (k[2], k[1], k[0])):
    sel = [r for r in rows if (r["mode"], r["clients"], r.get("idle_clients", 0)) == (m, c, i)]
    cells = []
    for k in cols:
        v = med([r.get(k) for r in sel])
        cells.append("-" if v != v else (f"{v:.0f}" if k == "tps" else f"{v:.3f}" if "cpu" in k else f"{v:.1f}"))
    print(f"# | {m} | {c} | {i} | " + " | ".join(cells) + " |")
idle = [r for r in rows if r.get("idle_clients", 0) > 0]
if idle:
    n = idle[0]["idle_clients"]
    rat = med([get(r, "dtx_oneshot", 16, idle=True) / get(r, "dtx_oneshot", 16) for r in runs
               if get(r, "dtx_oneshot", 16, idle=True) and get(r, "dtx_oneshot", 16)])
    rss = max(r.get("coordinator_rss_mb", 0) for r in idle)
    print(f"#  with {n} idle connections: dtx_oneshot tps {rat:.2f}x the run without them (median), "
          f"coordinator peak RSS {rss} MiB")
PY
h_stop coord >/dev/null
exit 0
