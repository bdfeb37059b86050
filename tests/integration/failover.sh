#!/usr/bin/env bash
# failover.sh — a primary coordinator and its synchronous standby (c1 and
# c1's standby, docs/failover.md): real PostgreSQL clusters, participants,
# TLS and processes.
#
#   stream       the standby holds the primary's log byte for byte, is
#                synchronous, and answers STATUS, INDOUBT and REPLICATION;
#                a client that wants the primary is refused by the standby
#                (57P03) and finds the primary through its host list
#   sync-wait    with the synchronous standby gone, no commit is
#                acknowledged; commits resume once it is back and caught up
#   restart-waits  a primary restarted while its synchronous standby is
#                down serves nothing (its new EPOCH waits for the standby:
#                the standby could otherwise be promoted without what the
#                restarted primary decides); it serves once the standby is
#                back
#   kill-promote the primary is killed with a decision logged and phase two
#                not sent (coord-after-commit-durable=kill); the standby is
#                promoted: new epoch, participants fenced, the decision
#                finished, STATUS answered, new transactions commit, no gid
#                reused
#   old-primary  the deposed primary restarted as primary refuses to start
#                (its standby was promoted); restarted as a standby of the
#                new primary it follows it
#   fork         a COMMIT record made durable on the primary but never
#                acknowledged (the standby was gone); the primary dies, the
#                standby is promoted with --force; the old primary rejoins as
#                a standby: it cuts that record (the fork), and the
#                transaction is rolled back everywhere, as STATUS says
#   frozen       a SIGSTOPped primary with transactions in flight, its
#                standby promoted and used, then SIGCONT: the old primary
#                prepares, commits and rolls back nothing, its clients get
#                errors, and it stops serving with a clear log line
#   not-sure     a standby that has not caught up since it started refuses
#                dtx promote, says why, and is promoted with --force
#   admin        PROMOTE needs a certificate name on admin_clients; a
#                primary refuses PROMOTE
#   two-names    a second coordinator, c2, with its own standby, shares the
#                participants: c2 fails over (kill -9, promote) while c1
#                goes on untouched; each name has its own fence
#   checkpoint   with 64 kB segments and a 1 s outcome retention, the
#                primary's checkpoints remove
#                segments, and so does the standby when it applies the
#                CHECKPOINT records: both keep the same segment files
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/dtx.sh"
h_cases stream sync-wait restart-waits kill-promote old-primary:kill-promote fork frozen not-sure \
    admin two-names checkpoint
h_init

h_pg_start pa
h_pg_start pb
for c in pa pb; do
    h_psql "$c" "alter system set log_statement = 'all'" >/dev/null
    h_psql "$c" "select pg_reload_conf()" >/dev/null
    h_psql "$c" "create table accounts (id text primary key, balance int not null);
                 insert into accounts values ('x', 1000)"
done
h_dtx_certs ops
h_part_start a pa
h_part_start b pb
PROBE="$H_BIN/tool-dtxprobe"
bal() { h_psql "$1" "select balance from accounts where id = 'x'"; }
nprepared() { h_psql "$1" "select count(*) from pg_prepared_xacts"; }

# Two coordinator configurations of one name, c1: P (first primary) and S
# (first standby).  Both use the certificate "coord" (the participants allow
# it); clients are "app", the admin is "ops".
PPORT=$(h_free_port)
SPORT=$(h_free_port)
H_COORD_PORT=$PPORT
h_coord_config "allowed_clients = app, ops, coord" "allowed_standbys = coord" \
    "admin_clients = ops" "standby = 127.0.0.1:$SPORT" "fence_timeout = 10s" "log_level = debug" \
    "idle_timeout = 2s"
cp "$H_TMP/coord.ini" "$H_TMP/P.ini"
# S: the same, its own port and data_dir, and [standby]
sed -e "s/^listen_port = .*/listen_port = $SPORT/" -e "s|coord-data|coord-s-data|" \
    -e "s/^standby = .*/standby = 127.0.0.1:$PPORT/" "$H_TMP/P.ini" >"$H_TMP/S.ini"
# (a standby names no standby of its own while it is one)
standby_ini() { # FILE PRIMARY_PORT: FILE as a standby of 127.0.0.1:PRIMARY_PORT
    sed -e '/^standby = /d' "$1" | sed '/^\[standby\]/,$d' >"$1.tmp"
    printf '[standby]\nprimary = 127.0.0.1:%s\n' "$2" >>"$1.tmp"
    mv "$1.tmp" "$1"
}
standby_ini "$H_TMP/S.ini" "$PPORT"
cp "$H_TMP/S.ini" "$H_TMP/S-standby.ini"

start() { # NAME INI [failpoints]
    DTX_FAILPOINTS=${3:-} h_start "$1" "$H_BIN/dtx-coordinator" -c "$2"
}
export DTXSSLROOTCERT=$H_CERTS/ca.crt DTXSSLCERT=$H_CERTS/app.crt DTXSSLKEY=$H_CERTS/app.key
on() { # PORT dtx ARGS...: the CLI against one coordinator
    local port=$1
    shift
    DTXHOST=127.0.0.1 DTXPORT=$port "$H_BIN/dtx" "$@"
}
as_ops() { DTXSSLCERT=$H_CERTS/ops.crt DTXSSLKEY=$H_CERTS/ops.key "$@"; }
both() { # dtx ARGS... with the standby first in the host list
    DTXHOST=127.0.0.1,127.0.0.1 DTXPORT=$SPORT,$PPORT "$H_BIN/dtx" "$@"
}
field() { sed -n "s/^$2: //p" <<<"$1"; }
transfer() { # PORT AMOUNT: one atomic transfer a -> b; prints the gid
    on "$1" exec -P a "update accounts set balance = balance - $2 where id = 'x'" \
        -P b "update accounts set balance = balance + $2 where id = 'x'" 2>&1 |
        grep -oE 'dtx:c1:[0-9]+:[0-9]+' | tail -n 1
}
wait_sync() { # PORT [FIELD]: until that coordinator reports FIELD (synchronous) yes
    local i
    for i in $(seq 1 100); do
        [ "$(field "$(on "$1" replication 2>/dev/null)" "${2:-synchronous}")" = yes ] && return 0
        sleep 0.1
    done
    return 1
}
fresh_pair() { # a new primary P and standby S, both empty
    h_kill P KILL
    h_kill S KILL
    rm -rf "$H_TMP/coord-data" "$H_TMP/coord-s-data"
    # a new c1 starts at epoch 1 again: re-admit it at the participants on
    # purpose (their durable fence would refuse it, docs/participant.md)
    for p in a b; do h_kill "part-$p" KILL; done
    h_psql pa "delete from dtx_fence" >/dev/null
    h_psql pb "delete from dtx_fence" >/dev/null
    h_part_start a pa
    h_part_start b pb
    cp "$H_TMP/S-standby.ini" "$H_TMP/S.ini"
    start S "$H_TMP/S.ini"
    h_wait_newlog S "ready as a standby" 20
    start P "$H_TMP/P.ini" "${1:-}"
    h_wait_newlog P "ready: epoch" 20
    for p in a b; do h_wait_newlog P "participant \"$p\" .* is ready" 20; done
    wait_sync "$PPORT"
    wait_sync "$SPORT" sure
}

if h_case stream; then
    fresh_pair
    h_check "stream: the primary has a synchronous standby" wait_sync "$PPORT"
    a0=$(bal pa)
    for i in 1 2 3 4 5; do gid=$(transfer "$PPORT" 1); done
    h_check "stream: transfers commit on the primary" test -n "$gid"
    h_eq "stream: a debited" $((a0 - 5)) "$(bal pa)"
    out=$(on "$SPORT" replication 2>&1)
    h_eq "stream: the standby says it is one" standby "$(field "$out" role)"
    h_eq "stream: ... synchronous" yes "$(field "$out" synchronous)"
    h_eq "stream: ... sure" yes "$(field "$out" sure)"
    h_eq "stream: the standby answers STATUS from its copy" COMMITTED \
        "$(DTXHOST=127.0.0.1 DTXPORT=$SPORT DTXTARGETROLE=any "$PROBE" status "$gid")"
    out=$(on "$SPORT" exec -P a "select 1" 2>&1)
    h_check "stream: a client that wants the primary is refused by the standby (57P03)" \
        grep -q "57P03" <<<"$out"
    out=$(both exec -P a "select 1" 2>&1)
    h_eq "stream: with both hosts listed the client finds the primary" 0 $?
    sleep 0.5 # the last ENDs, which nobody waits for
    same=yes
    for f in "$H_TMP"/coord-data/wal/*.seg; do
        cmp -s "$f" "$H_TMP/coord-s-data/wal/$(basename "$f")" || same="no ($(basename "$f"))"
    done
    h_eq "stream: the standby's segments are the primary's, byte for byte" yes "$same"
    h_check "stream: the standby never talked to a participant" \
        bash -c "! grep -q 'participant \"a\" .* is ready' '$H_TMP/S.log'"
    sleep 3 # longer than idle_timeout: a standby is not an idle client
    h_eq "stream: an idle standby stays connected and synchronous" yes \
        "$(field "$(on "$PPORT" replication 2>&1)" synchronous)"
fi

if h_case sync-wait; then
    fresh_pair
    h_kill S KILL
    on "$PPORT" exec -P a "update accounts set balance = balance - 1 where id = 'x'" \
        -P b "update accounts set balance = balance + 1 where id = 'x'" >"$H_TMP/sw.out" 2>&1 &
    client=$!
    sleep 2
    h_check "sync-wait: with the standby gone, the commit is not acknowledged" kill -0 $client
    out=$(on "$PPORT" replication 2>&1)
    h_check "sync-wait: the primary says it waits for the standby" \
        grep -q "state: waiting for the synchronous standby" <<<"$out"
    h_check "sync-wait: ... and that a commit waits" grep -q "detail: 1 commit" <<<"$out"
    h_check "sync-wait: the log says commits wait" \
        h_wait_log P 'synchronous standby "coord" is gone .*commits wait' 2
    start S "$H_TMP/S.ini"
    wait $client
    h_eq "sync-wait: the commit is acknowledged once the standby is back" 0 $?
    h_check "sync-wait: ... as COMMITTED" grep -q COMMITTED "$H_TMP/sw.out"
fi

if h_case restart-waits; then
    fresh_pair
    g=$(transfer "$PPORT" 1)
    h_kill S KILL
    h_kill P KILL
    start P "$H_TMP/P.ini"
    h_check "restart-waits: the restarted primary waits for its standby" \
        h_wait_newlog P "waiting for its synchronous standby before serving" 10
    out=$(on "$PPORT" exec -P a "select 1" 2>&1)
    h_check "restart-waits: meanwhile clients are refused (57P03, starting)" \
        grep -q "57P03" <<<"$out"
    start S "$H_TMP/S.ini"
    h_check "restart-waits: once the standby is back the primary serves" \
        h_wait_newlog P "ready: epoch 2" 20
    g2=$(transfer "$PPORT" 1)
    h_check "restart-waits: and commits ($g2)" grep -q '^dtx:c1:2:' <<<"$g2"
fi

if h_case kill-promote; then
    fresh_pair "coord-after-commit-durable=kill@2"
    a0=$(bal pa) b0=$(bal pb)
    g1=$(transfer "$PPORT" 10)
    h_check "kill-promote: a first transfer commits" test -n "$g1"
    out=$(on "$PPORT" exec -P a "update accounts set balance = balance - 7 where id = 'x'" \
        -P b "update accounts set balance = balance + 7 where id = 'x'" 2>&1)
    g2=$(grep -oE 'dtx:c1:[0-9]+:[0-9]+' <<<"$out" | tail -n 1)
    h_check "kill-promote: the primary died between its COMMIT record and phase two" \
        h_wait_log P "failpoint coord-after-commit-durable fired" 5
    h_kill P KILL
    h_eq "kill-promote: both branches are left prepared" "1 1" "$(nprepared pa) $(nprepared pb)"
    t0=$(date +%s%N)
    out=$(as_ops on "$SPORT" promote 2>&1)
    h_eq "kill-promote: dtx promote succeeds" 0 $?
    h_check "kill-promote: it names the new epoch" grep -q "primary at epoch 2" <<<"$out"
    h_check "kill-promote: every participant fenced" grep -q "2 of 2 participant(s) fenced" <<<"$out"
    h_log "promotion took $((($(date +%s%N) - t0) / 1000000)) ms"
    h_eq "kill-promote: the participants recorded epoch 2 durably" "2 2" \
        "$(h_psql pa "select epoch from dtx_fence where coordinator = 'c1'") $(h_psql pb "select epoch from dtx_fence where coordinator = 'c1'")"
    for i in $(seq 1 50); do [ "$(nprepared pa)$(nprepared pb)" = 00 ] && break; sleep 0.2; done
    h_eq "kill-promote: the logged decision is finished by the new primary" \
        "$((a0 - 17)) $((b0 + 17))" "$(bal pa) $(bal pb)"
    h_eq "kill-promote: STATUS of that gid on the new primary" COMMITTED \
        "$(DTXHOST=127.0.0.1 DTXPORT=$SPORT "$PROBE" status "$g2")"
    g3=$(transfer "$SPORT" 1)
    h_check "kill-promote: the new primary commits ($g3)" grep -q '^dtx:c1:2:' <<<"$g3"
    out=$(both exec -P a "select 1" 2>&1)
    h_eq "kill-promote: clients with both hosts reach the new primary" 0 $?
fi

if h_case old-primary; then
    # P restarted as it was: it asks S, which is primary now, and refuses
    start P "$H_TMP/P.ini"
    sleep 2
    h_check "old-primary: the deposed primary refuses to start as primary" \
        h_wait_log P "refusing to start as primary: standby 127.0.0.1:$SPORT is primary" 10
    h_kill P KILL
    # the participants restarted: their fence comes back from their tables;
    # P started without asking its standby takes epoch 2 again, with
    # another instance, and is refused
    for p in a b; do h_kill "part-$p" KILL; done
    h_part_start a pa
    h_part_start b pb
    # without asking its standby, it still waits for it (its log says it
    # had a synchronous standby) and serves nothing
    sed '/^standby = /d' "$H_TMP/P.ini" >"$H_TMP/P-nocheck.ini"
    start P "$H_TMP/P-nocheck.ini"
    h_check "old-primary: restarted without the check, it waits for its synchronous standby" \
        h_wait_newlog P "waiting for its synchronous standby before serving" 10
    out=$(on "$PPORT" exec -P a "select 1" 2>&1)
    h_check "old-primary: ... and serves no client meanwhile" grep -q "57P03" <<<"$out"
    h_kill P KILL
    # and with no standby configured at all it takes epoch 2 again, with
    # another instance: the restarted participants refuse it
    sed '/^allowed_standbys = /d' "$H_TMP/P-nocheck.ini" >"$H_TMP/P-alone.ini"
    start P "$H_TMP/P-alone.ini"
    h_check "old-primary: restarted participants still refuse the deposed primary (it stops)" \
        h_wait_log P "this coordinator has been deposed: participant .*epoch 2 of coordinator \"c1\" is claimed by another instance" 15
    h_wait_exit P 10
    h_kill P KILL
    # P as a standby of S
    cp "$H_TMP/P.ini" "$H_TMP/P-standby.ini"
    standby_ini "$H_TMP/P-standby.ini" "$SPORT"
    start P "$H_TMP/P-standby.ini"
    h_check "old-primary: it follows the new primary as its standby" wait_sync "$SPORT"
    gid=$(transfer "$SPORT" 1)
    sleep 0.5
    same=yes
    for f in "$H_TMP"/coord-s-data/wal/*.seg; do
        cmp -s "$f" "$H_TMP/coord-data/wal/$(basename "$f")" || same="no ($(basename "$f"))"
    done
    h_eq "old-primary: its log is now the new primary's, byte for byte" yes "$same"
fi

if h_case fork; then
    fresh_pair
    a0=$(bal pa) b0=$(bal pb)
    h_kill S KILL
    on "$PPORT" exec -P a "update accounts set balance = balance - 50 where id = 'x'" \
        -P b "update accounts set balance = balance + 50 where id = 'x'" >"$H_TMP/fork.out" 2>&1 &
    client=$!
    h_check "fork: the primary logs a COMMIT its standby never acknowledges" \
        h_wait_log P "transaction dtx:c1:1:[0-9]+: preparing -> logging" 10
    sleep 0.5 # durable here, waiting for the standby
    gid=$(grep -oE 'transaction dtx:c1:1:[0-9]+: preparing -> logging' "$H_TMP/P.log" | tail -n 1 |
        grep -oE 'dtx:c1:1:[0-9]+')
    h_kill P KILL
    wait $client
    h_check "fork: its client is not told COMMITTED" bash -c "! grep -q '^COMMITTED' '$H_TMP/fork.out'"
    start S "$H_TMP/S.ini"
    h_wait_newlog S "ready as a standby" 20
    out=$(as_ops on "$SPORT" promote --force 2>&1)
    h_eq "fork: the standby is promoted (--force: its primary is gone)" 0 $?
    cp "$H_TMP/P.ini" "$H_TMP/P-standby.ini"
    standby_ini "$H_TMP/P-standby.ini" "$SPORT"
    start P "$H_TMP/P-standby.ini"
    h_check "fork: the old primary cuts the record the new primary never received" \
        h_wait_log P "cutting a COMMIT record of $gid that its new primary never received" 15
    h_check "fork: ... and follows the new primary" wait_sync "$SPORT"
    for i in $(seq 1 50); do [ "$(nprepared pa)$(nprepared pb)" = 00 ] && break; sleep 0.2; done
    h_eq "fork: the transaction is rolled back everywhere" "$a0 $b0" "$(bal pa) $(bal pb)"
    h_eq "fork: STATUS on the new primary agrees" ABORTED \
        "$(DTXHOST=127.0.0.1 DTXPORT=$SPORT "$PROBE" status "$gid")"
    g=$(transfer "$SPORT" 1)
    sleep 0.5
    same=yes
    for f in "$H_TMP"/coord-s-data/wal/*.seg; do
        cmp -s "$f" "$H_TMP/coord-data/wal/$(basename "$f")" || same="no ($(basename "$f"))"
    done
    h_eq "fork: the old primary's log is now the new primary's, byte for byte" yes "$same"
fi

if h_case frozen; then
    fresh_pair
    # three clients of the old primary keep transferring (accounts y1..y3,
    # each its own row), so that its transactions are in every state when
    # it freezes: running statements, preparing, logged, finishing
    loops=()
    for k in 1 2 3; do
        for c in pa pb; do h_psql "$c" "insert into accounts values ('y$k', 0)" >/dev/null; done
        (while :; do
            out=$(on "$PPORT" exec -P a "update accounts set balance = balance - 1 where id = 'y$k'" \
                -P b "update accounts set balance = balance + 1 where id = 'y$k'" 2>&1)
            echo "$(grep -oE 'dtx:c1:[0-9]+:[0-9]+' <<<"$out" | tail -n 1) $(grep -oE '^(COMMITTED|ABORTED|UNKNOWN)' <<<"$out" | tail -n 1)"
            grep -q "Connection refused" <<<"$out" && break
        done >"$H_TMP/fz$k.out" 2>&1) &
        loops+=($!)
    done
    sleep 1.5
    kill -STOP "$(h_pid P)"
    out=$(as_ops on "$SPORT" promote 2>&1)
    h_eq "frozen: the standby is promoted while the primary is frozen" 0 $?
    g=$(transfer "$SPORT" 3)
    h_check "frozen: the new primary commits" test -n "$g"
    # the new primary has finished what the old epoch left: anything of
    # epoch 1 the databases see from now on would be the frozen primary's
    for i in $(seq 1 50); do [ "$(nprepared pa)$(nprepared pb)" = 00 ] && break; sleep 0.2; done
    mark_a=$(wc -l <"$H_TMP/pg-pa/server.log")
    mark_b=$(wc -l <"$H_TMP/pg-pb/server.log")
    kill -CONT "$(h_pid P)"
    h_check "frozen: the old primary stops serving, with a clear log line" \
        h_wait_log P "this coordinator has been deposed" 15
    h_wait_exit P 10
    wait "${loops[@]}"
    sleep 1
    new_a=$(tail -n +$((mark_a + 1)) "$H_TMP/pg-pa/server.log" | grep -cE "PREPARE TRANSACTION 'dtx:c1:1:|COMMIT PREPARED 'dtx:c1:1:|ROLLBACK PREPARED 'dtx:c1:1:")
    new_b=$(tail -n +$((mark_b + 1)) "$H_TMP/pg-pb/server.log" | grep -cE "PREPARE TRANSACTION 'dtx:c1:1:|COMMIT PREPARED 'dtx:c1:1:|ROLLBACK PREPARED 'dtx:c1:1:")
    h_eq "frozen: after SIGCONT the old primary prepares, commits, rolls back nothing" "0 0" \
        "$new_a $new_b"
    h_eq "frozen: nothing is left prepared" "0 0" "$(nprepared pa) $(nprepared pb)"
    # every transfer its clients were told COMMITTED is committed; the rest
    # are answered by the new primary in agreement with the data
    bad=0
    told=0
    for k in 1 2 3; do
        while read -r gid res; do
            [ -n "$gid" ] || continue
            st=$(DTXHOST=127.0.0.1 DTXPORT=$SPORT "$PROBE" status "$gid")
            [ "$res" = COMMITTED ] && told=$((told + 1))
            if [ "$res" = COMMITTED ] && [ "$st" != COMMITTED ]; then bad=$((bad + 1)); fi
            if [ "$res" = ABORTED ] && [ "$st" = COMMITTED ]; then bad=$((bad + 1)); fi
        done <"$H_TMP/fz$k.out"
        n_c=$(awk '$2 == "COMMITTED"' "$H_TMP/fz$k.out" | wc -l)
        # what STATUS says committed must be what the data holds
        n_s=0
        while read -r gid res; do
            [ -n "$gid" ] || continue
            [ "$(DTXHOST=127.0.0.1 DTXPORT=$SPORT "$PROBE" status "$gid")" = COMMITTED ] && n_s=$((n_s + 1))
        done <"$H_TMP/fz$k.out"
        [ "$(h_psql pb "select balance from accounts where id = 'y$k'")" = "$n_s" ] ||
            bad=$((bad + 1))
        [ "$n_s" -ge "$n_c" ] || bad=$((bad + 1))
    done
    h_eq "frozen: what its clients were told agrees with STATUS on the new primary and the data ($told committed)" \
        0 "$bad"
fi

if h_case not-sure; then
    fresh_pair
    h_kill P KILL
    h_kill S KILL
    start S "$H_TMP/S.ini" # its primary is gone: it cannot catch up
    h_wait_newlog S "ready as a standby" 20
    out=$(as_ops on "$SPORT" promote 2>&1)
    h_eq "not-sure: promote is refused" 1 $?
    h_check "not-sure: ... saying why" grep -q "cannot be sure .*never synchronous" <<<"$out"
    h_check "not-sure: ... and how to go on" grep -q -- "--force" <<<"$out"
    out=$(as_ops on "$SPORT" promote --force 2>&1)
    h_eq "not-sure: promote --force succeeds" 0 $?
    h_check "not-sure: the log says it was forced" h_wait_log S "promotion forced" 2
fi

if h_case admin; then
    fresh_pair
    out=$(on "$SPORT" promote 2>&1)
    h_eq "admin: PROMOTE from a client not on admin_clients is refused" 1 $?
    h_check "admin: ... 42501, naming the certificate" grep -q '42501.*"app"\|"app".*42501' \
        <<<"$(tr '\n' ' ' <<<"$out")"
    out=$(as_ops on "$PPORT" promote 2>&1)
    h_check "admin: a primary refuses PROMOTE" grep -q "is a primary, not a standby" <<<"$out"
    h_eq "admin: the standby is still a standby" standby \
        "$(field "$(on "$SPORT" replication 2>&1)" role)"
fi
if h_case two-names; then
    fresh_pair
    QPORT=$(h_free_port)
    RPORT=$(h_free_port)
    sed -e "s/^name = .*/name = c2/" -e "s/^listen_port = .*/listen_port = $QPORT/" \
        -e "s|coord-data|c2-q-data|" -e "s/^standby = .*/standby = 127.0.0.1:$RPORT/" \
        "$H_TMP/P.ini" >"$H_TMP/Q.ini"
    sed -e "s/^listen_port = .*/listen_port = $RPORT/" -e "s|c2-q-data|c2-r-data|" \
        "$H_TMP/Q.ini" >"$H_TMP/R.ini"
    standby_ini "$H_TMP/R.ini" "$QPORT"
    start R "$H_TMP/R.ini"
    h_wait_newlog R "ready as a standby" 20
    start Q "$H_TMP/Q.ini"
    h_wait_newlog Q "ready: epoch" 20
    h_check "two-names: c2 has a synchronous standby too" wait_sync "$QPORT"
    wait_sync "$RPORT" sure
    g=$(on "$QPORT" exec -P a "update accounts set balance = balance - 2 where id = 'x'" \
        -P b "update accounts set balance = balance + 2 where id = 'x'" 2>&1 | grep -oE 'dtx:c2:1:[0-9]+')
    h_check "two-names: c2 commits on the shared participants ($g)" test -n "$g"
    h_kill Q KILL
    out=$(as_ops on "$RPORT" promote 2>&1)
    h_eq "two-names: c2's standby is promoted" 0 $?
    g2=$(on "$RPORT" exec -P a "update accounts set balance = balance - 1 where id = 'x'" \
        -P b "update accounts set balance = balance + 1 where id = 'x'" 2>&1 | grep -oE 'dtx:c2:2:[0-9]+')
    h_check "two-names: c2's new primary commits ($g2)" test -n "$g2"
    g1=$(transfer "$PPORT" 1)
    h_check "two-names: c1 commits on, untouched ($g1)" grep -q '^dtx:c1:1:' <<<"$g1"
    h_eq "two-names: c1 still has its synchronous standby" yes \
        "$(field "$(on "$PPORT" replication 2>&1)" synchronous)"
    h_eq "two-names: each name has its own fence" "c1:1,c2:2" \
        "$(h_psql pa "select string_agg(coordinator || ':' || epoch, ',' order by coordinator) from dtx_fence")"
    h_stop R
fi
if h_case checkpoint; then
    h_kill P KILL
    h_kill S KILL
    for f in P.ini S-standby.ini; do
        sed -e "s/^\\[participants\\]/wal_segment_size = 64kB\\ncheckpoint_segments = 1\\noutcome_retention = 1s\\ncheckpoint_interval = 1s\\n[participants]/" \
            "$H_TMP/$f" >"$H_TMP/ck-$f"
    done
    saved=$(cat "$H_TMP/P.ini")
    cp "$H_TMP/ck-P.ini" "$H_TMP/P.ini"
    cp "$H_TMP/ck-S-standby.ini" "$H_TMP/S-standby.ini"
    fresh_pair
    # ~1,500 one-shot transfers (about 150 bytes of log each) through the
    # Python client, on the release build's libdtx
    lib=$H_ROOT/build/release/lib/libdtx.so.1
    [ -f "$lib" ] || lib=$H_ROOT/build/$H_BUILD/lib/libdtx.so.1
    LIBDTX_PATH=$lib PYTHONPATH=$H_ROOT/client/python PYTHONDONTWRITEBYTECODE=1 \
        DTXHOST=127.0.0.1 DTXPORT=$PPORT python3 - >"$H_TMP/ck.out" 2>&1 <<'PY'
import dtx
with dtx.connect() as c:
    for i in range(1500):
        c.oneshot([("a", "update accounts set balance = balance - 1 where id = 'x'"),
                   ("b", "update accounts set balance = balance + 1 where id = 'x'")],
                  results=False)
print("done")
PY
    h_check "checkpoint: 1,500 transfers commit" grep -q '^done' "$H_TMP/ck.out"
    h_check "checkpoint: the primary removed segments" h_wait_log P "checkpoint at .*: removed [1-9]" 10
    h_check "checkpoint: so did the standby, applying its primary's checkpoints" \
        h_wait_log S "checkpoint at .*: removed [1-9]" 10
    sleep 1
    h_eq "checkpoint: both keep the same segment files" \
        "$(ls "$H_TMP/coord-data/wal" | grep seg | head -n 1)" \
        "$(ls "$H_TMP/coord-s-data/wal" | grep seg | head -n 1)"
    h_check "checkpoint: the oldest kept is no longer segment 0" \
        bash -c "! ls '$H_TMP/coord-s-data/wal' | grep -q '^0000000000000000.seg'"
    # a new standby clones a log whose first segments are gone
    h_kill S KILL
    rm -rf "$H_TMP/coord-s-data"
    start S "$H_TMP/S.ini"
    h_check "checkpoint: a new standby clones from the oldest segment kept" wait_sync "$PPORT"
    g=$(transfer "$PPORT" 1)
    h_check "checkpoint: ... and the primary commits with it ($g)" test -n "$g"
    sleep 0.5
    h_eq "checkpoint: its first segment is the primary's" \
        "$(ls "$H_TMP/coord-data/wal" | grep seg | head -n 1)" \
        "$(ls "$H_TMP/coord-s-data/wal" | grep seg | head -n 1)"
    echo "$saved" >"$H_TMP/P.ini"
fi
h_end_case

h_stop S
h_eq "the standby (or promoted standby) exits 0 on SIGTERM (no leaks)" 0 $?
h_stop P
rc=$?
h_check "the other coordinator exits 0 or was killed on purpose" test $rc = 0 -o $rc = 137
h_done
