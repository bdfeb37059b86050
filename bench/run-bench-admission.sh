#!/usr/bin/env bash
# make bench-admission — an authorised client while 10,000 connections that
# never speak TLS are held open against the coordinator (conn.c,
# "Admission").  Two PostgreSQL clusters, a participant for each and a
# coordinator with the default admission settings (authentication_timeout
# 10 s, max_authenticating 256, max_clients 10000), as in make bench; then
# bench-bank --mode dtx_oneshot for BENCH_SECONDS in three phases:
#
#   quiet  nothing else (after a 3 s warm-up run, not counted);
#   held   tool-silent first opens BENCH_SILENT plain TCP sockets to the
#          coordinator's port that never send a byte, and holds them; then
#          bench-bank connects its clients and runs.  The coordinator keeps
#          the newest max_authenticating of them and closes the rest as they
#          come; those it keeps reach authentication_timeout during the run.
#          Before admission control they all stayed, and used up max_clients;
#   flood  the same, but every socket the coordinator closes is reopened at
#          once, so BENCH_SILENT stay open from the client's side throughout:
#          a connection flood as fast as this machine makes connections,
#          whose TCP work competes with the load for the same CPUs
#          (BENCH_FLOOD=0 skips it).
#
# One JSON line per run on stdout (bench-bank's, with "phase"), the holder's
# counts, then per phase the p99 ratio to the quiet run; the held phase is
# the measure (within 2x), the flood phase is reported alongside.
#   BENCH_SECONDS (default 10), BENCH_CLIENTS (default 16),
#   BENCH_SILENT (default 10000), BENCH_POOL (participant pool_size,
#   default 16), BENCH_FLOOD (default 1)
set -u
export DTX_BUILD=release
. "$(dirname "$0")/../tests/lib/harness.sh"
. "$(dirname "$0")/../tests/lib/dtx.sh"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true
secs=${BENCH_SECONDS:-10}
clients=${BENCH_CLIENTS:-16}
silent=${BENCH_SILENT:-10000}
pool=${BENCH_POOL:-16}
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((silent + 256)) ]; then
    echo "# warning: ulimit -n is $(ulimit -n), below $silent sockets" >&2
fi

h_init
h_dtx_certs pg >/dev/null
for db in pa pb; do
    h_pg_start $db 128 >/dev/null || exit 1
    h_pg_enable_ssl $db || exit 1
    h_psql $db "create table accounts (id int primary key, balance bigint not null);
                insert into accounts select g, 1000000000 from generate_series(1, $((clients + 16))) g" || exit 1
done
H_PG_VIA_SOCKET=1
h_part_start a pa postgres "pool_size = $pool" >/dev/null || exit 1
h_part_start b pb postgres "pool_size = $pool" >/dev/null || exit 1
h_coord_start >/dev/null || exit 1
h_wait_log coord 'participant "a" .* is ready' 20 && h_wait_log coord 'participant "b" .* is ready' 20 || exit 1

B="$H_BIN/bench-bank"
pids=(--coord-pid "$(h_pid coord)" --part-pids "$(h_pid part-a),$(h_pid part-b)")
out="$H_TMP/bench.jsonl"
run() { # PHASE [SECONDS]
    "$B" --mode dtx_oneshot --clients "$clients" --seconds "${2:-$secs}" "${pids[@]}" |
        sed "s/^{/{\"phase\":\"$1\",/" | tee -a "$out"
}

# hold PHASE [tool-silent options] — the sockets, then the load meanwhile
hold() {
    local phase=$1
    shift
    "$H_BIN/tool-silent" --port "$H_COORD_PORT" --count "$silent" "$@" >"$H_TMP/$phase.out" 2>&1 &
    local pid=$!
    if ! h_wait_until 120 grep -q '^ready' "$H_TMP/$phase.out"; then
        echo "# $phase: the $silent sockets did not connect within 120 s" >&2
        kill -TERM "$pid"
        return 1
    fi
    echo "# $phase: $(head -n 1 "$H_TMP/$phase.out")"
    run "$phase"
    kill -TERM "$pid"
    wait "$pid"
    echo "# $phase: $(tail -n 1 "$H_TMP/$phase.out")"
}

run warm-up 3 >/dev/null # caches, pools and PostgreSQL's first plans: not the quiet run's
run quiet
hold held
[ "${BENCH_FLOOD:-1}" = 0 ] || hold flood --reopen
h_stop coord >/dev/null
echo "# coordinator: $(grep -E 'refused [0-9]+ connections? in the last' "$H_TMP/coord.log" | sed 's/^.*LOG: *//' | tail -n 3 | paste -sd'|' | sed 's/|/ | /g')"

python3 - "$out" "$silent" <<'PY'
import json, sys
rows = {r["phase"]: r for r in (json.loads(l) for l in open(sys.argv[1]) if l.startswith("{"))}
q = rows.get("quiet")
if not q or not q.get("p99_ms"):
    print("# no quiet run: see above")
    sys.exit(1)
rc = 0
for phase in ("held", "flood"):
    h = rows.get(phase)
    if h is None:
        continue
    ratio = h["p99_ms"] / q["p99_ms"] if h.get("txns") else float("inf")
    verdict = "within" if ratio <= 2 else "NOT within"
    print(f"# {phase}: {sys.argv[2]} silent sockets: {h['txns']} commits, {h['failures']} failures; "
          f"tps {h['tps']:.0f} vs {q['tps']:.0f} quiet; p99 {h['p99_ms']:.2f} ms vs "
          f"{q['p99_ms']:.2f} ms quiet: ratio {ratio:.2f} ({verdict} 2x)")
    if phase == "held" and (ratio > 2 or h["failures"] or not h["txns"]):
        rc = 1
sys.exit(rc)
PY
