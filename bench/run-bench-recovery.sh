#!/usr/bin/env bash
# make bench-recovery — how long a restarted coordinator takes to finish
# 1,000 in-doubt transactions spread over three participants.
#
# Each round: the coordinator runs with two failpoints (so this needs the
# test build): coord-after-commit-durable=error (the COMMIT record is made
# durable and the client told COMMITTED, but no COMMIT PREPARED is sent) and
# coord-resolver-pass=error (the resolver stays idle).  1,000 two- and
# three-participant transfers leave 1,000 logged commits with every branch
# still prepared.  Then the coordinator is killed (SIGKILL) and started
# without failpoints, and the clock runs from that start until nothing of
# ours is prepared in any database and `dtx indoubt` is empty (polled every
# 20 ms).  One JSON line per round, then the median.  The invariants of the
# crash tests are checked at the end.
#   RECOVERY_TXNS (default 1000), RECOVERY_ROUNDS (default 3)
set -u
export DTX_BUILD=test
. "$(dirname "$0")/../tests/lib/harness.sh"
. "$(dirname "$0")/../tests/lib/dtx.sh"
n=${RECOVERY_TXNS:-1000}
rounds=${RECOVERY_ROUNDS:-3}
threads=10
per=$(((n + threads - 1) / threads))
export BANK_ACCOUNTS=$((per * threads + 16))
. "$(dirname "$0")/../tests/lib/bank.sh"

h_init
bank_setup $((n + 100)) "pool_size = 16" >/dev/null || exit 1
h_coord_config "sweep_interval = 10s"
h_coord_start >/dev/null || exit 1
h_wait_until 30 bank_resolved || exit 1

prepared_ours() {
    local p total=0 c
    for p in a b c; do
        c=$(h_psql "p$p" "select count(*) from pg_prepared_xacts where gid like 'dtx:c1:%'")
        total=$((total + c))
    done
    echo $total
}

times=()
for r in $(seq 1 "$rounds"); do
    h_kill coord
    DTX_FAILPOINTS="coord-after-commit-durable=error@1+;coord-resolver-pass=error@1+" \
        h_coord_start >/dev/null || exit 1
    bank_run --threads $threads --txns $per --spread --seed "$r" >/dev/null || exit 1
    indoubt=$(($(h_dtx indoubt | grep -c '^ *dtx:c1:')))
    branches=$(prepared_ours)
    h_kill coord
    t0=$(date +%s%N)
    h_start coord "$H_BIN/dtx-coordinator" -c "$H_TMP/coord.ini"
    # the coordinator must be up before "nothing in doubt" means anything
    until h_dtx indoubt >/dev/null 2>&1; do sleep 0.02; done
    until [ "$(prepared_ours)" = 0 ] && h_dtx indoubt | grep -q '(0 rows)'; do sleep 0.02; done
    t1=$(date +%s%N)
    ms=$(((t1 - t0) / 1000000))
    times+=("$ms")
    echo "{\"bench\":\"recovery\",\"round\":$r,\"in_doubt\":$indoubt,\"prepared_branches\":$branches,\"participants\":3,\"recovery_ms\":$ms,\"build\":\"test (ASan+UBSan)\"}"
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
echo "# recovery of $n in-doubt transactions: median ${median} ms over $rounds rounds (${times[*]})"
out=$(bank_check 2>&1)
echo "# $(tail -n 1 <<<"$out")"
h_stop coord >/dev/null
grep -q ', 0 violations' <<<"$out"
