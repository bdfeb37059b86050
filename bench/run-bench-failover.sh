#!/usr/bin/env bash
# make bench-failover — how long a failover takes.
#
# Two coordinators of one name (a primary and its synchronous standby), three
# participants (tests/lib/bank.sh).
#
#   manual   kill -9 the primary, `dtx promote` the standby at once, and
#            time until the first transfer commits on the new primary (a
#            client listing both hosts, retrying); then the old primary
#            rejoins as the new one's standby and the roles swap.
#            FAILOVER_ROUNDS rounds (default 5), median.
#   in doubt the primary restarted with coord-after-commit-durable=error and
#            coord-resolver-pass=error (so this needs the test build): 1,000
#            transfers leave 1,000 logged commits with every branch still
#            prepared, replicated to the standby; kill -9 the primary,
#            promote the standby, and time until nothing of ours is prepared
#            in any database and `dtx indoubt` is empty (polled every 20 ms).
#   automatic the same pair with [ha] on a real etcd (one member, the
#            default 5 s TTL): kill -9 the primary and time until the first
#            transfer commits on the standby, which takes over by itself
#            (nobody runs dtx promote); the old primary, started again,
#            rejoins as standby.  FAILOVER_ROUNDS rounds, median.
#
# One JSON line per measurement, then the last line
#
#   bench-failover: manual X ms (median of 5), 1000 in doubt resolved in Y ms, automatic Z ms (median of 5)
#
# The invariants of the crash tests are checked at the end.
#   FAILOVER_ROUNDS (default 5), FAILOVER_TXNS (default 1000)
set -u
export DTX_BUILD=test
. "$(dirname "$0")/../tests/lib/harness.sh"
. "$(dirname "$0")/../tests/lib/dtx.sh"
rounds=${FAILOVER_ROUNDS:-5}
n=${FAILOVER_TXNS:-1000}
threads=10
per=$(((n + threads - 1) / threads))
export BANK_ACCOUNTS=$((per * threads + 16))
. "$(dirname "$0")/../tests/lib/bank.sh"
. "$(dirname "$0")/../tests/lib/etcd.sh"

h_init
bank_setup $((n + 100)) "pool_size = 16" >/dev/null || exit 1
h_pair_config "sweep_interval = 10s"
one() { h_pair_dtx "$@"; }
sure() { h_pair_is "$1" sure; }
synchronous() { h_pair_is "$1" synchronous; }
start_as() { h_pair_start "$@"; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
prepared_ours() {
    local p total=0 c
    for p in a b c; do
        c=$(h_psql "p$p" "select count(*) from pg_prepared_xacts where gid like 'dtx:c1:%'")
        total=$((total + c))
    done
    echo $total
}
# a two-participant write that changes no balance (the bank's invariants
# count only its own journalled transfers)
transfer_ok() {
    "$H_BIN/dtx" exec -P a "update accounts set balance = balance + 0 where id = 1" \
        -P b "update accounts set balance = balance + 0 where id = 1" >/dev/null 2>&1
}

PRIMARY=X
STANDBY=Y
start_as Y standby
h_wait_newlog Y "ready as a standby" 20 || exit 1
start_as X primary
h_wait_newlog X "ready: epoch" 20 || exit 1
h_wait_until 30 synchronous X || exit 1
h_wait_until 30 sure Y || exit 1
h_wait_until 30 bank_resolved || exit 1

# the old primary rejoins as the new one's standby; roles swap
rejoin() {
    local old=$PRIMARY
    PRIMARY=$STANDBY
    STANDBY=$old
    start_as "$STANDBY" standby
    h_wait_newlog "$STANDBY" "ready as a standby" 20 || exit 1
    h_wait_until 30 synchronous "$PRIMARY" || { echo "# the rejoined standby never caught up"; exit 1; }
    h_wait_until 30 sure "$STANDBY" || exit 1
}

times=()
for r in $(seq 1 "$rounds"); do
    for i in 1 2 3; do transfer_ok || exit 1; done
    h_kill "$PRIMARY"
    t0=$(date +%s%N)
    one "$STANDBY" promote >/dev/null || { echo "# promotion refused"; exit 1; }
    until transfer_ok; do sleep 0.005; done
    ms=$(ms_since "$t0")
    times+=("$ms")
    echo "{\"bench\":\"failover\",\"kind\":\"manual\",\"round\":$r,\"kill_to_first_commit_ms\":$ms,\"build\":\"test (ASan+UBSan)\"}"
    rejoin
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')

# in doubt: the primary again, with the failpoints; its standby follows it
h_kill "$PRIMARY"
start_as "$PRIMARY" primary "coord-after-commit-durable=error@1+;coord-resolver-pass=error@1+"
h_wait_newlog "$PRIMARY" "ready: epoch" 20 || exit 1
h_wait_until 30 synchronous "$PRIMARY" || exit 1
h_wait_until 30 sure "$STANDBY" || exit 1
bank_run --threads $threads --txns $per --spread --seed 7 >/dev/null || exit 1
indoubt=$(one "$PRIMARY" indoubt | grep -c '^ *dtx:c1:')
branches=$(prepared_ours)
h_kill "$PRIMARY"
t0=$(date +%s%N)
one "$STANDBY" promote >/dev/null || { echo "# promotion refused"; exit 1; }
until [ "$(prepared_ours)" = 0 ] && one "$STANDBY" indoubt 2>/dev/null | grep -q '(0 rows)'; do
    sleep 0.02
done
ms_doubt=$(ms_since "$t0")
echo "{\"bench\":\"failover\",\"kind\":\"in_doubt\",\"in_doubt\":$indoubt,\"prepared_branches\":$branches,\"participants\":3,\"kill_to_resolved_ms\":$ms_doubt,\"build\":\"test (ASan+UBSan)\"}"
out=$(bank_check 2>&1)
grep '^VIOLATION' <<<"$out" | sed 's/^/# /'
echo "# $(tail -n 1 <<<"$out")"
echo "# manual failovers: ${times[*]} ms"

# automatic: the same two instances (their logs go on) with [ha]
h_stop "$STANDBY" >/dev/null
h_etcd_start 1 >/dev/null || exit 1
h_pair_ha_config "sweep_interval = 10s"
is_primary() { h_pair_role_is "$1" primary; }
start_as X ha
h_wait_until 30 is_primary X || { echo "# X never led"; exit 1; }
start_as Y ha
h_wait_until 30 synchronous X || exit 1
PRIMARY=X
STANDBY=Y
auto=()
for r in $(seq 1 "$rounds"); do
    for i in 1 2 3; do transfer_ok || exit 1; done
    h_kill "$PRIMARY"
    t0=$(date +%s%N)
    until transfer_ok; do sleep 0.005; done
    ms=$(ms_since "$t0")
    auto+=("$ms")
    echo "{\"bench\":\"failover\",\"kind\":\"automatic\",\"round\":$r,\"ttl_ms\":5000,\"kill_to_first_commit_ms\":$ms,\"build\":\"test (ASan+UBSan)\"}"
    old=$PRIMARY
    PRIMARY=$STANDBY
    STANDBY=$old
    start_as "$STANDBY" ha
    h_wait_until 30 synchronous "$PRIMARY" || { echo "# the old primary never rejoined"; exit 1; }
done
median_auto=$(printf '%s\n' "${auto[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
echo "# automatic failovers: ${auto[*]} ms"
h_stop "$STANDBY" >/dev/null
h_stop "$PRIMARY" >/dev/null
echo "bench-failover: manual $median ms (median of $rounds), $indoubt in doubt resolved in $ms_doubt ms, automatic $median_auto ms (median of $rounds)"
grep -q ', 0 violations' <<<"$out"
