#!/usr/bin/env bash
# make bench-floor — what the coordinator's messages alone cost on this
# machine (bench/floor_main.c): a relay with no transaction logic passes a
# transfer's messages between TLS clients and two TLS backends, at about the
# transaction rate make bench reaches in the same mode with the same number
# of clients.  Its CPU per transaction is a floor for coordinator_cpu_ms.
#
# The rate is set by the backends' answer delay, which stands for
# PostgreSQL's (queueing) time: make bench's p50 latency on this machine
# divided by the participant round trips of a transaction (4 for dtx, 2 for
# dtx_oneshot; for dtx at 1 client 400 µs rather than about 550, which gave
# too low a rate).  Each row prints the tps it reached, to compare with make
# bench's.  Medians of BENCH_RUNS runs (default 3) of BENCH_SECONDS (5).
#
# The whole table runs twice: on an otherwise idle machine, and with two
# busy loops (yes >/dev/null) competing for the two cores, as PostgreSQL
# does under make bench.  A process that is woken for a message and has to
# wait for a core finds more messages waiting when it runs: fewer system
# calls and wake-ups per transaction.
#
# Each cell runs without a log and with one (bench-floor --log: the
# coordinator's records, group commit and fdatasync, through wal/), in a
# directory on a real disk: under $BENCH_WAL_DIR if set, else /var/tmp, or
# the repository's build/ directory if that is a tmpfs.
#   BENCH_FLOOR_TABLE  "mode:clients:delay_us ..." (default below)
#   BENCH_FLOOR_LOAD   the numbers of busy loops to run with (default "0 2")
#   BENCH_FLOOR_LOG    "0 1": without and with the log (default)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BENCH_FLOOR_BIN:-"$root/build/release/bin/bench-floor"}
[ -x "$bin" ] || { echo "run-bench-floor: $bin is not built; run \"make BUILD=release\" first" >&2; exit 1; }
runs=${BENCH_RUNS:-3}
secs=${BENCH_SECONDS:-5}
loads=${BENCH_FLOOR_LOAD:-"0 2"}
logs=${BENCH_FLOOR_LOG:-"0 1"}
table=${BENCH_FLOOR_TABLE:-"dtx:1:400 dtx:4:1200 dtx:16:3800 dtx:64:15000 dtx_oneshot:1:800 dtx_oneshot:4:2000 dtx_oneshot:16:5800 dtx_oneshot:64:17000"}

busy=()
stop_busy() {
    [ ${#busy[@]} -eq 0 ] || kill "${busy[@]}" 2>/dev/null
    busy=()
}
dir=
logdir=
trap 'stop_busy; rm -rf ${dir:+"$dir"} ${logdir:+"$logdir"}' EXIT
dir=$(mktemp -d "${TMPDIR:-/tmp}/dtx-bench-floor.XXXXXX")
. "$root/bench/disk.sh"
disk=$(bench_disk_base run-bench-floor "$root")
logdir=$(mktemp -d "$disk/dtx-bench-floor-log.XXXXXX")
trap 'exit 130' INT TERM
"$root/tests/lib/gencerts.sh" "$dir" coord app >/dev/null

out="$dir/floor.jsonl"
for load in $loads; do
    for _ in $(seq 1 "$load"); do
        yes >/dev/null &
        busy+=($!)
    done
    for run in $(seq 1 "$runs"); do
        for e in $table; do
            IFS=: read -r mode clients delay <<<"$e"
            for lg in $logs; do
                log=()
                if [ "$lg" = 1 ]; then
                    rm -rf "$logdir/wal"
                    log=(--log "$logdir/wal")
                fi
                "$bin" --certs "$dir" --mode "$mode" --clients "$clients" --seconds "$secs" \
                    --delay-us "$delay" "${log[@]}" |
                    sed "s/^{/{\"run\":$run,\"busy_loops\":$load,\"delay_us\":$delay,/" |
                    tee -a "$out"
            done
        done
    done
    stop_busy
done

python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print(f"# medians over {len({r['run'] for r in rows})} run(s): the relay's CPU per transaction")
keys = []
for r in rows:
    k = (r["busy_loops"], r["log"], r["mode"], r["clients"], r["delay_us"])
    if k not in keys:
        keys.append(k)
for b, lg, m, c, d in keys:
    sel = [r for r in rows if (r["busy_loops"], r["log"], r["mode"], r["clients"], r["delay_us"]) == (b, lg, m, c, d)]
    med = lambda k: statistics.median(r[k] for r in sel)
    print(f"busy loops {b}  log {'yes' if lg else 'no '}  {m:12s} {c:3d} clients  delay {d:5d} us: tps {med('tps'):7.1f}"
          f"  relay_cpu_ms {med('relay_cpu_ms'):.3f}  relay_syscalls {med('relay_syscalls'):5.2f}"
          f"  relay_switches {med('relay_switches'):5.2f}")
PY
