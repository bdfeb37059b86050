#!/usr/bin/env bash
# ha.sh — automatic failover through etcd (docs/failover.md, "Automatic
# failover"): two instances of coordinator c1, X and Y, with [ha], a real
# etcd (Debian's etcd-server) on loopback, real PostgreSQL clusters,
# participants and TLS.  Neither is told its role: etcd's leader key says.
#
#   config       [ha] settings that cannot work are refused at start, with
#                the reason; dtx promote is refused on an [ha] instance
#   takeover     the primary killed (SIGKILL) under the bank workload: the
#                standby takes over by itself, the clients follow, the old
#                primary restarted rejoins as standby; I1-I6 hold, no gid
#                reused; dtx replication shows the leader, the lease, the
#                recorded synchronous standby and etcd
#   frozen       the primary SIGSTOPped longer than the TTL, then resumed:
#                the standby took over; the old primary prepares, commits
#                and rolls back nothing (PostgreSQL's statement logs),
#                notices, and rejoins as a standby of the new primary
#   primary-cut  only the primary cut off from etcd (its etcd traffic goes
#                through a proxy that is frozen): the leader key expires,
#                the standby, still streaming from a live primary, does not
#                campaign and says why; the primary serves on while the
#                standby acknowledges, stops once the standby is gone, and
#                leads again once it reaches etcd; nothing is lost
#   etcd-cut     etcd gone: the primary serves on while its synchronous
#                standby acknowledges, and stops serving once the standby
#                is gone too; etcd back: the instance that holds every
#                decision takes the lead again; nothing is lost
#   not-sync     a standby that is not the synchronous one etcd records —
#                newly attached to an empty log, or left behind when the
#                primary went on alone — never takes over, and says why
#   etcd-restart etcd killed and started again under the workload: no
#                failover (same epoch, same leader), nothing lost
#   cluster3     a three-member etcd cluster, the member the instances ask
#                first killed: requests move to the others (logged); the
#                primary killed: the standby takes over
#   tls          etcd over https with client certificates (etcd_ca,
#                etcd_cert, etcd_key): the pair leads and fails over; an
#                instance with the wrong CA, or without a client certificate,
#                cannot talk to etcd, says so, and never leads
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/dtx.sh"
. "$(dirname "$0")/../lib/bank.sh"
. "$(dirname "$0")/../lib/etcd.sh"
h_cases +config takeover frozen primary-cut etcd-cut not-sync etcd-restart cluster3 tls
h_init

bank_setup || exit 1
# single transfers (transfer below) use their own table, outside the bank's
for p in pa pb; do h_psql "$p" "create table x (id int primary key, balance int); insert into x values (1, 0)"; done
HA_TTL=5s
# a frozen instance accepts connections and never answers: clients give up
# on it after 2 s and try the next host
export DTXCONNECT_TIMEOUT=2

field() { h_pair_dtx "$1" replication 2>/dev/null | sed -n "s/^$2: //p"; }
is_primary() { h_pair_role_is "$1" primary; }
is_standby() { h_pair_role_is "$1" standby; }
leader() { h_etcd_get /dtx/c1/leader | python3 -c 'import json,sys; print(json.load(sys.stdin)["member"])' 2>/dev/null; }
epoch_key() { h_etcd_get /dtx/c1/epoch; }
leader_gone() { [ -z "$(h_etcd_get /dtx/c1/leader)" ]; }
# sync_standby_is NAME: etcd's sync record names NAME ("" : none)
sync_standby_is() {
    [ "$(h_etcd_get /dtx/c1/sync | python3 -c 'import json,sys; print(json.load(sys.stdin)["standby"])' 2>/dev/null)" = "$1" ]
}

# A fresh pair on a fresh etcd of $1 members: X starts first and becomes
# primary, Y follows and becomes synchronous.
# The epochs and logs go on from the last case's (the participants' fences
# and the bank journal remember them): etcd is fresh, its epoch key is not.
fresh() {
    local n e
    e=${E_NEXT:-$(epoch_key 2>/dev/null)}
    for n in X Y proxy; do h_kill "$n"; done
    for n in $(seq 1 "${H_ETCD_N:-0}"); do h_etcd_kill "$n"; done
    rm -rf "$H_TMP"/etcd[0-9]*
    h_etcd_start "${1:-1}" || return 1
    [ -z "$e" ] || h_etcd_put /dtx/c1/epoch "$e"
    E0=${e:-0}
    h_pair_ha_config "sweep_interval = 1s" "prepare_timeout = 5s" "sync_standby_timeout = ${SST:-0}" \
        "log_level = debug"
    if [ -n "${X_ETCD_PROXY:-}" ]; then # X reaches etcd through tools/tcpproxy.py only
        h_start proxy python3 "$H_ROOT/tests/tools/tcpproxy.py" "$X_ETCD_PROXY" "${H_ETCD_CPORT[1]}"
        h_wait_log proxy listening 10 || return 1
        sed -i "s/^etcd = .*/etcd = 127.0.0.1:$X_ETCD_PROXY/" "$H_TMP/X.ha.ini"
    fi
    if [ "${H_ETCD_TLS:-0}" = 1 ]; then
        for n in X Y; do
            printf 'etcd_ca = %s\netcd_cert = %s\netcd_key = %s\n' "$H_CERTS/ca.crt" \
                "$H_CERTS/coord.crt" "$H_CERTS/coord.key" >>"$H_TMP/$n.ha.ini"
        done
    fi
    h_pair_start X ha
    h_wait_until 30 is_primary X || { h_log "X never became primary"; return 1; }
    h_pair_start Y ha
    h_wait_until 30 h_pair_is X synchronous || { h_log "Y never became synchronous"; return 1; }
    h_wait_until 30 bank_resolved
}

# one transfer through whichever instance is primary: its outcome word
transfer() {
    local out
    out=$("$H_BIN/dtx" exec -P a "update x set balance = balance - 1 where id = 1" \
        -P b "update x set balance = balance + 1 where id = 1" 2>&1)
    grep -oE '^(COMMITTED|ABORTED|UNKNOWN)' <<<"$out" | head -n 1 | grep . ||
        echo "error: $(grep -m1 -E 'ERROR|error' <<<"$out")"
}

if h_case config; then
    h_etcd_start 1
    h_pair_ha_config
    bad() { # NAME SED-EXPR EXPECTED-TEXT
        sed -e "$2" "$H_TMP/X.ha.ini" >"$H_TMP/bad.ini"
        out=$("$H_BIN/dtx-coordinator" -c "$H_TMP/bad.ini" -t 2>&1)
        rc=$?
        h_check "config: $1 is refused ($out)" test $rc -ne 0
        h_check "config: ... saying why" grep -q -- "$3" <<<"$out"
    }
    bad "[ha] with [standby] primary" '$a [standby]\nprimary = 127.0.0.1:1' "takes its role from etcd"
    bad "a TTL of 2.5 s" 's/^ttl = .*/ttl = 2500ms/' "whole seconds"
    bad "renew_interval over a third of ttl" '$a renew_interval = 2s' "at most a third of ttl"
    bad "a member name with a space" 's/^member = .*/member = a b/' "member \"a b\""
    bad "no member" '/^member = /d' "member"
    bad "an endpoint without a port number" "s/^etcd = .*/etcd = 127.0.0.1:x/" "endpoint"
    bad "etcd_cert without etcd_key" '$a etcd_cert = /x.crt' "go together"
    h_etcd_kill 1
fi

if h_case takeover; then
    fresh 1 || exit 1
    h_eq "takeover: X won the next epoch from etcd" "$((E0 + 1)) X" "$(epoch_key) $(leader)"
    h_check "takeover: dtx replication on X shows the leader key's holder" \
        grep -q "^ha_leader: X at 127.0.0.1:.*epoch $((E0 + 1)) (this instance)" <<<"$(h_pair_dtx X replication)"
    lease=$(field X ha_lease_ms)
    h_check "takeover: ... the lease time left ($lease ms)" test "${lease:-0}" -gt 0 -a "${lease:-0}" -le 5000
    h_eq "takeover: ... the recorded synchronous standby" "Y" "$(field X ha_sync_standby | cut -d' ' -f1)"
    h_check "takeover: ... and etcd" grep -q "^reachable" <<<"$(field X ha_etcd)"
    h_check "takeover: Y's view names X as leader" grep -q "^X at" <<<"$(field Y ha_leader)"
    out=$(h_pair_dtx Y promote 2>&1)
    h_check "takeover: dtx promote is refused on an [ha] standby ($(grep -m1 ERROR <<<"$out"))" grep -q "fails over by itself" <<<"$out"
    bank_run --threads 4 --seconds 10 --reconnect --seed 7 >"$H_TMP/w.out" 2>&1 &
    w=$!
    sleep 3
    h_kill X
    t0=$(date +%s%N)
    h_wait_until 20 is_primary Y
    t1=$(date +%s%N)
    h_check "takeover: Y is primary by itself, $(((t1 - t0) / 1000000)) ms after the kill" is_primary Y
    h_eq "takeover: ... with the next epoch from etcd" "$((E0 + 2)) Y" "$(epoch_key) $(leader)"
    h_pair_start X ha
    h_check "takeover: the old primary restarted rejoins as a standby" \
        h_wait_until 30 is_standby X
    h_check "takeover: ... and becomes synchronous" h_wait_until 30 h_pair_is Y synchronous
    wait $w
    h_check "takeover: the clients followed (transactions committed after the failover)" \
        test "$(grep -c ' COMMITTED' "$BANK_JOURNAL")" -gt 0
    h_wait_until 40 bank_resolved
    out=$(bank_check 2>&1)
    grep '^VIOLATION' <<<"$out" | head -5 | sed 's/^/# /'
    h_check "takeover: I1-I6 hold ($(grep '^check:' <<<"$out"))" test "$(grep -c '^VIOLATION' <<<"$out")" = 0
    h_check "takeover: no gid handed out twice" bank_gids_unique
fi

declare -A mark=()
if h_case frozen; then
    fresh 1 || exit 1
    bank_run --threads 4 --seconds 10 --reconnect --seed 11 >"$H_TMP/w.out" 2>&1 &
    w=$!
    sleep 2
    kill -STOP "$(h_pid X)"
    h_check "frozen: Y takes over while X is frozen" h_wait_until 25 is_primary Y
    # Y has finished what epoch 1 left: anything of epoch 1 the databases
    # see from now on would be X's
    h_wait_until 40 bank_resolved
    for p in a b c; do mark[$p]=$(wc -l <"$H_TMP/pg-p$p/server.log"); done
    H_LOG_FROM[X]=$(stat -c %s "$H_TMP/X.log")
    kill -CONT "$(h_pid X)"
    h_check "frozen: X notices it lost the lead" \
        h_wait_newlog X "gives up being primary|has been deposed" 15
    h_check "frozen: ... and rejoins as a standby of Y by itself" h_wait_until 30 is_standby X
    h_check "frozen: ... which counts on it again" h_wait_until 30 h_pair_is Y synchronous
    wait $w
    n=0
    for p in a b c; do
        n=$((n + $(tail -n +$((${mark[$p]} + 1)) "$H_TMP/pg-p$p/server.log" |
            grep -cE "(PREPARE TRANSACTION|COMMIT PREPARED|ROLLBACK PREPARED) 'dtx:c1:$((E0 + 1)):")))
    done
    h_eq "frozen: after SIGCONT, X prepares, commits and rolls back nothing" 0 "$n"
    h_wait_until 40 bank_resolved
    out=$(bank_check 2>&1)
    grep '^VIOLATION' <<<"$out" | head -5 | sed 's/^/# /'
    h_check "frozen: I1-I6 hold ($(grep '^check:' <<<"$out"))" test "$(grep -c '^VIOLATION' <<<"$out")" = 0
    h_check "frozen: no gid handed out twice" bank_gids_unique
fi

if h_case primary-cut; then
    X_ETCD_PROXY=$(h_free_port) fresh 1 || exit 1
    H_LOG_FROM[Y]=$(stat -c %s "$H_TMP/Y.log")
    kill -STOP "$(h_pid proxy)"
    h_check "primary-cut: the leader key expires (X cannot renew it)" h_wait_until 15 leader_gone
    h_check "primary-cut: ... X says its lease is lost" h_wait_log X "leader lease is lost" 15
    h_check "primary-cut: Y, still streaming from X, does not campaign, and says why" \
        h_wait_newlog Y "not campaigning for the leader key: the leader key is gone, but the primary still streams" 10
    sleep 2
    h_check "primary-cut: X still leads" is_primary X
    h_check "primary-cut: ... Y still follows" is_standby Y
    ok=0
    for i in $(seq 1 10); do [ "$(transfer)" = COMMITTED ] && ok=$((ok + 1)); done
    h_eq "primary-cut: ... transfers commit (Y acknowledges)" 10 "$ok"
    bal_b=$(h_psql pb "select balance from x where id = 1")
    h_kill Y
    h_check "primary-cut: with Y gone, X stops serving" h_wait_log X "gives up being primary" 15
    res=$(transfer)
    h_check "primary-cut: ... a transfer now is not committed ($res)" test "$res" != COMMITTED
    kill -CONT "$(h_pid proxy)"
    h_check "primary-cut: X reaches etcd again and leads" h_wait_until 30 is_primary X
    h_pair_start Y ha
    h_check "primary-cut: Y follows again" h_wait_until 30 h_pair_is X synchronous
    h_eq "primary-cut: a transfer commits" COMMITTED "$(transfer)"
    h_eq "primary-cut: nothing was lost" $((bal_b + 1)) "$(h_psql pb "select balance from x where id = 1")"
fi

if h_case etcd-cut; then
    fresh 1 || exit 1
    h_etcd_kill 1
    sleep 7 # past the TTL
    h_check "etcd-cut: X still serves while Y acknowledges" is_primary X
    ok=0
    for i in $(seq 1 10); do [ "$(transfer)" = COMMITTED ] && ok=$((ok + 1)); done
    h_eq "etcd-cut: ... transfers commit past the lease" 10 "$ok"
    h_check "etcd-cut: ... and X says its lease is lost" h_wait_log X "leader lease is lost" 5
    bal_b=$(h_psql pb "select balance from x where id = 1")
    h_kill Y
    h_check "etcd-cut: with Y gone too, X stops serving" h_wait_log X "gives up being primary" 15
    res=$(transfer)
    h_check "etcd-cut: ... a transfer now is not committed ($res)" test "$res" != COMMITTED
    h_check "etcd-cut: ... X waits as a standby, without etcd" h_wait_until 15 is_standby X
    h_eq "etcd-cut: ... the last commits are all there" "$bal_b" \
        "$(h_psql pb "select balance from x where id = 1")"
    h_etcd_member_start 1
    h_check "etcd-cut: etcd back, X (it holds every decision) leads again" h_wait_until 30 is_primary X
    h_eq "etcd-cut: ... with a new epoch from etcd" "$((E0 + 2)) X" "$(epoch_key) $(leader)"
    h_pair_start Y ha
    h_check "etcd-cut: Y follows again" h_wait_until 30 h_pair_is X synchronous
    h_eq "etcd-cut: a transfer commits" COMMITTED "$(transfer)"
    h_wait_until 40 bank_resolved
    h_eq "etcd-cut: nothing was lost" $((bal_b + 1)) "$(h_psql pb "select balance from x where id = 1")"
fi

if h_case not-sync; then
    # newly attached: X served alone; Y, fresh, never takes over
    SST=1s fresh 1 || exit 1
    h_kill Y
    h_check "not-sync: with Y gone, X records in etcd that it goes on alone" \
        h_wait_until 15 sync_standby_is ""
    h_eq "not-sync: X commits alone" COMMITTED "$(transfer)"
    bal_b=$(h_psql pb "select balance from x where id = 1")
    h_kill X
    rm -rf "$H_TMP/data-Y"
    h_pair_start Y ha
    sleep 8 # past the TTL, with the standby polling every 200 ms
    h_check "not-sync: a fresh standby never takes over" is_standby Y
    h_check "not-sync: ... and says why" grep -q "not campaigning for the leader key: etcd records that \"X\" went on without a synchronous standby" "$H_TMP/Y.log"
    h_pair_start X ha
    h_check "not-sync: X, started again, leads" h_wait_until 30 is_primary X
    h_check "not-sync: ... Y follows and becomes synchronous" h_wait_until 30 h_pair_is X synchronous
    h_eq "not-sync: ... X's last commit is there" "$bal_b" "$(h_psql pb "select balance from x where id = 1")"
    # behind: Y frozen, X goes on alone (recorded), Y resumes, X dies
    H_LOG_FROM[X]=$(stat -c %s "$H_TMP/X.log")
    kill -STOP "$(h_pid Y)"
    h_check "not-sync: Y frozen, X records that it goes on alone" \
        h_wait_newlog X "etcd records it, so the standby no longer takes over" 15
    h_eq "not-sync: ... and commits alone" COMMITTED "$(transfer)"
    bal_b=$(h_psql pb "select balance from x where id = 1")
    H_LOG_FROM[Y]=$(stat -c %s "$H_TMP/Y.log")
    h_kill X
    kill -CONT "$(h_pid Y)"
    sleep 8
    h_check "not-sync: Y, left behind, never takes over" is_standby Y
    h_check "not-sync: ... and says why" h_wait_newlog Y "not campaigning for the leader key: etcd records that \"X\" went on" 1
    h_pair_start X ha
    h_check "not-sync: X leads again" h_wait_until 30 is_primary X
    h_eq "not-sync: ... its commit made alone is there" "$bal_b" "$(h_psql pb "select balance from x where id = 1")"
fi

if h_case etcd-restart; then
    fresh 1 || exit 1
    e0=$(epoch_key)
    bank_run --threads 4 --seconds 10 --reconnect --seed 13 >"$H_TMP/w.out" 2>&1 &
    w=$!
    sleep 2
    h_etcd_kill 1
    sleep 3
    h_etcd_member_start 1
    h_wait_until 20 h_etcd_healthy
    wait $w
    h_check "etcd-restart: no failover: X still leads" is_primary X
    h_eq "etcd-restart: ... same epoch, same leader key holder" "$e0 X" "$(epoch_key) $(leader)"
    h_check "etcd-restart: ... Y still synchronous" h_wait_until 10 h_pair_is X synchronous
    h_wait_until 40 bank_resolved
    out=$(bank_check 2>&1)
    grep '^VIOLATION' <<<"$out" | head -5 | sed 's/^/# /'
    h_check "etcd-restart: I1-I6 hold ($(grep '^check:' <<<"$out"))" test "$(grep -c '^VIOLATION' <<<"$out")" = 0
    h_check "etcd-restart: transactions committed throughout" test "$(grep -c ' COMMITTED' "$BANK_JOURNAL")" -gt 0
    # a clean stop: no leak or error in the etcd and [ha] code (ASan's
    # LeakSanitizer, or valgrind under make valgrind, fail the exit status)
    h_stop Y 30
    ry=$?
    h_stop X 30
    h_eq "etcd-restart: both stop cleanly (SIGTERM)" "0 0" "$ry $?"
fi

if h_case cluster3; then
    fresh 3 || exit 1
    bank_run --threads 4 --seconds 11 --reconnect --seed 17 >"$H_TMP/w.out" 2>&1 &
    w=$!
    sleep 1
    h_etcd_kill 1
    h_check "cluster3: a member gone, the others answer (logged with its endpoint)" \
        h_wait_log X "etcd 127.0.0.1:${H_ETCD_CPORT[1]}: " 10
    sleep 1
    h_kill X
    h_check "cluster3: the standby takes over" h_wait_until 25 is_primary Y
    h_eq "cluster3: ... with the next epoch" "$((E0 + 2)) Y" "$(epoch_key) $(leader)"
    h_pair_start X ha
    h_check "cluster3: X rejoins as standby" h_wait_until 30 is_standby X
    wait $w
    h_wait_until 40 bank_resolved
    out=$(bank_check 2>&1)
    grep '^VIOLATION' <<<"$out" | head -5 | sed 's/^/# /'
    h_check "cluster3: I1-I6 hold ($(grep '^check:' <<<"$out"))" test "$(grep -c '^VIOLATION' <<<"$out")" = 0
    h_check "cluster3: no gid handed out twice" bank_gids_unique
fi

if h_case tls; then
    E_NEXT=$(epoch_key)
    H_ETCD_TLS=1
    fresh 1 || exit 1
    h_check "tls: X leads through https to etcd" grep -q "^reachable" <<<"$(field X ha_etcd)"
    h_kill X
    h_check "tls: the standby takes over" h_wait_until 25 is_primary Y
    # X again, first trusting another CA, then with no client certificate
    mkdir -p "$H_TMP/other-ca"
    "$H_ROOT/tests/lib/gencerts.sh" "$H_TMP/other-ca" x >/dev/null
    sed "s|^etcd_ca = .*|etcd_ca = $H_TMP/other-ca/ca.crt|" "$H_TMP/X.ha.ini" >"$H_TMP/X.wrongca.ini"
    h_start X "$H_BIN/dtx-coordinator" -c "$H_TMP/X.wrongca.ini"
    h_check "tls: an instance that does not trust etcd's certificate says why" \
        h_wait_newlog X "etcd 127.0.0.1:[0-9]+: .*certificate" 10
    h_check "tls: ... and follows nobody" grep -q "^nobody" <<<"$(field X ha_leader)"
    h_kill X
    grep -v '^etcd_cert\|^etcd_key' "$H_TMP/X.ha.ini" >"$H_TMP/X.nocert.ini"
    h_start X "$H_BIN/dtx-coordinator" -c "$H_TMP/X.nocert.ini"
    h_check "tls: without a client certificate etcd refuses it, logged" \
        h_wait_newlog X "etcd 127.0.0.1:[0-9]+: " 10
    h_check "tls: ... and it follows nobody" grep -q "^nobody" <<<"$(field X ha_leader)"
    h_kill X
    h_pair_start X ha
    h_check "tls: with its certificates it rejoins as standby" h_wait_until 30 is_standby X
    h_check "tls: ... and becomes synchronous" h_wait_until 30 h_pair_is Y synchronous
fi

h_done
