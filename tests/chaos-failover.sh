#!/usr/bin/env bash
# make chaos-failover SECONDS=N — the chaos bank test with coordinator
# failover among its faults.
#
# Two coordinators of one name, c1: X starts as primary, Y as its
# synchronous standby.  Clients list both hosts (libdtx finds the primary)
# and make random transfers (tests/tools/bank.c) for N seconds while a
# driver, at random moments:
#   - kills the primary with SIGKILL (sometimes armed to die between its
#     COMMIT record and phase two), promotes the standby when it is sure it
#     holds every acknowledged decision, and restarts the old primary as the
#     new primary's standby (it cuts a forked tail if it has one) — or, when
#     the standby is not sure, restarts the old primary as primary;
#   - kills the standby and restarts it (it catches up; commits wait);
#   - kills a participant, or stops a PostgreSQL server in immediate mode,
#     and starts it again.
# Then it quiesces, waits for recovery and checks the invariants I1-I6
# (tests/lib/bank.sh, tests/tools/bank.c) over every transaction — every
# COMMITTED one committed everywhere, every UNKNOWN answered by STATUS on
# the last primary in agreement with the data — and that no gid was handed
# out twice across epochs.  The last line is
#
#     chaos-failover: <n> transactions, <k> faults (<f> failovers), <v> violations
#
# With HA=etcd (make chaos-failover HA=etcd) the pair runs with [ha] on a
# real etcd and nobody runs dtx promote: a killed primary's standby takes
# over by itself (or, when etcd does not let it, the restarted old primary
# leads again), every restarted instance finds its role in etcd, and etcd
# itself is among the faults (killed, started again).  Same last line.
#
#   CHAOS_THREADS (default 6), CHAOS_SEED (default: random, printed)
set -u
export DTX_BUILD=${DTX_BUILD:-test}
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/lib/dtx.sh"
. "$(dirname "$0")/lib/bank.sh"
. "$(dirname "$0")/lib/etcd.sh"

secs=${1:-60}
threads=${CHAOS_THREADS:-6}
seed=${CHAOS_SEED:-$RANDOM}
RANDOM=$seed
ha=${HA:-}
case $ha in "" | etcd) ;; *) echo "chaos-failover: HA=$ha: only HA=etcd is known"; exit 2 ;; esac
echo "# chaos-failover: $secs s, $threads clients, seed $seed${ha:+, automatic failover through etcd}"
h_init
bank_setup || exit 1

one() { h_pair_dtx "$@"; }
sure() { h_pair_is "$1" sure; }
synchronous() { h_pair_is "$1" synchronous; }
is_primary() { h_pair_role_is "$1" primary; }
either_leads() { is_primary X || is_primary Y; }
if [ -n "$ha" ]; then
    h_etcd_start 1 || exit 1
    h_pair_ha_config "sweep_interval = 1s" "prepare_timeout = 5s"
    # a frozen or dead host is given up after 2 s (the next host is tried)
    export DTXCONNECT_TIMEOUT=2
    start_as() { h_pair_start "$1" ha "${3:-}"; }
else
    h_pair_config "sweep_interval = 1s" "prepare_timeout = 5s"
    start_as() { h_pair_start "$@"; }
fi

PRIMARY=X
STANDBY=Y
if [ -n "$ha" ]; then
    start_as X
    h_wait_until 30 is_primary X || { echo "chaos-failover: X never led"; exit 1; }
    start_as Y
else
    start_as Y standby
    h_wait_newlog Y "ready as a standby" 20 || exit 1
    start_as X primary
    h_wait_newlog X "ready: epoch" 20 || exit 1
fi
h_wait_until 30 synchronous X || { echo "chaos-failover: the standby never caught up"; exit 1; }
h_wait_until 30 bank_resolved || { echo "chaos-failover: the initial state never settled"; exit 1; }

faults=0
failovers=0
declare -A nfault=()
fault() {
    faults=$((faults + 1))
    nfault[$1]=$((${nfault[$1]:-0} + 1))
}

# [ha]: the primary dies; its standby takes over by itself within the TTL
# and a few seconds, or it may not (etcd does not record it as
# synchronous): the old primary, started again, leads again.  Whoever
# leads is the primary from now on.
fail_primary_ha() {
    local old=$PRIMARY other=$STANDBY fp=""
    h_kill "$old"
    fault primary
    h_wait_until 12 is_primary "$other"
    [ $((RANDOM % 2)) = 0 ] && fp="coord-after-commit-durable=kill@$((RANDOM % 100 + 20))"
    start_as "$old" ha "$fp"
    local t=0
    until either_leads; do
        # a failpoint may kill the one that just took over before the other
        # could count as synchronous: only it may lead, so it starts again
        h_alive "$old" || start_as "$old" ha
        h_alive "$other" || start_as "$other" ha
        t=$((t + 1))
        if [ $t -gt 400 ]; then
            echo "chaos-failover: nobody leads 40 s after the primary was killed"
            exit 1
        fi
        sleep 0.1
    done
    if is_primary "$other"; then
        failovers=$((failovers + 1))
        PRIMARY=$other
        STANDBY=$old
    fi
}

# The primary dies; its standby takes over if it is sure, else the old
# primary comes back as primary.
fail_primary() {
    local old=$PRIMARY
    if [ -n "$ha" ]; then
        fail_primary_ha
        return
    fi
    h_kill "$old"
    fault primary
    if sure "$STANDBY" && one "$STANDBY" promote >>"$H_TMP/promote.out" 2>&1; then
        failovers=$((failovers + 1))
        PRIMARY=$STANDBY
        STANDBY=$old
        sleep "0.$((RANDOM % 10))"
        start_as "$STANDBY" standby
        h_wait_newlog "$STANDBY" "ready as a standby" 20 ||
            { echo "chaos-failover: $STANDBY did not restart as a standby"; exit 1; }
    else
        local fp=""
        [ $((RANDOM % 2)) = 0 ] && fp="coord-after-commit-durable=kill@$((RANDOM % 100 + 20))"
        start_as "$PRIMARY" primary "$fp"
        h_wait_newlog "$PRIMARY" "ready: epoch|refusing" 20 ||
            { echo "chaos-failover: $PRIMARY did not restart as primary"; exit 1; }
    fi
}

fail_standby() {
    h_kill "$STANDBY"
    fault standby
    sleep "0.$((RANDOM % 10))"
    start_as "$STANDBY" standby
    h_wait_newlog "$STANDBY" "ready as a standby|a standby until etcd" 20 ||
        { echo "chaos-failover: the standby did not restart"; exit 1; }
}

# [ha]: etcd dies and comes back; the pair goes on meanwhile
fail_etcd() {
    h_etcd_kill 1
    fault etcd
    sleep "$((RANDOM % 4)).$((RANDOM % 10))"
    h_etcd_member_start 1
    h_wait_until 20 h_etcd_healthy || { echo "chaos-failover: etcd did not restart"; exit 1; }
}

bank_run --threads "$threads" --seconds "$secs" --reconnect --seed "$seed" \
    >"$H_TMP/workload.out" 2>&1 &
workload=$!

end=$((SECONDS + secs))
while [ $SECONDS -lt $end ]; do
    sleep "$((RANDOM % 3)).$((RANDOM % 10))"
    sleep 0.5
    [ $SECONDS -lt $end ] || break
    # a primary killed by its failpoint is a fault too: restart it as above
    if ! kill -0 "$(h_pid "$PRIMARY")" 2>/dev/null; then
        fail_primary
        continue
    fi
    p=$(echo a b c | cut -d' ' -f$((RANDOM % 3 + 1)))
    k=$((RANDOM % 4))
    [ -n "$ha" ] && [ $((RANDOM % 6)) = 0 ] && k=4
    # [ha]: the primary may have lost the lead to its standby by itself
    # (a participant down at the wrong moment, etcd away): follow etcd
    if [ -n "$ha" ] && ! is_primary "$PRIMARY" && is_primary "$STANDBY"; then
        t=$PRIMARY PRIMARY=$STANDBY STANDBY=$t
    fi
    case $k in
    4) fail_etcd ;;
    0) fail_primary ;;
    1) fail_standby ;;
    2)
        h_kill "part-$p"
        fault participant
        sleep "0.$((RANDOM % 10))"
        h_part_start "$p" "p$p" >/dev/null ||
            { echo "chaos-failover: participant $p did not restart"; exit 1; }
        ;;
    3)
        h_pg_stop "p$p" immediate
        fault postgres
        sleep "0.$((RANDOM % 10))"
        h_pg_ctl_start "p$p" || { echo "chaos-failover: PostgreSQL p$p did not restart"; exit 1; }
        ;;
    esac
done

# quiesce: the clients stop, the primary is up, recovery finishes
wait $workload
cat "$H_TMP/workload.out"
kill -0 "$(h_pid "$PRIMARY")" 2>/dev/null || fail_primary
v=0
if ! h_wait_until 90 bank_resolved; then
    echo "VIOLATION recovery did not finish within 90 s:"
    h_dtx indoubt
    v=$((v + 1))
fi
out=$(bank_check 2>&1)
echo "$out" | grep -v '^check:' | head -50
echo "$out" | grep '^check:'
v=$((v + $(grep -c '^VIOLATION' <<<"$out")))

# I5: the primary killed and restarted (its standby still follows, not
# promoted): the second recovery resolves nothing and changes nothing
d1=$(bank_digest)
h_kill "$PRIMARY"
if [ -n "$ha" ]; then
    h_stop "$STANDBY" >/dev/null # (else it may take over: it is eligible too)
    start_as "$PRIMARY" ha
    h_wait_until 30 is_primary "$PRIMARY" || { echo "VIOLATION I5 no restart"; v=$((v + 1)); }
else
    start_as "$PRIMARY" primary
    h_wait_newlog "$PRIMARY" "ready: epoch" 20 || { echo "VIOLATION I5 no restart"; v=$((v + 1)); }
fi
h_wait_until 40 bank_resolved
sleep 1.5
d2=$(bank_digest)
acted=$(h_newlog "$PRIMARY" | grep -E 'committed on every participant|rolled back orphaned')
if [ "$d1" != "$d2" ] || [ -n "$acted" ]; then
    echo "VIOLATION I5 the second recovery resolved or changed something${acted:+: $acted}"
    v=$((v + 1))
fi
if ! bank_gids_unique; then
    echo "VIOLATION a gid was used twice"
    v=$((v + 1))
fi
h_stop "$STANDBY" >/dev/null
h_stop "$PRIMARY" >/dev/null

n=$(grep -c '^B ' "$BANK_JOURNAL")
echo "# faults: primary ${nfault[primary]:-0} ($failovers failovers), standby" \
    "${nfault[standby]:-0}, participant ${nfault[participant]:-0}, postgres" \
    "${nfault[postgres]:-0}${ha:+, etcd ${nfault[etcd]:-0}}; outcomes:" \
    "$(awk '$1 == "R" {print $3}' "$BANK_JOURNAL" | sort | uniq -c | tr '\n' ' ')"
echo "chaos-failover: $n transactions, $faults faults ($failovers failovers), $v violations"
[ $v -eq 0 ]
