#!/usr/bin/env bash
# make bench-metrics — what metrics cost (docs/operations.md): the bank's
# one-shot transfers (bench-bank --mode dtx_oneshot) with the operations
# endpoint off, against the same with http_listen on for the coordinator and
# both participants and all three scraped once a second, in the same
# invocation on the same clusters.  The daemons count either way (counting
# cannot be switched off); "on" adds the endpoints and the scrapes.  The
# two set-ups take turns BENCH_RUNS times (default 5), each daemon started
# afresh for its turn; the summary is the median of each turn's on/off
# ratio.  Last line:
#   bench-metrics: 16 clients, metrics on and scraped every second = Rx off
#   BENCH_SECONDS (default 8), BENCH_CLIENTS (default 16), BENCH_RUNS,
#   BENCH_POOL (participant pool_size, default 16)
set -u
export DTX_BUILD=release
. "$(dirname "$0")/../tests/lib/harness.sh"
. "$(dirname "$0")/../tests/lib/dtx.sh"
secs=${BENCH_SECONDS:-8}
clients=${BENCH_CLIENTS:-16}
runs=${BENCH_RUNS:-5}
pool=${BENCH_POOL:-16}

h_init
h_dtx_certs pg >/dev/null
for db in pa pb; do
    h_pg_start $db 128 >/dev/null || exit 1
    h_psql $db "create table accounts (id int primary key, balance bigint not null);
                insert into accounts select g, 1000000000 from generate_series(1, $((clients + 16))) g" || exit 1
done
H_PG_VIA_SOCKET=1
HC=127.0.0.1:$(h_free_port)
HA=127.0.0.1:$(h_free_port)
HB=127.0.0.1:$(h_free_port)
h_part_start a pa postgres "pool_size = $pool" >/dev/null || exit 1
h_part_start b pb postgres "pool_size = $pool" >/dev/null || exit 1
h_coord_start >/dev/null || exit 1
for f in coord part-a part-b; do cp "$H_TMP/$f.ini" "$H_TMP/$f.off.ini"; done
sed "s|^\\[participants\\]|http_listen = $HC\\n[participants]|" "$H_TMP/coord.off.ini" >"$H_TMP/coord.on.ini"
{ cat "$H_TMP/part-a.off.ini"; echo "http_listen = $HA"; } >"$H_TMP/part-a.on.ini"
{ cat "$H_TMP/part-b.off.ini"; echo "http_listen = $HB"; } >"$H_TMP/part-b.on.ini"

# start every daemon with the set-up's files
setup() {
    h_stop coord >/dev/null
    h_stop part-a >/dev/null
    h_stop part-b >/dev/null
    for f in coord part-a part-b; do cp "$H_TMP/$f.$1.ini" "$H_TMP/$f.ini"; done
    h_part_start a pa >/dev/null && h_part_start b pb >/dev/null && h_coord_start >/dev/null &&
        h_wait_newlog coord 'participant "a" .* is ready' 20 &&
        h_wait_newlog coord 'participant "b" .* is ready' 20
}

B="$H_BIN/bench-bank"
out="$H_TMP/bench.jsonl"
for run in $(seq 1 "$runs"); do
    for mode in off on; do
        setup "$mode" || exit 1
        scraper=""
        if [ "$mode" = on ]; then
            python3 - "$HC" "$HA" "$HB" <<'PY' >"$H_TMP/scraper.log" 2>&1 &
import sys, time, urllib.request
urls = [f"http://{a}/metrics" for a in sys.argv[1:]]
n = 0
while True:
    t = time.monotonic()
    for u in urls:
        with urllib.request.urlopen(u, timeout=5) as r:
            r.read()
        n += 1
    print(n, flush=True)
    time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
PY
            scraper=$!
        fi
        "$B" --mode dtx_oneshot --clients "$clients" --seconds "$secs" \
            --coord-pid "$(h_pid coord)" --part-pids "$(h_pid part-a),$(h_pid part-b)" |
            sed -e "s/^{/{\"run\":$run,\"metrics\":\"$mode\",/" | tee -a "$out"
        if [ -n "$scraper" ]; then
            kill "$scraper" 2>/dev/null
            wait "$scraper" 2>/dev/null
            echo "# scrapes: $(tail -n 1 "$H_TMP/scraper.log")" >&2
        fi
        for db in pa pb; do h_psql $db "checkpoint" >/dev/null; done
    done
done

python3 - "$out" "$clients" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
clients = int(sys.argv[2])
def tps(run, m):
    return next((r["tps"] for r in rows if r["run"] == run and r["metrics"] == m), None)
ratios = [tps(r, "on") / tps(r, "off") for r in sorted({r["run"] for r in rows}) if tps(r, "off")]
med = lambda xs: statistics.median(xs) if xs else float("nan")
print(f"# per run on/off: {' '.join(f'{x:.3f}' for x in ratios)}")
print(f"# median tps off={med([r['tps'] for r in rows if r['metrics'] == 'off']):.0f} "
      f"on={med([r['tps'] for r in rows if r['metrics'] == 'on']):.0f}; "
      f"coordinator CPU per transaction off={med([r['coordinator_cpu_ms'] for r in rows if r['metrics'] == 'off']):.3f}ms "
      f"on={med([r['coordinator_cpu_ms'] for r in rows if r['metrics'] == 'on']):.3f}ms")
print(f"bench-metrics: {clients} clients, metrics on and scraped every second = {med(ratios):.2f}x off")
PY
